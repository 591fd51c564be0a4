"""Slack: the outbox of posts, the feed cursor over the audit trail, and the sender lease.

The store is the source of truth; Slack only ever gets copies, sent from cs_slack_outbox in id order
within each lane (one session's thread, one approval request's message and thread).
The cursor starts at the trail's current end, so adding Slack to an existing store does not replay
its whole history into a channel.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cs_slack_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(80)),
        sa.Column("key", sa.String(120), unique=True),
        sa.Column("thread_key", sa.String(120)),
        sa.Column("lane", sa.String(120), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("source_seq", sa.Integer),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("claimed_by", sa.String(120)),
        sa.Column("last_error", sa.Text),
        sa.Column("slack_channel", sa.String(80)),
        sa.Column("slack_ts", sa.String(40)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_cs_slack_outbox_status_id", "cs_slack_outbox", ["status", "id"])
    op.create_index("ix_cs_slack_outbox_lane_id", "cs_slack_outbox", ["lane", "id"])
    cursor = op.create_table(
        "cs_slack_cursor",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
    )
    start = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM cs_audit_events")).scalar()
    op.bulk_insert(cursor, [{"id": 1, "last_seq": int(start or 0)}])
    lease = op.create_table(
        "cs_slack_lease",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("holder", sa.String(120)),
        sa.Column("until", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(lease, [{"id": 1, "holder": None, "until": None}])


def downgrade() -> None:
    for table in ("cs_slack_lease", "cs_slack_cursor", "cs_slack_outbox"):
        op.drop_table(table)

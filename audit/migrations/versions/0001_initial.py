"""The initial store: sessions, the hash-chained audit trail and its head, approvals, snapshots.

Written out table by table rather than via metadata.create_all, so this revision stays what it was
when later revisions change audit/schema.py.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "cs_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(50), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "cs_audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("session_id", sa.String(36)),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_cs_audit_events_session_id", "cs_audit_events", ["session_id"])
    head = op.create_table(
        "cs_audit_chain_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    # The head row exists from the start, so appenders only ever lock and update it (no insert race).
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS}])
    op.create_table(
        "cs_approval_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(50), nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("binding", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("required_approvals", sa.Integer, nullable=False),
        sa.Column("allowed_approvers", sa.Text),
        sa.Column("estimated_rows", sa.BigInteger),
        sa.Column("rows_exact", sa.Boolean),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("session_id", sa.String(36)),
    )
    op.create_table(
        "cs_approval_votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), sa.ForeignKey("cs_approval_requests.id"), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("binding", sa.String(64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.UniqueConstraint("request_id", "approver", name="uq_vote_once"),
    )
    op.create_table(
        "cs_snapshots",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("table_name", sa.String(300), nullable=False),
        sa.Column("location", sa.String(300), nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("key_columns", sa.Text, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("approval_id", sa.String(36)),
        sa.Column("session_id", sa.String(36)),
        sa.Column("status", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    for table in ("cs_snapshots", "cs_approval_votes", "cs_approval_requests", "cs_audit_chain_head",
                  "cs_audit_events", "cs_sessions"):
        op.drop_table(table)

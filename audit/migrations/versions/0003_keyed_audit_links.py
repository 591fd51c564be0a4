"""Keyed audit links: each event's HMAC link under the audit key, and where keyed links begin.

Events recorded before this revision keep their unkeyed hash chain and a NULL link; `keyed_from`
marks the first seq that must carry a keyed link, so an old trail still verifies and a new event
whose link was stripped does not. `store_id` names this store in its links and anchors.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cs_audit_events", sa.Column("link", sa.String(64)))
    op.add_column("cs_audit_chain_head", sa.Column("last_link", sa.String(64)))
    op.add_column("cs_audit_chain_head", sa.Column("keyed_from", sa.Integer))
    op.add_column("cs_audit_chain_head", sa.Column("store_id", sa.String(36)))
    op.get_bind().execute(sa.text("UPDATE cs_audit_chain_head SET keyed_from = last_seq + 1, store_id = :store "
                                  "WHERE id = 1"), {"store": str(uuid.uuid4())})


def downgrade() -> None:
    with op.batch_alter_table("cs_audit_chain_head") as batch:
        for column in ("store_id", "keyed_from", "last_link"):
            batch.drop_column(column)
    with op.batch_alter_table("cs_audit_events") as batch:
        batch.drop_column("link")

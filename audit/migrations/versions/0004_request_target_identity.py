"""The target's identity on each approval request: what the server said it was (host, port, database,
system id, and the session settings that change what a statement means) when the request was made.

The request's binding covers it, so an approval runs only on the database its reviewers saw. Requests
made before this revision keep a NULL identity and their old binding; the gate refuses to run them
(they never named a database), and the requester submits the statement again.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cs_approval_requests", sa.Column("target_identity", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("cs_approval_requests") as batch:
        batch.drop_column("target_identity")

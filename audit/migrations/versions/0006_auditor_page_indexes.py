"""Indexes for the auditor's pages: every list is keyset-paginated newest first, every filter has an
index to walk, and no page counts over the whole trail.

- sessions: (started_at, id), and the same led by user, target and environment (the list's filters);
- audit events: ts (exports by date range); a partial index for "commands that wrote" and one for
  "commands refused or rejected" (outcome events, matched on their canonical JSON), each on
  (session_id, ts): by session for the list's filters and per-page counts, read whole (it is small)
  for the overview's days; one index serving both keeps a planner from scanning the wrong one;
  snapshot events (restore history); and on PostgreSQL, when pg_trgm can be installed, a trigram
  index over intents' payloads, so searching statement text does not scan the trail;
- approval requests: (created_at, id), (status, created_at, id), session_id; snapshots: (created_at, id).

The partial indexes' predicates must be exactly the text service/pages/queries.py puts in its queries
(a planner uses a partial index only when the query says the same thing); tests/test_auditor_pages.py
checks that they are. They are literal text here, not imported: a migration must keep meaning what it
meant when it ran.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# A command that changed data or schema and succeeded; a command the policy refused or a reviewer rejected.
# Canonical JSON (sorted keys, no spaces) escapes every quote inside a string value, so `"status":"ok"`
# can only be the status field itself, never text inside a statement.
WROTE = ("type = 'outcome' AND payload LIKE '%\"status\":\"ok\"%' AND (payload LIKE '%\"kind\":\"write\"%' "
         "OR payload LIKE '%\"kind\":\"ddl\"%' OR payload LIKE '%\"kind\":\"privilege\"%' "
         "OR payload LIKE '%\"kind\":\"admin\"%' OR payload LIKE '%\"kind\":\"unknown\"%')")
REFUSED = ("type = 'outcome' AND (payload LIKE '%\"status\":\"blocked\"%' "
           "OR payload LIKE '%\"status\":\"rejected\"%')")
SNAPSHOT_EVENTS = "type = 'snapshot'"

INDEXES = (   # name, table, columns, partial predicate
    ("ix_cs_sessions_started", "cs_sessions", ["started_at", "id"], None),
    ("ix_cs_sessions_user_started", "cs_sessions", ["user", "started_at", "id"], None),
    ("ix_cs_sessions_target_started", "cs_sessions", ["target", "started_at", "id"], None),
    ("ix_cs_sessions_environment_started", "cs_sessions", ["environment", "started_at", "id"], None),
    ("ix_cs_audit_events_ts", "cs_audit_events", ["ts"], None),
    ("ix_cs_audit_events_wrote", "cs_audit_events", ["session_id", "ts"], WROTE),
    ("ix_cs_audit_events_refused", "cs_audit_events", ["session_id", "ts"], REFUSED),
    ("ix_cs_audit_events_snapshot", "cs_audit_events", ["seq"], SNAPSHOT_EVENTS),
    ("ix_cs_approval_requests_created", "cs_approval_requests", ["created_at", "id"], None),
    ("ix_cs_approval_requests_status_created", "cs_approval_requests", ["status", "created_at", "id"], None),
    ("ix_cs_approval_requests_session", "cs_approval_requests", ["session_id"], None),
    ("ix_cs_snapshots_created", "cs_snapshots", ["created_at", "id"], None),
)
TRIGRAM_INDEX = "ix_cs_audit_events_intent_trgm"


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        predicate = sa.text(where) if where else None
        op.create_index(name, table, columns, postgresql_where=predicate, sqlite_where=predicate)
    if op.get_bind().dialect.name == "postgresql":
        _trigram_index()


def _trigram_index() -> None:
    """pg_trgm ships with PostgreSQL's contrib and is a trusted extension (a database owner may
    create it); where it cannot be created the store still works and search scans instead."""
    bind = op.get_bind()
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return
    savepoint.commit()
    op.execute(f"CREATE INDEX {TRIGRAM_INDEX} ON cs_audit_events USING gin (payload gin_trgm_ops) "
               "WHERE type = 'intent'")


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)

"""The control-plane store's tables: sessions, audit events, approval requests and votes, snapshots,
and the Slack outbox.

One SQLAlchemy metadata for all of it (SQLite by default, PostgreSQL when a team shares it).
Alembic migrations in audit/migrations create exactly these tables; change both together.
"""
from __future__ import annotations

from sqlalchemy import (Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, text,
                        Text, UniqueConstraint, BigInteger)

metadata = MetaData()

sessions = Table(
    "cs_sessions", metadata,
    Column("id", String(36), primary_key=True),
    Column("user", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("environment", String(50), nullable=False),
    Column("host", String(200), nullable=False),
    Column("reason", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)

# Append-only and hash-chained: hash = sha256(prev_hash + canonical JSON of the event); since
# migration 0003 each event also carries `link`, HMAC-SHA256 under the audit key over the store id, seq,
# the previous link and hash (audit/keys.py). NULL link: an event from before keyed links.
audit_events = Table(
    "cs_audit_events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("session_id", String(36), index=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("type", String(40), nullable=False),      # session_start | intent | outcome | session_end | approval | snapshot | ...
    Column("payload", Text, nullable=False),         # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("link", String(64)),                      # keyed link (0003); NULL before keyed links began
)

# One row; updating it inside the appending transaction serialises writers of the chain.
audit_chain_head = Table(
    "cs_audit_chain_head", metadata,
    Column("id", Integer, primary_key=True),
    Column("last_seq", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("last_link", String(64)),                 # the last event's keyed link (0003)
    Column("keyed_from", Integer),                   # the first seq that must carry a keyed link (0003)
    Column("store_id", String(36)),                  # this store's identity in its links and anchors (0003)
)

approval_requests = Table(
    "cs_approval_requests", metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("requester", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("environment", String(50), nullable=False),
    Column("statement", Text, nullable=False),
    Column("binding", String(64), nullable=False),   # sha256 over (statement, target, requester, identity)
    Column("kind", String(20), nullable=False),
    Column("reason", Text, nullable=False),          # why approval is needed
    Column("required_approvals", Integer, nullable=False),
    Column("allowed_approvers", Text),               # JSON list, or NULL for anyone but the requester
    Column("estimated_rows", BigInteger),
    Column("rows_exact", Boolean),
    Column("status", String(20), nullable=False),    # pending | approved | rejected | expired | used | cancelled
    Column("used_at", DateTime(timezone=True)),
    Column("session_id", String(36)),
    Column("target_identity", Text),                 # what the server said it was (0004); NULL before that
)

approval_votes = Table(
    "cs_approval_votes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(36), ForeignKey("cs_approval_requests.id"), nullable=False),
    Column("approver", String(200), nullable=False),
    Column("verdict", String(10), nullable=False),   # approve | reject
    Column("comment", Text),
    Column("binding", String(64), nullable=False),   # the binding the voter saw
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("source", String(20), nullable=False),    # local | slack
    UniqueConstraint("request_id", "approver", name="uq_vote_once"),
)

snapshots = Table(
    "cs_snapshots", metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("target", String(200), nullable=False),
    Column("table_name", String(300), nullable=False),     # the table the write touched
    Column("location", String(300), nullable=False),       # where the before-image lives (schema.table / db.collection)
    Column("operation", String(20), nullable=False),       # update | delete | insert | table
    Column("key_columns", Text, nullable=False),           # JSON list; empty when the table has no primary key
    Column("row_count", BigInteger, nullable=False),
    Column("size_bytes", BigInteger),
    Column("statement", Text, nullable=False),
    Column("approval_id", String(36)),
    Column("session_id", String(36)),
    Column("status", String(20), nullable=False),          # complete | restored | pruned
)

# -- Slack (migration 0002): `countersign serve` copies the trail to Slack through these --------------
# One row per Slack post, sent in id order. `key` names the message a post becomes (session:<id>,
# approval:<id>) so later posts can thread under it or update it; `thread_key` names that parent.
slack_outbox = Table(
    "cs_slack_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("channel", String(80)),
    Column("key", String(120), unique=True),
    Column("thread_key", String(120)),
    Column("lane", String(120), nullable=False),        # posts in one lane go out in order: thread_key or key
    Column("payload", Text, nullable=False),            # JSON
    Column("source_seq", Integer),                      # the audit event it was made from
    Column("status", String(12), nullable=False),       # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("claimed_by", String(120)),
    Column("last_error", Text),
    Column("slack_channel", String(80)),
    Column("slack_ts", String(40)),
    Column("sent_at", DateTime(timezone=True)),
    Index("ix_cs_slack_outbox_status_id", "status", "id"),
    Index("ix_cs_slack_outbox_lane_id", "lane", "id"),
)

# One row: the last audit event seq turned into outbox rows.
slack_cursor = Table(
    "cs_slack_cursor", metadata,
    Column("id", Integer, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

# One row: which `serve` process feeds and sends, and until when (renewed while it runs).
slack_lease = Table(
    "cs_slack_lease", metadata,
    Column("id", Integer, primary_key=True),
    Column("holder", String(120)),
    Column("until", DateTime(timezone=True)),
)

# -- Team mode (migration 0005): who may call `countersign serve` ------------------------------------
# A token is shown once, at issue; the store keeps only its SHA-256, so reading the store gives no
# usable credential. kind: login (from `countersign login`, short-lived) | automation (issued by an admin).
api_tokens = Table(
    "cs_api_tokens", metadata,
    Column("id", String(36), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("person", String(200), nullable=False),
    Column("label", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(200)),
)

# A login waiting for its person to confirm it in Slack. The console polls with a secret whose
# SHA-256 is kept here; the token it receives is issued once, when the confirmed login is collected.
logins = Table(
    "cs_logins", metadata,
    Column("id", String(36), primary_key=True),
    Column("poll_hash", String(64), nullable=False),
    Column("person", String(200), nullable=False),
    Column("slack_user", String(40)),
    Column("host", String(200), nullable=False),
    Column("status", String(20), nullable=False),     # pending | confirmed | denied | collected | expired
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("token_id", String(36)),
)

# -- the auditor's pages (migration 0006): keyset pagination newest first, one index per filter --------
# The partial predicates are the migration's own text (service/pages/queries.py uses the same).
_WROTE = ("type = 'outcome' AND payload LIKE '%\"status\":\"ok\"%' AND (payload LIKE '%\"kind\":\"write\"%' "
          "OR payload LIKE '%\"kind\":\"ddl\"%' OR payload LIKE '%\"kind\":\"privilege\"%' "
          "OR payload LIKE '%\"kind\":\"admin\"%' OR payload LIKE '%\"kind\":\"unknown\"%')")
_REFUSED = ("type = 'outcome' AND (payload LIKE '%\"status\":\"blocked\"%' "
            "OR payload LIKE '%\"status\":\"rejected\"%')")


def _partial(where: str) -> dict:
    return {"postgresql_where": text(where), "sqlite_where": text(where)}


Index("ix_cs_sessions_started", sessions.c.started_at, sessions.c.id)
Index("ix_cs_sessions_user_started", sessions.c.user, sessions.c.started_at, sessions.c.id)
Index("ix_cs_sessions_target_started", sessions.c.target, sessions.c.started_at, sessions.c.id)
Index("ix_cs_sessions_environment_started", sessions.c.environment, sessions.c.started_at, sessions.c.id)
Index("ix_cs_audit_events_ts", audit_events.c.ts)
Index("ix_cs_audit_events_wrote", audit_events.c.session_id, audit_events.c.ts, **_partial(_WROTE))
Index("ix_cs_audit_events_refused", audit_events.c.session_id, audit_events.c.ts, **_partial(_REFUSED))
Index("ix_cs_audit_events_snapshot", audit_events.c.seq, **_partial("type = 'snapshot'"))
Index("ix_cs_approval_requests_created", approval_requests.c.created_at, approval_requests.c.id)
Index("ix_cs_approval_requests_status_created", approval_requests.c.status, approval_requests.c.created_at,
      approval_requests.c.id)
Index("ix_cs_approval_requests_session", approval_requests.c.session_id)
Index("ix_cs_snapshots_created", snapshots.c.created_at, snapshots.c.id)

"""The SQL behind the auditor's pages: read-only, keyset-paginated, and indexed for a large trail.

Every list walks an index newest first from a cursor (the last row's time and id), fetching one row
more than it shows to know whether there is another page; nothing counts over the whole trail. The
indexes are migration 0006's. "Wrote" and "refused" are matched on the outcome events' canonical JSON
with the predicates below, which must stay exactly the partial indexes' predicates (a planner uses a
partial index only when the query says the same thing), and stay literal SQL (a bound parameter would
hide them from the planner).

Each function takes an open Connection and returns frozen values; the pages never write here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator, Mapping

from sqlalchemy import Connection, and_, case, false, func, literal_column, or_, select, text, tuple_

from audit.chain import AuditEvent
from audit.schema import approval_requests as requests_t
from audit.schema import approval_votes as votes_t
from audit.schema import audit_chain_head as head_t
from audit.schema import audit_events as events_t
from audit.schema import sessions as sessions_t
from audit.schema import slack_outbox as outbox_t
from audit.schema import snapshots as snapshots_t
from snapshots.records import SnapshotRecord

PAGE_SIZE = 50
TIMELINE_LIMIT = 2000          # events of one session on one page (a longer session pages on by seq)
EXPORT_BATCH = 2000            # events read per query while streaming an export

# Exactly migration 0006's partial index predicates (tests/test_auditor_pages.py compares them).
WROTE = ("type = 'outcome' AND payload LIKE '%\"status\":\"ok\"%' AND (payload LIKE '%\"kind\":\"write\"%' "
         "OR payload LIKE '%\"kind\":\"ddl\"%' OR payload LIKE '%\"kind\":\"privilege\"%' "
         "OR payload LIKE '%\"kind\":\"admin\"%' OR payload LIKE '%\"kind\":\"unknown\"%')")
REFUSED = ("type = 'outcome' AND (payload LIKE '%\"status\":\"blocked\"%' "
           "OR payload LIKE '%\"status\":\"rejected\"%')")
SNAPSHOT_EVENTS = "type = 'snapshot'"
INTENTS = "type = 'intent'"
BLOCKED = "payload LIKE '%\"status\":\"blocked\"%'"

DECIDED = ("approved", "rejected", "used", "cancelled")
APPROVAL_VIEWS = ("pending", "decided", "expired", "all")


# -- values ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cursor:
    """A position in a newest-first list: the row's time and id (ids break ties)."""
    at: datetime
    id: str

    def token(self) -> str:
        """
        >>> Cursor(datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc), "s1").token()
        '2026-03-01T09:00:00+00:00~s1'
        """
        return f"{self.at.isoformat()}~{self.id}"

    @classmethod
    def parse(cls, token: str | None) -> "Cursor | None":
        """The cursor a page link carries; None for a missing or malformed one (the first page).

        >>> Cursor.parse("2026-03-01T09:00:00+00:00~s1").id, Cursor.parse("garbage"), Cursor.parse(None)
        ('s1', None, None)
        """
        if not token or "~" not in token or len(token) > 200:
            return None
        at, _, row_id = token.partition("~")
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            return None
        return cls(_utc(when), row_id) if row_id else None


@dataclass(frozen=True)
class Page:
    """One page of a list, and where the pages before and after it start (None: there is none)."""
    rows: tuple
    newer: Cursor | None
    older: Cursor | None


@dataclass(frozen=True)
class SessionFilter:
    person: str | None = None
    target: str | None = None
    environment: str | None = None
    engine: str | None = None
    since: date | None = None          # started on or after this UTC day
    until: date | None = None          # started on or before this UTC day
    wrote: bool = False                # had a command that changed data or schema
    refused: bool = False              # had a command the policy refused or a reviewer rejected
    search: str | None = None          # a piece of a statement's text

    @property
    def active(self) -> bool:
        return self != SessionFilter()


@dataclass(frozen=True)
class SessionRow:
    id: str
    user: str
    target: str
    environment: str
    host: str
    reason: str | None
    started_at: datetime
    ended_at: datetime | None
    commands: int = 0
    writes: int = 0
    refused: int = 0


@dataclass(frozen=True)
class VoteRow:
    approver: str
    verdict: str
    comment: str | None
    at: datetime
    source: str


@dataclass(frozen=True)
class ApprovalRow:
    id: str
    created_at: datetime
    expires_at: datetime
    requester: str
    target: str
    environment: str
    statement: str
    kind: str
    reason: str
    required_approvals: int
    estimated_rows: int | None
    rows_exact: bool | None
    status: str                        # as stored; see `status_at`
    used_at: datetime | None
    session_id: str | None
    votes: tuple[VoteRow, ...] = ()

    def status_at(self, now: datetime) -> str:
        """An open request past its expiry counts as expired (as approvals.models.status_at says)."""
        return "expired" if self.status in ("pending", "approved") and now >= self.expires_at else self.status

    @property
    def approvals(self) -> int:
        return sum(v.verdict == "approve" for v in self.votes)

    @property
    def decided_at(self) -> datetime | None:
        """When the votes decided it: the deciding vote is the last one (voting closes on a decision)."""
        if self.status not in ("approved", "rejected", "used") or not self.votes:
            return None
        return max(v.at for v in self.votes)

    @property
    def time_to_decision(self) -> timedelta | None:
        decided = self.decided_at
        return None if decided is None else decided - self.created_at


@dataclass(frozen=True)
class ChainHead:
    seq: int
    store_id: str | None


@dataclass(frozen=True)
class DayCount:
    day: str                           # YYYY-MM-DD, UTC
    series: str                        # an environment, or a status
    count: int


# -- sessions ------------------------------------------------------------------------------------------
def sessions_page(conn: Connection, where: SessionFilter, *, after: Cursor | None = None,
                  before: Cursor | None = None, engines: Mapping[str, str] | None = None,
                  limit: int = PAGE_SIZE) -> Page:
    """Sessions newest first, filtered; `after` continues to older ones, `before` goes back to newer."""
    s = sessions_t
    query = select(s).where(*_session_conditions(where, engines or {}))
    rows = _keyset(conn, query, s.c.started_at, s.c.id, after, before, limit)
    counts = _session_counts(conn, [r.id for r in rows.rows])
    sessions = tuple(_session(r, counts.get(r.id, (0, 0, 0))) for r in rows.rows)
    return Page(sessions, rows.newer, rows.older)


def _session_conditions(where: SessionFilter, engines: Mapping[str, str]) -> list:
    s = sessions_t
    conditions = []
    for column, value in ((s.c.user, where.person), (s.c.target, where.target),
                          (s.c.environment, where.environment)):
        if value:
            conditions.append(column == value)
    if where.engine:
        targets = sorted(t for t, engine in engines.items() if engine == where.engine)
        conditions.append(s.c.target.in_(targets) if targets else false())
    if where.since:
        conditions.append(s.c.started_at >= _day_start(where.since))
    if where.until:
        conditions.append(s.c.started_at < _day_start(where.until + timedelta(days=1)))
    if where.wrote:
        conditions.append(_has_event(WROTE))
    if where.refused:
        conditions.append(_has_event(REFUSED))
    if where.search:
        conditions.append(_has_event(INTENTS, events_t.c.payload.ilike(payload_pattern(where.search), escape="\\")))
    return conditions


def _has_event(predicate: str, *more):
    e = events_t
    return (select(literal_column("1")).select_from(e)
            .where(e.c.session_id == sessions_t.c.id, text(predicate), *more).exists())


def payload_pattern(term: str) -> str:
    r"""A LIKE pattern finding `term` inside a statement as the trail stores it: canonical JSON (quotes,
    backslashes and non-ASCII escaped), then LIKE's own wildcards escaped.

    >>> payload_pattern('50% off "x"')
    '%50\\% off \\\\"x\\\\"%'
    >>> payload_pattern("café")
    '%caf\\\\u00e9%'
    """
    return f"%{_like(json.dumps(term)[1:-1])}%"


def _like(text: str) -> str:
    """LIKE's wildcards (and its escape character) in `text` matched literally (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _session_counts(conn: Connection, ids: list[str]) -> dict[str, tuple[int, int, int]]:
    """Commands, writes and refusals of the sessions on one page: a count per session, each by an
    equality on session_id, so each reads a few index entries (the partial indexes for writes and
    refusals: no payload is matched here)."""
    if not ids:
        return {}
    e, s = events_t, sessions_t

    def count(predicate: str):
        return (select(func.count()).select_from(e).where(e.c.session_id == s.c.id, text(predicate))
                .scalar_subquery())
    query = select(s.c.id, count(INTENTS), count(WROTE), count(REFUSED)).where(s.c.id.in_(ids))
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in conn.execute(query)}


def session(conn: Connection, session_id: str) -> SessionRow | None:
    row = conn.execute(select(sessions_t).where(sessions_t.c.id == session_id)).one_or_none()
    if row is None:
        return None
    return _session(row, _session_counts(conn, [session_id]).get(session_id, (0, 0, 0)))


def session_events(conn: Connection, session_id: str, *, after_seq: int = 0,
                   limit: int = TIMELINE_LIMIT) -> list[AuditEvent]:
    e = events_t
    rows = conn.execute(select(e).where(e.c.session_id == session_id, e.c.seq > after_seq)
                        .order_by(e.c.seq).limit(limit))
    return [audit_event(r) for r in rows]


def distinct_values(conn: Connection, column: str, limit: int = 200) -> list[str]:
    """The distinct users, targets or environments of the sessions (for the filters' suggestions), by
    skipping along the column's index instead of reading every session."""
    if column not in ("user", "target", "environment"):
        raise ValueError(column)
    query = text(f"""
        WITH RECURSIVE v(x) AS (
            SELECT min("{column}") FROM cs_sessions
            UNION ALL
            SELECT (SELECT min("{column}") FROM cs_sessions WHERE "{column}" > v.x) FROM v WHERE v.x IS NOT NULL
        ) SELECT x FROM v WHERE x IS NOT NULL LIMIT {int(limit)}""")
    return [r[0] for r in conn.execute(query)]


# -- approvals -----------------------------------------------------------------------------------------
def approvals_page(conn: Connection, view: str, now: datetime, *, after: Cursor | None = None,
                   before: Cursor | None = None, limit: int = PAGE_SIZE) -> Page:
    """Requests newest first: pending (open, unexpired), decided, expired (marked, or open past expiry), all."""
    r = requests_t
    conditions = {
        "pending": [r.c.status == "pending", r.c.expires_at > now],
        "decided": [or_(r.c.status.in_(("rejected", "used", "cancelled")),
                        and_(r.c.status == "approved", r.c.expires_at > now))],
        "expired": [or_(r.c.status == "expired", and_(r.c.status.in_(("pending", "approved")), r.c.expires_at <= now))],
        "all": [],
    }[view]
    rows = _keyset(conn, select(r).where(*conditions), r.c.created_at, r.c.id, after, before, limit)
    return Page(tuple(approvals_by_id(conn, [row.id for row in rows.rows]).values()), rows.newer, rows.older)


def approvals_by_id(conn: Connection, ids: list[str]) -> dict[str, ApprovalRow]:
    """The requests with their votes, in the order of `ids`."""
    if not ids:
        return {}
    rows = {row.id: row for row in conn.execute(select(requests_t).where(requests_t.c.id.in_(ids)))}
    votes: dict[str, list[VoteRow]] = {i: [] for i in ids}
    for v in conn.execute(select(votes_t).where(votes_t.c.request_id.in_(ids)).order_by(votes_t.c.id)):
        votes[v.request_id].append(VoteRow(v.approver, v.verdict, v.comment, _utc(v.ts), v.source))
    return {i: _approval(rows[i], tuple(votes[i])) for i in ids if i in rows}


def pending_count(conn: Connection, now: datetime) -> int:
    r = requests_t
    return conn.execute(select(func.count()).select_from(r)
                        .where(r.c.status == "pending", r.c.expires_at > now)).scalar_one()


# -- snapshots -----------------------------------------------------------------------------------------
def snapshots_page(conn: Connection, *, after: Cursor | None = None, before: Cursor | None = None,
                   limit: int = PAGE_SIZE) -> Page:
    s = snapshots_t
    rows = _keyset(conn, select(s), s.c.created_at, s.c.id, after, before, limit)
    return Page(tuple(snapshot_record(r) for r in rows.rows), rows.newer, rows.older)


def snapshots_by_id(conn: Connection, ids: list[str]) -> dict[str, SnapshotRecord]:
    if not ids:
        return {}
    return {r.id: snapshot_record(r) for r in conn.execute(select(snapshots_t).where(snapshots_t.c.id.in_(ids)))}


def snapshot_changes(conn: Connection, ids: list[str]) -> dict[str, list[AuditEvent]]:
    """The snapshot events (restored, pruned) about these snapshots, oldest first, by snapshot id."""
    wanted = set(ids)
    found: dict[str, list[AuditEvent]] = {i: [] for i in ids}
    if not wanted:
        return found
    # Narrowed in SQL on the payload's text, then checked on the parsed payload.
    mentions = or_(*(events_t.c.payload.like(f'%"snapshot_id":{_like(json.dumps(i))}%', escape="\\") for i in wanted))
    for row in conn.execute(select(events_t).where(text(SNAPSHOT_EVENTS), mentions).order_by(events_t.c.seq)):
        event = audit_event(row)
        sid = event.payload.get("snapshot_id") if isinstance(event.payload, dict) else None
        if sid in wanted:
            found[sid].append(event)
    return found


# -- Slack ---------------------------------------------------------------------------------------------
def slack_posts(conn: Connection, keys: list[str]) -> dict[str, tuple[str, str]]:
    """Where the messages named `keys` (session:<id>, approval:<id>) went in Slack: (channel, ts)."""
    if not keys:
        return {}
    o = outbox_t
    rows = conn.execute(select(o.c.key, o.c.slack_channel, o.c.slack_ts)
                        .where(o.c.key.in_(keys), o.c.status == "sent", o.c.slack_ts.is_not(None)))
    return {r.key: (r.slack_channel, r.slack_ts) for r in rows}


# -- the overview --------------------------------------------------------------------------------------
def writes_per_day(conn: Connection, since: datetime) -> list[DayCount]:
    """Commands that wrote, per UTC day and environment (from the session they ran in)."""
    e, s = events_t, sessions_t
    day = _day(conn, e.c.ts)
    query = (select(day, s.c.environment, func.count()).select_from(e.join(s, s.c.id == e.c.session_id))
             .where(text(WROTE), e.c.ts >= since).group_by(day, s.c.environment))
    return [DayCount(str(d), env, int(n)) for d, env, n in conn.execute(query)]


def approvals_per_day(conn: Connection, since: datetime) -> list[DayCount]:
    r = requests_t
    day = _day(conn, r.c.created_at)
    query = select(day, r.c.environment, func.count()).where(r.c.created_at >= since).group_by(day, r.c.environment)
    return [DayCount(str(d), env, int(n)) for d, env, n in conn.execute(query)]


def refused_per_day(conn: Connection, since: datetime) -> list[DayCount]:
    """Commands the policy refused ("blocked") or a reviewer rejected, per UTC day."""
    e = events_t
    day = _day(conn, e.c.ts)
    status = case((text(BLOCKED), "refused"), else_="rejected")
    query = select(day, status, func.count()).where(text(REFUSED), e.c.ts >= since).group_by(day, status)
    return [DayCount(str(d), s, int(n)) for d, s, n in conn.execute(query)]


def decision_seconds(conn: Connection, since: datetime) -> list[float]:
    """How long each request made since `since` and decided by votes waited for its deciding vote."""
    r, v = requests_t, votes_t
    query = (select(r.c.created_at, func.max(v.c.ts)).select_from(r.join(v, v.c.request_id == r.c.id))
             .where(r.c.created_at >= since, r.c.status.in_(("approved", "rejected", "used")))
             .group_by(r.c.id, r.c.created_at))
    return [(_utc(decided) - _utc(created)).total_seconds() for created, decided in conn.execute(query)]


def sessions_since(conn: Connection, since: datetime) -> int:
    s = sessions_t
    return conn.execute(select(func.count()).select_from(s).where(s.c.started_at >= since)).scalar_one()


# -- the chain and exports -----------------------------------------------------------------------------
def chain_head(conn: Connection) -> ChainHead | None:
    row = conn.execute(select(head_t.c.last_seq, head_t.c.store_id).where(head_t.c.id == 1)).one_or_none()
    return None if row is None else ChainHead(int(row.last_seq), row.store_id)


def seq_range(conn: Connection, since: datetime | None, until: datetime | None) -> tuple[int, int] | None:
    """The seqs of the first event recorded at or after `since` and the last one before `until`: an
    export is that whole stretch of the chain, so a reader can check every link in it."""
    e = events_t
    first = select(e.c.seq).order_by(e.c.ts, e.c.seq).limit(1)
    last = select(e.c.seq).order_by(e.c.ts.desc(), e.c.seq.desc()).limit(1)
    if since is not None:
        first, last = first.where(e.c.ts >= since), last.where(e.c.ts >= since)
    if until is not None:
        first, last = first.where(e.c.ts < until), last.where(e.c.ts < until)
    low, high = conn.execute(first).scalar(), conn.execute(last).scalar()
    return None if low is None or high is None or high < low else (int(low), int(high))


def events_between(conn: Connection, low: int, high: int) -> Iterator[list[AuditEvent]]:
    """The events low..high in seq order, a batch at a time (an export streams; it never holds the trail)."""
    e, at = events_t, low
    while at <= high:
        rows = conn.execute(select(e).where(e.c.seq >= at, e.c.seq <= high).order_by(e.c.seq).limit(EXPORT_BATCH)).all()
        if not rows:
            return
        yield [audit_event(r) for r in rows]
        at = rows[-1].seq + 1


# -- helpers -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rows:
    rows: tuple
    newer: Cursor | None
    older: Cursor | None


def _keyset(conn: Connection, query, at, row_id, after: Cursor | None, before: Cursor | None, limit: int) -> _Rows:
    """Newest first from a cursor: `after` a row, the next `limit` older rows; `before` it, the `limit`
    newer rows just above it. One extra row says whether another page follows."""
    if before is not None and after is None:
        rows = conn.execute(query.where(tuple_(at, row_id) > tuple_(before.at, before.id))
                            .order_by(at, row_id).limit(limit + 1)).all()
        more, rows = len(rows) > limit, list(reversed(rows[:limit]))
        return _Rows(tuple(rows), _cursor(rows[0], at, row_id) if more and rows else None,
                     _cursor(rows[-1], at, row_id) if rows else Cursor(before.at, before.id))
    if after is not None:
        query = query.where(tuple_(at, row_id) < tuple_(after.at, after.id))
    rows = conn.execute(query.order_by(at.desc(), row_id.desc()).limit(limit + 1)).all()
    more, rows = len(rows) > limit, rows[:limit]
    if after is None:
        newer = None
    else:   # coming from newer pages: they start just above this page's first row
        newer = _cursor(rows[0], at, row_id) if rows else Cursor(after.at, after.id)
    return _Rows(tuple(rows), newer, _cursor(rows[-1], at, row_id) if more else None)


def _cursor(row, at, row_id) -> Cursor:
    return Cursor(_utc(row._mapping[at]), row._mapping[row_id])


def _day(conn: Connection, column):
    """The UTC day of a timestamp, as YYYY-MM-DD text."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)      # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _session(row, counts: tuple[int, int, int]) -> SessionRow:
    m = row._mapping
    return SessionRow(id=m["id"], user=m["user"], target=m["target"], environment=m["environment"], host=m["host"],
                      reason=m["reason"], started_at=_utc(m["started_at"]), ended_at=_utc(m["ended_at"]),
                      commands=counts[0], writes=counts[1], refused=counts[2])


def _approval(row, votes: tuple[VoteRow, ...]) -> ApprovalRow:
    m = row._mapping
    return ApprovalRow(id=m["id"], created_at=_utc(m["created_at"]), expires_at=_utc(m["expires_at"]),
                       requester=m["requester"], target=m["target"], environment=m["environment"],
                       statement=m["statement"], kind=m["kind"], reason=m["reason"],
                       required_approvals=int(m["required_approvals"]), estimated_rows=m["estimated_rows"],
                       rows_exact=m["rows_exact"], status=m["status"], used_at=_utc(m["used_at"]),
                       session_id=m["session_id"], votes=votes)


def snapshot_record(row) -> SnapshotRecord:
    m = row._mapping
    try:
        keys = tuple(json.loads(m["key_columns"]))
    except (TypeError, ValueError):
        keys = ()
    return SnapshotRecord(id=m["id"], created_at=_utc(m["created_at"]), target=m["target"],
                          table_name=m["table_name"], location=m["location"], operation=m["operation"],
                          key_columns=keys, row_count=int(m["row_count"]), size_bytes=m["size_bytes"],
                          statement=m["statement"], approval_id=m["approval_id"], session_id=m["session_id"],
                          status=m["status"])


def audit_event(row) -> AuditEvent:
    try:
        payload = json.loads(row.payload)
    except ValueError:   # edited into non-JSON: still shown; the chain's state says it was altered
        payload = {"unreadable_payload": row.payload}
    return AuditEvent(seq=row.seq, id=row.id, session_id=row.session_id, ts=_utc(row.ts), type=row.type,
                      payload=payload, prev_hash=row.prev_hash, hash=row.hash, link=row.link)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes and PostgreSQL its session's zone; everything here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

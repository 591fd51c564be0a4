"""Server time of every auditor page on a PostgreSQL store holding 100,000 sessions and 5,000,000 events.

The store is a scratch database migrated to the newest schema (so it has migration 0006's indexes),
then filled in the server itself (INSERT ... SELECT over generate_series: no rows cross the wire) with
a year of sessions by 40 people on 6 targets of 4 engines: each session 50 events (its start, 24
commands as intent + outcome, its end); one in 7 has a write approved by a second person (an approval
request, a vote, a snapshot; one in 21 of those restored), one in 13 a write a reviewer rejected, one in
17 a statement the policy blocked. Indexes are dropped for the load and built again after it, then
ANALYZE. The filler writes rows, not a chain: the hashes are placeholders, so the chain does NOT
verify, and the pages' chain check (a background verification, service/pages/chain_state.py) is
replaced by a fixed state for the timing. Everything else is the real thing: the real routes and
templates, the token looked up per request, and each view appended to the trail (a real keyed append).

Each page is called in-process through the ASGI app (no network), WARMUP times, then RUNS times;
reported: median and p95 of the time from the request to the last byte of the response.

    python bench/bench_auditor_pages.py [--sessions 100000] [--events-per-session 50] [--runs 30]
                                        [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep]
    python bench/bench_auditor_pages.py --store URL     # measure again a store a --keep run filled
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import servers  # noqa: E402  (scratch databases, the same helper the tests use)

PEOPLE = [f"person{n:02d}" for n in range(40)]
TARGETS = [("billing", "production", "postgres"), ("billing-staging", "staging", "postgres"),
           ("ledger", "production", "mysql"), ("analytics", "dev", "sqlite"),
           ("orders", "production", "mongodb"), ("orders-staging", "staging", "mongodb")]
TABLES = ["orders", "customers", "invoices", "payments", "deploys", "sites", "users", "events"]
TARGET_MS = 200.0


def fill(cursor, sessions: int, per_session: int) -> None:
    """The store's rows, made by the server. Placeholder hashes: the chain does not verify.
    `cursor` is a DB-API cursor: without parameters psycopg leaves the % of format() alone."""
    people = "ARRAY[" + ",".join(f"'{p}'" for p in PEOPLE) + "]"
    names = "ARRAY[" + ",".join(f"'{t}'" for t, _, _ in TARGETS) + "]"
    envs = "ARRAY[" + ",".join(f"'{e}'" for _, e, _ in TARGETS) + "]"
    tables = "ARRAY[" + ",".join(f"'{t}'" for t in TABLES) + "]"
    events = sessions * per_session
    step = 365 * 86400 / sessions          # seconds between session starts: one year of them
    started = f"(now() - interval '365 days' + make_interval(secs => i * {step}))"
    who = f"({people})[1 + i % {len(PEOPLE)}]"
    target = f"({names})[1 + (i / 3) % {len(TARGETS)}]"
    env = f"({envs})[1 + (i / 3) % {len(TARGETS)}]"
    sql = [
        f"""INSERT INTO cs_sessions (id, "user", target, environment, host, reason, started_at, ended_at)
            SELECT md5('s' || i)::uuid::text, {who}, {target}, {env}, 'laptop-' || (i % 97),
                   CASE WHEN i % 5 = 0 THEN 'INC-' || i END, {started},
                   CASE WHEN i > {sessions} - 20 THEN NULL ELSE {started} + interval '{per_session} seconds' END
            FROM generate_series(1, {sessions}) AS i""",
        # One row per event: i the session, p the position in it, c the command.
        f"""INSERT INTO cs_audit_events (seq, id, session_id, ts, type, payload, prev_hash, hash, link)
            SELECT s, md5('e' || s)::uuid::text, md5('s' || i)::uuid::text, {started} + make_interval(secs => p),
                   CASE WHEN p = 0 THEN 'session_start' WHEN p = {per_session - 1} THEN 'session_end'
                        WHEN p % 2 = 1 THEN 'intent' ELSE 'outcome' END,
                   CASE WHEN p = 0 THEN format('{{"environment":"%s","host":"laptop-%s","reason":null,"target":"%s","user":"%s"}}',
                                              {env}, i % 97, {target}, {who})
                        WHEN p = {per_session - 1} THEN '{{}}'
                        WHEN p % 2 = 1 THEN format('{{"approval_id":%s,"decision":"%s",%s"kind":"%s",%s"text":"%s"}}',
                                                   approval, decision, CASE WHEN decision = 'needs_approval'
                                                   THEN '"estimated_rows":25,' ELSE '' END, kind,
                                                   CASE WHEN decision = 'needs_approval' THEN '"rows_exact":true,'
                                                   ELSE '' END, statement)
                        ELSE format('{{"approval_id":%s,"decision":"%s","duration_ms":%s,"error":%s,"kind":"%s","rows":%s,"snapshot_id":%s,"status":"%s","text":"%s"}}',
                                    approval, decision, round((1 + (s % 400) / 10.0)::numeric, 1),
                                    CASE WHEN status = 'ok' THEN 'null' ELSE '"' || status || ' by policy or reviewer"' END,
                                    kind, CASE WHEN status = 'ok' THEN (CASE WHEN kind = 'read' THEN s % 50 ELSE 25 END)::text
                                    ELSE 'null' END, snapshot, status, statement) END,
                   md5('h' || (s - 1)) || md5('H' || (s - 1)), md5('h' || s) || md5('H' || s), NULL
            FROM (
                SELECT s, i, p, c,
                       CASE WHEN w THEN 'write' WHEN r THEN 'write' WHEN b THEN 'ddl' ELSE 'read' END AS kind,
                       CASE WHEN w OR r THEN 'needs_approval' WHEN b THEN 'blocked' ELSE 'allow' END AS decision,
                       CASE WHEN r THEN 'rejected' WHEN b THEN 'blocked' ELSE 'ok' END AS status,
                       CASE WHEN w THEN '"' || md5('r' || i)::uuid::text || '"'
                            WHEN r THEN '"' || md5('x' || i)::uuid::text || '"' ELSE 'null' END AS approval,
                       CASE WHEN w THEN '"' || md5('n' || i)::uuid::text || '"' ELSE 'null' END AS snapshot,
                       CASE WHEN w THEN format('UPDATE %s SET status = ''archived'' WHERE customer_id = %s', tbl, i)
                            WHEN r THEN format('DELETE FROM %s WHERE customer_id = %s', tbl, i)
                            WHEN b THEN format('DROP TABLE %s', tbl)
                            ELSE format('SELECT id, status, total FROM %s WHERE customer_id = %s ORDER BY id LIMIT 50',
                                        tbl, s % 100000) END AS statement
                FROM (
                    SELECT s, i, p, c, ({tables})[1 + (i + c) % {len(TABLES)}] AS tbl,
                           i % 7 = 0 AND c = 3 AS w, i % 13 = 0 AND c = 5 AS r, i % 17 = 0 AND c = 7 AS b
                    FROM (SELECT s, (s - 1) / {per_session} + 1 AS i, (s - 1) % {per_session} AS p,
                                 ((s - 1) % {per_session} - 1) / 2 AS c
                          FROM generate_series(1, {events}) AS s) AS numbered
                ) AS flagged
            ) AS commands""",
        f"""INSERT INTO cs_approval_requests (id, created_at, expires_at, requester, target, environment, statement,
                                              binding, kind, reason, required_approvals, allowed_approvers,
                                              estimated_rows, rows_exact, status, used_at, session_id)
            SELECT md5(k || i)::uuid::text, {started} + interval '7 seconds',
                   {started} + interval '7 seconds' + interval '30 minutes', {who}, {target}, {env},
                   CASE WHEN k = 'r' THEN format('UPDATE orders SET status = ''archived'' WHERE customer_id = %s', i)
                        ELSE format('DELETE FROM orders WHERE customer_id = %s', i) END, repeat('b', 64), 'write',
                   'UPDATE of orders with a WHERE clause', 1, NULL, 25, true,
                   CASE WHEN i > {sessions} - 300 THEN 'pending' WHEN k = 'x' THEN 'rejected'
                        WHEN i % 77 = 0 THEN 'expired' ELSE 'used' END,
                   CASE WHEN k = 'r' AND i % 77 <> 0 AND i <= {sessions} - 300 THEN {started} + interval '40 seconds' END,
                   md5('s' || i)::uuid::text
            FROM generate_series(1, {sessions}) AS i, (VALUES ('r'), ('x')) AS kinds(k)
            WHERE (k = 'r' AND i % 7 = 0) OR (k = 'x' AND i % 13 = 0)""",
        f"""INSERT INTO cs_approval_votes (request_id, approver, verdict, comment, binding, ts, source)
            SELECT r.id, ({people})[1 + (i + 1) % {len(PEOPLE)}], CASE WHEN r.status = 'rejected' THEN 'reject' ELSE 'approve' END,
                   NULL, r.binding, r.created_at + make_interval(secs => 20 + (i * 37) % 5400),
                   CASE WHEN i % 2 = 0 THEN 'slack' ELSE 'local' END
            FROM cs_approval_requests r JOIN generate_series(1, {sessions}) AS i ON r.session_id = md5('s' || i)::uuid::text
            WHERE r.status IN ('used', 'rejected')""",
        f"""INSERT INTO cs_snapshots (id, created_at, target, table_name, location, operation, key_columns, row_count,
                                      size_bytes, statement, approval_id, session_id, status)
            SELECT md5('n' || i)::uuid::text, {started} + interval '41 seconds', {target}, 'public.orders',
                   'countersign_snapshots.s_' || md5('n' || i), 'update', '["id"]', 25, 4096,
                   format('UPDATE orders SET status = ''archived'' WHERE customer_id = %s', i), md5('r' || i)::uuid::text,
                   md5('s' || i)::uuid::text, CASE WHEN i % 21 = 0 THEN 'restored' ELSE 'complete' END
            FROM generate_series(1, {sessions}) AS i WHERE i % 7 = 0 AND i <= {sessions} - 300""",
        f"""INSERT INTO cs_audit_events (seq, id, session_id, ts, type, payload, prev_hash, hash, link)
            SELECT {events} + row_number() OVER (ORDER BY i), md5('restore' || i)::uuid::text, NULL,
                   {started} + interval '2 hours', 'snapshot',
                   format('{{"approval_id":"%s","event":"restored","snapshot_id":"%s"}}', md5('q' || i)::uuid,
                          md5('n' || i)::uuid), repeat('0', 64), repeat('0', 64), NULL
            FROM generate_series(1, {sessions}) AS i WHERE i % 21 = 0 AND i <= {sessions} - 300""",
        "UPDATE cs_audit_chain_head SET last_seq = (SELECT max(seq) FROM cs_audit_events), "
        "last_hash = repeat('0', 64), last_link = NULL WHERE id = 1",
    ]
    for statement in sql:
        cursor.execute(statement)


def load(url: str, sessions: int, per_session: int) -> None:
    """Fill with the secondary indexes dropped, then build them again (much faster than keeping them)."""
    import psycopg
    tables = ("cs_sessions", "cs_audit_events", "cs_approval_requests", "cs_approval_votes", "cs_snapshots")
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                       "AND indexname LIKE 'ix%%'", (list(tables),))
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        started = time.perf_counter()
        fill(cursor, sessions, per_session)
        filled = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        indexed = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        counts = {}
        for t in tables:
            cursor.execute(f"SELECT count(*) FROM {t}")
            counts[t] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    print(f"filled in {filled - started:.0f} s, indexes built in {indexed - filled:.0f} s, then VACUUM ANALYZE; "
          f"database {size}")
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))


# -- calling the app in-process --------------------------------------------------------------------
async def call(app, path: str, cookie: str) -> tuple[int, int]:
    target, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": target, "raw_path": target.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"bench"), (b"cookie", cookie.encode())], "client": ("127.0.0.1", 1),
             "server": ("bench", 80)}
    sent, status, size = False, 0, 0
    done = asyncio.Event()

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()                       # a client that stays until the response ends
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                done.set()
    await app(scope, receive, send)
    return status, size


def pages(store) -> list[tuple[str, str]]:
    """(what, path) for every page, with ids and cursors taken from the filled store."""
    from sqlalchemy import text
    with store.engine.connect() as conn:
        write = conn.execute(text("SELECT session_id FROM cs_snapshots WHERE status = 'restored' "
                                  "ORDER BY created_at DESC LIMIT 1")).scalar()
        snapshot = conn.execute(text("SELECT id FROM cs_snapshots WHERE status = 'restored' "
                                     "ORDER BY created_at DESC LIMIT 1")).scalar()
        middle = conn.execute(text("SELECT started_at, id FROM cs_sessions ORDER BY started_at, id "
                                   "OFFSET (SELECT count(*) / 2 FROM cs_sessions) LIMIT 1")).one()
        day = conn.execute(text("SELECT (max(started_at) - interval '200 days')::date FROM cs_sessions")).scalar()
    from service.pages.queries import Cursor
    cursor = Cursor(middle.started_at, middle.id).token()
    week = f"from={day}&to={day + timedelta(days=6)}"
    return [
        ("overview", "/audit/"),
        ("sessions: first page", "/audit/sessions"),
        ("sessions: page 1,000 (keyset cursor)", f"/audit/sessions?after={cursor}"),
        ("sessions: newer from the middle", f"/audit/sessions?before={cursor}"),
        ("sessions: one person", "/audit/sessions?person=person07"),
        ("sessions: one target", "/audit/sessions?target=ledger"),
        ("sessions: environment", "/audit/sessions?environment=staging"),
        ("sessions: engine", "/audit/sessions?engine=mongodb"),
        ("sessions: a week, 200 days ago", f"/audit/sessions?{week}"),
        ("sessions: had writes", "/audit/sessions?wrote=1"),
        ("sessions: had refused/rejected", "/audit/sessions?refused=1"),
        ("sessions: writes + person + week", f"/audit/sessions?wrote=1&person=person14&{week}"),
        ("sessions: search, common text", "/audit/sessions?q=ORDER+BY+id"),
        ("sessions: search, rare text", "/audit/sessions?q=customer_id+%3D+77777"),
        ("sessions: search, no match", "/audit/sessions?q=no+such+statement"),
        ("session timeline", f"/audit/sessions/{write}"),
        ("session transcript (text)", f"/audit/sessions/{write}/transcript.txt"),
        ("session events (JSON Lines)", f"/audit/sessions/{write}/events.jsonl"),
        ("approvals: pending", "/audit/approvals?status=pending"),
        ("approvals: decided", "/audit/approvals?status=decided"),
        ("approvals: expired", "/audit/approvals?status=expired"),
        ("approvals: all", "/audit/approvals?status=all"),
        ("snapshots", "/audit/snapshots"),
        ("snapshot + restore history", f"/audit/snapshots/{snapshot}"),
        ("export form", "/audit/export"),
        ("export: one day of the trail (~13,700 events)", f"/audit/export/trail.jsonl?from={day}&to={day}"),
    ]


def measure(url: str, warmup: int, runs: int) -> list[tuple[str, float, float, int]]:
    from starlette.applications import Starlette

    from audit.store import Store
    from config.settings import ServerSettings
    from service.auth import Authenticator
    from service.pages import routes
    from service.pages.chain_state import ChainState, ChainWatch
    from service.tokens import Tokens
    store = Store.open(url)
    tokens = Tokens(store)
    secret = tokens.issue("auditor", label="bench", lifetime=timedelta(hours=1), by="bench").secret
    fixed = ChainWatch(store, verify=lambda: ChainState(
        "unverified", problem="the benchmark's filled chain is not a real one (placeholder hashes)"))
    app = Starlette(routes=routes(store, Authenticator(tokens, ServerSettings(auditors=("auditor",))),
                                  engines={name: engine for name, _, engine in TARGETS}, chain=fixed))
    cookie = f"countersign_audit={secret}; countersign_audit_csrf={'c' * 43}"
    results = []
    loop = asyncio.new_event_loop()
    try:
        for what, path in pages(store):
            times = []
            for n in range(warmup + runs):
                started = time.perf_counter()
                status, size = loop.run_until_complete(call(app, path, cookie))
                if status != 200:
                    raise SystemExit(f"{path} answered {status}")
                if n >= warmup:
                    times.append((time.perf_counter() - started) * 1000)
            times.sort()
            results.append((what, statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], size))
            print(f"  {what:<48} median {results[-1][1]:7.1f} ms   p95 {results[-1][2]:7.1f} ms   {size:>9,} bytes",
                  flush=True)
    finally:
        loop.close()
        store.dispose()
    slow = [what for what, median, p95, _ in results if p95 >= TARGET_MS]
    print(f"{len(results) - len(slow)} of {len(results)} pages under {TARGET_MS:.0f} ms at p95"
          + (f"; over it: {', '.join(slow)}" if slow else ""))
    return results


def _forget_key(url: str) -> None:
    """A kept store was keyed by an earlier run's temporary key: start its chain of keyed links afresh."""
    import psycopg
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE cs_audit_chain_head SET last_link = NULL WHERE id = 1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--events-per-session", type=int, default=50)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pg-url", default=servers.admin_pg_url())
    parser.add_argument("--keep", action="store_true", help="leave the scratch database (its URL is printed)")
    parser.add_argument("--store", help="measure a store an earlier --keep run filled, instead of filling one")
    args = parser.parse_args()
    state = tempfile.TemporaryDirectory()
    os.environ["COUNTERSIGN_AUDIT_KEY_FILE"] = str(Path(state.name) / "audit.key")
    os.environ["COUNTERSIGN_AUDIT_ANCHOR_FILE"] = str(Path(state.name) / "anchors.jsonl")
    if args.store:
        _forget_key(args.store)
        try:
            measure(args.store, args.warmup, args.runs)
        finally:
            state.cleanup()
        return
    from audit.store import Store
    name = servers.scratch_name("bench_pages")
    url = servers.create_pg_database(args.pg_url, name)
    print(f"scratch database {name}: {args.sessions:,} sessions x {args.events_per_session} events")
    try:
        Store.upgrade(url)
        load(url, args.sessions, args.events_per_session)
        print(f"each page: {args.warmup} warm-up calls, then median and p95 of {args.runs} (target < {TARGET_MS:.0f} ms)")
        measure(url, args.warmup, args.runs)
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            servers.drop_pg_database(args.pg_url, name)
        state.cleanup()


if __name__ == "__main__":
    main()

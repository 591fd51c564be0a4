"""Approved writes under stress, on REAL servers: a concurrent change, a server that drops the connection,
a console killed mid-write, timeouts and cancellation. Nothing may be half-done, and no snapshot of a
write that never committed may be recorded as complete."""
from __future__ import annotations

import os
import signal
import time
from contextlib import closing

import psycopg
import pytest

from approvals.service import ApprovalService
from audit.store import Store
from gate.api import Status
from config.settings import Policy
from snapshots import records
from tests import servers
from tests.cli_helpers import cli_env, countersign, spawn_countersign
from tests.pipeline_helpers import Submission, make_pipeline, driver_of
from tests.store_helpers import migrated

pytestmark = pytest.mark.usefixtures("gate_mode")   # in process, and through JSON

ROWS = [(i, f"site-{i % 4}", "ready") for i in range(1, 21)]
UPDATE = "UPDATE deploys SET status = 'archived' WHERE site = 'site-1'"
SITE_1 = [1, 5, 9, 13, 17]


def create_table(url: str) -> None:
    from engines import open_driver
    driver = open_driver(url)
    with driver.transaction(read_only=False) as tx:
        tx.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site VARCHAR(20) NOT NULL, status VARCHAR(20))")
        tx.execute("INSERT INTO deploys VALUES " + ", ".join(f"({i}, '{s}', '{st}')" for i, s, st in ROWS))
    driver.close()


@pytest.fixture
def store(tmp_path):
    opened = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))
    yield opened
    opened.dispose()


@pytest.fixture
def pg_other(pg_url):
    """Another engineer's session on the same database; closed (rolling back) even if the test fails."""
    conn = psycopg.connect(pg_url)
    yield conn
    conn.close()


@pytest.fixture
def mysql_other(mysql_url, mysql_admin_url):
    conn = servers._mysql_connect(mysql_admin_url, mysql_url.rsplit("/", 1)[1])
    conn.autocommit(False)
    yield conn
    conn.close()   # before the scratch database is dropped: an open transaction would block DROP DATABASE


@pytest.fixture
def console_process():
    """A `countersign` subprocess started by the test; killed if the test leaves it running."""
    started = []
    yield started.append
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def until(condition, what: str, deadline_s: float = 30):
    """Poll a condition of the real system (a lock wait, a backend) until it holds."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pg_lock_waiter(admin_url: str, database: str) -> int | None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                           "AND query LIKE 'UPDATE deploys%%'", (database,)).fetchone()
    return row[0] if row else None


def mysql_lock_waits(admin_url: str, database: str) -> bool:
    """Is a transaction waiting for a row lock of this database's deploys table? (information_schema
    .innodb_trx does not list a transaction that has not written anything yet; the InnoDB monitor does.)"""
    with closing(servers._mysql_connect(admin_url)) as conn, conn.cursor() as cur:
        cur.execute("SHOW ENGINE INNODB STATUS")
        monitor = cur.fetchone()[2]
    waiting = monitor.split("FOR THIS LOCK TO BE GRANTED:")[1:]
    return any(f"`{database}`.`deploys`" in section.split("\n---")[0] for section in waiting)


def statuses(url: str) -> dict[int, str]:
    from engines import open_driver
    driver = open_driver(url)
    try:
        with driver.transaction(read_only=True) as tx:
            return {r[0]: r[1] for r in tx.execute("SELECT id, status FROM deploys").rows}
    finally:
        driver.close()


def approved_submission(url: str, store: Store, **policy) -> tuple:
    pipeline = make_pipeline(url, store, "alice", Policy(**policy) if policy else None)
    pipeline.open_session("stress")
    run = Submission(pipeline, UPDATE).start()
    return pipeline, run


# -- PostgreSQL ---------------------------------------------------------------------------------
def test_postgres_a_concurrent_change_aborts_the_approved_write(pg_url, pg_admin_url, store, pg_other):
    create_table(pg_url)
    pipeline, run = approved_submission(pg_url, store)
    other = pg_other                                     # another engineer's open transaction
    other.execute("UPDATE deploys SET status = 'changed' WHERE id = 1")
    ApprovalService.from_store(store).vote(run.request_id, "bob", "approve")
    until(lambda: pg_lock_waiter(pg_admin_url, pg_url.rsplit("/", 1)[1]), "the write to wait on the row lock")
    other.commit()                                       # the row changed after the write's snapshot
    outcome = run.result()
    assert outcome.status is Status.FAILED and "concurrent change" in outcome.message
    assert "nothing was committed" in outcome.message
    after = statuses(pg_url)
    assert after[1] == "changed" and [after[i] for i in SITE_1[1:]] == ["ready"] * 4
    assert records.list_snapshots(store.engine)[0].status == "discarded"
    pipeline.close()


def test_postgres_a_connection_lost_mid_write_commits_nothing_and_the_console_recovers(pg_url, pg_admin_url, store,
                                                                                       pg_other):
    create_table(pg_url)
    pipeline, run = approved_submission(pg_url, store)
    blocker = pg_other
    blocker.execute("SELECT * FROM deploys WHERE id = 5 FOR UPDATE")
    ApprovalService.from_store(store).vote(run.request_id, "bob", "approve")
    pid = until(lambda: pg_lock_waiter(pg_admin_url, pg_url.rsplit("/", 1)[1]), "the write to wait")
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    outcome = run.result()
    blocker.rollback()
    assert outcome.status is Status.FAILED and "connection to the server was lost" in outcome.message
    assert set(statuses(pg_url).values()) == {"ready"}
    assert records.list_snapshots(store.engine)[0].status == "discarded"
    again = pipeline.submit(pipeline.classify("SELECT count(*) FROM deploys")[0])
    assert again.status is Status.OK and again.result.rows[0][0] == 20      # reconnected
    pipeline.close()


def test_postgres_statement_timeout_stops_a_long_read(pg_url, store):
    pipeline = make_pipeline(pg_url, store, "alice", Policy(statement_timeout=__import__("datetime").timedelta(
        milliseconds=200)))
    pipeline.open_session()
    outcome = pipeline.submit(pipeline.classify("SELECT count(*) FROM generate_series(1, 2000000000)")[0])
    assert outcome.status is Status.FAILED and "statement timeout" in outcome.message
    pipeline.close()


def test_postgres_cancel_running_stops_the_query_on_the_server(pg_url, pg_admin_url, store):
    pipeline = make_pipeline(pg_url, store, "alice")
    pipeline.open_session()
    run = Submission(pipeline, "SELECT count(*) FROM generate_series(1, 2000000000)").start()
    database = pg_url.rsplit("/", 1)[1]

    def running() -> bool:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                                "AND query LIKE 'SELECT count(*) FROM generate_series%%'", (database,)).fetchone()[0] > 0
    until(running, "the read to start")
    pipeline.cancel_running()
    outcome = run.result()
    assert outcome.status is Status.CANCELLED
    assert not running()
    pipeline.close()


def test_postgres_killing_the_console_mid_write_leaves_nothing_half_done(pg_url, pg_admin_url, tmp_path, pg_other,
                                                                         console_process):
    create_table(pg_url)
    env = cli_env(tmp_path)
    blocker = pg_other
    blocker.execute("SELECT * FROM deploys WHERE id = 9 FOR UPDATE")
    console = spawn_countersign("run", pg_url, "-c", UPDATE, "--wait", "60", env=env)
    console_process(console)
    request_id = console.stderr.readline().split()[3]
    assert countersign("approvals", "approve", request_id, env=cli_env(tmp_path, user="bob")).returncode == 0
    until(lambda: pg_lock_waiter(pg_admin_url, pg_url.rsplit("/", 1)[1]), "the write to be mid-way")
    os.kill(console.pid, signal.SIGKILL)
    console.wait(30)
    blocker.rollback()
    assert set(statuses(pg_url).values()) == {"ready"}
    store = Store.open(env["COUNTERSIGN_STORE"])
    [snapshot] = records.list_snapshots(store.engine)
    assert snapshot.status == "pending" and not snapshot.restorable
    with psycopg.connect(pg_url) as conn:
        left = conn.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = 'countersign_snapshots' AND table_name <> 'commits'").fetchone()[0]
    assert left == 0                                      # the snapshot table rolled back with the write
    # The next session on the target settles it from the database: the write never committed.
    assert countersign("run", pg_url, "-c", "SELECT 1", env=env).returncode == 0
    [snapshot] = records.list_snapshots(store.engine)
    assert snapshot.status == "discarded" and not snapshot.restorable
    store.dispose()


# -- MariaDB ------------------------------------------------------------------------------------
def test_mariadb_a_write_never_commits_over_a_concurrent_change(mysql_url, mysql_admin_url, store, mysql_other):
    """InnoDB locks the rows the snapshot reads, so a concurrent change either waits for the write or
    (with innodb_snapshot_isolation) aborts it; it never slips in between the snapshot and the write."""
    create_table(mysql_url)
    pipeline, run = approved_submission(mysql_url, store)
    other = mysql_other
    with other.cursor() as cur:
        cur.execute("UPDATE deploys SET status = 'changed' WHERE id = 1")
    ApprovalService.from_store(store).vote(run.request_id, "bob", "approve")
    until(lambda: mysql_lock_waits(mysql_admin_url, mysql_url.rsplit('/', 1)[1]) or run.outcomes, "the write to wait on the row lock")
    assert not run.outcomes, run.outcomes
    other.commit()
    outcome = run.result()
    after = statuses(mysql_url)
    if outcome.status is Status.OK:
        # It ran after the other change: the snapshot holds the rows exactly as they were then.
        snapshot = records.get(store.engine, outcome.snapshot_id)
        with closing(servers._mysql_connect(mysql_admin_url, "countersign_snapshots")) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT id, status FROM `{snapshot.location.split('.')[1]}` ORDER BY id")
            assert cur.fetchall() == ((1, "changed"), (5, "ready"), (9, "ready"), (13, "ready"), (17, "ready"))
            cur.execute(f"DROP TABLE `{snapshot.location.split('.')[1]}`")
        assert [after[i] for i in SITE_1] == ["archived"] * 5
    else:
        assert outcome.status is Status.FAILED and "concurrent change" in outcome.message
        assert after[1] == "changed" and [after[i] for i in SITE_1[1:]] == ["ready"] * 4
    pipeline.close()


def test_mariadb_killing_the_console_mid_write_leaves_nothing_half_done(mysql_url, mysql_admin_url, tmp_path,
                                                                        mysql_other, console_process):
    create_table(mysql_url)
    env = cli_env(tmp_path)
    blocker = mysql_other
    with blocker.cursor() as cur:
        cur.execute("SELECT * FROM deploys WHERE id = 9 FOR UPDATE")
    console = spawn_countersign("run", mysql_url, "-c", UPDATE, "--wait", "60", env=env)
    console_process(console)
    request_id = console.stderr.readline().split()[3]
    assert countersign("approvals", "approve", request_id, env=cli_env(tmp_path, user="bob")).returncode == 0
    until(lambda: mysql_lock_waits(mysql_admin_url, mysql_url.rsplit("/", 1)[1]), "the write to be mid-way")
    os.kill(console.pid, signal.SIGKILL)
    console.wait(30)
    blocker.rollback()
    assert set(statuses(mysql_url).values()) == {"ready"}
    store = Store.open(env["COUNTERSIGN_STORE"])
    [snapshot] = records.list_snapshots(store.engine)
    assert snapshot.status == "pending" and not snapshot.restorable
    with closing(servers._mysql_connect(mysql_admin_url, "countersign_snapshots")) as conn, conn.cursor() as cur:
        table = snapshot.location.split(".")[1]
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")   # made before the transaction, filled inside it
        assert cur.fetchone()[0] == 0
        cur.execute(f"DROP TABLE `{table}`")
    store.dispose()


def test_mariadb_cancel_running_stops_the_query_on_the_server(mysql_url, mysql_admin_url, store):
    pipeline = make_pipeline(mysql_url, store, "alice")
    pipeline.open_session()
    run = Submission(pipeline, "SELECT SUM(a.seq * b.seq) FROM seq_1_to_1000000 a, seq_1_to_1000000 b").start()

    def running() -> bool:
        with closing(servers._mysql_connect(mysql_admin_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SUM(a.seq%%'")
            return cur.fetchone()[0] > 0
    until(running, "the read to start")
    pipeline.cancel_running()
    outcome = run.result()
    assert outcome.status is Status.CANCELLED and not running()
    pipeline.close()


def test_sqlite_cancel_interrupts_a_long_read(sqlite_url, store):
    from datetime import timedelta
    pipeline = make_pipeline(sqlite_url, store, "alice", Policy(statement_timeout=timedelta(minutes=5)))
    pipeline.open_session()
    run = Submission(pipeline, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                               "SELECT count(*) FROM (SELECT x FROM c LIMIT 100000000000)").start()
    until(lambda: driver_of(pipeline)._running.busy, "the read to start")
    pipeline.cancel_running()
    assert run.result().status is Status.CANCELLED
    again = pipeline.submit(pipeline.classify("SELECT 1")[0])
    assert again.status is Status.OK
    pipeline.close()

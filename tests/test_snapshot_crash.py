"""A console killed, or its connection cut, right at COMMIT: every committed write stays restorable.

Each round runs an approved write in a real `countersign run` process and kills it (or terminates
its server connection) the moment the trail records the commit it is about to make, so some writes
die before COMMIT, some after it and before the store was told, some after both. Then a new session
opens on the target, which settles every pending snapshot from the target's own commits table. The
rule checked for every round, whichever way it went: the write committed exactly when its snapshot
is complete (and its before-image is there to restore); otherwise the snapshot is discarded and no
snapshot table is left behind on the server.
"""
from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest
from sqlalchemy import text

from audit.store import Store
from snapshots import records
from tests import servers
from tests.cli_helpers import cli_env, countersign, spawn_countersign

ROUNDS = 4
SITES = 4


def create_table(url: str) -> None:
    from engines import open_driver
    driver = open_driver(url)
    with driver.transaction(read_only=False) as tx:
        tx.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site VARCHAR(20) NOT NULL, status VARCHAR(20))")
        tx.execute("INSERT INTO deploys VALUES " + ", ".join(f"({i}, 'site-{i % SITES}', 'ready')"
                                                              for i in range(1, 401)))
    driver.close()


def commits(store_url: str) -> int:
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM cs_audit_events WHERE type = 'commit'")).scalar()
    finally:
        store.dispose()


def one_round(url: str, env: dict, round_: int, cut) -> str:
    """Run one approved write and cut it at its commit; returns the approval id."""
    update = f"UPDATE deploys SET status = 'round-{round_}' WHERE site = 'site-{round_ % SITES}'"
    before = commits(env["COUNTERSIGN_STORE"])
    console = spawn_countersign("run", url, "-c", update, "--wait", "60", env=env)
    try:
        request_id = console.stderr.readline().split()[3]
        bob = {**env, "COUNTERSIGN_USER": "bob"}
        assert countersign("approvals", "approve", request_id, env=bob).returncode == 0
        deadline = time.monotonic() + 60
        while commits(env["COUNTERSIGN_STORE"]) == before and console.poll() is None:
            assert time.monotonic() < deadline, "the write never reached its commit"
        cut(console)
        console.wait(30)
    finally:
        if console.poll() is None:
            console.kill()
            console.wait(30)
    return request_id


def kill_console(console) -> None:
    os.kill(console.pid, signal.SIGKILL)


def snapshot_tables(url: str) -> set[str]:
    from engines import open_driver
    driver = open_driver(url)
    try:
        return set(_snapshot_tables(driver))
    finally:
        driver.close()


def settle_and_check(url: str, env: dict, rounds: dict[str, int], before: set[str]) -> dict[str, int]:
    assert countersign("run", url, "-c", "SELECT 1", env=env).returncode == 0   # a new session settles them
    store = Store.open(env["COUNTERSIGN_STORE"])
    try:
        found = {r.approval_id: r for r in records.list_snapshots(store.engine)}
    finally:
        store.dispose()
    from engines import open_driver
    driver = open_driver(url)
    seen = {"committed": 0, "not committed": 0}
    try:
        # MariaDB keeps snapshots in one server-wide database: only tables made since `before` are ours.
        left = set(_snapshot_tables(driver)) - before
        for approval_id, round_ in rounds.items():
            record = found[approval_id]
            changed = driver.read(f"SELECT count(*) FROM deploys WHERE status = 'round-{round_}'").rows[0][0]
            if changed:
                seen["committed"] += 1
                assert record.status == records.COMPLETE and record.restorable, (round_, record.status)
                assert record.row_count == changed == 100
                assert record.location in left
                assert driver.read(f"SELECT count(*) FROM {_quoted(record.location, driver.dialect)}").rows[0][0] == 100
            else:
                seen["not committed"] += 1
                assert record.status == records.DISCARDED, (round_, record.status)
                assert record.location not in left
        complete = {r.location for r in found.values() if r.status == records.COMPLETE}
        assert left == complete            # no snapshot table without a committed write behind it
    finally:
        driver.close()
    return seen


def _quoted(location: str, dialect: str) -> str:
    q = "`" if dialect == "mysql" else '"'
    return ".".join(f"{q}{part}{q}" for part in location.split("."))


def _snapshot_tables(driver) -> list[str]:
    rows = driver.read("SELECT table_name FROM information_schema.tables WHERE table_schema = 'countersign_snapshots' "
                       "AND table_name NOT IN ('commits') AND table_name NOT LIKE '%\\_keys'").rows
    return [f"countersign_snapshots.{r[0]}" for r in rows]


@pytest.mark.postgres
def test_postgres_every_committed_write_is_restorable_after_a_kill_at_commit(pg_url, pg_admin_url, tmp_path):
    create_table(pg_url)
    env = cli_env(tmp_path)
    database = pg_url.rsplit("/", 1)[1]

    def cut_connection(console) -> None:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (database,))

    before = snapshot_tables(pg_url)
    rounds = {one_round(pg_url, env, n, kill_console if n % 2 == 0 else cut_connection): n for n in range(ROUNDS)}
    seen = settle_and_check(pg_url, env, rounds, before)
    assert sum(seen.values()) == ROUNDS


@pytest.mark.mysql
def test_mariadb_every_committed_write_is_restorable_after_a_kill_at_commit(mysql_url, mysql_admin_url, tmp_path):
    create_table(mysql_url)
    env = cli_env(tmp_path)
    database = mysql_url.rsplit("/", 1)[1]

    def cut_connection(console) -> None:
        conn = servers._mysql_connect(mysql_admin_url, database)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                            (database,))
                for (pid,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL {int(pid)}")
                    except Exception:  # noqa: BLE001 - the connection may have ended on its own
                        pass
        finally:
            conn.close()

    before = snapshot_tables(mysql_url)
    rounds = {one_round(mysql_url, env, n, kill_console if n % 2 == 0 else cut_connection): n
              for n in range(ROUNDS)}
    seen = settle_and_check(mysql_url, env, rounds, before)
    assert sum(seen.values()) == ROUNDS

"""2,000 small reads through `countersign run`'s pipeline (in process) vs a bare psycopg connection.

Same PostgreSQL server, one run. Also the time from start to prompt of `countersign shell` on the demo.
Targets: pipeline/bare <= 1.5x; shell start to prompt < 0.5 s.

    python bench/bench_pipeline.py [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--reads 2000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import servers  # noqa: E402  (scratch databases, the same helper the tests use)


def setup(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 1000) g")


def queries(n: int) -> list[str]:
    return [f"SELECT id, name, price FROM items WHERE id = {i % 1000 + 1}" for i in range(n)]


def bare(url: str, sqls: list[str]) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for sql in sqls:
            conn.execute(sql).fetchall()
        return time.perf_counter() - started


def through_pipeline(url: str, sqls: list[str], store_url: str) -> float:
    """Every read through the gate, as the console sends it: text in, one Outcome out."""
    from approvals.service import ApprovalService
    from audit.store import Store
    from config.settings import target_from_url
    from gate.api import Status
    from gate.local import LocalGate

    Store.upgrade(store_url)   # a new store: opening never migrates
    store = Store.open(store_url)
    target = target_from_url(url)
    gate = LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target={target.name: target}.get)
    session = gate.open_session("bench", target.name, "benchmark")
    started = time.perf_counter()
    for sql in sqls:
        (outcome,) = gate.submit(session.id, sql)
        assert outcome.status is Status.OK, outcome.message
    elapsed = time.perf_counter() - started
    gate.close_session(session.id)
    return elapsed


def shell_start_to_prompt(runs: int = 5) -> float:
    import pexpect
    times = []
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "XDG_STATE_HOME": state, "COUNTERSIGN_USER": "bench"}
        env.pop("COUNTERSIGN_CONFIG", None)
        env.pop("COUNTERSIGN_STORE", None)   # the default store in the state directory, created on first use
        for run in range(runs + 1):
            started = time.perf_counter()
            shell = pexpect.spawn(sys.executable, ["-m", "console.cli", "shell"], env=env, encoding="utf-8",
                                  timeout=30, cwd=str(Path(__file__).resolve().parents[1]))
            shell.expect("@demo=>")
            if run:  # the first run creates the demo database and the store: not a start-up
                times.append(time.perf_counter() - started)
            shell.sendline("\\q")
            shell.expect(pexpect.EOF)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", default=os.environ.get("COUNTERSIGN_TEST_PG_URL", servers.DEFAULT_PG_URL))
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    name = f"cs_bench_{uuid.uuid4().hex[:8]}"
    url = servers.create_pg_database(args.pg_url, name)
    try:
        setup(url)
        sqls = queries(args.reads)
        bare(url, sqls[:200])  # warm the server's caches for both sides
        with tempfile.TemporaryDirectory() as tmp:
            piped = through_pipeline(url, sqls, f"sqlite:///{tmp}/store.db")
        plain = bare(url, sqls)
    finally:
        servers.drop_pg_database(args.pg_url, name)
    print(f"{args.reads} reads, bare psycopg:        {plain * 1000:8.1f} ms ({plain / args.reads * 1e6:6.1f} us/read)")
    print(f"{args.reads} reads, countersign pipeline: {piped * 1000:8.1f} ms ({piped / args.reads * 1e6:6.1f} us/read)")
    print(f"ratio pipeline/bare: {piped / plain:.2f}x (target <= 1.5x)")
    startup = shell_start_to_prompt()
    print(f"countersign shell (demo) start to prompt: {startup * 1000:.0f} ms median (target < 500 ms)")


if __name__ == "__main__":
    main()

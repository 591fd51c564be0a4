"""Time from the approving click in Slack to the start of execution, median over N approvals.

Each round: `countersign run` (a real process) asks to run an UPDATE on a SQLite target and waits; the
service (Bolt under uvicorn, the poster, the local Slack emulator) posts the request; a signed
block_actions click approves it. Measured: from just before the click is sent to the `execute` audit
event the console records right before running the write. Once with a SQLite store, once with a
PostgreSQL store. Target: median <= 1 s.

    python bench/bench_slack.py [--approvals 50] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import servers  # noqa: E402  (scratch databases, the same helper the tests use)
from tests.slack_emulator import SlackEmulator  # noqa: E402
from tests.slack_harness import (SLACK_USERS, Running, UvicornThread, add_people, block_actions, start,  # noqa: E402
                                 wait_until)

CONFIG = """
[slack]
channel = "CAPPROVALS"
audit_channel = "CAUDITLOG"

[people]
alice = "alice@example.com"
bob = "bob@example.com"

[targets.bench]
url = "sqlite:///{db}"
environment = "production"
policy = "prod"

[policies.prod]
approvers = ["bob"]
"""


def target(directory: Path) -> Path:
    db = directory / "bench.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site_id INTEGER, metadata TEXT)")
        conn.executemany("INSERT INTO deploys (site_id, metadata) VALUES (?, 'x')", [(n % 50,) for n in range(500)])
    return db


def one_round(running: Running, config: Path, env: dict, n: int) -> float:
    """Seconds from the click to the console's `execute` event for one approval."""
    sql = f"UPDATE deploys SET metadata = 'round {n}' WHERE site_id = {n % 50}"
    console = subprocess.Popen([sys.executable, "-m", "console.cli", "--config", str(config), "run", "bench",
                                "-c", sql, "--wait", "60"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    request = wait_until(lambda: running.approvals.list(pending_only=True), timeout=30)[0]
    running.posted_approval(request.id)
    clicked = datetime.now(timezone.utc)
    running.post(block_actions("countersign_approve", request.id, SLACK_USERS["bob"]))
    _, err = console.communicate(timeout=60)
    if console.returncode != 0:
        raise SystemExit(f"round {n}: countersign run exited {console.returncode}: {err}")
    executed = next(e.ts for e in running.store.events()
                    if e.type == "execute" and e.payload.get("approval_id") == request.id)
    return (executed - clicked).total_seconds()


def measure(store_url: str, rounds: int, directory: Path) -> list[float]:
    from approvals.service import ApprovalService
    from service import slack_settings
    config = directory / "countersign.toml"
    config.write_text(CONFIG.format(db=target(directory)))
    env = {**os.environ, "COUNTERSIGN_STORE": store_url, "COUNTERSIGN_USER": "alice"}
    with SlackEmulator() as slack:
        add_people(slack)
        store, service = start(slack, store_url, config=slack_settings.load(config, env)[1])
        service.poster.start()
        try:
            with UvicornThread(service.asgi) as server:
                running = Running(slack, store, service, f"http://127.0.0.1:{server.port}",
                                  ApprovalService.from_store(store))
                return [one_round(running, config, env, n) for n in range(rounds)]
        finally:
            service.poster.stop()
            store.dispose()


def report(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    print(f"{name:<10} n={len(ms)}  median {statistics.median(ms):7.1f} ms  p90 {ms[int(len(ms) * 0.9) - 1]:7.1f} ms  "
          f"max {ms[-1]:7.1f} ms  (target: median <= 1000 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=50)
    parser.add_argument("--pg-url", default=servers.admin_pg_url())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sqlite").mkdir()
        report("sqlite", measure(f"sqlite:///{Path(tmp) / 'store.db'}", args.approvals, Path(tmp) / "sqlite"))
        name = servers.scratch_name("benchslack")
        url = servers.create_pg_database(args.pg_url, name)
        try:
            (Path(tmp) / "pg").mkdir()
            report("postgres", measure(url, args.approvals, Path(tmp) / "pg"))
        finally:
            servers.drop_pg_database(args.pg_url, name)


if __name__ == "__main__":
    main()

"""Snapshot cost at scale, on PostgreSQL, all in one run:

1. an approved UPDATE of every row of a 1,000,000-row table through the pipeline WITHOUT a snapshot,
2. the same UPDATE WITH its snapshot (CREATE TABLE ... AS SELECT inside the write's transaction),
3. the bare server-side `CREATE TABLE ... AS SELECT` of the same rows,
4. the restore of those 1,000,000 rows (itself an approved write, with its own snapshot),
5. the incident drill: an UPDATE that nulls `metadata` on 5% of the rows, then one restore, and a
   checksum of the whole table before and after.

Targets: snapshot throughput >= 0.8x the bare copy; write with snapshot <= 2.0x without; restore of
1,000,000 rows under a minute.

    python bench/bench_snapshot.py [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--rows 1000000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import servers  # noqa: E402  (scratch databases, the same helper the tests use)

CHECKSUM = "SELECT md5(string_agg(id::text || ':' || coalesce(metadata::text, '~') || ':' || status, ',' ORDER BY id)) FROM deploys"


def setup(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE deploys (id bigint PRIMARY KEY, site_id int NOT NULL, status text NOT NULL, "
                     "metadata jsonb)")
        conn.execute("INSERT INTO deploys SELECT g, g %% 5000, 'ready', jsonb_build_object('build', g, "
                     "'framework', (ARRAY['next','astro','hugo','remix'])[1 + g %% 4]) "
                     "FROM generate_series(1, %s) g", (rows,))
        conn.execute("VACUUM ANALYZE deploys")


def settle(url: str) -> None:
    """The same starting point for every measured write: no dead rows, fresh statistics, a checkpoint."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (FULL, ANALYZE) deploys")
        conn.execute("CHECKPOINT")


class Harness:
    """A real pipeline (alice) and a real second person (bob) on a scratch store."""

    def __init__(self, url: str, store_url: str, snapshot: bool) -> None:
        from datetime import timedelta
        from approvals.service import ApprovalService
        from audit.store import Store
        from tests.pipeline_helpers import make_pipeline
        from config.settings import Policy
        Store.upgrade(store_url)   # a new store: opening never migrates
        self.store = Store.open(store_url)
        policy = Policy(max_write_rows=None, statement_timeout=timedelta(minutes=30),
                        snapshot_above_rows=1 if snapshot else 10 ** 12, snapshot_max_rows=10 ** 9)
        self.pipeline = make_pipeline(url, self.store, "alice", policy)
        self.pipeline.open_session("benchmark")
        self.bob = ApprovalService.from_store(self.store)

    def approved(self, text: str = "", batch: tuple | None = None):
        from tests.pipeline_helpers import Submission
        run = Submission(self.pipeline, text, wait=3600, batch=batch).start()
        self.bob.vote(run.request_id, "bob", "approve")
        started = time.perf_counter()
        run.thread.join()
        wall = time.perf_counter() - started
        for outcome in run.outcomes:
            assert outcome.status.value == "ok", outcome.message
        return run.outcomes, wall

    def restore(self, snapshot_id: str):
        from console.commands.snapshots import _classified
        plan = self.pipeline.restore_plan(snapshot_id)
        return self.approved(batch=_classified(self.pipeline, plan.statements))

    def close(self) -> None:
        self.pipeline.close()
        self.store.dispose()


def bare_copy(url: str, predicate: str) -> float:
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        conn.execute(f"CREATE TABLE bare_copy AS SELECT deploys.* FROM deploys WHERE {predicate}")
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bare_copy")
        conn.commit()
    return elapsed


def checksum(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute(CHECKSUM).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", default=os.environ.get("COUNTERSIGN_TEST_PG_URL", servers.DEFAULT_PG_URL))
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    name = f"cs_bench_{uuid.uuid4().hex[:8]}"
    url = servers.create_pg_database(args.pg_url, name)
    n = args.rows
    try:
        setup(url, n)
        with tempfile.TemporaryDirectory() as tmp:
            plain = Harness(url, f"sqlite:///{tmp}/plain.db", snapshot=False)
            snapped = Harness(url, f"sqlite:///{tmp}/snap.db", snapshot=True)
            predicate = "site_id >= 0"   # every row, through a predicate like a real write

            settle(url)
            bare = bare_copy(url, predicate)
            settle(url)
            [without], _ = plain.approved(f"UPDATE deploys SET status = 'archived' WHERE {predicate}")
            settle(url)
            [with_snapshot], _ = snapped.approved(f"UPDATE deploys SET status = 'ready' WHERE {predicate}")
            assert without.result.rowcount == with_snapshot.result.rowcount == n

            settle(url)
            restored, restore_wall = snapped.restore(with_snapshot.snapshot_id)

            settle(url)
            before = checksum(url)
            [incident], _ = snapped.approved("UPDATE deploys SET metadata = NULL WHERE id % 20 = 7")
            damaged = checksum(url)
            drill, drill_wall = snapped.restore(incident.snapshot_id)
            after = checksum(url)
            plain.close()
            snapped.close()
    finally:
        servers.drop_pg_database(args.pg_url, name)

    t_without, t_with = without.duration_ms / 1000, with_snapshot.duration_ms / 1000
    snapshot_cost = t_with - t_without
    print(f"rows: {n:,}")
    print(f"bare CREATE TABLE AS SELECT:            {bare:7.2f} s  ({n / bare / 1e6:.2f} M rows/s)")
    print(f"approved UPDATE without snapshot:       {t_without:7.2f} s")
    print(f"approved UPDATE with snapshot:          {t_with:7.2f} s  (snapshot share {snapshot_cost:.2f} s, "
          f"{n / snapshot_cost / 1e6:.2f} M rows/s)")
    print(f"snapshot throughput / bare copy:        {bare / snapshot_cost:7.2f}x (target >= 0.8)")
    print(f"write with snapshot / without:          {t_with / t_without:7.2f}x (target <= 2.0)")
    print(f"restore of {n:,} rows (approved batch, with its own snapshot): {restore_wall:.2f} s wall, "
          f"{restored[0].duration_ms / 1000:.2f} s in the transaction (target < 60 s)")
    print(f"incident drill: nulled {incident.result.rowcount:,} rows ({incident.result.rowcount / n:.0%}); "
          f"restore {drill_wall:.2f} s; table checksum before {before[:12]}, damaged {damaged[:12]}, "
          f"after {after[:12]}: {'IDENTICAL' if before == after else 'DIFFERENT'}")


if __name__ == "__main__":
    main()

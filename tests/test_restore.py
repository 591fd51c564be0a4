"""Restore through the real pipeline, on REAL PostgreSQL, MariaDB, SQLite and MongoDB (secantusdb):
a write is approved and snapshotted, then its restore — itself a write — is approved by a second person,
takes its own snapshot and puts the table back exactly as it was (full contents compared)."""
from __future__ import annotations

import pytest

from approvals.service import ApprovalService
from audit.store import Store
from gate.api import Status
from snapshots import records
from console.commands.snapshots import _classified
from tests.pipeline_helpers import Submission, make_pipeline, target_driver
from tests.store_helpers import migrated

pytestmark = pytest.mark.usefixtures("gate_mode")   # in process, and through JSON

ROWS = [(i, f"site-{i % 4}", f"meta-{i}") for i in range(1, 41)]


@pytest.fixture
def store(tmp_path):
    opened = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))
    yield opened
    opened.dispose()


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def sql_pipeline(request, store):
    url = request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[request.param])
    p = make_pipeline(url, store, "alice")
    with target_driver(p).transaction(read_only=False) as tx:
        tx.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site VARCHAR(20) NOT NULL, metadata VARCHAR(40))")
        tx.execute("INSERT INTO deploys VALUES " + ", ".join(f"({i}, '{s}', '{m}')" for i, s, m in ROWS))
    p.open_session("restore tests")
    yield p
    from snapshots import capture
    for record in records.list_snapshots(store.engine):   # MariaDB keeps snapshots in a shared database
        capture.discard(target_driver(p), record.location)
    p.close()


def approved(p, store, text: str):
    """Submit one write, have bob approve it, return its outcome."""
    run = Submission(p, text).start()
    ApprovalService.from_store(store).vote(run.request_id, "bob", "approve")
    return run.result()


def restore(p, store, snapshot_id: str):
    """What `countersign snapshots restore` does: plan, classify, one approval, one transaction."""
    plan = p.restore_plan(snapshot_id)
    run = Submission(p, "", batch=_classified(p, plan.statements), purpose=f"restore of snapshot {snapshot_id}")
    request = ApprovalService.from_store(store).get(run.start().request_id)
    assert request.reason.startswith(f"restore of snapshot {snapshot_id}")
    ApprovalService.from_store(store).vote(request.id, "bob", "approve")
    run.result()
    return run.outcomes


def contents(p) -> list[tuple]:
    with target_driver(p).transaction(read_only=True) as tx:
        return sorted(tuple(r) for r in tx.execute("SELECT id, site, metadata FROM deploys").rows)


@pytest.mark.parametrize("write", [
    "UPDATE deploys SET metadata = NULL WHERE site = 'site-2'",
    "DELETE FROM deploys WHERE id > 30",
    "INSERT INTO deploys (id, site, metadata) SELECT id + 100, site, 'copy' FROM deploys WHERE id <= 3",
])
def test_restore_puts_the_table_back_exactly(sql_pipeline, store, write):
    p = sql_pipeline
    before = contents(p)
    outcome = approved(p, store, write)
    assert outcome.status is Status.OK and outcome.snapshot_id and contents(p) != before
    done = restore(p, store, outcome.snapshot_id)
    assert [o.status for o in done] == [Status.OK] * len(done)
    assert contents(p) == before
    own = [o.snapshot_id for o in done if o.snapshot_id]
    assert own and all(records.get(store.engine, s).status == "complete" for s in own)   # restore's own snapshot


def test_an_upsert_restore_runs_its_statements_in_one_transaction(sql_pipeline, store):
    p = sql_pipeline
    before = contents(p)
    values = "(1, 'site-1', 'up'), (2, 'site-2', 'up'), (90, 'site-0', 'new'), (91, 'site-1', 'new')"
    upsert = {"mysql": f"INSERT INTO deploys (id, site, metadata) VALUES {values} "
                       "ON DUPLICATE KEY UPDATE metadata = VALUES(metadata)"}.get(
        p.dialect, f"INSERT INTO deploys (id, site, metadata) VALUES {values} "
                   "ON CONFLICT (id) DO UPDATE SET metadata = excluded.metadata")
    outcome = approved(p, store, upsert)
    assert outcome.status is Status.OK
    plan = p.restore_plan(outcome.snapshot_id)
    assert len(plan.statements) == 2          # remove the inserted rows, revert the overwritten ones
    done = restore(p, store, outcome.snapshot_id)
    assert len(done) == 2 and {o.approval_id for o in done} == {done[0].approval_id}   # ONE approval
    assert contents(p) == before


def test_a_restore_that_fails_half_way_changes_nothing(sql_pipeline, store):
    p = sql_pipeline
    before = contents(p)
    outcome = approved(p, store, "DELETE FROM deploys WHERE site = 'site-3'")
    # Someone re-creates one of the deleted rows by hand: the re-insert now hits the primary key.
    with target_driver(p).transaction(read_only=False) as tx:
        tx.execute("INSERT INTO deploys VALUES (3, 'site-3', 'by hand')")
    done = restore(p, store, outcome.snapshot_id)
    assert done[0].status is Status.FAILED and "nothing was committed" in done[0].message
    assert sorted(r for r in contents(p) if r[1] == "site-3") == [(3, "site-3", "by hand")]
    assert records.get(store.engine, outcome.snapshot_id).restorable       # still there to try again
    assert len(contents(p)) == len(before) - 9


def test_the_incident_reenacted_nulling_a_field_on_five_percent_of_deploys(pg_url, store):
    """20,000 deploys; a hand-written migration nulls the metadata of 5% of them; one restore puts every
    row back as it was. (bench/bench_snapshot.py runs the same at 1,000,000 rows.)"""
    p = make_pipeline(pg_url, store, "alice")
    with target_driver(p).transaction(read_only=False) as tx:
        tx.execute("CREATE TABLE deploys (id bigint PRIMARY KEY, site_id int NOT NULL, metadata jsonb)")
        tx.execute("INSERT INTO deploys SELECT g, g % 500, jsonb_build_object('build', g, 'framework', "
                   "(ARRAY['next','astro','hugo'])[1 + g % 3]) FROM generate_series(1, 20000) g")
    p.open_session("incident drill")

    def table() -> list[tuple]:
        with target_driver(p).transaction(read_only=True) as tx:
            return [tuple(r) for r in tx.execute("SELECT id, site_id, metadata::text FROM deploys ORDER BY id").rows]
    before = table()
    outcome = approved(p, store, "UPDATE deploys SET metadata = NULL WHERE site_id % 20 = 7")
    assert outcome.status is Status.OK and outcome.result.rowcount == 1000
    assert sum(1 for r in table() if r[2] is None) == 1000
    done = restore(p, store, outcome.snapshot_id)
    assert [o.status for o in done] == [Status.OK]
    assert table() == before
    p.close()


# -- MongoDB ----------------------------------------------------------------------------------------
@pytest.fixture
def mongo_pipeline(mongo_server_url, store):
    import pymongo
    from tests import servers
    name = servers.scratch_name("mg")
    url = mongo_server_url.replace("/?", f"/{name}?")
    client = pymongo.MongoClient(mongo_server_url)
    client[name].deploys.insert_many([{"_id": i, "site": f"s{i % 4}", "meta": {"build": i}} for i in range(1, 41)])
    p = make_pipeline(url, store, "alice")
    p.open_session("mongo restore")
    yield p, client[name].deploys
    p.close()
    client.drop_database(name)
    client.drop_database("countersign_snapshots")
    client.close()


@pytest.mark.parametrize("write", [
    'db.deploys.updateMany({site: "s2"}, {$set: {meta: null}})',
    'db.deploys.deleteMany({_id: {$gt: 30}})',
    'db.deploys.insertMany([{_id: 100, site: "s9"}, {_id: 101, site: "s9"}])',
])
def test_mongodb_write_snapshot_and_restore_through_the_pipeline(mongo_pipeline, store, write):
    p, collection = mongo_pipeline
    before = sorted(collection.find(), key=lambda d: d["_id"])
    outcome = approved(p, store, write)
    assert outcome.status is Status.OK and outcome.snapshot_id
    assert sorted(collection.find(), key=lambda d: d["_id"]) != before
    done = restore(p, store, outcome.snapshot_id)
    assert [o.status for o in done] == [Status.OK] * len(done)
    assert sorted(collection.find(), key=lambda d: d["_id"]) == before

"""MongoDriver on a real MongoDB wire-protocol server (secantusdb): reads, writes in one transaction,
the read-only guard, error mapping, cancel and the catalog. No mocks; timeouts and cancel use the
server's own failCommand failpoint to hold an operation, never a client-side sleep."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pymongo
import pytest

from engines.base import (ConcurrentChange, ConnectionLost, DriverError, QueryCancelled,
                                  ReadOnlyViolation, StatementTimeout)
from engines.mongodb.driver import MongoDriver
from tests import servers

pytestmark = pytest.mark.mongo


@pytest.fixture
def url(mongo_server_url, mongo_db):
    return servers.with_database(mongo_server_url, mongo_db.name)


@pytest.fixture
def driver(url):
    driver = MongoDriver(url)
    yield driver
    driver.close()


@pytest.fixture
def deploys(mongo_db):
    mongo_db.deploys.insert_many([
        {"_id": 1, "site": "a", "ok": True},
        {"_id": 2, "site": "b", "ok": False, "note": "slow"},
        {"_id": 3, "site": "a", "ok": False},
    ])
    return mongo_db.deploys


def contents(collection) -> list[dict]:
    return list(collection.find().sort("_id", 1))


# -- reads -------------------------------------------------------------------------------------------
def test_find_returns_the_union_of_fields_with_id_first(driver, deploys):
    with driver.transaction(read_only=True) as tx:
        result = tx.execute('db.deploys.find({}, {site: 1, note: 1}).sort({_id: -1})')
    assert result.columns == ("_id", "site", "note")
    assert result.rows == ((3, "a", None), (2, "b", "slow"), (1, "a", None))
    assert result.rowcount == 3 and not result.truncated


def test_max_rows_truncates_and_says_so(driver, deploys):
    with driver.transaction(read_only=True) as tx:
        result = tx.execute("db.deploys.find().sort({_id: 1})", max_rows=2)
        exact = tx.execute("db.deploys.find().sort({_id: 1})", max_rows=3)
    assert [row[0] for row in result.rows] == [1, 2]
    assert result.truncated and result.rowcount == 2
    assert not exact.truncated and exact.rowcount == 3


def test_other_reads(driver, deploys):
    with driver.transaction(read_only=True) as tx:
        assert tx.execute('db.deploys.countDocuments({site: "a"})').rows == ((2,),)
        assert tx.execute('db.deploys.countDocuments({site: "a"}, {limit: 1})').rows == ((1,),)
        assert tx.execute('db.deploys.find({ok: false}).count()').rows == ((2,),)
        assert tx.execute("db.deploys.estimatedDocumentCount()").rows == ((3,),)
        assert tx.execute('db.deploys.distinct("site")').rows == (("a",), ("b",))
        grouped = tx.execute('db.deploys.aggregate([{$group: {_id: "$site", n: {$sum: 1}}}, {$sort: {_id: 1}}])')
        assert grouped.rows == (("a", 2), ("b", 1))
        assert tx.execute("db.deploys.findOne({_id: 2})").rows[0][:2] == (2, "b")
        assert "_id_" in [row[2] for row in tx.execute("db.deploys.getIndexes()").rows]
        assert tx.execute("show collections").rows == (("deploys",),)
        assert tx.execute("db.getCollectionNames()").rows == (("deploys",),)
        assert tx.execute("db.aggregate([{$documents: [{n: 3}]}])").rows == ((3,),)


def _one(result) -> dict:
    """The single document a diagnostic returns, as a dict."""
    (row,) = result.rows
    return dict(zip(result.columns, row))


def test_read_only_diagnostics_run_on_the_read_path_and_classify_as_reads(driver, deploys, mongo_db):
    from classify.mongosh.shell import classify_one
    checks = {
        'db.deploys.find({site: "a"}).explain()': lambda r: "queryPlanner" in _one(r),
        'db.deploys.find({site: "a"}).sort({_id: 1}).limit(1).explain("executionStats")':
            lambda r: "executionStats" in _one(r) and _one(r)["command"]["limit"] == 1,
        'db.deploys.aggregate([{$match: {ok: false}}]).explain("queryPlanner")': lambda r: len(r.rows) == 1,
        'db.deploys.find({site: "a"}).sort({_id: 1}).readPref("secondaryPreferred")':
            lambda r: [row[0] for row in r.rows] == [1, 3],
        "db.serverStatus()": lambda r: "version" in _one(r),
        "db.currentOp()": lambda r: "inprog" in _one(r),
        "db.deploys.dataSize()": lambda r: r.columns == ("dataSize",) and r.rows[0][0] > 0,
        "db.deploys.totalIndexSize()": lambda r: r.columns == ("totalIndexSize",) and r.rows[0][0] > 0,
        "db.deploys.latencyStats()": lambda r: "latencyStats" in _one(r),
        "db.version()": lambda r: r.rows == ((mongo_db.client.server_info()["version"],),),
        "db.getName()": lambda r: r.rows == ((mongo_db.name,),),
        "db.runCommand({ping: 1})": lambda r: _one(r)["ok"] == 1,
        'db.runCommand({count: "deploys", query: {site: "a"}})': lambda r: _one(r)["n"] == 2,
        'db.runCommand({find: "deploys", filter: {site: "b"}})':
            lambda r: [d["_id"] for d in _one(r)["cursor"]["firstBatch"]] == [2],
    }
    before = contents(deploys)
    for text, check in checks.items():
        verdict = classify_one(text)
        assert (verdict.kind.value, verdict.requires_approval) == ("read", False), (text, verdict.reason)
        result = driver.read(text, timeout_ms=5000, max_rows=100)
        assert check(result), (text, result)
    assert contents(deploys) == before


def test_explain_of_a_write_is_refused_on_the_read_path(driver, deploys, mongo_db):
    for text in ('db.deploys.aggregate([{$out: "copy"}]).explain("executionStats")',
                 'db.deploys.explain().remove({})', 'db.deploys.find().explain("everything")'):
        with pytest.raises(DriverError):
            driver.read(text)
    assert sorted(mongo_db.list_collection_names()) == ["deploys"] and len(contents(deploys)) == 3


def test_use_switches_the_current_database(driver, mongo_db, mongo_server_url):
    other = servers.scratch_name("mg")
    client = pymongo.MongoClient(mongo_server_url)
    client[other].things.insert_one({"_id": 1})
    try:
        with driver.transaction(read_only=True) as tx:
            tx.execute(f"use {other}")
            assert tx.execute("db.things.countDocuments({})").rows == ((1,),)
        assert driver.database == other
    finally:
        client.drop_database(other)
        client.close()


# -- writes ------------------------------------------------------------------------------------------
def test_writes_commit_when_the_block_ends(driver, deploys):
    with driver.transaction(read_only=False, isolation="repeatable read") as tx:
        updated = tx.execute('db.deploys.updateMany({site: "a"}, {$set: {ok: "yes"}})')
        inserted = tx.execute('db.deploys.insertMany([{_id: 4}, {_id: 5}])')
        deleted = tx.execute("db.deploys.deleteOne({_id: 2})")
        assert tx.written_ids == ()
    assert (updated.rowcount, inserted.rowcount, deleted.rowcount) == (2, 2, 1)
    assert updated.columns == () and updated.rows == ()
    assert [d["_id"] for d in contents(deploys)] == [1, 3, 4, 5]
    assert deploys.count_documents({"ok": "yes"}) == 2


def test_rowcount_counts_matched_documents_even_when_nothing_changes(driver, deploys):
    with driver.transaction(read_only=False) as tx:
        result = tx.execute('db.deploys.updateMany({site: "a"}, {$set: {site: "a"}})')
    assert result.rowcount == 2


def test_find_one_and_update_returns_the_document(driver, deploys):
    with driver.transaction(read_only=False) as tx:
        result = tx.execute('db.deploys.findOneAndUpdate({site: "a"}, {$set: {ok: 1}}, '
                            '{sort: {_id: -1}, returnDocument: "after"})')
        upsert = tx.execute('db.deploys.findOneAndUpdate({_id: 9}, {$set: {ok: 1}}, {upsert: true})')
        assert tx.written_ids == (9,)
    assert result.rowcount == 1 and result.rows == ((3, "a", 1),)
    assert upsert.rowcount == 0 and upsert.rows == ()        # an upsert matched nothing
    assert deploys.find_one({"_id": 9}) == {"_id": 9, "ok": 1}


def test_bulk_write_counts_inserted_matched_and_deleted(driver, deploys):
    with driver.transaction(read_only=False) as tx:
        result = tx.execute('db.deploys.bulkWrite([{insertOne: {document: {_id: 7}}}, '
                            '{updateMany: {filter: {site: "a"}, update: {$set: {x: 1}}}}, '
                            '{deleteOne: {filter: {_id: 2}}}, '
                            '{updateOne: {filter: {_id: 8}, update: {$set: {x: 2}}, upsert: true}}])')
        assert tx.written_ids == (7, 8)
    assert result.rowcount == 1 + 2 + 1
    assert [d["_id"] for d in contents(deploys)] == [1, 3, 7, 8]


def test_an_exception_in_the_block_aborts_everything(driver, deploys):
    before = contents(deploys)
    with pytest.raises(RuntimeError):
        with driver.transaction(read_only=False) as tx:
            tx.execute("db.deploys.deleteMany({})")
            tx.execute('db.deploys.insertOne({_id: 10})')
            raise RuntimeError("the row guard tripped")
    assert contents(deploys) == before


def test_a_failing_statement_aborts_what_ran_before_it(driver, deploys):
    before = contents(deploys)
    with pytest.raises(DriverError, match="duplicate key"):
        with driver.transaction(read_only=False) as tx:
            tx.execute('db.deploys.updateMany({}, {$set: {ok: null}})')
            tx.execute('db.deploys.insertOne({_id: 1})')
    assert contents(deploys) == before


def test_an_unknown_option_is_refused_not_dropped(driver, deploys):
    before = contents(deploys)
    with pytest.raises(DriverError, match="option 'upsret' is not supported"):
        with driver.transaction(read_only=False) as tx:
            tx.execute('db.deploys.updateOne({_id: 99}, {$set: {a: 1}}, {upsret: true})')
    assert contents(deploys) == before


# -- the read-only guard -------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    'db.deploys.updateMany({}, {$set: {ok: null}})',
    'db.deploys.deleteMany({})',
    'db.deploys.aggregate([{$match: {}}, {$out: "stolen"}])',
    'db.deploys.aggregate([{$facet: {a: [{$merge: {into: "stolen"}}]}}])',
    'db.deploys.find({$where: "true"})',
    'db.deploys.drop()',
    'db.runCommand({drop: "deploys"})',
    'db.runCommand({killOp: 1, op: 12345})',
    'db.runCommand({shutdown: 1})',
    'db.adminCommand({ping: 1})',
])
def test_a_misclassified_write_fails_read_only_and_changes_nothing(driver, deploys, mongo_db, text):
    before = contents(deploys)
    with pytest.raises(ReadOnlyViolation, match="nothing was sent"):
        with driver.transaction(read_only=True) as tx:
            tx.execute(text)
    assert contents(deploys) == before
    assert sorted(mongo_db.list_collection_names()) == ["deploys"]


# -- concurrency, errors, cancel ------------------------------------------------------------------------
def test_a_write_conflict_between_two_transactions_is_a_concurrent_change(url, driver, deploys):
    other = MongoDriver(url)
    try:
        with driver.transaction(read_only=False) as first:
            first.execute('db.deploys.updateOne({_id: 1}, {$set: {ok: "first"}})')
            with pytest.raises(ConcurrentChange, match="concurrent change"):
                with other.transaction(read_only=False) as second:
                    second.execute('db.deploys.updateOne({_id: 1}, {$set: {ok: "second"}})')
    finally:
        other.close()
    assert deploys.find_one({"_id": 1})["ok"] == "first"


def test_a_change_committed_after_the_snapshot_began_is_a_concurrent_change(driver, deploys):
    with pytest.raises(ConcurrentChange):
        with driver.transaction(read_only=False) as tx:
            tx.execute("db.deploys.find({_id: 1})")            # the transaction's snapshot starts here
            deploys.update_one({"_id": 1}, {"$set": {"ok": "outside"}})
            tx.execute('db.deploys.updateOne({_id: 1}, {$set: {ok: "inside"}})')
    assert deploys.find_one({"_id": 1})["ok"] == "outside"


def test_drop_runs_after_the_commit_and_only_if_nothing_changed(driver, deploys, mongo_db):
    with driver.transaction(read_only=False) as tx:
        result = tx.execute("db.deploys.drop()")
        assert "deploys" in mongo_db.list_collection_names()   # MongoDB cannot drop inside a transaction
    assert result.rowcount == 3
    assert "deploys" not in mongo_db.list_collection_names()


def test_drop_refuses_when_documents_arrived_meanwhile(driver, deploys):
    with pytest.raises(ConcurrentChange, match="nothing was dropped"):
        with driver.transaction(read_only=False) as tx:
            tx.execute("db.deploys.drop()")
            deploys.insert_one({"_id": 99})
    assert deploys.count_documents({}) == 4


def test_unreachable_server_is_a_readable_driver_error():
    port = servers.free_port()
    with pytest.raises(DriverError) as caught:
        MongoDriver(f"mongodb://ops:s3cret@127.0.0.1:{port}/app?directConnection=true",
                    server_selection_timeout_ms=300)
    message = str(caught.value)
    assert f"MongoDB at mongodb://ops:***@127.0.0.1:{port}/app" in message
    assert "not reachable" in message and "check the host and port" in message
    assert "s3cret" not in message


def test_bad_statements_and_isolation_levels_are_refused(driver, deploys):
    with pytest.raises(DriverError, match="not run: .*function is not supported"):
        with driver.transaction(read_only=True) as tx:
            tx.execute("db.deploys.find().forEach(d => d)")
    with pytest.raises(ValueError, match="unknown isolation level"):
        with driver.transaction(read_only=False, isolation="read uncommitted"):
            pass


def test_catalog_lists_collections_with_sampled_fields(driver, deploys, mongo_db, mongo_server_url):
    client = pymongo.MongoClient(mongo_server_url)
    client.countersign_snapshots[f"s_{mongo_db.name[-8:]}"].insert_one({"_id": 1})
    try:
        catalog = driver.catalog()
    finally:
        client.countersign_snapshots[f"s_{mongo_db.name[-8:]}"].drop()
        client.close()
    table = catalog.table(f"{mongo_db.name}.deploys")
    assert table.schema == mongo_db.name and table.name == "deploys"
    assert [(c.name, c.type) for c in table.columns] == [("_id", "objectId"), ("site", "string"),
                                                          ("ok", "bool"), ("note", "string")]
    assert table.primary_key == ("_id",)
    assert all(t.schema != "countersign_snapshots" for t in catalog.tables)


# -- timeouts and cancel, on a server with mongod's test commands (failpoints) enabled ----------------
class _FailpointServer(servers.MongoServer):
    """secantusdb with --enable-test-commands, so failCommand can hold an operation server-side."""

    def __init__(self) -> None:
        self.port = servers.free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--port", str(self.port), "--storage-path", ":memory:",
             "--enable-test-commands"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"mongodb://127.0.0.1:{self.port}/app?directConnection=true"
        self._wait_ready()


@pytest.fixture(scope="module")
def failpoint_server():
    server = _FailpointServer()
    yield server
    server.stop()


@pytest.fixture
def held(failpoint_server):
    """hold(command, ms, appname): the server blocks that driver's next ``command`` for ms."""
    admin = pymongo.MongoClient(failpoint_server.url)
    admin.app.deploys.delete_many({})
    admin.app.deploys.insert_many([{"_id": 1, "ok": True}, {"_id": 2, "ok": False}])

    def hold(command: str, ms: int, appname: str) -> None:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1},
                             "data": {"failCommands": [command], "blockConnection": True,
                                      "blockTimeMS": ms, "appName": appname}})
    hold.admin = admin
    yield hold
    admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    admin.close()


def test_a_statement_past_its_timeout_is_stopped(failpoint_server, held):
    driver = MongoDriver(failpoint_server.url, appname="cs-timeout")
    try:
        held("find", 3000, "cs-timeout")
        started = time.monotonic()
        with pytest.raises(StatementTimeout, match="200 ms"):
            with driver.transaction(read_only=True, timeout_ms=200) as tx:
                tx.execute("db.deploys.find()")
        assert time.monotonic() - started < 2.5
    finally:
        driver.close()


def test_cancel_stops_the_running_statement_and_rolls_back(failpoint_server, held):
    driver = MongoDriver(failpoint_server.url, appname="cs-cancel")
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            with driver.transaction(read_only=False) as tx:
                tx.execute("db.deploys.updateMany({}, {$set: {ok: null}})")
                tx.execute("db.deploys.find()")
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = err

    held("find", 5000, "cs-cancel")
    worker = threading.Thread(target=run)
    worker.start()
    try:
        _wait_until_running(held.admin, "cs-cancel", "find")
        driver.cancel()
        worker.join(10)
    finally:
        driver.close()
    assert isinstance(outcome.get("error"), QueryCancelled)
    assert held.admin.app.deploys.count_documents({"ok": None}) == 0


def _wait_until_running(admin, appname: str, command: str) -> None:
    """Poll currentOp (each poll is a server round trip, not a sleep) until the op is in flight."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for op in admin.admin.command("currentOp").get("inprog", []):
            app = ((op.get("clientMetadata") or {}).get("application") or {}).get("name")
            if app == appname and command in (op.get("command") or {}):
                return
    raise AssertionError(f"{command} from {appname} never showed up in currentOp")


def test_a_server_that_goes_away_mid_transaction_is_connection_lost():
    server = _FailpointServer()
    driver = MongoDriver(server.url, server_selection_timeout_ms=500)
    try:
        with pytest.raises(ConnectionLost, match="nothing was committed"):
            with driver.transaction(read_only=False) as tx:
                tx.execute("db.deploys.insertOne({_id: 1})")
                server.stop()
                tx.execute("db.deploys.insertOne({_id: 2})")
    finally:
        driver.close()
        server.stop()

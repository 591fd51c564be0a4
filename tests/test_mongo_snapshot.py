"""Snapshots of mongosh writes on a real server: for each form, the snapshot holds exactly the documents
the write touches, the count the reviewer sees is what the write then reports, and the restore
statements (classified, planned and snapshotted like any write, then run through the driver) bring
the collection back to exactly its prior bytes."""
from __future__ import annotations

import datetime as dt
import uuid

import bson
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from engines.base import ConcurrentChange, DriverError
from engines.mongodb.driver import MongoDriver
from classify.mongosh.shell import classify_one
from classify.statements import Kind
from snapshots import mongo_snapshot as ms
from snapshots.plan import SnapshotUnsupported
from snapshots.records import SnapshotRecord
from snapshots.restore import RestoreImpossible
from tests import servers

pytestmark = pytest.mark.mongo
RAW = CodecOptions(document_class=RawBSONDocument)


@pytest.fixture
def driver(mongo_server_url, mongo_db):
    driver = MongoDriver(servers.with_database(mongo_server_url, mongo_db.name))
    yield driver
    driver.close()


def seed(mongo_db) -> None:
    """Documents with every BSON type a restore must carry back exactly."""
    mongo_db.deploys.insert_many([
        {"_id": 1, "site": "a", "n": 1, "big": bson.Int64(2**40), "f": 1.5, "neg": -0.0,
         "ts": dt.datetime(2024, 5, 1, 10, 0, 0, 123000), "tags": ["x", {"é": None}]},
        {"_id": 2, "site": "b", "n": 5, "dec": bson.Decimal128("0.10"), "u": bson.Binary.from_uuid(uuid.uuid4()),
         "bin": bson.Binary(b"\x00\xff", 0), "re": bson.Regex("^a.b", "i"), "when": bson.Timestamp(5, 1)},
        {"_id": 3, "site": "a", "n": 3, "lo": bson.MinKey(), "hi": bson.MaxKey(), "code": bson.Code("x"),
         "ref": bson.DBRef("sites", 1), "nested": {"deep": {"deeper": [1, 2, [3]]}}},
        {"_id": bson.ObjectId("5f1d7a2b9c8e4a0012345678"), "site": "c", "n": 4, "ok": True, "nan": float("nan")},
        {"_id": "str-id", "site": "b", "n": 2, "ok": False, "naïve ☕": "ü"},
    ])
    mongo_db.deploys.create_index([("site", 1), ("n", -1)], name="site_n")


def raw_contents(mongo_db, name: str = "deploys") -> list[bytes]:
    return sorted(doc.raw for doc in mongo_db.get_collection(name, codec_options=RAW).find())


def raw_by_id(mongo_db, name: str = "deploys") -> dict[str, bytes]:
    return {repr(bson.decode(doc.raw)["_id"]): doc.raw for doc in mongo_db.get_collection(name, codec_options=RAW).find()}


def snapshot_id() -> str:
    return uuid.uuid4().hex


def guarded(driver, text: str, sid: str):
    """What console/guarded_write.run does for a mongodb plan, minus the audit store."""
    plan = ms.plan_snapshot(text, {}, database=driver.database)
    with driver.transaction(read_only=True) as tx:
        counted = int(tx.execute(plan.count_sql).rows[0][0])
    location = ms.prepare_outside_transaction(driver, plan, sid)
    with driver.transaction(read_only=False, isolation="repeatable read") as tx:
        captured = ms.capture(tx, plan, sid)
        result = tx.execute(text)
        captured = ms.capture_after(tx, plan, sid, captured)
    assert captured.location == location
    return plan, captured, result, counted


def record_for(plan, captured, text: str, sid: str) -> SnapshotRecord:
    return SnapshotRecord(id=sid, created_at=dt.datetime.now(dt.timezone.utc), target="test",
                          table_name=plan.qualified_table, location=captured.location, operation=plan.operation,
                          key_columns=plan.key_columns, row_count=captured.row_count, size_bytes=None,
                          statement=text, approval_id=None, session_id=None, status="complete")


def restore(driver, record: SnapshotRecord) -> list[str]:
    """Run each restore statement as the console would: it must classify as a write needing approval
    and (except DDL) be plannable, so it is run WITH its own snapshot."""
    contents = ms.read_snapshot(driver, record)
    plan = ms.restore_statements(record, driver.catalog(), contents)
    assert plan.notes
    for text in plan.statements:
        verdict = classify_one(text)
        assert verdict.requires_approval, text
        if verdict.kind is Kind.DDL:
            with pytest.raises(SnapshotUnsupported):
                ms.plan_snapshot(text, {}, database=driver.database)
            with driver.transaction(read_only=False) as tx:
                tx.execute(text)
            continue
        assert verdict.kind is Kind.WRITE, verdict.reason
        guarded(driver, text, snapshot_id())
    return list(plan.statements)


STRING_ID, OBJECT_ID = "'str-id'", "ObjectId('5f1d7a2b9c8e4a0012345678')"
# bulkWrite counts each operation's matches before any runs: an upper bound when operations overlap.
OVERLAPPING = 'db.deploys.bulkWrite([{deleteOne: {filter: {_id: 1}}}, {updateOne: {filter: {_id: 1}, update: {$set: {n: 2}}}}])'
# write, the _ids (as repr) whose before-images the snapshot must hold, _ids it must list as inserted
FORMS = [
    ('db.deploys.updateMany({site: "a"}, {$set: {n: 0}, $unset: {tags: ""}})', ["1", "3"], 0),
    ('db.deploys.updateMany({n: {$gte: 3}}, [{$set: {n: {$multiply: ["$n", 10]}}}])', ["2", "3", OBJECT_ID], 0),
    ('db.deploys.updateMany({}, {$set: {all: true}})', ["1", "2", "3", OBJECT_ID, STRING_ID], 0),
    ('db.deploys.updateOne({site: "b"}, {$set: {n: -1}}, {sort: {n: -1, _id: 1}})', ["2"], 0),
    ('db.deploys.updateOne({_id: "str-id"}, {$inc: {n: 1}})', [STRING_ID], 0),
    ('db.deploys.updateOne({site: "c"}, {$set: {n: 40}})', [OBJECT_ID], 0),
    ('db.deploys.updateOne({site: "zzz"}, {$set: {n: 9}}, {upsert: true})', [], 1),
    ('db.deploys.updateMany({site: "a"}, {$set: {n: 9}}, {upsert: true})', ["1", "3"], 0),
    ('db.deploys.replaceOne({_id: 3}, {site: "a", replaced: true})', ["3"], 0),
    ('db.deploys.replaceOne({site: "new"}, {site: "new"}, {upsert: true})', [], 1),
    ('db.deploys.deleteMany({site: "b"})', ["2", STRING_ID], 0),
    ('db.deploys.deleteMany({})', ["1", "2", "3", OBJECT_ID, STRING_ID], 0),
    ('db.deploys.deleteOne({_id: 2})', ["2"], 0),
    ('db.deploys.insertOne({site: "d", n: 6})', [], 1),
    ('db.deploys.insertMany([{_id: 10, site: "e"}, {site: "f"}, {_id: NumberLong("11")}])', [], 3),
    ('db.deploys.findOneAndUpdate({site: "a"}, {$set: {n: 100}}, {sort: {n: -1, _id: -1}, returnDocument: "after"})',
     ["3"], 0),
    ('db.deploys.findOneAndUpdate({_id: 42}, {$set: {n: 42}}, {upsert: true})', [], 1),
    ('db.deploys.findOneAndReplace({_id: 1}, {site: "z"})', ["1"], 0),
    ('db.deploys.findOneAndDelete({site: "b"}, {sort: {n: 1, _id: 1}})', [STRING_ID], 0),
    ('db.deploys.bulkWrite([{updateOne: {filter: {_id: 1}, update: {$set: {n: 11}}}}, '
     '{deleteMany: {filter: {site: "b"}}}, {insertOne: {document: {_id: 12}}}, '
     '{replaceOne: {filter: {_id: 3}, replacement: {site: "r"}}}, '
     '{updateMany: {filter: {site: "nobody"}, update: {$set: {n: 0}}, upsert: true}}])',
     ["1", "2", "3", STRING_ID], 2),
    (OVERLAPPING, ["1"], 0),
    ('db.deploys.drop()', ["1", "2", "3", OBJECT_ID, STRING_ID], 0),
]


@pytest.mark.parametrize(("text", "touched", "inserted"), FORMS, ids=[f[0][:70] for f in FORMS])
def test_snapshot_holds_exactly_the_touched_documents_and_restore_returns_every_byte(
        driver, mongo_db, text, touched, inserted):
    seed(mongo_db)
    before, before_by_id = raw_contents(mongo_db), raw_by_id(mongo_db)
    before_indexes = sorted(mongo_db.deploys.index_information().items())
    sid = snapshot_id()

    plan, captured, result, counted = guarded(driver, text, sid)

    snap_db, snap_coll = captured.location.split(".", 1)
    image = raw_by_id(mongo_db.client[snap_db], snap_coll)
    assert sorted(image) == sorted(touched)
    assert all(image[key] == before_by_id[key] for key in touched)          # whole documents, as they were
    keys = list(mongo_db.client[snap_db][f"{snap_coll}_keys"].find())
    assert len(keys) == inserted
    assert captured.row_count == len(touched) + inserted
    if text == OVERLAPPING:
        assert (result.rowcount, counted) == (1, 2)                        # never under the real count
    else:
        assert result.rowcount == counted                                  # what reviewers approved
    assert raw_contents(mongo_db) != before or text.startswith("db.deploys.drop")

    restore(driver, record_for(plan, captured, text, sid))
    assert raw_contents(mongo_db) == before
    assert sorted(mongo_db.deploys.index_information().items()) == before_indexes


def test_an_ambiguous_one_document_write_is_stopped_before_it_runs(driver, mongo_db):
    seed(mongo_db)
    before = raw_contents(mongo_db)
    text = 'db.deploys.deleteOne({site: "a"})'
    plan = ms.plan_snapshot(text, {}, database=driver.database)
    sid = snapshot_id()
    location = ms.prepare_outside_transaction(driver, plan, sid)
    with pytest.raises(ms.SnapshotAmbiguous, match="matches several documents"):
        with driver.transaction(read_only=False) as tx:
            ms.capture(tx, plan, sid)
            tx.execute(text)
    ms.discard(driver, location)
    assert raw_contents(mongo_db) == before
    assert _snapshot_collections(mongo_db, sid) == []


def test_a_write_that_fails_in_its_transaction_leaves_no_snapshot_behind(driver, mongo_db):
    seed(mongo_db)
    before = raw_contents(mongo_db)
    text = 'db.deploys.bulkWrite([{updateMany: {filter: {}, update: {$set: {n: 0}}}}, {insertOne: {document: {_id: 1}}}])'
    plan = ms.plan_snapshot(text, {}, database=driver.database)
    sid = snapshot_id()
    location = ms.prepare_outside_transaction(driver, plan, sid)
    with pytest.raises(DriverError, match="duplicate key"):
        with driver.transaction(read_only=False) as tx:
            assert ms.capture(tx, plan, sid).row_count == 5
            tx.execute(text)
    ms.discard(driver, location)
    assert raw_contents(mongo_db) == before
    assert _snapshot_collections(mongo_db, sid) == []


def test_a_concurrent_change_during_the_write_aborts_it_and_its_snapshot(driver, mongo_db):
    seed(mongo_db)
    text = 'db.deploys.updateMany({site: "a"}, {$set: {n: 0}})'
    plan = ms.plan_snapshot(text, {}, database=driver.database)
    sid = snapshot_id()
    location = ms.prepare_outside_transaction(driver, plan, sid)
    with pytest.raises(ConcurrentChange):
        with driver.transaction(read_only=False, isolation="repeatable read") as tx:
            ms.capture(tx, plan, sid)
            mongo_db.deploys.update_one({"_id": 3}, {"$set": {"n": 33}})     # another session commits
            tx.execute(text)
    ms.discard(driver, location)
    assert mongo_db.deploys.find_one({"_id": 1})["n"] == 1
    assert mongo_db.deploys.find_one({"_id": 3})["n"] == 33
    assert _snapshot_collections(mongo_db, sid) == []


def _snapshot_collections(mongo_db, sid: str) -> list[str]:
    return [n for n in mongo_db.client[ms.SNAPSHOT_DATABASE].list_collection_names() if n.startswith(f"s_{sid}")]


# -- planning (pure) -----------------------------------------------------------------------------------
def test_plans_select_with_the_write_own_filter():
    plan = ms.plan_snapshot('db.getSiblingDB("ops").deploys.updateMany({site: "a"}, {$set: {n: 1}}, '
                            '{collation: {locale: "en", strength: 2}, hint: {site: 1}})')
    assert (plan.schema, plan.table, plan.operation, plan.key_columns, plan.dialect) == \
        ("ops", "deploys", "update", ("_id",), "mongodb")
    assert plan.before_sql == ('db.getSiblingDB("ops").getCollection("deploys").find({"site": "a"})'
                               '.hint({"site": 1}).collation({"locale": "en", "strength": 2})')
    assert plan.count_sql == ('db.getSiblingDB("ops").getCollection("deploys").countDocuments({"site": "a"}, '
                              '{"hint": {"site": 1}, "collation": {"locale": "en", "strength": 2}})')
    one = ms.plan_snapshot('db.deploys.findOneAndDelete({ok: false}, {sort: {ts: 1, _id: 1}})', database="app")
    assert one.before_sql == ('db.getSiblingDB("app").getCollection("deploys").find({"ok": false})'
                              '.sort({"ts": 1, "_id": 1}).limit(1)')
    assert one.count_sql.endswith('countDocuments({"ok": false}, {"limit": 1})')
    assert ms.plan_snapshot('db.deploys.updateOne({_id: 1}, {$set: {a: 1}}, {upsert: true})').upsert
    assert ms.plan_snapshot("db.deploys.drop()").count_is_table_size


@pytest.mark.parametrize(("text", "reason"), [
    ('db.deploys.aggregate([{$merge: {into: "other"}}])', "cannot be selected beforehand"),
    ('db.deploys.updateMany({$where: "this.n > 1"}, {$set: {a: 1}})', "$where"),
    ('db.deploys.deleteMany({$expr: {$lt: ["$expires", "$$NOW"]}})', "$$NOW"),
    ('db.deploys.deleteMany({$expr: {$lt: [{$rand: {}}, 0.5]}})', "$rand"),
    ('db.deploys.updateOne({site: "a"}, {$set: {n: 1}}, {sort: {n: 1}})', "add _id to the sort"),
    ('db.deploys.updateMany({$expr: {$eq: ["$n", "$$x"]}}, {$set: {a: 1}}, {let: {x: 1}})', "let variables"),
    ('db.deploys.bulkWrite([{deleteOne: {filter: {site: "a"}}}])', "must filter on one _id"),
    ('db.deploys.insert({a: 1})', "legacy shell API"),
    ('db.deploys.createIndex({a: 1})', "changes no documents"),
    ('db.runCommand({delete: "deploys", deletes: []})', "not a write on one collection"),
    ('db.deploys.deleteMany(x)', "could not be parsed"),
])
def test_what_cannot_be_snapshotted_exactly_is_refused_with_a_reason(text, reason):
    with pytest.raises(SnapshotUnsupported, match=reason.replace("$", r"\$")):
        ms.plan_snapshot(text, database="app")


def test_restore_refuses_incomplete_snapshots_and_dropped_collections(driver, mongo_db):
    seed(mongo_db)
    text = 'db.deploys.deleteMany({site: "a"})'
    sid = snapshot_id()
    plan, captured, _, _ = guarded(driver, text, sid)
    record = record_for(plan, captured, text, sid)
    contents = ms.read_snapshot(driver, record)
    pending = SnapshotRecord(**{**record.__dict__, "status": "pending"})
    with pytest.raises(RestoreImpossible, match="pending"):
        ms.restore_statements(pending, driver.catalog(), contents)
    mongo_db.deploys.drop()
    with pytest.raises(RestoreImpossible, match="no longer exists"):
        ms.restore_statements(record, driver.catalog(), contents)

"""mongosh parsing and classification: a readable table of commands and what they must come out as,
adversarial input, exact literal values, and property tests that nothing but MongoParseError escapes
and that every value written by to_shell reads back into the same BSON bytes."""
from __future__ import annotations

import datetime as dt
import uuid

import bson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classify.verdict import Verdict
from classify.mongosh.shell import MongoParseError, classify_one, parse, split_script, to_shell
from classify.statements import Kind

R, W, D, P, A, S, U = Kind.READ, Kind.WRITE, Kind.DDL, Kind.PRIVILEGE, Kind.ADMIN, Kind.SESSION, Kind.UNKNOWN
FREE, GATED = False, True

# statement, kind, requires_approval, tables, has_where
CASES = [
    ('db.deploys.find({site: 1})', R, FREE, ("deploys",), None),
    ('db.deploys.find({"site": 1}, {_id: 0}).sort({ts: -1}).limit(5).skip(2)', R, FREE, ("deploys",), None),
    ('db.deploys.findOne({_id: ObjectId("5f1d7a2b9c8e4a0012345678")})', R, FREE, ("deploys",), None),
    ('db.deploys.countDocuments({ok: false})', R, FREE, ("deploys",), None),
    ('db.deploys.estimatedDocumentCount()', R, FREE, ("deploys",), None),
    ('db.deploys.distinct("site", {ok: true})', R, FREE, ("deploys",), None),
    ('db.deploys.aggregate([{$match: {ok: true}}, {$group: {_id: "$site", n: {$sum: 1}}}])', R, FREE,
     ("deploys",), None),
    ('db.deploys.aggregate([{$lookup: {from: "sites", localField: "site", foreignField: "_id", as: "s"}}])',
     R, FREE, ("deploys",), None),
    ('db.deploys.getIndexes()', R, FREE, ("deploys",), None),
    ('db.deploys.stats()', R, FREE, ("deploys",), None),
    ('db.stats()', R, FREE, (), None),
    ('db.getCollectionNames()', R, FREE, (), None),
    ('db.deploys.find().toArray()', R, FREE, ("deploys",), None),
    ('db.deploys.find({}).count()', R, FREE, ("deploys",), None),
    ('db["site-events"].find()', R, FREE, ("site-events",), None),
    ('db.getCollection("site.events").find()', R, FREE, ("site.events",), None),
    ('db.getSiblingDB("ops").deploys.find()', R, FREE, ("ops.deploys",), None),
    ('show dbs', R, FREE, (), None),
    ('show collections', R, FREE, (), None),
    ('use shop', S, FREE, (), None),
    # writes
    ('db.deploys.insertOne({site: 1})', W, GATED, ("deploys",), None),
    ('db.deploys.insertMany([{site: 1}, {site: 2}])', W, GATED, ("deploys",), None),
    ('db.deploys.updateOne({_id: 1}, {$set: {ok: true}})', W, GATED, ("deploys",), True),
    ('db.deploys.updateMany({site: 1}, {$set: {ok: true}})', W, GATED, ("deploys",), True),
    ('db.deploys.updateMany({}, {$set: {ok: true}})', W, GATED, ("deploys",), False),
    ('db.deploys.updateMany({}, [{$set: {n: {$add: ["$n", 1]}}}])', W, GATED, ("deploys",), False),
    ('db.deploys.replaceOne({_id: 1}, {site: 2})', W, GATED, ("deploys",), True),
    ('db.deploys.deleteOne({_id: 1})', W, GATED, ("deploys",), True),
    ('db.deploys.deleteMany({})', W, GATED, ("deploys",), False),
    ('db.deploys.deleteMany()', W, GATED, ("deploys",), False),
    ('db.deploys.findOneAndUpdate({_id: 1}, {$inc: {n: 1}}, {returnDocument: "after"})', W, GATED,
     ("deploys",), True),
    ('db.deploys.findOneAndDelete({ok: false}, {sort: {ts: 1, _id: 1}})', W, GATED, ("deploys",), True),
    ('db.deploys.findOneAndReplace({_id: 1}, {site: 3})', W, GATED, ("deploys",), True),
    ('db.deploys.bulkWrite([{insertOne: {document: {a: 1}}}, {deleteOne: {filter: {_id: 2}}}])', W, GATED,
     ("deploys",), True),
    ('db.deploys.bulkWrite([{updateMany: {filter: {}, update: {$set: {a: 1}}}}])', W, GATED, ("deploys",), False),
    ('db.deploys.aggregate([{$match: {ok: true}}, {$out: "archive"}])', W, GATED, ("deploys", "archive"), None),
    ('db.deploys.aggregate([{$merge: {into: {db: "bi", coll: "daily"}}}])', W, GATED, ("deploys", "bi.daily"), None),
    # DDL, admin, privileges
    ('db.deploys.drop()', D, GATED, ("deploys",), None),
    ('db.deploys.createIndex({site: 1}, {unique: true})', D, GATED, ("deploys",), None),
    ('db.deploys.dropIndex("site_1")', D, GATED, ("deploys",), None),
    ('db.deploys.renameCollection("old_deploys")', D, GATED, ("deploys",), None),
    ('db.createCollection("audit")', D, GATED, ("audit",), None),
    ('db.dropDatabase()', D, GATED, (), None),
    ('db.runCommand({compact: "deploys"})', A, GATED, (), None),
    ('db.adminCommand({setParameter: 1, notablescan: 1})', A, GATED, (), None),
    ('db.killOp(12345)', A, GATED, (), None),
    ('db.shutdownServer()', A, GATED, (), None),
    ('db.fsyncLock()', A, GATED, (), None),
    ('db.setProfilingLevel(2)', A, GATED, (), None),
    ('db.createUser({user: "eve", pwd: "x", roles: ["root"]})', P, GATED, (), None),
    ('db.grantRolesToUser("eve", ["root"])', P, GATED, (), None),
    # anything else is unknown and needs approval
    ('db.deploys.mapReduce(1, 2, {out: "x"})', A, GATED, ("deploys",), None),
    ('db.deploys.watch()', U, GATED, ("deploys",), None),
    ('db.deploys.explain("executionStats").find()', U, GATED, ("deploys",), None),   # the explainable form
    ('rs.status()', U, GATED, (), None),
    # read-only diagnostics: explain() and readPref() of a read, reports, runCommand of a read command
    ('db.deploys.find({site: "a"}).explain()', R, FREE, ("deploys",), None),
    ('db.deploys.find({site: "a"}).sort({_id: 1}).explain("executionStats")', R, FREE, ("deploys",), None),
    ('db.deploys.aggregate([{$match: {ok: true}}]).explain("queryPlanner")', R, FREE, ("deploys",), None),
    ('db.deploys.find({site: "a"}).readPref("secondary")', R, FREE, ("deploys",), None),
    ('db.serverStatus()', R, FREE, (), None),
    ('db.currentOp()', R, FREE, (), None),
    ('db.currentOp({active: true})', R, FREE, (), None),
    ('db.deploys.dataSize()', R, FREE, ("deploys",), None),
    ('db.deploys.totalIndexSize()', R, FREE, ("deploys",), None),
    ('db.deploys.latencyStats()', R, FREE, ("deploys",), None),
    ('db.version()', R, FREE, (), None),
    ('db.getName()', R, FREE, (), None),
    ('db.runCommand({ping: 1})', R, FREE, (), None),
    ('db.runCommand({count: "deploys"})', R, FREE, ("deploys",), None),
    ('db.runCommand({count: "deploys", query: {ok: true}})', R, FREE, ("deploys",), None),
    ('db.runCommand({find: "deploys", filter: {site: "a"}, limit: 2})', R, FREE, ("deploys",), None),
    ('db.getSiblingDB("ops").runCommand({count: "deploys"})', R, FREE, ("ops.deploys",), None),
    # ... and what only looks like one
    ('db.deploys.updateMany({}, {$set: {a: 1}}).explain()', U, GATED, ("deploys",), None),
    ('db.deploys.explain().remove({})', U, GATED, ("deploys",), None),
    ('db.deploys.aggregate([{$out: "copy"}]).explain("executionStats")', W, GATED, ("deploys", "copy"), None),
    ('db.deploys.find({$where: "sleep(100) || true"}).explain("executionStats")', U, GATED, ("deploys",), None),
    ('db.runCommand({drop: "deploys"})', A, GATED, (), None),
    ('db.runCommand({eval: "db.deploys.drop()"})', A, GATED, (), None),
    ('db.runCommand({killOp: 1, op: 12345})', A, GATED, (), None),
    ('db.runCommand({shutdown: 1})', A, GATED, (), None),
    ('db.runCommand({find: "deploys", filter: {$where: "true"}})', A, GATED, (), None),
    ('db.runCommand({count: "deploys", writeConcern: {w: 1}})', A, GATED, (), None),   # not a known option
    ('db.runCommand({ping: 1}, {drop: "deploys"})', A, GATED, (), None),
    ('db.runCommand({ping: 1}).foo()', U, GATED, (), None),
    ('db.deploys.serverStatus()', U, GATED, ("deploys",), None),
    ('db.dataSize()', U, GATED, (), None),
    ('db.deploys.dataSize().explain()', U, GATED, ("deploys",), None),
    ('show users', U, GATED, (), None),
    ('db.find({})', U, GATED, (), None),
]


@pytest.mark.parametrize(("text", "kind", "approval", "tables", "has_where"), CASES, ids=[c[0][:60] for c in CASES])
def test_classification(text, kind, approval, tables, has_where):
    verdict = classify_one(text)
    assert (verdict.kind, verdict.requires_approval, verdict.tables, verdict.has_where) == \
        (kind, approval, tables, has_where), verdict.reason


# Dangerous or misleading input: each must need approval, and for the reason given.
ADVERSARIAL = [
    ('db.deploys.find({$where: "sleep(100) || true"})', U, "server-side JavaScript ($where)"),
    ('db.deploys.find({$expr: {$function: {body: "return 1", args: [], lang: "js"}}})', U, "$function"),
    ('db.deploys.findOne({}, {x: {$function: {body: "1", args: [], lang: "js"}}})', U, "$function"),
    ('db.deploys.countDocuments({$where: "1"})', U, "$where"),
    ('db.deploys.aggregate([{$group: {_id: null, a: {$accumulator: {init: "1"}}}}])', U, "$accumulator"),
    ('db.deploys.aggregate([{$facet: {a: [{$match: {}}], b: [{$merge: "stolen"}]}}])', W, "$merge into stolen"),
    ('db.deploys.aggregate([{$lookup: {from: "s", as: "x", pipeline: [{$match: {}}, {$out: "o"}]}}])', W,
     "$out into o"),
    ('db.deploys.aggregate([{$unionWith: {coll: "s", pipeline: [{$merge: {into: "m"}}]}}])', W, "$merge into m"),
    ('db.deploys.find().forEach(function (d) { db.deploys.deleteOne(d) })', U, "function is not supported"),
    ('db.deploys.find().forEach(d => db.deploys.deleteOne(d))', U, "function is not supported"),
    ('db.deploys.find().forEach(printjson)', U, "variable 'printjson'"),
    ('db.deploys.find({site: `${x}`})', U, "template string"),
    ('db.deploys.find({site: x})', U, "variable 'x'"),
    ('db.deploys.find({...filter})', U, "spread"),
    ('db.deploys.find({ts: {$gt: new Date()}})', U, "current time"),
    ('db.deploys.find({ts: {$gt: Date()}})', U, "current time as a string"),
    ('db.deploys.find({_id: ObjectId()})', U, "new id each time"),
    ('db.deploys.find({n: 1 + 1})', U, "expression"),
    ('db.deploys.find({n: 5n})', U, "BigInt"),
    ('db.deploys.find({n: 0777})', U, "legacy octal"),
    ('db.deploys.find({a: 1, a: 2})', U, "appears twice"),
    ('db.deploys.find({[k]: 1})', U, "computed"),
    ('db.deploys.find([1,,2])', U, "empty element"),
    ('db.deploys.find(,)', U, "empty element"),
    ('db.deploys.find({s: "\\uD800"})', U, "lone UTF-16 surrogate"),
    ('db.deploys.find({n: 99999999999999999999})', U, "does not fit in 64 bits"),
    ('db.deploys?.find()', U, "?."),
    ('db.deploys.find(); db.deploys.deleteMany({})', U, "expected one command, found 2"),
    ('db.deploys.find(', U, "syntax error"),
    ('var x = 1', U, "not a database command"),
    ('db.deploys.deleteMany({}).acknowledged', U, "only method calls may follow"),
    ('db.deploys.updateMany({$where: "1"}, {$set: {a: 1}})', W, "runs server-side JavaScript"),
    ('db.deploys.deleteMany({}, {hint: {$natural: 1}})', W, "WITHOUT a filter: every document"),
]


@pytest.mark.parametrize(("text", "kind", "reason"), ADVERSARIAL, ids=[c[0][:60] for c in ADVERSARIAL])
def test_adversarial_input_needs_approval(text, kind, reason):
    verdict = classify_one(text)
    assert verdict.requires_approval
    assert verdict.kind is kind
    assert reason in verdict.reason


def test_reasons_are_one_human_line():
    assert classify_one('db.deploys.updateMany({}, {$set: {a: 1}})').reason == \
        "updateMany on deploys WITHOUT a filter: every document"
    assert classify_one('db.deploys.deleteOne({})').reason == "deleteOne on deploys WITHOUT a filter: any one document"
    assert classify_one('db.deploys.insertMany([{}, {}])').reason == "insertMany into deploys (2 documents)"


# -- parsing: exact values -------------------------------------------------------------------------
def test_parse_names_database_collection_method_args_and_modifiers():
    command = parse('db.getSiblingDB("ops").getCollection("deploys").find({site: "a"}, {_id: 0})'
                    '.sort({ts: -1}).limit(5).skip(2).projection({site: 1})')
    assert command.database == "ops"
    assert command.collection == "deploys"
    assert command.method == "find"
    assert command.args == ({"site": "a"}, {"_id": 0})
    assert command.modifiers == (("sort", ({"ts": -1},)), ("limit", (5,)), ("skip", (2,)),
                                 ("projection", ({"site": 1},)))


def test_shell_helpers():
    assert parse("show dbs").method == "show" and parse("show dbs").args == ("dbs",)
    assert parse("use shop;").args == ("shop",)
    assert parse("db.getCollectionNames()").collection is None
    assert parse("db.deploys.stats()").collection == "deploys"
    with pytest.raises(MongoParseError, match="not a valid database name"):
        parse("use a/b")


def test_literals_become_bson_values():
    args = parse('db.c.insertOne({'
                 'i: 1, neg: -2, big: 9007199254740993, f: 1.5, e: 1e3, hex: 0x1F, sep: 1_000,'
                 's: "é\\n\\u00e9\\x41\\u{1F600}", t: `plain`, yes: true, no: false, nil: null,'
                 'oid: ObjectId("5f1d7a2b9c8e4a0012345678"), d: ISODate("2024-05-01T10:00:00.123+02:00"),'
                 'nd: new Date("2024-05-01"), ms: new Date(0), long: NumberLong("9007199254740993"),'
                 'int: NumberInt(7), dec: NumberDecimal("0.1"), u: UUID("123e4567-e89b-12d3-a456-426614174000"),'
                 'ts: Timestamp(1700000000, 3), lo: MinKey(), hi: MaxKey(), re: /^ab\\/c/i, "$key": 1,'
                 '"quoted key": [1, [2, {}]], inf: -Infinity, bin: BinData(0, "AAE=")})').args[0]
    assert args["i"] == 1 and type(args["i"]) is int
    assert args["neg"] == -2
    assert args["big"] == bson.Int64(9007199254740993) and isinstance(args["big"], bson.Int64)
    assert args["f"] == 1.5 and args["e"] == 1000.0 and isinstance(args["e"], float)
    assert args["hex"] == 31 and args["sep"] == 1000
    assert args["s"] == "é\né" + "A" + "\U0001F600"
    assert args["t"] == "plain"
    assert (args["yes"], args["no"], args["nil"]) == (True, False, None)
    assert args["oid"] == bson.ObjectId("5f1d7a2b9c8e4a0012345678")
    assert args["d"] == dt.datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=dt.timezone.utc)
    assert args["nd"] == dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    assert args["ms"] == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    assert args["long"] == 9007199254740993 and isinstance(args["long"], bson.Int64)
    assert args["int"] == 7
    assert args["dec"] == bson.Decimal128("0.1")
    assert args["u"] == bson.Binary(uuid.UUID("123e4567-e89b-12d3-a456-426614174000").bytes, 4)
    assert args["ts"] == bson.Timestamp(1700000000, 3)
    assert isinstance(args["lo"], bson.MinKey) and isinstance(args["hi"], bson.MaxKey)
    assert args["re"] == bson.Regex("^ab\\/c", "i")
    assert args["$key"] == 1 and args["quoted key"] == [1, [2, {}]]
    assert args["inf"] == float("-inf")
    assert args["bin"] == bson.Binary(b"\x00\x01", 0)


def test_number_long_keeps_precision_a_double_would_lose():
    value = parse('db.c.find({n: NumberLong("9007199254740993")})').args[0]["n"]
    assert int(value) == 9007199254740993 != int(float(9007199254740993))
    assert bson.decode(bson.encode({"n": value}))["n"] == 9007199254740993


def test_comments_and_unicode_do_not_change_values():
    command = parse('// find the café deploys\ndb.déploiements.find({/* site */ "café": "naïve ☕"}) // done')
    assert command.collection == "déploiements"
    assert command.args == ({"café": "naïve ☕"},)


def test_errors_carry_the_position_and_say_what_is_not_supported():
    with pytest.raises(MongoParseError) as caught:
        parse('db.deploys.find({site: 1,\n  ok: function () { return true }})')
    assert caught.value.position == len('db.deploys.find({site: 1,\n  ok: ')
    assert "line 2, column 7" in str(caught.value)
    assert "function is not supported" in str(caught.value)


def test_deep_nesting_is_a_parse_error_not_a_crash():
    text = "db.c.find(" + "[" * 5000 + "]" * 5000 + ")"
    with pytest.raises(MongoParseError, match="nested too deeply"):
        parse(text)
    assert classify_one(text).kind is Kind.UNKNOWN


# -- splitting -------------------------------------------------------------------------------------
SPLITS = [
    ('db.a.find(); db.b.find()', ['db.a.find()', 'db.b.find()']),
    ('db.a.find()\ndb.b.deleteMany({})', ['db.a.find()', 'db.b.deleteMany({})']),
    ('db.a\n  .find()\n  .sort({x: 1})\ndb.b.find()', ['db.a\n  .find()\n  .sort({x: 1})', 'db.b.find()']),
    ('use shop\ndb.a.find()\nshow collections', ['use shop', 'db.a.find()', 'show collections']),
    ('db.a.find() // list\n// then delete\ndb.a.deleteOne({_id: 1});;',
     ['db.a.find() // list', '// then delete\ndb.a.deleteOne({_id: 1})']),
    ('db.a.find({s: ";"}); db.b.find({s: "//"})', ['db.a.find({s: ";"})', 'db.b.find({s: "//"})']),
    ('db.a.find()\ndb.b.find(\ndb.c.deleteMany({})', ['db.a.find()', 'db.b.find(\ndb.c.deleteMany({})']),
    ('use x; db.a.deleteMany({})', ['use x; db.a.deleteMany({})']),
    ('// nothing here\n', []),
]


@pytest.mark.parametrize(("script", "pieces"), SPLITS, ids=[s[0][:40] for s in SPLITS])
def test_split_script(script, pieces):
    assert split_script(script) == pieces


def test_a_syntax_error_makes_the_rest_one_unknown_statement():
    pieces = split_script('db.a.find()\ndb.b.find({) ; db.c.deleteMany({})')
    assert pieces[1] == 'db.b.find({) ; db.c.deleteMany({})'
    assert classify_one(pieces[1]).kind is Kind.UNKNOWN


# -- properties ------------------------------------------------------------------------------------
_ALPHABET = st.sampled_from(list('db.find()[]{}"\'`;:, $_-+*/\\\n1x0e.ObjectIdNumberLong=>/*`${}') + ["db.", "find(", "ISODate("])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_ALPHABET, max_size=40).map("".join)))
def test_parse_raises_only_mongo_parse_errors_and_classify_never_raises(text):
    try:
        parse(text)
    except MongoParseError:
        pass
    assert isinstance(classify_one(text), Verdict)
    pieces = split_script(text)
    assert all(isinstance(classify_one(p), Verdict) for p in pieces)
    # Splitting never drops code: only blanks, statement-ending ';' and comment-only pieces go.
    kept, original = _code("".join(pieces)), _code(text)
    if "//" not in text and "/*" not in text:
        assert kept == original
    remaining = iter(original)
    assert all(ch in remaining for ch in kept)


def _code(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and ch != ";")


_KEYS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**31, 2**31 - 1),
    st.integers(-2**63, 2**63 - 1).map(bson.Int64), st.floats(allow_nan=False),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=10),
    st.binary(max_size=8).map(lambda b: bson.Binary(b, 0)), st.uuids().map(lambda u: bson.Binary.from_uuid(u)),
    st.datetimes(timezones=st.just(dt.timezone.utc)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
    st.builds(bson.ObjectId), st.decimals(min_value=-10**12, max_value=10**12, places=3).map(lambda d: bson.Decimal128(str(d))),
    st.builds(bson.Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.just(bson.MinKey()), st.just(bson.MaxKey()),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_to_shell_reads_back_into_the_same_bson(doc):
    text = f"db.c.insertOne({to_shell(doc)})"
    assert bson.encode(parse(text).args[0]) == bson.encode(doc)

"""mongosh habits on a real MongoDB wire-protocol server (secantusdb): results as documents in relaxed
Extended JSON, 20 to a page with `it`, counts as numbers, show dbs / show collections, help, exit, and
a syntax error that ends the statement at once and points at its line and column."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from bson import ObjectId

from audit.store import Store
from tests import servers
from tests.pipeline_helpers import make_pipeline
from tests.store_helpers import migrated
from tests.test_psql_parity import Console
from tests.test_repl import Shell, shell_env

WHEN = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


@pytest.fixture
def deploys(mongo_db):
    mongo_db.deploys.insert_many([{"_id": ObjectId(f"65a0000000000000000{i:05d}"), "n": i, "site": i % 3,
                                   "when": WHEN, "tags": ["a", "b"]} for i in range(45)])
    return mongo_db.deploys


@pytest.fixture
def url(mongo_server_url, mongo_db) -> str:
    return servers.with_database(mongo_server_url, mongo_db.name)


@pytest.fixture
def store(tmp_path):
    return Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))


@pytest.fixture
def console(url, store, capsys, gate_mode):
    pipeline = make_pipeline(url, store, "alice")
    pipeline.open_session()
    yield Console(pipeline, capsys)
    pipeline.close()


def documents(text: str) -> list[dict]:
    """The documents printed, read back as JSON (relaxed Extended JSON is JSON)."""
    found, current = [], []
    for line in text.splitlines():
        if line == "{":
            current = [line]
        elif current:
            current.append(line)
            if line == "}":
                found.append(json.loads("\n".join(current)))
                current = []
    return found


def test_results_are_documents_in_relaxed_extended_json_not_tables(console, deploys):
    out = console.run("db.deploys.find({n: {$lt: 2}}).sort({n: 1})")
    assert " | " not in out and "---" not in out
    assert out.splitlines()[:7] == [
        "{",
        '  "_id": {"$oid": "65a000000000000000000000"},',
        '  "n": 0,',
        '  "site": 0,',
        '  "when": {"$date": "2024-01-02T03:04:05Z"},',
        '  "tags": ["a", "b"]',
        "}",
    ]
    assert [d["n"] for d in documents(out)] == [0, 1]


def test_it_shows_the_next_20_documents(console, deploys):
    first = console.run("db.deploys.find().sort({n: 1})")
    assert [d["n"] for d in documents(first)] == list(range(20))
    assert first.rstrip().endswith('Type "it" for more')
    second = console.run("it")
    assert [d["n"] for d in documents(second)] == list(range(20, 40)) and 'Type "it" for more' in second
    last = console.run("it")
    assert [d["n"] for d in documents(last)] == list(range(40, 45)) and "Type" not in last
    assert console.run("it").strip() == "no cursor"


def test_a_result_cut_at_the_display_limit_says_so_on_its_last_page(console, mongo_db):
    mongo_db.many.insert_many([{"n": i} for i in range(1100)])
    out = console.run("db.many.find()")
    pages = 1
    while 'Type "it" for more' in out:
        out = console.run("it")
        pages += 1
    assert pages == 50   # 1,000 documents, 20 to a page
    assert out.rstrip().splitlines()[-1] == "(showing the first 1,000 documents; more were not fetched)"


def test_counts_lists_and_empty_results(console, deploys):
    assert console.run("db.deploys.countDocuments({site: 1})").strip() == "15"
    assert console.run("db.deploys.find({site: 2}).count()").strip() == "15"
    assert console.run("db.deploys.distinct('site')").strip() == "[0, 1, 2]"
    assert console.run("db.deploys.find({n: -1})").strip() == "(no documents)"


def test_show_dbs_and_show_collections(console, deploys, mongo_db):
    dbs = console.run("show dbs")
    assert re.search(rf"^{mongo_db.name} +\d+(\.\d+)? (B|KiB|MiB)$", dbs, re.M), dbs
    assert console.run("show collections").strip() == "deploys"


def test_help_describes_mongosh_commands(console):
    out = console.run("help")
    assert "show dbs" in out and "show collections" in out and "it " in out and "SELECT" not in out


def test_a_syntax_error_points_at_line_and_column_and_is_never_sent(console, deploys, store):
    out = console.run("db.deploys.find({a: 1,\n  b: 2 c: 3})")
    assert out.splitlines() == [
        "ERROR: syntax error: this is not valid mongosh (JavaScript) syntax (line 2, column 8)",
        "LINE 2:   b: 2 c: 3})",
        "               ^",
        "Not sent.",
    ]
    intents = [e for e in store.events(session_id=console.repl.pipeline.session_id) if e.type == "intent"]
    assert intents == []


def test_the_real_shell_ends_a_broken_statement_at_once_and_continues_an_open_one(tmp_path, url, deploys, mongo_db):
    target = re.escape(url.split("://", 1)[1].split("?", 1)[0])
    shell = Shell(shell_env(tmp_path), "shell", url, target=target)
    out = shell.run("db.deploys.find({a: 1 b: 2})")   # one Enter: no endless continuation prompt
    assert "ERROR: syntax error: this is not valid mongosh (JavaScript) syntax (line 1, column 23)" in out
    assert "LINE 1: db.deploys.find({a: 1 b: 2})\n                              ^" in out
    shell.child.sendline("db.deploys.find({n:")      # an open bracket: the statement goes on
    shell.child.expect(r"\.{10,}")
    out = shell.run("  0})")
    assert [d["n"] for d in documents(out)] == [0]
    assert shell.run("db.deploys.countDocuments({})").splitlines()[0].strip() == "45"
    assert shell.quit("exit") == 0


def test_run_prints_documents_too(tmp_path, url, deploys):
    from tests.cli_helpers import cli_env, countersign
    done = countersign("run", url, "-c", "db.deploys.find({n: {$lt: 3}}).sort({n: 1})", env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert [d["n"] for d in documents(done.stdout)] == [0, 1, 2] and " | " not in done.stdout
    counted = countersign("run", url, "-c", "db.deploys.countDocuments({})", env=cli_env(tmp_path))
    assert counted.stdout.strip() == "45"
    listed = countersign("run", url, "-c", "db.deploys.find().limit(1)", "--format", "json", env=cli_env(tmp_path))
    assert '"n": 0' in listed.stdout   # --format json stays one object per line

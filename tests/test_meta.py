"""console.repl.meta: the backslash commands, against a real pipeline (demo SQLite database, SQLite
store), on the in-process gate and with every gate call round-tripped through JSON (as a remote
gate would be). Each catalog command is an audited read through the gate."""
from __future__ import annotations

import os
import stat

import pytest

from audit.store import Store
from classify.statements import Kind, classify
from console.demo import demo_database
from console.repl import catalog_sql
from console.repl.meta import HELP, ShellState, run_meta
from tests.pipeline_helpers import make_pipeline
from tests.store_helpers import migrated

# What a person can type as a pattern or a name, including attempts to break out of the literal.
NASTY_NAMES = ["deploys", "de*", "public.de?", "x'; DELETE FROM deploys; --", "a\\'b", "a\\", "$cs0$x$cs0$",
               "`x`; DROP TABLE t", '"Quoted"."Name"', "100%_!", "\x1b[2J", "é'ü"]


@pytest.fixture
def store(tmp_path):
    return Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))


@pytest.fixture
def pipeline(tmp_path, store, gate_mode):
    pipeline = make_pipeline(f"sqlite:///{demo_database(tmp_path / 'demo.db')}", store, "alice")
    pipeline.open_session()
    yield pipeline
    pipeline.close()


def catalog_queries(dialect: str, name: str) -> list[str]:
    queries = [catalog_sql.relations(kind, name, dialect) for kind in ("table", "view", "index", "relation")]
    for build in (catalog_sql.schemas, catalog_sql.databases, catalog_sql.functions, catalog_sql.roles):
        try:
            queries.append(build(name, dialect))
        except catalog_sql.NotAvailable:
            pass
    queries += catalog_sql.describe(name, dialect).values()
    return [q.sql for q in queries]


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize("name", NASTY_NAMES)
def test_every_catalog_query_is_one_plain_read_whatever_is_typed(dialect, name):
    """An insider types a pattern that closes the literal and appends a write: it stays inside the
    literal, and the query is still exactly one read (never an approval request, never a write)."""
    for sql in catalog_queries(dialect, name):
        statements = classify(sql, dialect)
        assert [s.kind for s in statements] == [Kind.READ], (name, sql, statements[0].reason)
        assert not statements[0].requires_approval


def test_list_tables_views_and_indexes(pipeline):
    assert run_meta("\\dt", pipeline, ShellState()) == [
        "List of relations",
        "  Name   | Type",
        "---------+-------",
        " deploys | table",
        " sites   | table",
        "(2 rows)",
    ]
    assert run_meta("\\dt dep*", pipeline, ShellState())[3:] == [" deploys | table", "(1 row)"]
    assert run_meta("\\dt nothing*", pipeline, ShellState()) == ['Did not find any table named "nothing*".']
    assert run_meta("\\dv", pipeline, ShellState()) == ["No views found."]
    assert run_meta("\\di", pipeline, ShellState())[3] == " deploys_site | index | deploys"


def test_describe_a_table(pipeline):
    assert run_meta("\\d deploys", pipeline, ShellState()) == [
        '              Table "deploys"',
        "   Column    |  Type   | Nullable | Default",
        "-------------+---------+----------+---------",
        " id          | INTEGER |          |",
        " site_id     | INTEGER | not null |",
        " commit_sha  | TEXT    | not null |",
        " status      | TEXT    | not null |",
        " metadata    | TEXT    |          |",
        " deployed_at | TEXT    | not null |",
        "Indexes:",
        "    PRIMARY KEY (id)",
        '    "deploys_site" (site_id)',
        "Foreign-key constraints:",
        "    FOREIGN KEY (site_id) REFERENCES sites(id)",
    ]
    assert run_meta("\\d SITES", pipeline, ShellState())[0].strip() == 'Table "sites"'
    assert run_meta("\\d sites", pipeline, ShellState())[-2:] == [
        "Referenced by:", '    TABLE "deploys" FOREIGN KEY (site_id) REFERENCES sites(id)']
    assert run_meta("\\d nowhere", pipeline, ShellState()) == [
        'Did not find any relation named "nowhere". \\dt lists the tables.']
    assert run_meta("\\d", pipeline, ShellState())[3:5] == [" deploys | table", " sites   | table"]


def test_a_meta_command_is_an_audited_read_in_the_trail(pipeline, store):
    run_meta("\\dt", pipeline, ShellState())
    run_meta("\\d deploys", pipeline, ShellState())
    events = [e for e in store.events(session_id=pipeline.session_id) if e.type in ("intent", "outcome")]
    texts = [e.payload["text"] for e in events if e.type == "intent"]
    assert texts[0] == catalog_sql.relations("table", "", "sqlite").sql
    assert texts[1:] == [q.sql for q in catalog_sql.describe("deploys", "sqlite").values()]
    assert {(e.payload["kind"], e.payload["decision"]) for e in events} == {("read", "allow")}
    assert all(e.payload["status"] == "ok" for e in events if e.type == "outcome")


def test_what_has_no_meaning_on_an_engine_says_so(pipeline):
    assert run_meta("\\l", pipeline, ShellState()) == [
        "\\l is not available on SQLite; a SQLite target is one database file (\\conninfo names it)"]
    for command in ("\\dn", "\\df", "\\du"):
        assert run_meta(command, pipeline, ShellState())[0].startswith(f"{command} is not available on SQLite")
    with pytest.raises(catalog_sql.NotAvailable, match="not available on MongoDB; use `show collections`"):
        catalog_sql.relations("table", "", "mongodb")


def test_conninfo_names_the_target_never_a_password(pipeline):
    (line,) = run_meta("\\conninfo", pipeline, ShellState())
    assert line == (f'You are connected to target "target" (environment production, dialect sqlite) as "alice", '
                    f"session {pipeline.session_id}.")


def test_output_to_a_file_and_back(pipeline, tmp_path):
    state = ShellState()
    path = tmp_path / "out.txt"
    assert run_meta(f"\\o {path}", pipeline, state) == [f"Query results go to {path} (\\o alone: back to the screen)."]
    assert state.output is not None and stat.S_IMODE(os.stat(path).st_mode) == 0o600   # rows of production data
    assert run_meta("\\o", pipeline, state) == ["Query results go to the screen."] and state.output is None
    assert run_meta(f"\\o {tmp_path}/no/such/dir/x", pipeline, state)[0].startswith("\\o: cannot write")


def test_copy_a_read_to_a_csv_file(pipeline, store, tmp_path):
    path = tmp_path / "sites.csv"
    query = "SELECT id, name FROM sites WHERE id <= 2 ORDER BY id"
    assert run_meta(f"\\copy ({query}) TO '{path}' CSV HEADER", pipeline, ShellState()) == ["COPY 2"]
    assert path.read_text().splitlines()[0] == "id,name" and len(path.read_text().splitlines()) == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    intents = [e.payload for e in store.events(session_id=pipeline.session_id) if e.type == "intent"]
    assert intents[-1]["text"] == query and intents[-1]["kind"] == "read"   # the read is in the trail, as typed
    tab = tmp_path / "sites.tsv"
    assert run_meta(f"\\copy sites TO '{tab}'", pipeline, ShellState()) == ["COPY 40"]
    assert tab.read_text().splitlines()[0].count("\t") == 4


def test_copy_refuses_to_write_rows_or_to_run_anything_but_a_read(pipeline, store, tmp_path):
    before = len(store.events(session_id=pipeline.session_id))
    refused = run_meta(f"\\copy sites FROM '{tmp_path}/rows.csv' CSV", pipeline, ShellState())
    assert refused[0].startswith("\\copy ... FROM is refused: it writes rows into a table")
    sneaky = run_meta(f"\\copy (DELETE FROM deploys RETURNING id) TO '{tmp_path}/x.csv'", pipeline, ShellState())
    assert sneaky == ["\\copy ... TO runs reads only (one SELECT); this is not one, so nothing was sent"]
    assert len(store.events(session_id=pipeline.session_id)) == before   # nothing was submitted
    assert not (tmp_path / "x.csv").exists()


def test_toggles(pipeline):
    state = ShellState()
    assert run_meta("\\x", pipeline, state) == ["Expanded display is on."] and state.expanded == "on"
    assert run_meta("\\x on", pipeline, state) == ["Expanded display is on."] and state.expanded == "on"
    assert run_meta("\\x auto", pipeline, state) == ["Expanded display is used automatically."]
    assert state.expanded == "auto"
    assert run_meta("\\x off", pipeline, state) == ["Expanded display is off."] and state.expanded == "off"
    assert run_meta("\\x maybe", pipeline, state) == ["\\x: unrecognised value 'maybe'; use on, off or auto"]
    assert run_meta("\\timing", pipeline, state) == ["Timing is off."] and not state.timing
    assert run_meta("\\timing ON", pipeline, state) == ["Timing is on."] and state.timing


def test_pending_shows_this_sessions_requests(pipeline):
    assert run_meta("\\pending", pipeline, ShellState()) == ["No approval requests in this session."]
    (statement,) = pipeline.classify("UPDATE deploys SET status = 'paused' WHERE site_id = 2")
    outcome = pipeline.submit(statement, wait=0)
    lines = run_meta("\\pending", pipeline, ShellState())
    assert lines[0].split("|")[0].strip() == "request"
    assert lines[2] == (f" {outcome.approval_id} | pending | 0/1       |   25 | "
                        "UPDATE deploys SET status = 'paused' WHERE site_id = 2")
    assert lines[3] == "(1 row)"


def test_quit_help_and_unknown(pipeline):
    state = ShellState()
    assert run_meta("\\?", pipeline, state) == HELP.splitlines()
    for command in ("\\l", "\\dn", "\\di", "\\df", "\\du", "\\dv", "\\dt", "\\d [NAME]", "\\conninfo", "\\x [on|off|auto]",
                    "\\o [FILE]", "\\i FILE", "\\e [FILE]", "\\c TARGET", "\\copy"):
        assert any(line.lstrip().startswith(command) for line in HELP.splitlines()), command
    assert run_meta("\\nope", pipeline, state) == ["unknown command \\nope; \\? lists the commands"]
    assert not state.quit
    assert run_meta("\\q", pipeline, state) == [] and state.quit


def test_doctests():
    import doctest

    from console.repl import meta
    result = doctest.testmod(meta)
    assert result.failed == 0 and result.attempted >= 3

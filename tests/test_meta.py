"""console.repl.meta: the backslash commands, against a real pipeline (demo SQLite database, SQLite store)."""
from __future__ import annotations

import pytest

from audit.store import Store
from console.demo import demo_database
from console.repl.meta import HELP, ShellState, run_meta
from tests.pipeline_helpers import make_pipeline
from tests.store_helpers import migrated


@pytest.fixture
def pipeline(tmp_path):
    store = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))
    pipeline = make_pipeline(f"sqlite:///{demo_database(tmp_path / 'demo.db')}", store, "alice")
    pipeline.open_session()
    yield pipeline
    pipeline.close()


def test_list_tables(pipeline):
    assert run_meta("\\dt", pipeline, ShellState()) == [
        "  table  | columns",
        "---------+---------",
        " deploys |       6",
        " sites   |       5",
        "(2 rows)",
    ]
    assert run_meta("\\dt dep*", pipeline, ShellState())[2:] == [" deploys |       6", "(1 row)"]
    assert run_meta("\\dt nothing*", pipeline, ShellState()) == ['Did not find any table named "nothing*".']


def test_describe_a_table(pipeline):
    assert run_meta("\\d deploys", pipeline, ShellState()) == [
        'Table "deploys"',
        "   column    |  type   | nullable | key",
        "-------------+---------+----------+-----",
        " id          | INTEGER |          | PK",
        " site_id     | INTEGER | not null |",
        " commit_sha  | TEXT    | not null |",
        " status      | TEXT    | not null |",
        " metadata    | TEXT    |          |",
        " deployed_at | TEXT    | not null |",
        "(6 rows)",
        "Primary key: (id)",
    ]
    assert run_meta("\\d SITES", pipeline, ShellState())[0] == 'Table "sites"'
    assert run_meta("\\d nowhere", pipeline, ShellState()) == [
        'Did not find any table named "nowhere". \\dt lists the tables.']
    assert run_meta("\\d", pipeline, ShellState()) == run_meta("\\dt", pipeline, ShellState())


def test_pending_shows_this_sessions_requests(pipeline):
    assert run_meta("\\pending", pipeline, ShellState()) == ["No approval requests in this session."]
    (statement,) = pipeline.classify("UPDATE deploys SET status = 'paused' WHERE site_id = 2")
    outcome = pipeline.submit(statement, wait=0)
    lines = run_meta("\\pending", pipeline, ShellState())
    assert lines[0].split("|")[0].strip() == "request"
    assert lines[2] == (f" {outcome.approval_id} | pending | 0/1       |   25 | "
                        "UPDATE deploys SET status = 'paused' WHERE site_id = 2")
    assert lines[3] == "(1 row)"


def test_toggles(pipeline):
    state = ShellState()
    assert run_meta("\\x", pipeline, state) == ["Expanded display is on."] and state.expanded
    assert run_meta("\\x on", pipeline, state) == ["Expanded display is on."] and state.expanded
    assert run_meta("\\x off", pipeline, state) == ["Expanded display is off."] and not state.expanded
    assert run_meta("\\x maybe", pipeline, state) == ["\\x: unrecognised value 'maybe'; use on or off"]
    assert run_meta("\\timing", pipeline, state) == ["Timing is off."] and not state.timing
    assert run_meta("\\timing ON", pipeline, state) == ["Timing is on."] and state.timing


def test_quit_help_and_unknown(pipeline):
    state = ShellState()
    assert run_meta("\\?", pipeline, state) == HELP.splitlines()
    assert any(line.startswith("  \\d TABLE") for line in HELP.splitlines())
    assert run_meta("\\nope", pipeline, state) == ["unknown command \\nope; \\? lists the commands"]
    assert not state.quit
    assert run_meta("\\q", pipeline, state) == [] and state.quit


def test_doctests():
    import doctest

    from console.repl import meta
    result = doctest.testmod(meta)
    assert result.failed == 0 and result.attempted >= 3

"""`countersign classify` as scripts use it: the real command in a subprocess, stdin in, JSON lines out."""
from __future__ import annotations

import json
import subprocess
import sys

KEYS = {"index", "text", "kind", "requires_approval", "reason", "tables", "has_where"}


def classify(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console.cli", "classify", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_text_input_gives_one_json_object_per_statement_in_order():
    done = classify("--dialect", "postgres", stdin="SELECT 1;\nUPDATE sites SET plan = 'pro' WHERE id = 3;")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [set(r) for r in rows] == [KEYS, KEYS]
    assert [(r["index"], r["kind"], r["requires_approval"]) for r in rows] == [(0, "read", False), (1, "write", True)]
    assert rows[1] == {"index": 1, "text": "UPDATE sites SET plan = 'pro' WHERE id = 3", "kind": "write",
                       "requires_approval": True, "reason": rows[1]["reason"], "tables": ["sites"],
                       "has_where": True}


def test_jsonl_cells_keep_their_ids_and_may_hold_zero_or_many_statements():
    cells = [{"id": 7, "text": "SELECT 1; DELETE FROM t"}, {"id": {"nb": "x"}, "text": ""},
             {"id": None, "text": "TRUNCATE t"}]
    done = classify("--dialect", "mysql", "--input", "jsonl", stdin="\n".join(map(json.dumps, cells)) + "\n")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["id"], r["index"], r["kind"]) for r in rows] == [(7, 0, "read"), (7, 1, "write"), (None, 0, "write")]
    assert all(set(r) == KEYS | {"id"} for r in rows)


def test_unknown_statements_are_a_classification_not_an_error():
    done = classify("--dialect", "sqlite", stdin="FROBNICATE the database")
    assert done.returncode == 0
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["kind"] == "unknown" and row["requires_approval"] is True


def test_malformed_jsonl_line_is_named_and_nothing_is_printed():
    stdin = '{"id": 1, "text": "SELECT 1"}\n{"id": 2, "text": \n{"id": 3}\n'
    done = classify("--dialect", "postgres", "--input", "jsonl", stdin=stdin)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "line 2: not valid JSON" in done.stderr
    assert "line 3: expected an object" in done.stderr


def test_usage_errors_exit_2_with_a_message():
    done = classify("--dialect", "oracle", stdin="SELECT 1")
    assert done.returncode == 2 and "invalid choice: 'oracle'" in done.stderr
    done = classify(stdin="SELECT 1")
    assert done.returncode == 2 and "--dialect" in done.stderr


def test_table_format_is_for_people():
    done = classify("--dialect", "postgres", "--format", "table", stdin="SELECT 1; DROP TABLE sites")
    assert done.returncode == 0
    header, rule, first, second, footer = done.stdout.splitlines()
    assert "kind" in header and "approval" in header and set(rule) <= {"-", "+"}
    assert "read" in first and "no" in first
    assert "ddl" in second and "required" in second and "DROP TABLE sites" in second
    assert footer == "(2 rows)"


def test_the_shared_fixture_cases_come_out_the_same_through_the_cli():
    """The classifier's fixture files, through the real command: the CLI contract says the same."""
    from tests import fixtures
    by_dialect: dict[str, list] = {}
    for case in fixtures.cases() + [fixtures.Case(a.dialect, a.text, "", True, None, None)
                                    for a in fixtures.adversarial()]:
        by_dialect.setdefault(case.dialect, []).append(case)
    for dialect, cases in by_dialect.items():
        cells = "\n".join(json.dumps({"id": i, "text": c.text}) for i, c in enumerate(cases)) + "\n"
        done = classify("--dialect", dialect, "--input", "jsonl", stdin=cells)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        assert sorted(r["id"] for r in rows) == list(range(len(cases))), "one statement per case"
        for row in rows:
            case = cases[row["id"]]
            assert row["requires_approval"] == case.requires_approval, (case.text, row["reason"])
            assert not case.kind or row["kind"] == case.kind, (case.text, row["kind"])

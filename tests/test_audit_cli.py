"""`countersign audit` through console.cli.main, on a real store (SQLite file and PostgreSQL)."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from audit.store import Store
from console.cli import main

START = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=10)  # every reading is a new moment: readable, distinct times
        return self.now


@pytest.fixture
def trail(store_url, monkeypatch):
    """A store holding two sessions; the CLI pointed at it via COUNTERSIGN_STORE."""
    monkeypatch.setenv("COUNTERSIGN_STORE", store_url)
    monkeypatch.delenv("COUNTERSIGN_CONFIG", raising=False)
    ids = (f"{n:04d}aaaa-id" for n in range(1, 100))
    store = Store.open(store_url, clock=Clock(), new_id=lambda: next(ids))
    first = store.start_session(user="alice", target="billing", environment="production", host="laptop",
                                reason="INC-42")
    store.append(first, "intent", {"text": "SELECT count(*)\n  FROM invoices", "kind": "read", "decision": "allow",
                                   "approval_id": None})
    store.append(first, "outcome", {"text": "SELECT count(*) FROM invoices", "kind": "read", "decision": "allow",
                                    "status": "ok", "rows": 1, "approval_id": None, "error": None})
    store.append(first, "intent", {"text": "DELETE FROM invoices WHERE id = 7", "kind": "write",
                                   "decision": "approved", "approval_id": "req-9"})
    store.append(first, "outcome", {"text": "DELETE FROM invoices WHERE id = 7", "kind": "write",
                                    "status": "failed", "rows": None, "approval_id": "req-9",
                                    "error": "permission denied for table invoices"})
    store.end_session(first)
    second = store.start_session(user="bob", target="billing", environment="production", host="desk")
    store.append(None, "approval", {"event": "requested", "request_id": "req-10", "status": "pending",
                                    "actor": "bob"})
    yield {"store": store, "first": first, "second": second}
    store.dispose()


def audit(*args: str) -> int:
    return main(["audit", *args])


def test_sessions_lists_newest_first_with_command_counts(trail, capsys):
    assert audit("sessions") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "user", "target", "env", "started", "ended", "commands"]
    assert lines[1].split() == [trail["second"], "bob", "billing", "production", "2026-03-01", "09:01:10",
                                "open", "0"]
    assert lines[2].split() == [trail["first"], "alice", "billing", "production", "2026-03-01", "09:00:10",
                                "2026-03-01", "09:01:00", "2"]


def test_sessions_as_json_lines(trail, capsys):
    assert audit("sessions", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["user"], r["commands"], r["ended_at"]) for r in rows] == [
        (trail["second"], "bob", 0, None), (trail["first"], "alice", 2, "2026-03-01T09:01:00+00:00")]


def test_show_prints_every_event_of_a_session_readably(trail, capsys):
    assert audit("show", trail["first"][:6]) == 0
    out = capsys.readouterr().out
    header, events = out.split("\n\n")
    assert f"session   {trail['first']}" in header and "reason    INC-42" in header
    assert "target    billing (production)" in header and "commands  2" in header
    assert events.splitlines() == [
        "2026-03-01 09:00:10  session_start  alice  on billing  from laptop  reason: INC-42",
        "2026-03-01 09:00:20  intent         [read]  allow  SELECT count(*) FROM invoices",
        "2026-03-01 09:00:30  outcome        [read]  allow  ok  rows=1  SELECT count(*) FROM invoices",
        "2026-03-01 09:00:40  intent         [write]  approved  approval req-9  DELETE FROM invoices WHERE id = 7",
        "2026-03-01 09:00:50  outcome        [write]  failed  approval req-9  "
        "error: permission denied for table invoices  DELETE FROM invoices WHERE id = 7",
        "2026-03-01 09:01:00  session_end",
    ]


def test_show_as_json_has_the_session_and_its_events(trail, capsys):
    assert audit("show", trail["second"], "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["session"]["user"] == "bob"
    assert [e["type"] for e in shown["events"]] == ["session_start"]


def test_show_an_unknown_session_exits_2(trail, capsys):
    assert audit("show", "ffffffff") == 2
    err = capsys.readouterr().err
    assert "no session matches 'ffffffff'" in err and "countersign audit sessions" in err


def test_verify_an_intact_trail(trail, capsys):
    assert audit("verify") == 0
    assert capsys.readouterr().out == "audit trail intact: 8 events\n"


def test_verify_a_tampered_trail_names_the_event_and_exits_1(trail, capsys):
    with trail["store"].engine.begin() as conn:  # someone hides the error from the record
        conn.execute(text("UPDATE cs_audit_events SET payload = :p WHERE seq = 5"),
                     {"p": '{"status":"ok","text":"DELETE FROM invoices WHERE id = 7"}'})
    assert audit("verify") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("audit trail BROKEN at event 5: event 5 (outcome) was altered")
    assert out[1] == f"  event 5: 0006aaaa-id at 2026-03-01 09:00:50, outcome, session {trail['first']}"
    assert out[2] == "  the 4 events before it are intact"


def test_verify_a_trail_missing_its_newest_event_exits_1(trail, capsys):
    with trail["store"].engine.begin() as conn:
        conn.execute(text("DELETE FROM cs_audit_events WHERE seq = 8"))
    assert audit("verify") == 1
    assert "BROKEN at event 8" in capsys.readouterr().out


def test_export_since_gives_events_an_auditor_can_reverify(trail, capsys):
    assert audit("export", "--format", "jsonl", "--since", "2026-03-01T10:00:50+01:00") == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in exported] == [5, 6, 7, 8]
    assert exported[0]["ts"] == "2026-03-01T09:00:50+00:00"
    everything = trail["store"].events()
    assert exported[0]["prev_hash"] == everything[3].hash
    previous = exported[0]["prev_hash"]
    for e in exported:  # re-verified with nothing but hashlib and json, as an outside auditor would
        body = json.dumps({k: e[k] for k in ("id", "session_id", "ts", "type", "payload")},
                          sort_keys=True, separators=(",", ":"))
        assert e["prev_hash"] == previous
        assert e["hash"] == hashlib.sha256((previous + body).encode()).hexdigest()
        previous = e["hash"]


def test_export_with_a_malformed_since_exits_2(trail, capsys):
    assert audit("export", "--since", "yesterday") == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_an_unavailable_store_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COUNTERSIGN_STORE", f"sqlite:///{tmp_path / 'nowhere' / 'store.db'}")
    monkeypatch.delenv("COUNTERSIGN_CONFIG", raising=False)
    assert audit("verify") == 2
    err = capsys.readouterr().err
    assert "nowhere does not exist" in err and "COUNTERSIGN_STORE" in err

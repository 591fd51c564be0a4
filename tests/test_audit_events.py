"""Typed audit events: every registered type round-trips, old payloads read and write back unchanged,
anything unknown reads as UnknownEvent, and `audit show` renders the types as it rendered the dicts."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from audit import events
from audit.events import (ABSENT, EVENTS, REGISTRY, ApprovalApprovedEvent, ApprovalCancelledEvent,
                          ApprovalExpiredEvent, ApprovalRejectedEvent, ApprovalRequestedEvent, ApprovalUsedEvent,
                          ApprovalVoteEvent, CommitEvent, ExecuteEvent, IntentEvent, OutcomeEvent, SessionEndEvent,
                          SessionStartEvent, SlackClickEvent, SnapshotPrunedEvent, SnapshotRestoredEvent,
                          LoginEvent, TokenIssuedEvent, TokenRevokedEvent, AuditorViewEvent, UnknownEvent, event_name, from_record, to_payload)
from audit.store import Store, canonical_json
from console.commands.audit import VIEWS, event_summary, payload_summary

UPDATE = "UPDATE deploys SET metadata = NULL\n  WHERE site_id = 3"

# Payloads exactly as the code wrote them before events were typed (gate/local.py's _record, the
# approval service's _event, the store's sessions, the snapshots CLI, the Slack click), with the
# class each must read as. Old trails hold these; their hashes depend on every key and value.
OLD_PAYLOADS = [
    ("session_start", {"user": "alice", "target": "demo", "host": "vm", "environment": "demo", "reason": None},
     SessionStartEvent),
    ("session_end", {}, SessionEndEvent),
    ("intent", {"text": "SELECT 1", "kind": "read", "decision": "allow", "approval_id": None}, IntentEvent),
    ("intent", {"text": "DROP TABLE t", "kind": "ddl", "decision": "blocked", "approval_id": None}, IntentEvent),
    ("intent", {"text": UPDATE, "kind": "write", "decision": "needs_approval", "approval_id": "a1",
                "estimated_rows": 25, "rows_exact": True}, IntentEvent),
    ("intent", {"text": UPDATE, "kind": "write", "decision": "needs_approval", "approval_id": "a1",
                "estimated_rows": None, "rows_exact": False}, IntentEvent),
    ("outcome", {"text": "SELECT 1", "kind": "read", "decision": "allow", "status": "ok", "approval_id": None,
                 "snapshot_id": None, "rows": 1, "duration_ms": 1.003, "error": None}, OutcomeEvent),
    ("outcome", {"text": UPDATE, "kind": "write", "decision": "needs_approval", "status": "rolled_back",
                 "approval_id": "a1", "snapshot_id": None, "rows": None, "duration_ms": 7.0,
                 "error": "the write touched 30 rows but 25 were approved"}, OutcomeEvent),
    ("execute", {"text": UPDATE, "kind": "write", "approval_id": "a1"}, ExecuteEvent),
    ("commit", {"text": UPDATE, "kind": "write", "approval_id": "a1", "statements": 1, "rows": 25,
                "snapshot_ids": ["s1"]}, CommitEvent),
    ("approval", {"event": "requested", "request_id": "a1", "status": "pending", "actor": "alice",
                  "statement": UPDATE, "target": "demo", "environment": "demo", "reason": "UPDATE of deploys",
                  "required_approvals": 1, "allowed_approvers": None, "estimated_rows": 25, "rows_exact": True,
                  "expires_at": "2026-12-01T09:27:22+00:00"}, ApprovalRequestedEvent),
    ("approval", {"event": "requested", "request_id": "a2", "status": "pending", "actor": "alice",
                  "statement": "DELETE FROM t", "target": "demo", "environment": "demo", "reason": "no WHERE",
                  "required_approvals": 2, "allowed_approvers": ["bob", "carol"], "estimated_rows": None,
                  "rows_exact": False, "expires_at": "2026-12-01T09:27:22.000123+00:00"}, ApprovalRequestedEvent),
    ("approval", {"event": "vote", "request_id": "a1", "status": "approved", "actor": "bob", "verdict": "approve",
                  "comment": None, "source": "local", "approvals": 1, "required_approvals": 1}, ApprovalVoteEvent),
    ("approval", {"event": "approved", "request_id": "a1", "status": "approved", "actor": "bob"},
     ApprovalApprovedEvent),
    ("approval", {"event": "rejected", "request_id": "a2", "status": "rejected", "actor": "bob"},
     ApprovalRejectedEvent),
    ("approval", {"event": "used", "request_id": "a1", "status": "used", "actor": "alice", "binding": "ab" * 32},
     ApprovalUsedEvent),
    ("approval", {"event": "cancelled", "request_id": "a3", "status": "cancelled", "actor": "alice"},
     ApprovalCancelledEvent),
    ("approval", {"event": "expired", "request_id": "a4", "status": "expired", "actor": None},
     ApprovalExpiredEvent),
    ("snapshot", {"event": "restored", "snapshot_id": "s1", "approval_id": "a5"}, SnapshotRestoredEvent),
    ("snapshot", {"event": "pruned", "snapshot_id": "s1", "target": "demo", "rows": 25}, SnapshotPrunedEvent),
    ("slack_click", {"action": "approve", "slack_user": "U1", "request_id": "a1", "person": None,
                     "accepted": False, "result": "no Countersign user for U1", "refusal": "unmapped"},
     SlackClickEvent),
    ("token_issued", {"token_id": "t1", "user": "alice", "label": "nightly job", "kind": "automation",
                      "issued_by": "root", "expires_at": "2026-12-31T00:00:00+00:00"}, TokenIssuedEvent),
    ("token_revoked", {"token_id": "t1", "user": "alice", "revoked_by": "root"}, TokenRevokedEvent),
    ("login", {"login_id": "l1", "user": "alice", "host": "laptop", "status": "confirmed", "slack_user": "U1",
               "why": None}, LoginEvent),
    ("auditor_view", {"user": "ada", "token_id": "t1", "path": "/audit/sessions", "query": "person=alice",
                      "allowed": True}, AuditorViewEvent),
]

# One typed sample of every registered class (built directly, not from the payloads above).
SAMPLES = [
    SessionStartEvent(user="alice", target="billing", environment="production", host="laptop", reason="INC-42"),
    SessionEndEvent(),
    IntentEvent(text="SELECT 1", kind="read", decision="allow"),
    IntentEvent(text=UPDATE, kind="write", decision="needs_approval", approval_id="a1", estimated_rows=None,
                rows_exact=False),
    OutcomeEvent(text=UPDATE, kind="write", decision="needs_approval", status="ok", approval_id="a1",
                 snapshot_id="s1", rows=25, duration_ms=7.363, error=None),
    ExecuteEvent(text=UPDATE, kind="write", approval_id="a1"),
    CommitEvent(text=UPDATE, kind="write", approval_id="a1", statements=2, rows=30, snapshot_ids=("s1", "s2")),
    ApprovalRequestedEvent(request_id="a1", status="pending", actor="alice", statement=UPDATE, target="billing",
                           environment="production", reason="writes need approval", required_approvals=2,
                           allowed_approvers=("bob", "carol"), estimated_rows=25, rows_exact=True,
                           expires_at="2026-12-01T09:27:22+00:00"),
    ApprovalVoteEvent(request_id="a1", status="pending", actor="bob", verdict="approve", comment="looks right",
                      source="slack", approvals=1, required_approvals=2),
    ApprovalApprovedEvent(request_id="a1", status="approved", actor="carol"),
    ApprovalRejectedEvent(request_id="a2", status="rejected", actor="bob"),
    ApprovalUsedEvent(request_id="a1", status="used", actor="alice", binding="ab" * 32),
    ApprovalCancelledEvent(request_id="a3", status="cancelled", actor="alice"),
    ApprovalExpiredEvent(request_id="a4", status="expired", actor=None),
    SnapshotRestoredEvent(snapshot_id="s1", approval_id="a5"),
    SnapshotPrunedEvent(snapshot_id="s1", target="billing", rows=25),
    SlackClickEvent(action="approve", slack_user="U1", request_id="a1", person="bob", accepted=True,
                    result="approved", refusal=None),
    TokenIssuedEvent(token_id="t1", user="alice", label="nightly job", kind="automation", issued_by="root",
                     expires_at="2026-12-31T00:00:00+00:00"),
    TokenRevokedEvent(token_id="t1", user="alice", revoked_by="root"),
    LoginEvent(login_id="l1", user="alice", host="laptop", status="refused", why="not in [people]"),
    AuditorViewEvent(user="ada", token_id="t1", path="/audit/sessions", query="person=alice", allowed=True),
]


def ids(values) -> list[str]:
    return [event_name(type(v)) if isinstance(v, events.Event) else event_name(v[2]) for v in values]


# -- the registry ------------------------------------------------------------------------------------
def test_the_registry_names_each_class_once():
    names = [event_name(cls) for cls in EVENTS]
    assert len(names) == len(set(names)) == len(REGISTRY)
    assert set(REGISTRY.values()) == set(EVENTS)


def test_a_second_class_with_a_registered_name_is_refused():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class AnotherIntent(events.Event):
        type = "intent"
    with pytest.raises(ValueError, match="'intent'"):
        events._index(EVENTS + (AnotherIntent,))


@pytest.mark.parametrize("cls", EVENTS, ids=event_name)
def test_every_event_is_a_documented_frozen_value(cls):
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert cls.__doc__ and cls.type
    assert "type" not in {f.name for f in dataclasses.fields(cls)}   # the type is the class's, not a field


def test_every_registered_class_has_a_sample_and_an_old_payload():
    assert {type(e) for e in SAMPLES} == set(EVENTS)
    assert {cls for _, _, cls in OLD_PAYLOADS} == set(EVENTS)


# -- round trips ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("event", SAMPLES, ids=ids(SAMPLES))
def test_every_type_round_trips_through_its_payload_and_json(event):
    payload = to_payload(event)
    assert from_record(event.type, payload) == event
    assert from_record(event.type, json.loads(json.dumps(payload))) == event
    assert from_record(event.type, json.loads(canonical_json(payload))) == event   # what the store keeps


@pytest.mark.parametrize("type_,payload,cls", OLD_PAYLOADS, ids=ids(OLD_PAYLOADS))
def test_old_payloads_read_as_their_type_and_write_back_unchanged(type_, payload, cls):
    stored = json.loads(canonical_json(payload))
    event = from_record(type_, stored)
    assert type(event) is cls and event.type == type_
    assert to_payload(event) == stored
    assert canonical_json(to_payload(event)) == canonical_json(payload)   # same bytes, so the same hash


def test_an_intent_leaves_its_estimate_out_unless_it_has_one():
    allowed = IntentEvent(text="SELECT 1", kind="read", decision="allow")
    assert allowed.estimated_rows is ABSENT and "estimated_rows" not in to_payload(allowed)
    uncountable = IntentEvent(text=UPDATE, kind="write", decision="needs_approval", approval_id="a1",
                              estimated_rows=None, rows_exact=False)
    assert to_payload(uncountable)["estimated_rows"] is None


# -- what this version does not know -----------------------------------------------------------------------
@pytest.mark.parametrize("type_,payload", [
    ("deploy_hook", {"url": "https://ci.example/42"}),                   # a type from another version
    ("approval", {"event": "escalated", "request_id": "a1"}),            # an approval event we have no class for
    ("intent", {"text": "SELECT 1"}),                                    # a field missing
    ("intent", {"text": "SELECT 1", "kind": "read", "decision": "allow", "approval_id": None, "process": "0"}),
    ("session_end", {"event": "x"}),                                     # a sub-kind on a type without any
    ("outcome", ["not", "an", "object"]),                                # an edited trail
    ("snapshot", {"unreadable_payload": "{not json"}),                   # what the store reads from broken JSON
])
def test_anything_else_reads_as_an_unknown_event_with_its_payload_untouched(type_, payload):
    event = from_record(type_, payload)
    assert event == UnknownEvent(type_, payload)
    if isinstance(payload, dict):
        assert to_payload(event) == payload


# -- the store -----------------------------------------------------------------------------------------------
@pytest.fixture
def store(store_url):
    ids_ = (f"{n:04d}-event" for n in range(1, 1000))
    opened = Store.open(store_url, clock=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc),
                        new_id=lambda: next(ids_))
    yield opened
    opened.dispose()


def test_the_store_records_typed_events_exactly_as_the_untyped_form_did(store):
    session = store.start_session(user="alice", target="demo", environment="demo", host="vm")
    for type_, payload, _ in OLD_PAYLOADS:
        typed = store.append(session, from_record(type_, payload))
        untyped = store.append(session, type_, payload)
        assert (typed.type, typed.payload) == (untyped.type, untyped.payload)
    with store.engine.connect() as conn:
        bodies = conn.execute(text("SELECT payload FROM cs_audit_events WHERE seq > 1 ORDER BY seq")).scalars().all()
    assert bodies[0::2] == bodies[1::2]
    assert store.verify().ok


def test_records_read_back_with_their_typed_view(store):
    session = store.start_session(user="alice", target="demo", environment="demo", host="vm", reason="INC-1")
    for event in SAMPLES:
        store.append(session, event)
    store.append(session, "deploy_hook", {"url": "x"})
    store.end_session(session)
    read = [record.event for record in store.events(session_id=session)]
    assert read == [SessionStartEvent(user="alice", target="demo", environment="demo", host="vm", reason="INC-1"),
                    *SAMPLES, UnknownEvent("deploy_hook", {"url": "x"}), SessionEndEvent()]


def test_a_typed_event_carries_its_own_payload(store):
    with pytest.raises(TypeError, match="pass the event alone"):
        store.append(None, SessionEndEvent(), {})
    with pytest.raises(TypeError, match="needs the payload"):
        store.append(None, "intent")
    assert store.events() == []


# -- `audit show` ----------------------------------------------------------------------------------------------
def test_every_registered_type_has_a_view_in_audit_show():
    assert set(VIEWS) == set(EVENTS)


@pytest.mark.parametrize("event", SAMPLES, ids=ids(SAMPLES))
def test_audit_show_renders_the_types_as_it_rendered_their_payloads(event):
    assert event_summary(event) == "  ".join(payload_summary(to_payload(event)))

"""The classifier's adversarial fixtures, submitted through the gate (across JSON, as a network would)
to real PostgreSQL, MariaDB and SQLite targets: none of them runs without a second person."""
from __future__ import annotations

import pytest

from audit.store import Store
from gate.api import Awaiting, Outcome, Status
from tests import fixtures
from tests.pipeline_helpers import make_gate, target_for
from tests.store_helpers import migrated

SQL_DIALECTS = ("postgres", "mysql", "sqlite")


@pytest.fixture(params=SQL_DIALECTS)
def gate_session(request, tmp_path):
    url = request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[request.param])
    store = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))
    gate = make_gate(store, {"target": target_for(url)}, mode="json")
    session = gate.open_session("alice", "target", "fixtures")
    yield request.param, gate, session
    gate.close_session(session.id)
    store.dispose()


def test_no_adversarial_fixture_runs_through_the_gate(gate_session):
    dialect, gate, session = gate_session
    for case in [c for c in fixtures.adversarial() if c.dialect == dialect]:
        for reply in gate.submit(session.id, case.text):
            ran = isinstance(reply, Outcome) and reply.status in (Status.OK, Status.FAILED)
            assert not ran, (case.text, reply)
            assert isinstance(reply, Awaiting) or reply.status is Status.BLOCKED, (case.text, reply)


def test_the_gate_agrees_with_the_fixture_table(gate_session):
    dialect, gate, session = gate_session
    for case in [c for c in fixtures.cases() if c.dialect == dialect]:
        (statement,) = gate.classify(session.id, case.text)
        assert (str(statement.kind), statement.requires_approval) == (case.kind, case.requires_approval), case.text

"""A console session survives any number of its own errors, on every engine.

PostgreSQL once broke for good after a few errors: psycopg prepares a statement by itself after it
has run a few times, and an aborted pipeline loses those prepared statements on the server while
psycopg's cache still names them (``prepared statement "_pg3_2" does not exist``, then
``current transaction is aborted``). These tests repeat what a person does in a shell: the same
read several times, a few failing statements, and then everything must still work.
"""
from __future__ import annotations

import pytest

from audit.store import Store
from gate.api import Status
from tests import servers
from tests.pipeline_helpers import make_pipeline
from tests.store_helpers import migrated

pytestmark = pytest.mark.usefixtures("gate_mode")   # in process, and through JSON

GOOD = {"sql": "SELECT 1", "mongodb": "db.things.find({})"}
BAD = {"sql": "SELECT * FROM missing_table", "mongodb": "db.things.aggregate([{$nosuchstage: 1}])"}


@pytest.fixture(params=["postgres", "mysql", "sqlite", "mongodb"])
def target_url(request):
    if request.param == "mongodb":
        db = request.getfixturevalue("mongo_db")
        db.things.insert_one({"a": 1})
        return servers.with_database(request.getfixturevalue("mongo_server_url"), db.name)
    return request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[request.param])


@pytest.fixture
def pipeline(target_url, tmp_path):
    store = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))
    opened = make_pipeline(target_url, store, "alice")
    opened.open_session()
    yield opened
    opened.close()
    store.dispose()


def run(pipeline, text):
    (statement,) = pipeline.classify(text)
    return pipeline.submit(statement)


def test_reads_keep_working_after_repeated_errors(pipeline):
    family = "mongodb" if pipeline.dialect == "mongodb" else "sql"
    for _ in range(6):                       # past psycopg's prepare threshold
        assert run(pipeline, GOOD[family]).status is Status.OK
    for _ in range(3):
        failed = run(pipeline, BAD[family])
        assert failed.status is Status.FAILED, failed
    for _ in range(6):
        outcome = run(pipeline, GOOD[family])
        assert outcome.status is Status.OK, outcome.message
    assert pipeline.catalog() is not None    # \dt reads the catalog on the same connection


def test_alternating_errors_never_poison_the_session(pipeline):
    family = "mongodb" if pipeline.dialect == "mongodb" else "sql"
    for _ in range(8):
        assert run(pipeline, BAD[family]).status is Status.FAILED
        outcome = run(pipeline, GOOD[family])
        assert outcome.status is Status.OK, outcome.message

"""Fixtures that hand each test run its own scratch databases on real servers."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import servers
from tests.store_helpers import migrated

REPO = Path(__file__).resolve().parent.parent
# A copy of ../shared/corpora (PostgreSQL's regression statements, labelled by the server; see its
# README for source and licence), kept in the repository so a clean clone tests the same thing anywhere.
SHARED = REPO / "tests"


@pytest.fixture(scope="session", autouse=True)
def own_state_directory(tmp_path_factory):
    """Every test run keeps its state (the audit key, the anchors, history, the demo) in a directory of
    its own, never in the home directory of whoever runs the tests."""
    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if saved is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = saved


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return servers.admin_pg_url()


@pytest.fixture(scope="session")
def mysql_admin_url() -> str:
    return servers.admin_mysql_url()


@pytest.fixture
def pg_url(pg_admin_url):
    """A fresh, empty PostgreSQL database for one test."""
    name = servers.scratch_name("pg")
    url = servers.create_pg_database(pg_admin_url, name)
    yield url
    servers.drop_pg_database(pg_admin_url, name)


@pytest.fixture
def mysql_url(mysql_admin_url):
    """A fresh, empty MariaDB/MySQL database for one test."""
    name = servers.scratch_name("my")
    url = servers.create_mysql_database(mysql_admin_url, name)
    yield url
    servers.drop_mysql_database(mysql_admin_url, name)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'target.db'}"


@pytest.fixture(scope="session")
def mongo_server_url():
    url = os.environ.get("COUNTERSIGN_TEST_MONGO_URL")
    if url:
        yield url
        return
    server = servers.MongoServer()
    yield server.url
    server.stop()


@pytest.fixture
def mongo_db(mongo_server_url):
    """A fresh MongoDB database (on the session's server) for one test."""
    import pymongo
    client = pymongo.MongoClient(mongo_server_url)
    name = servers.scratch_name("mg")
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def store_url(new_store_url):
    """The control-plane store, migrated to the newest schema, on both backends it supports."""
    return migrated(new_store_url)


@pytest.fixture(params=["sqlite", "postgres"])
def new_store_url(request, tmp_path):
    """An empty database for the control-plane store (no schema yet), on both backends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    name = servers.scratch_name("store")
    url = servers.create_pg_database(admin, name)
    yield url
    servers.drop_pg_database(admin, name)


@pytest.fixture(params=["local", "json", "http"])
def gate_mode(request, monkeypatch):
    """Pipeline tests run three times: on the in-process gate; with every call and every returned
    value round-tripped through JSON, so no front end relies on shared objects; and through the team
    API over HTTP (a RemoteGate with a token, the service's TeamApi in a thread), as a team console."""
    monkeypatch.setenv("COUNTERSIGN_TEST_GATE", request.param)
    yield request.param
    if request.param == "http":
        from tests.team_harness import close_http_gates
        close_http_gates()

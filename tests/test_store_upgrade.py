"""Opening the store checks its schema and never migrates it; `countersign store upgrade` migrates.

Real stores on both backends; the CLI runs as a subprocess, as people run it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from audit.revisions import script_revisions
from audit.store import Store, StoreOutOfDate, StoreUnavailable
from tests.cli_helpers import countersign
from tests.store_helpers import migrated

REPO = Path(__file__).resolve().parents[1]
UPGRADE = "run `countersign store upgrade`"


def migrate_to(url: str, revision: str) -> None:
    """Migrate a new store only as far as ``revision``: the store an older countersign left behind."""
    from alembic import command
    from alembic.config import Config
    store = Store._connect(url, None, None)
    try:
        with store.engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(REPO / "audit" / "migrations"))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        store.dispose()


def first_revision() -> str:
    chain = script_revisions()
    first = next(rev for rev, parent in chain.parents.items() if parent is None)
    assert first != chain.head, "an out-of-date store needs at least two revisions to exist"
    return first


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a person with no configuration and nothing migrated for them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    env.update({"XDG_STATE_HOME": str(tmp_path / "state"), "COUNTERSIGN_USER": "alice", "PAGER": "cat",
                "PYTHONPATH": str(REPO), **extra})
    return env


def test_a_store_without_a_schema_is_refused_and_left_alone(new_store_url):
    with pytest.raises(StoreOutOfDate) as caught:
        Store.open(new_store_url)
    assert str(caught.value).endswith(f"has no schema yet; {UPGRADE} (add --store URL for a store other "
                                      "than the configured one)")
    assert Store._connect(new_store_url, None, None).schema_revisions() == ()


def test_an_out_of_date_store_is_refused_with_what_to_run(new_store_url):
    old, head = first_revision(), script_revisions().head
    migrate_to(new_store_url, old)
    with pytest.raises(StoreOutOfDate) as caught:
        Store.open(new_store_url)
    message = str(caught.value)
    assert f"is at schema revision {old} but this version of countersign needs {head}; {UPGRADE}" in message
    assert isinstance(caught.value, StoreUnavailable)   # every caller already refuses to run on it


def test_create_migrates_only_a_store_without_a_schema(new_store_url):
    migrate_to(new_store_url, first_revision())
    with pytest.raises(StoreOutOfDate, match=UPGRADE.replace("`", ".")):
        Store.open(new_store_url, create=True)


def test_a_store_from_a_newer_countersign_is_refused_without_an_upgrade_hint(store_url):
    store = Store.open(store_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.dispose()
    with pytest.raises(StoreOutOfDate) as caught:
        Store.open(store_url)
    assert str(caught.value).endswith("is at schema revision 9999, which this version of countersign does not "
                                      "know (a newer countersign migrated it); upgrade countersign")


def test_store_upgrade_migrates_an_out_of_date_store_and_is_idempotent(new_store_url, tmp_path):
    old, head = first_revision(), script_revisions().head
    migrate_to(new_store_url, old)
    env = bare_env(tmp_path)
    first = countersign("store", "upgrade", "--store", new_store_url, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(f": migrated from schema revision {old} to {head}")
    again = countersign("store", "upgrade", "--store", new_store_url, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(f": already at schema revision {head}; nothing to do")
    store = Store.open(new_store_url)
    try:
        assert store.schema_revisions() == (head,)
        assert store.verify().ok
    finally:
        store.dispose()


def test_store_upgrade_without_store_uses_the_configured_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'configured.db'}"
    done = countersign("store", "upgrade", env=bare_env(tmp_path, COUNTERSIGN_STORE=url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{url}: created at schema revision {script_revisions().head}"
    Store.open(url).dispose()


def test_store_upgrade_on_an_unreachable_store_exits_2(tmp_path):
    done = countersign("store", "upgrade", "--store", f"sqlite:///{tmp_path / 'gone' / 's.db'}",
                       env=bare_env(tmp_path))
    assert done.returncode == 2
    assert "does not exist" in done.stderr


@pytest.fixture
def auditor_url(pg_url):
    """pg_url's store, migrated, and a login role that may only read it (an auditor)."""
    from urllib.parse import urlsplit, urlunsplit
    import psycopg
    migrated(pg_url)
    role = f"cs_auditor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    parts = urlsplit(pg_url)
    yield urlunsplit((parts.scheme, f"{role}@{parts.hostname}:{parts.port}", parts.path, "", ""))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_a_read_only_role_opens_and_verifies_the_store(pg_url, auditor_url, tmp_path):
    writer = Store.open(pg_url)
    writer.end_session(writer.start_session(user="alice", target="app", environment="production", host="h"))
    writer.dispose()
    auditor = Store.open(auditor_url)
    try:
        assert auditor.verify().ok and auditor.verify().checked == 2
        assert [s.user for s in auditor.sessions()] == ["alice"]
    finally:
        auditor.dispose()
    done = countersign("audit", "verify", env=bare_env(tmp_path, COUNTERSIGN_STORE=auditor_url))
    assert done.returncode == 0, done.stderr
    assert "audit trail intact: 2 events" in done.stdout


OPEN_AND_LIST_ALEMBIC = """
import sys
from audit.store import Store
Store.open(sys.argv[1]).dispose()
print(sorted(name for name in sys.modules if name.split(".")[0] == "alembic"))
"""


def test_opening_a_migrated_store_does_not_import_alembic(store_url):
    done = subprocess.run([sys.executable, "-c", OPEN_AND_LIST_ALEMBIC, store_url], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_shell_creates_only_the_default_store(tmp_path):
    """With nothing configured the user's own store is created on first use; a configured one is not."""
    default = countersign("run", "demo", "-c", "SELECT count(*) FROM sites", env=bare_env(tmp_path))
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "state" / "countersign" / "store.db").exists()
    configured = f"sqlite:///{tmp_path / 'team.db'}"
    refused = countersign("run", "demo", "-c", "SELECT count(*) FROM sites",
                          env=bare_env(tmp_path, COUNTERSIGN_STORE=configured))
    assert refused.returncode == 2
    assert "has no schema yet; run `countersign store upgrade`" in refused.stderr


def test_the_revisions_read_from_the_scripts_are_alembics():
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    config = Config()
    config.set_main_option("script_location", str(REPO / "audit" / "migrations"))
    scripts = ScriptDirectory.from_config(config)
    chain = script_revisions()
    assert chain.head == scripts.get_current_head()
    assert chain.parents == {s.revision: s.down_revision for s in scripts.walk_revisions()}


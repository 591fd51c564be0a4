"""Configuration: what loads, and the exact error for what does not."""
from datetime import timedelta
from pathlib import Path

import pytest

from config.settings import ConfigError, Policy, load_settings, parse_duration, resolve_target
from classify.statements import Kind

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "countersign.example.toml"
EXAMPLE_ENV = {"COUNTERSIGN_STORE_URL": "sqlite:////tmp/x.db",
               "DEPLOYS_PROD_URL": "postgresql://cs@db/deploys", "BILLING_STAGING_URL": "mysql://cs@db/billing"}


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "countersign.toml"
    path.write_text(text)
    return path


def test_example_config_loads_with_its_env_vars():
    settings = load_settings(EXAMPLE, env=EXAMPLE_ENV)
    prod = settings.targets["deploys-prod"]
    assert (prod.dialect, prod.environment, prod.is_production) == ("postgres", "production", True)
    assert prod.policy.approvals == 2
    assert prod.policy.approval_lifetime == timedelta(minutes=30)
    assert prod.policy.over_row_cap == "extra-approval"
    assert settings.targets["billing-staging"].policy.name == "staging"
    assert settings.store_url == "sqlite:////tmp/x.db"
    assert "password" in settings.secret_patterns


def test_missing_env_var_is_named():
    env = dict(EXAMPLE_ENV)
    del env["DEPLOYS_PROD_URL"]
    with pytest.raises(ConfigError, match=r"\[targets.deploys-prod\]: environment variable DEPLOYS_PROD_URL is not set"):
        load_settings(EXAMPLE, env=env)


def test_store_env_overrides_file():
    settings = load_settings(EXAMPLE, env={**EXAMPLE_ENV, "COUNTERSIGN_STORE": "postgresql://s@h/db"})
    assert settings.store_url == "postgresql://s@h/db"


@pytest.mark.parametrize("text, message", [
    ("[targets.a]\nurl = 'postgresql://u:pw@h/db'\n", "contains a password"),
    ("[targets.a]\nurl = 'oracle://h/db'\n", "unsupported database URL scheme 'oracle'"),
    ("[targets.a]\nurl = 'postgresql://h/db'\ndialect = 'mysql'\n", "does not match the URL"),
    ("[targets.a]\nurl = 'postgresql://h/db'\npolicy = 'nope'\n", "policy 'nope' is not defined"),
    ("[targets.a]\nurl = 'postgresql://h/db'\nenvironment = 'prod'\n", "environment must be one of"),
    ("[targets.a]\n", "needs url_env"),
    ("[policies.p]\napprovals = 0\n", "approvals must be at least 1"),
    ("[policies.p]\napprovals = 2\napprovers = ['a']\n", "only 1 approvers listed"),
    ("[policies.p]\napproval_kinds = ['writes']\n", "approval_kinds"),
    ("[policies.p]\nsurprise = 1\n", "unknown setting"),
    ("[policies.p]\nblocked = ['(']\n", "not a valid regex"),
    ("[policies.p]\nstatement_timeout = 'soon'\n", "is not a duration"),
    ("not toml = = =", "not valid TOML"),
])
def test_bad_config_says_what_is_wrong(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), env={})


def test_url_target_gets_the_default_policy():
    target = resolve_target(load_settings(None, env={}), "postgresql://app@db.example/prod")
    assert target.policy == Policy()
    assert target.environment == "production"
    assert Kind.WRITE in target.policy.approval_kinds and Kind.READ not in target.policy.approval_kinds


def test_unknown_target_lists_known_ones(tmp_path):
    settings = load_settings(write(tmp_path, "[targets.a]\nurl = 'sqlite:///x.db'\n"), env={})
    with pytest.raises(ConfigError, match=r"unknown target 'b' \(targets: a\)"):
        resolve_target(settings, "b")


def test_durations():
    assert parse_duration("500ms", "x") == timedelta(milliseconds=500)
    assert parse_duration(5, "x") == timedelta(seconds=5)
    assert parse_duration("7d", "x") == timedelta(days=7)


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, """
[policies.strict]
approvals = 0

[targets.prod]
url_env = "PROD_URL"

[targets.broken]
url = "sqlite:///x.db"
policy = "strict"

[targets.typo]
url = "sqlite:///y.db"
enviroment = "staging"
""")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    lines = str(err.value).splitlines()
    assert lines == ["[policies.strict]: approvals must be at least 1",
                     "[targets.prod]: environment variable PROD_URL is not set; export it with the database URL",
                     "[targets.broken]: its policy 'strict' has the error(s) above",
                     "[targets.typo]: unknown setting(s) enviroment; known: dialect, environment, policy, url, url_env"]


def test_config_check_names_what_is_wrong_and_exits_2(tmp_path):
    from tests.cli_helpers import cli_env, countersign
    path = write(tmp_path, '[targets.prod]\nurl_env = "PROD_URL"\n')
    failed = countersign("config", "check", "--config", str(path), env=cli_env(tmp_path))
    assert failed.returncode == 2 and "environment variable PROD_URL is not set" in failed.stderr
    ok = countersign("config", "check", "--config", str(path), "--connect",
                     env=cli_env(tmp_path, PROD_URL=f"sqlite:///{tmp_path / 'prod.db'}"))
    assert ok.returncode == 0, ok.stderr
    assert "target prod: sqlite, production, policy default" in ok.stdout and "target prod: connected" in ok.stdout


def test_every_loose_value_is_refused_with_its_path_at_once(tmp_path):
    """Values that used to slip through (a string as a list, "no" as true, 1.5 approvers...)."""
    path = write(tmp_path, """
[policies.strict]
approvers = "bob"
blocked = "DROP"
allow_unsnapshotted = "no"
approvals = 1.5
row_tolerance = -5
statement_timeout = "0s"
max_write_rows = "lots"

[policies.typed]
approvals = "2"
approval_kinds = ["write", "writes"]
over_row_cap = "warn"
""")
    from tests.cli_helpers import cli_env, countersign
    checked = countersign("config", "check", "--config", str(path), env=cli_env(tmp_path))
    assert checked.returncode == 2 and "Traceback" not in checked.stderr
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert all(line in checked.stderr for line in str(err.value).splitlines())
    assert str(err.value).splitlines() == [
        "[policies.strict]: approvals 1.5 is not a whole number",
        "[policies.strict]: approvers 'bob' is not a list; write ['bob']",
        "[policies.strict]: statement_timeout must be longer than 0s (got 0s)",
        "[policies.strict]: max_write_rows 'lots' is not a whole number",
        "[policies.strict]: row_tolerance must be at least 0",
        "[policies.strict]: blocked 'DROP' is not a list; write ['DROP']",
        "[policies.strict]: allow_unsnapshotted 'no' is not true or false (write true or false, without quotes)",
        "[policies.typed]: approval_kinds[1] must be one of read, write, ddl, privilege, admin, session, "
        "transaction or unknown (not 'writes')",
        "[policies.typed]: approvals '2' is not a whole number (write 2 without quotes)",
        "[policies.typed]: over_row_cap must be one of refuse or extra-approval (not 'warn')",
    ]


@pytest.mark.parametrize("text, message", [
    ("[store]\nurl = 'postgresql://u:hunter2@h/db'\n", "[store]: the url contains a password"),
    ("[store]\nurl = 3\n", "[store]: url 3 is not a string (put it in quotes)"),
    ("[history]\nsecret_patterns = ['(']\n", "[history]: secret_patterns[0] '(' is not a valid regex"),
    ("stores = 1\n", "unknown section(s) stores; known: history, people, policies, server, slack, store, targets"),
    ("[targets.a]\nurl = 'postgresql://x@127.0.0.1:notaport/db'\n", "[targets.a]: the URL's port is not a number"),
    ("[targets.a]\nurl = 'sqlite:///x.db'\ndialect = 'oracle'\n", "[targets.a]: dialect must be one of postgres"),
    ("[policies.p]\nsnapshot_retention = -1\n", "[policies.p]: snapshot_retention must be longer than 0s"),
    ("[policies.p]\nrequire_reason = 1\n", "[policies.p]: require_reason 1 is not true or false"),
    ("[policies.p]\napprovals = 2\napprovers = ['bob', 'bob']\n", "[policies.p]: approvers lists 'bob' more than once"),
    ("[store]\nurl_env = 'S'\npath = 'x'\n", "[store]: unknown setting(s) path; known: url, url_env"),
])
def test_each_section_is_checked_by_the_schema(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), env={})
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_good_policy_builds_the_same_policy_values(tmp_path):
    settings = load_settings(write(tmp_path, """
[targets.a]
url = "sqlite:///x.db"
policy = "p"

[policies.p]
approval_kinds = ["write", "ddl"]
approvers = ["alice", "bob"]
blocked = ["\\\\bDROP\\\\b"]
statement_timeout = 5
allow_unsnapshotted = true
slack_channel = "C0PROD"
"""), env={})
    policy = settings.targets["a"].policy
    assert policy == Policy(name="p", approval_kinds=(Kind.WRITE, Kind.DDL), approvers=("alice", "bob"),
                            blocked=(r"\bDROP\b",), statement_timeout=timedelta(seconds=5),
                            allow_unsnapshotted=True, slack_channel="C0PROD")


def test_a_bad_store_url_in_the_environment_is_named():
    with pytest.raises(ConfigError, match="COUNTERSIGN_STORE: the URL's port is not a number"):
        load_settings(None, env={"COUNTERSIGN_STORE": "postgresql://x@127.0.0.1:notaport/db"})


def test_config_check_never_prints_the_store_password(tmp_path):
    from tests.cli_helpers import cli_env, countersign
    path = write(tmp_path, f'[targets.a]\nurl = "sqlite:///{tmp_path / "a.db"}"\n')
    env = {**cli_env(tmp_path), "COUNTERSIGN_STORE": "postgresql://cs:hunter2@127.0.0.1:5432/store"}  # not opened
    done = countersign("config", "check", "--config", str(path), env=env)
    assert "hunter2" not in done.stdout + done.stderr
    assert "store: postgresql://cs:***@127.0.0.1:5432/store" in done.stdout

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

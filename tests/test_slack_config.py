"""[slack], [people] and a policy's slack_channel: parsed, validated all at once, and checked against Slack."""
from __future__ import annotations

import pytest

from config.settings import ConfigError
from service.check import slack_problems
from service.slack_settings import load, secrets
from tests.slack_emulator import SlackEmulator

GOOD = """
[slack]
channel = "C0APPROVALS"
audit_channel = "C0AUDIT"

[people]
alice = "alice@example.com"
bob = "Bob@Example.com"

[targets.prod]
url = "sqlite:///prod.db"
policy = "prod"

[targets.staging]
url = "sqlite:///staging.db"

[policies.prod]
slack_channel = "C0PRODONLY"
"""


def write(tmp_path, text: str):
    path = tmp_path / "countersign.toml"
    path.write_text(text)
    return path


def test_channels_people_and_the_policy_override(tmp_path):
    _, config = load(write(tmp_path, GOOD), {})
    assert (config.approval_channel("prod"), config.approval_channel("staging")) == ("C0PRODONLY", "C0APPROVALS")
    assert config.approval_channel("postgresql://elsewhere/db") == "C0APPROVALS"
    assert config.audit_channel == "C0AUDIT"
    assert config.person_for_email("bob@example.com") == "bob"
    assert config.person_for_email("mallory@example.com") is None


def test_every_problem_is_named_at_once(tmp_path):
    bad = GOOD.replace('"C0APPROVALS"', '"#approvals"').replace('"alice@example.com"', '"alice"') \
        .replace("[people]", "[people]\ncarol = 3").replace('audit_channel = "C0AUDIT"', 'audit_channel = "C0AUDIT"\ncolour = "red"') \
        .replace('"C0PRODONLY"', '"prod-approvals"')
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, bad), {})
    lines = str(err.value).splitlines()
    assert lines == ["[slack]: unknown setting 'colour'; known: audit_channel, channel",
                     "[slack] channel: '#approvals' is not a Slack channel id (like C0123ABCD)",
                     "[people] carol: 3 is not an email address",
                     "[people] alice: 'alice' is not an email address",
                     "[policies] of target prod: slack_channel 'prod-approvals' is not a Slack channel id"]


def test_secrets_come_from_the_environment(tmp_path):
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"):
        secrets({}, socket_mode=False)
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        secrets({"SLACK_BOT_TOKEN": "xoxb-1"}, socket_mode=True)
    found = secrets({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
                     "COUNTERSIGN_SLACK_API_URL": "http://127.0.0.1:9/api"}, socket_mode=False)
    assert (found.bot_token, found.api_url) == ("xoxb-1", "http://127.0.0.1:9/api/")


def test_config_check_calls_auth_test(tmp_path):
    path = write(tmp_path, GOOD)
    with SlackEmulator() as slack:
        env = {"SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": "s", "COUNTERSIGN_SLACK_API_URL": slack.base_url}
        assert slack_problems(path, env, connect=True) == []
        assert [c.method for c in slack.calls()] == ["auth.test"]
        wrong = slack_problems(path, {**env, "SLACK_BOT_TOKEN": "xoxb-revoked"}, connect=True)
        assert wrong == ["Slack refuses SLACK_BOT_TOKEN: invalid_auth (HTTP 200)"]
    assert slack_problems(path, {}, connect=False) == ["SLACK_BOT_TOKEN is not set"]


def test_the_config_check_command_runs_the_slack_checks(tmp_path):
    """`countersign config check` itself: every Slack problem listed, exit 2; with --connect, auth.test."""
    from tests.cli_helpers import cli_env, countersign
    path = write(tmp_path, GOOD.replace("sqlite:///", f"sqlite:///{tmp_path}/"))   # --connect creates them
    failed = countersign("config", "check", "--config", str(path), env=cli_env(tmp_path))
    assert failed.returncode == 2 and "slack: SLACK_BOT_TOKEN is not set" in failed.stderr
    with SlackEmulator() as slack:
        env = cli_env(tmp_path, SLACK_BOT_TOKEN=slack.token, SLACK_SIGNING_SECRET="s",
                      COUNTERSIGN_SLACK_API_URL=slack.base_url)
        ok = countersign("config", "check", "--config", str(path), "--connect", env=env)
        assert ok.returncode == 0, ok.stderr
        assert "auth.test" in [c.method for c in slack.calls()]

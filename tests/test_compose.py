"""docker-compose.yml for a team: valid for compose (which checks it without a Docker engine), wired only
to the variables .env.example documents, with secrets never written into it, and a deploy config that
`countersign config check` and `countersign serve` accept."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service import slack_settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE, ENV_EXAMPLE, DEPLOY_CONFIG = REPO / "docker-compose.yml", REPO / ".env.example", REPO / "deploy" / "countersign.toml"
TEAM = ("countersign-upgrade", "countersign")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|_URL$")
INTERPOLATED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def documented() -> dict[str, str]:
    """.env.example's NAME=value lines."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def clean_env(**extra: str) -> dict[str, str]:
    """A bare environment: a variable of the shell running the tests must not stand in for .env.example."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"), **extra}


def compose_command() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        if os.environ.get("CI") == "true":
            pytest.fail("neither `docker compose` nor `docker-compose` works; .ci/run installs Debian's docker-compose")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)")
    return command


def _config(compose: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*compose, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", *args],
                          cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)


def test_the_compose_file_is_valid_with_the_documented_variables(compose):
    checked = _config(compose, "-q")
    assert checked.returncode == 0, checked.stderr
    assert "not set" not in checked.stderr, checked.stderr       # no variable it uses is missing


def test_compose_hands_the_service_exactly_what_env_example_says(compose):
    resolved = _config(compose)
    assert resolved.returncode == 0, resolved.stderr
    env = yaml.safe_load(resolved.stdout)["services"]["countersign"]["environment"]
    expected = {name: value for name, value in documented().items() if name in env}
    assert {name: env[name] for name in expected} == expected
    assert env["COUNTERSIGN_CONFIG"] == "/etc/countersign/countersign.toml"


def test_the_team_services_use_only_documented_variables_and_hold_no_secret():
    """A token or password pasted into docker-compose.yml would be committed: every secret-looking
    variable must come from .env, by its own name, and every name the file uses is documented."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    names = documented()
    used = set()
    for name in TEAM:
        service = services[name]
        referenced = set(INTERPOLATED.findall(json.dumps(service)))
        assert referenced <= set(names), f"{name} uses {sorted(referenced - set(names))}, not in .env.example"
        used |= referenced
        for variable, value in service["environment"].items():
            if SECRET_NAME.search(variable) or variable in names:
                assert str(value).startswith(f"${{{variable}"), f"{name}: {variable} must come from .env"
    assert set(names) <= used, f".env.example documents {sorted(set(names) - used)}, which compose never uses"
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "COUNTERSIGN_AUDIT_KEY_FILE",
            "COUNTERSIGN_AUDIT_ANCHOR_FILE"} <= set(services["countersign"]["environment"])


def test_the_key_and_the_anchors_live_on_separate_volumes():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    mounts = dict(reversed(m.split(":")[:2]) for m in services["countersign"]["volumes"])
    names = documented()
    key_dir = str(Path(names["COUNTERSIGN_AUDIT_KEY_FILE"]).parent)
    anchor_dir = str(Path(names["COUNTERSIGN_AUDIT_ANCHOR_FILE"]).parent)
    assert mounts[key_dir] == "audit-key" and mounts[anchor_dir] == "audit-anchors"
    assert "audit-key" not in json.dumps(services["countersign-upgrade"])     # only the service holds the key


def test_the_test_servers_keep_their_documented_ports():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    ports = {name: services[name]["ports"] for name in ("postgres", "mariadb", "mongo", "store")}
    assert ports == {"postgres": ["127.0.0.1:55432:5432"], "mariadb": ["127.0.0.1:53306:3306"],
                     "mongo": ["127.0.0.1:57017:27017"], "store": ["127.0.0.1:55433:5432"]}
    assert all("profiles" not in services[name] for name in ports)     # `docker compose up -d` starts them


def test_the_deploy_config_passes_config_check():
    checked = subprocess.run([sys.executable, "-m", "console.cli", "config", "check", "--config", str(DEPLOY_CONFIG)],
                             cwd=REPO, env=clean_env(**documented()), capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[-1] == f"{DEPLOY_CONFIG}: OK"


def test_serve_accepts_the_deploy_config():
    env = documented()
    settings, config = slack_settings.load(DEPLOY_CONFIG, env)
    assert settings.store_url == env["COUNTERSIGN_STORE_URL"]
    assert sorted(settings.targets) == ["deploys-demo", "orders-demo"]
    assert config.channel and config.audit_channel and config.people
    assert slack_settings.secrets(env, socket_mode=False).bot_token == env["SLACK_BOT_TOKEN"]


def test_the_image_runs_as_its_own_user_and_never_takes_a_local_env_file():
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert not re.search(r"^COPY\s+\.\s", dockerfile, re.MULTILINE)      # only the package's own directories
    assert ".env" in (REPO / ".dockerignore").read_text().split()

"""The Slack part of `countersign config check`: every problem at once, and (with --connect) auth.test.

`countersign config check` calls `slack_problems(path, env, connect=...)` and prints each line.
"""
from __future__ import annotations

from pathlib import Path

from config.settings import ConfigError
from service.slack_settings import load, secrets


def slack_problems(path: Path, env: dict[str, str], *, connect: bool) -> list[str]:
    """What is wrong with [slack], [people] and the Slack secrets; [] when nothing is (or no Slack)."""
    try:
        _, config = load(path, env)
    except ConfigError as err:
        return str(err).splitlines()
    if not (config.channel or config.audit_channel):
        return []
    problems = [] if config.people else ["[people] is empty: no Slack user can approve anything"]
    if not env.get("SLACK_BOT_TOKEN"):
        return problems + ["SLACK_BOT_TOKEN is not set"]
    if not (env.get("SLACK_SIGNING_SECRET") or env.get("SLACK_APP_TOKEN")):
        problems.append("set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (--socket-mode)")
    return problems + (_auth_problems(env) if connect else [])


def _auth_problems(env: dict[str, str]) -> list[str]:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
    api = secrets({**env, "SLACK_SIGNING_SECRET": "-"}, socket_mode=False).api_url
    try:
        WebClient(token=env["SLACK_BOT_TOKEN"], base_url=api).auth_test()
    except SlackApiError as err:
        return [f"Slack refuses SLACK_BOT_TOKEN: {err.response.get('error')} (HTTP {err.response.status_code})"]
    except OSError as err:
        return [f"cannot reach Slack at {api}: {err}"]
    return []

"""One frozen Settings object, loaded once from a TOML file and the environment.

Secrets never live in the file: a target names the environment variable that holds its URL
(``url_env``); a literal ``url`` is accepted only when it carries no password.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from classify.statements import Kind

NON_READ_KINDS = tuple(k for k in Kind if k not in (Kind.READ,))
ENVIRONMENTS = ("production", "staging", "development", "demo")


class ConfigError(Exception):
    """The configuration is wrong; the message says where and how to fix it."""


@dataclass(frozen=True)
class Policy:
    name: str = "default"
    # Kinds that need a second person's approval. Reads never do; session/transaction statements that
    # the classifier already marks harmless don't either.
    approval_kinds: tuple[Kind, ...] = NON_READ_KINDS
    approvals: int = 1                              # N-of-M: how many distinct approvers
    approvers: tuple[str, ...] = ()                 # empty: anyone except the requester
    approval_lifetime: timedelta = timedelta(minutes=30)
    statement_timeout: timedelta = timedelta(seconds=60)
    max_write_rows: int | None = 100_000            # the row cap for one write
    over_row_cap: str = "refuse"                    # refuse | extra-approval
    row_tolerance: int = 0                          # rows a write may exceed its approved count by
    blocked: tuple[str, ...] = ()                   # regexes; a matching statement never runs
    snapshot_above_rows: int = 1                    # snapshot writes touching more rows than this
    snapshot_max_rows: int = 5_000_000              # over this the write needs another approval
    allow_unsnapshotted: bool = False               # run a write the planner cannot snapshot?
    snapshot_retention: timedelta = timedelta(days=30)  # `snapshots prune` drops snapshots older than this
    require_reason: bool = False                    # ask for a reason at session start
    max_display_rows: int = 1000
    slack_channel: str | None = None                # approval requests go here instead of [slack] channel

    @property
    def statement_timeout_ms(self) -> int:
        return int(self.statement_timeout.total_seconds() * 1000)


@dataclass(frozen=True)
class Target:
    name: str
    url: str = field(repr=False)
    dialect: str
    environment: str
    policy: Policy

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


@dataclass(frozen=True)
class Settings:
    store_url: str | None
    targets: dict[str, Target]
    secret_patterns: tuple[str, ...] = ()           # history never stores literals matching these
    source: Path | None = None                      # the config file, if any
    slack_channel: str | None = None                # [slack] channel: where approval requests go

    def reviewers_for(self, target: Target) -> str:
        """Where a target's approval requests are decided: "local" (the approvals CLI), or
        "slack:<channel>" when `countersign serve` posts them (a policy may name its own channel)."""
        channel = target.policy.slack_channel or self.slack_channel
        return f"slack:{channel}" if channel else "local"


def parse_duration(value: str | int | float, where: str) -> timedelta:
    """'30m' -> 30 minutes.

    >>> parse_duration("90s", "x").total_seconds(), parse_duration("2h", "x").total_seconds()
    (90.0, 7200.0)
    """
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(value))
    if not match:
        raise ConfigError(f"{where}: {value!r} is not a duration; write e.g. '500ms', '30s', '15m', '2h', '7d'")
    number, unit = float(match.group(1)), match.group(2) or "s"
    seconds = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return timedelta(seconds=number * seconds)


def dialect_of(url: str) -> str:
    """The URL's dialect, from the one table of engines (the same one that opens the driver)."""
    from engines.registry import UnsupportedURL, engine_for_url
    try:
        return engine_for_url(url).dialect
    except UnsupportedURL as err:
        raise ConfigError(str(err)) from None


def policy_from_table(name: str, table: dict) -> Policy:
    where = f"[policies.{name}]"
    known = set(Policy.__dataclass_fields__) - {"name"}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    values: dict = {"name": name}
    for key, raw in table.items():
        if key == "approval_kinds":
            try:
                values[key] = tuple(Kind(k) for k in raw)
            except ValueError as err:
                raise ConfigError(f"{where} approval_kinds: {err}; kinds are {', '.join(Kind)}") from None
        elif key in ("approval_lifetime", "statement_timeout", "snapshot_retention"):
            values[key] = parse_duration(raw, f"{where} {key}")
        elif key in ("approvers", "blocked"):
            values[key] = tuple(raw)
        else:
            values[key] = raw
    policy = Policy(**values)
    _check_policy(policy, where)
    return policy


def _check_policy(policy: Policy, where: str) -> None:
    if policy.approvals < 1:
        raise ConfigError(f"{where}: approvals must be at least 1")
    if policy.approvers and len(policy.approvers) < policy.approvals:
        raise ConfigError(f"{where}: {policy.approvals} approvals needed but only {len(policy.approvers)} approvers listed")
    if policy.over_row_cap not in ("refuse", "extra-approval"):
        raise ConfigError(f"{where}: over_row_cap must be 'refuse' or 'extra-approval'")
    for pattern in policy.blocked:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"{where}: blocked pattern {pattern!r} is not a valid regex: {err}") from None


KNOWN_SECTIONS = {"store", "history", "targets", "policies", "slack", "people"}  # [slack], [people]: service/slack_settings.py
TARGET_KEYS = {"url", "url_env", "dialect", "environment", "policy"}


def target_from_table(name: str, table: dict, policies: dict[str, Policy], env: dict[str, str]) -> Target:
    where = f"[targets.{name}]"
    unknown = set(table) - TARGET_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(TARGET_KEYS))}")
    url = _target_url(where, table, env)
    dialect = table.get("dialect") or dialect_of(url)
    if dialect != dialect_of(url):
        raise ConfigError(f"{where}: dialect {dialect!r} does not match the URL's scheme ({dialect_of(url)})")
    environment = table.get("environment", "production")  # unknown means treat it as production
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"{where}: environment must be one of {', '.join(ENVIRONMENTS)}")
    policy_name = table.get("policy", "default")
    if policy_name not in policies:
        raise ConfigError(f"{where}: policy {policy_name!r} is not defined; add [policies.{policy_name}]")
    return Target(name, url, dialect, environment, policies[policy_name])


def _target_url(where: str, table: dict, env: dict[str, str]) -> str:
    if "url_env" in table:
        var = table["url_env"]
        if not env.get(var):
            raise ConfigError(f"{where}: environment variable {var} is not set; export it with the database URL")
        return env[var]
    if "url" in table:
        if urlsplit(table["url"]).password:
            raise ConfigError(f"{where}: the url contains a password; put the URL in an environment variable "
                              f"and name it with url_env")
        return table["url"]
    raise ConfigError(f"{where}: needs url_env (the name of an environment variable holding the URL) or url")


def load_settings(path: Path | None, env: dict[str, str] | None = None) -> Settings:
    """Read the config file (if any) and the environment. Raises ConfigError naming what is wrong."""
    env = dict(os.environ) if env is None else env
    if path is None:
        return Settings(store_url=env.get("COUNTERSIGN_STORE"), targets={})
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    errors: list[str] = []   # every problem at once, so one `config check` shows all of them
    unknown = set(data) - KNOWN_SECTIONS
    if unknown:
        errors.append(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN_SECTIONS))}")
    policies, broken = {"default": Policy()}, set()
    for name, table in data.get("policies", {}).items():
        try:
            policies[name] = policy_from_table(name, table)
        except ConfigError as err:
            errors.append(str(err))
            broken.add(name)
    targets = {}
    for name, table in data.get("targets", {}).items():
        if table.get("policy") in broken:
            errors.append(f"[targets.{name}]: its policy {table['policy']!r} has the error(s) above")
            continue
        try:
            targets[name] = target_from_table(name, table, policies, env)
        except ConfigError as err:
            errors.append(str(err))
    try:
        store_url = env.get("COUNTERSIGN_STORE") or _store_url(data.get("store", {}), env)
    except ConfigError as err:
        errors.append(str(err))
    if errors:
        raise ConfigError("\n".join(errors))
    secrets = tuple(data.get("history", {}).get("secret_patterns", ()))
    slack = data.get("slack", {})
    channel = slack.get("channel") if isinstance(slack, dict) else None
    return Settings(store_url=store_url, targets=targets, secret_patterns=secrets, source=path,
                    slack_channel=channel if isinstance(channel, str) else None)


def _store_url(store: dict, env: dict[str, str]) -> str | None:
    if "url_env" in store:
        if not env.get(store["url_env"]):
            raise ConfigError(f"[store]: environment variable {store['url_env']} is not set")
        return env[store["url_env"]]
    return store.get("url")


def config_path(cli_value: str | None, env: dict[str, str] | None = None) -> Path | None:
    env = dict(os.environ) if env is None else env
    value = cli_value or env.get("COUNTERSIGN_CONFIG")
    return Path(value).expanduser() if value else None


def target_from_url(url: str) -> Target:
    """A bare URL on the command line: the default policy (every non-read needs one approval)."""
    return Target(name=_display_url(url), url=url, dialect=dialect_of(url),
                  environment="production" if not url.startswith("sqlite") else "development",
                  policy=Policy())


def _display_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return url
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def resolve_target(settings: Settings, name_or_url: str) -> Target:
    if name_or_url in settings.targets:
        return settings.targets[name_or_url]
    if "://" in name_or_url:
        return target_from_url(name_or_url)
    known = ", ".join(sorted(settings.targets)) or "none configured"
    raise ConfigError(f"unknown target {name_or_url!r} (targets: {known}); give a configured name or a URL "
                      "such as postgresql://user@host/db")

"""One frozen Settings object, loaded once from a TOML file and the environment.

Secrets never live in the file: a target names the environment variable that holds its URL
(``url_env``); a literal ``url`` is accepted only when it carries no password. The file's types,
ranges and enums are checked by the schema in config/schema.py; this module then checks what needs
the environment (URLs, policies named by targets) and builds the frozen values the rest of the code uses.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from classify.statements import Kind
# config.schema (pydantic) is imported where a config file is read, not here: without one (the demo,
# a URL target) the console's prompt must not wait ~80 ms for it.

NON_READ_KINDS = tuple(k for k in Kind if k not in (Kind.READ,))


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
    snapshot_above_rows: int = 0                    # snapshot writes touching more rows than this (0: all)
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
class ServerSettings:
    """[server]: the team service's URL (for a console) and its roles (for the service)."""
    url: str | None = None
    admins: tuple[str, ...] = ()
    auditors: tuple[str, ...] = ()
    login_lifetime: timedelta = timedelta(hours=12)
    login_window: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Settings:
    store_url: str | None
    targets: dict[str, Target]
    secret_patterns: tuple[str, ...] = ()           # history never stores literals matching these
    source: Path | None = None                      # the config file, if any
    slack_channel: str | None = None                # [slack] channel: where approval requests go
    server: ServerSettings = ServerSettings()

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
    from config.schema import duration
    try:
        return duration(value)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def dialect_of(url: str) -> str:
    """The URL's dialect, from the one table of engines (the same one that opens the driver)."""
    from engines.registry import UnsupportedURL, engine_for_url
    try:
        return engine_for_url(url).dialect
    except UnsupportedURL as err:
        raise ConfigError(str(err)) from None


def check_url(url: str, where: str) -> str:
    """A URL whose parts can be read (a port that is a number); the error never shows a password.

    >>> check_url("postgresql://x@127.0.0.1:notaport/db", "COUNTERSIGN_STORE")
    Traceback (most recent call last):
    ...
    config.settings.ConfigError: COUNTERSIGN_STORE: the URL's port is not a number from 0 to 65535; fix the URL
    """
    try:
        urlsplit(url).port
    except ValueError:
        raise ConfigError(f"{where}: the URL's port is not a number from 0 to 65535; fix the URL") from None
    return url


def policy_from_table(name: str, table: dict) -> Policy:
    """One [policies.NAME] table -> a Policy; every problem in it in one ConfigError."""
    from config.schema import PolicyTable, validate
    checked, errors = validate(PolicyTable, table, f"[policies.{name}]")
    if checked is None:
        raise ConfigError("\n".join(errors))
    return _policy(name, checked)


def _policy(name: str, checked: PolicyTable) -> Policy:
    values = checked.model_dump(exclude_unset=True)
    if "approval_kinds" in values:
        values["approval_kinds"] = tuple(Kind(k) for k in values["approval_kinds"])
    for key in ("approvers", "blocked"):
        if key in values:
            values[key] = tuple(values[key])
    return Policy(name=name, **values)


def target_from_table(name: str, table: dict, policies: dict[str, Policy], env: dict[str, str]) -> Target:
    """One [targets.NAME] table -> a Target: its types by the schema, then its URL, dialect and policy."""
    from config.schema import TargetTable, validate
    where = f"[targets.{name}]"
    checked, errors = validate(TargetTable, table, where)
    if checked is None:
        raise ConfigError("\n".join(errors))
    url = check_url(_target_url(where, checked, env), where)
    dialect = checked.dialect or dialect_of(url)
    if dialect != dialect_of(url):
        raise ConfigError(f"{where}: dialect {dialect!r} does not match the URL's scheme ({dialect_of(url)})")
    if checked.policy not in policies:
        raise ConfigError(f"{where}: policy {checked.policy!r} is not defined; add [policies.{checked.policy}]")
    return Target(name, url, dialect, checked.environment, policies[checked.policy])


def _target_url(where: str, checked: TargetTable, env: dict[str, str]) -> str:
    if checked.url_env is not None:
        var = checked.url_env
        if not env.get(var):
            raise ConfigError(f"{where}: environment variable {var} is not set; export it with the database URL")
        return env[var]
    if checked.url is not None:
        if _has_password(checked.url):
            raise ConfigError(f"{where}: the url contains a password; put the URL in an environment variable "
                              f"and name it with url_env")
        return checked.url
    raise ConfigError(f"{where}: needs url_env (the name of an environment variable holding the URL) or url")


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False          # check_url names what is wrong with it


def load_settings(path: Path | None, env: dict[str, str] | None = None) -> Settings:
    """Read the config file (if any) and the environment. Raises ConfigError naming every problem."""
    env = dict(os.environ) if env is None else env
    if path is None:
        store_url = env.get("COUNTERSIGN_STORE")
        return Settings(store_url=store_url and check_url(store_url, "COUNTERSIGN_STORE"), targets={})
    from config.schema import ConfigFile, validate
    data = read_toml(path)
    checked, errors = validate(ConfigFile, data, "")   # every problem at once, for `config check`
    policies, broken = {"default": Policy()}, set()
    for name, table in _tables(data, "policies").items():
        try:
            policies[name] = policy_from_table(name, table)
        except ConfigError as err:
            errors.append(str(err))
            broken.add(name)
    targets = {}
    for name, table in _tables(data, "targets").items():
        if table.get("policy") in broken:
            errors.append(f"[targets.{name}]: its policy {table['policy']!r} has the error(s) above")
            continue
        try:
            targets[name] = target_from_table(name, table, policies, env)
        except ConfigError as err:
            errors.append(str(err))
    try:
        store_url = _store_url(checked.store if checked else None, env)
    except ConfigError as err:
        errors.append(str(err))
    if errors:
        raise ConfigError("\n".join(errors))
    return Settings(store_url=store_url, targets=targets, secret_patterns=tuple(checked.history.secret_patterns),
                    source=path, slack_channel=_slack_channel(checked.slack),
                    server=_server(checked.server))


def _server(table) -> ServerSettings:
    return ServerSettings(url=table.url, admins=tuple(table.admins), auditors=tuple(table.auditors),
                          login_lifetime=table.login_lifetime, login_window=table.login_window)


def read_toml(path: Path) -> dict:
    """The file's TOML; a missing, unreadable, non-UTF-8 or malformed file is one ConfigError."""
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory; pass the TOML file inside it") from None
    except PermissionError:
        raise ConfigError(f"config file {path} cannot be read (permission denied)") from None
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        line = err.object[:err.start].count(b"\n") + 1
        raise ConfigError(f"config file {path} is not UTF-8 text (line {line}, byte {err.start}); "
                          "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def _tables(data: dict, section: str) -> dict[str, dict]:
    """The tables of [section.NAME]; what is not a table is reported by the schema."""
    tables = data.get(section)
    return {name: t for name, t in tables.items() if isinstance(t, dict)} if isinstance(tables, dict) else {}


def _slack_channel(slack: dict) -> str | None:
    channel = slack.get("channel")
    return channel if isinstance(channel, str) else None


def _store_url(store, env: dict[str, str]) -> str | None:
    if env.get("COUNTERSIGN_STORE"):
        return check_url(env["COUNTERSIGN_STORE"], "COUNTERSIGN_STORE")
    if store is None:
        return None           # [store] itself is wrong: the schema said how
    if store.url_env is not None:
        if not env.get(store.url_env):
            raise ConfigError(f"[store]: environment variable {store.url_env} is not set")
        return check_url(env[store.url_env], f"[store] url_env {store.url_env}")
    if store.url is not None and _has_password(store.url):
        raise ConfigError("[store]: the url contains a password; put the URL in an environment variable "
                          "and name it with url_env")
    return store.url and check_url(store.url, "[store] url")


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
        return target_from_url(check_url(name_or_url, "the target URL"))
    known = ", ".join(sorted(settings.targets)) or "none configured"
    raise ConfigError(f"unknown target {name_or_url!r} (targets: {known}); give a configured name or a URL "
                      "such as postgresql://user@host/db")

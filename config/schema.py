"""The configuration file's schema: what each TOML table may hold, checked strictly (pydantic v2).

Strict means a value is taken only in the type it is documented with: ``approvers = "bob"`` is not a
list of one-letter names, ``allow_unsnapshotted = "no"`` is not true, ``approvals = "2"`` or ``1.5`` is
not a number of approvers. ``problems`` turns pydantic's errors into one line each, with its TOML path,
and never echoes a value it was not asked about (URLs are masked).

>>> _, lines = validate(PolicyTable, {"approvals": 1.5, "approvers": "bob"}, "[policies.p]")
>>> lines
['[policies.p]: approvals 1.5 is not a whole number', "[policies.p]: approvers 'bob' is not a list; write ['bob']"]
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      model_validator)

from classify.kinds import Kind
from classify.statements import DIALECTS

ENVIRONMENTS = ("production", "staging", "development", "demo")
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: Any) -> timedelta:
    """'30m', '500ms', '2h', '7d' or a number of seconds -> a timedelta; anything else is refused.

    >>> duration("90s").total_seconds(), duration(5).total_seconds()
    (90.0, 5.0)
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration; write e.g. '500ms', '30s', '15m', '2h', '7d'")
    return timedelta(seconds=float(match.group(1)) * UNIT_SECONDS[match.group(2) or "s"])


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be longer than 0s (got {value.total_seconds():g}s)")
    return value


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValueError(f"{pattern!r} is not a valid regex: {err}") from None
    return pattern


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Duration = Annotated[timedelta, BeforeValidator(duration), AfterValidator(_positive)]
Regex = Annotated[str, AfterValidator(_regex)]
Name = Annotated[str, AfterValidator(_name)]
Count = Annotated[int, Field(ge=0)]
KindName = Literal[tuple(str(k) for k in Kind)]        # read, write, ddl, ... (the classifier's kinds)


class Table(BaseModel):
    """One TOML table: exact types, no unknown keys."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PolicyTable(Table):
    approval_kinds: list[KindName] | None = None    # None: every kind but read
    approvals: int = Field(1, ge=1)                  # N distinct approvers
    approvers: list[Name] = []
    approval_lifetime: Duration = timedelta(minutes=30)
    statement_timeout: Duration = timedelta(seconds=60)
    max_write_rows: int = Field(100_000, ge=1)
    over_row_cap: Literal["refuse", "extra-approval"] = "refuse"
    row_tolerance: Count = 0
    blocked: list[Regex] = []
    snapshot_above_rows: Count = 0
    snapshot_max_rows: Count = 5_000_000
    allow_unsnapshotted: bool = False
    snapshot_retention: Duration = timedelta(days=30)
    require_reason: bool = False
    max_display_rows: int = Field(1000, ge=1)
    slack_channel: str | None = None                # its format is checked with [slack] (service/slack_settings.py)

    @model_validator(mode="after")
    def _enough_approvers(self) -> "PolicyTable":
        twice = sorted({name for name in self.approvers if self.approvers.count(name) > 1})
        if twice:
            raise ValueError(f"approvers lists {', '.join(map(repr, twice))} more than once")
        if self.approvers and len(self.approvers) < self.approvals:
            raise ValueError(f"{self.approvals} approvals needed but only {len(self.approvers)} approvers listed")
        return self


class TargetTable(Table):
    url: str | None = None                          # only without a password
    url_env: Name | None = None                     # the environment variable holding the URL
    dialect: Literal[DIALECTS] | None = None        # checked against the URL's scheme
    environment: Literal[ENVIRONMENTS] = "production"   # unknown means treat it as production
    policy: Name = "default"


class StoreTable(Table):
    url: str | None = None
    url_env: Name | None = None


class ServerTable(Table):
    """[server]: on a console, where the team's service is; on the service, who holds which role."""
    url: str | None = None                          # a console in team mode talks only to this service
    admins: list[Name] = []                         # may issue and revoke tokens for others
    auditors: list[Name] = []                       # may read the auditor pages
    login_lifetime: Duration = timedelta(hours=12)  # a `countersign login` token lives this long
    login_window: Duration = timedelta(minutes=5)   # time to confirm a login in Slack


class HistoryTable(Table):
    secret_patterns: list[Regex] = []


class ConfigFile(Table):
    store: StoreTable = StoreTable()
    history: HistoryTable = HistoryTable()
    server: ServerTable = ServerTable()
    # Tables of tables: each one is validated on its own (PolicyTable, TargetTable) so that one bad
    # policy does not hide the next, and errors come in the file's order.
    targets: dict[str, dict[str, Any]] = {}
    policies: dict[str, dict[str, Any]] = {}
    slack: dict[str, Any] = {}                      # checked by service/slack_settings.py
    people: dict[str, Any] = {}                     # likewise


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], table: Any, where: str) -> tuple[M | None, list[str]]:
    """The validated table, or None and one line per problem, each starting with ``where``."""
    try:
        return model.model_validate(table), []
    except ValidationError as err:
        return None, problems(model, err, where)


def problems(model: type[BaseModel], err: ValidationError, where: str) -> list[str]:
    """pydantic's errors as lines: ``[policies.p]: approvals must be at least 1``; the unknown keys of
    one table are gathered on one line that lists the known ones. ``where`` is "" for the whole file."""
    lines, unknown = [], {}
    for error in err.errors():
        if error["type"] == "extra_forbidden":
            table = error["loc"][:-1]
            unknown.setdefault(table, []).append(str(error["loc"][-1]))
        else:
            lines.append(f"{_where(where, error['loc'])} {_message(error)}")
    for table, keys in reversed(unknown.items()):
        known = ", ".join(sorted(_model_at(model, table).model_fields))
        word = "section" if not where and not table else "setting"
        prefix = _where(where, table) if where or table else ""
        lines.insert(0, f"{prefix + ' ' if prefix else ''}unknown {word}(s) {', '.join(keys)}; known: {known}")
    return lines


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The table model found at ``loc`` (``("store",)`` in ConfigFile -> StoreTable)."""
    for part in loc:
        model = model.model_fields[part].annotation
    return model


def _where(where: str, loc: tuple) -> str:
    """``("blocked", 0)`` under ``[policies.p]`` -> ``[policies.p]: blocked[0]``; with no path,
    ``[policies.p]:``; in the whole file (``where`` is ""), ``("store", "url")`` -> ``[store]: url``."""
    if not where and loc:
        where, loc = f"[{loc[0]}]", loc[1:]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return f"{where}: {path}" if path else f"{where}:"


def _message(error: dict) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    shown = _shown(value)
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("int_type", "int_from_float", "int_parsing"):
        hint = f" (write {value} without quotes)" if isinstance(value, str) and value.strip().isdigit() else ""
        return f"{shown} is not a whole number{hint}"
    if kind == "bool_type":
        return f"{shown} is not true or false (write true or false, without quotes)"
    if kind in ("list_type", "tuple_type"):
        return f"{shown} is not a list; write [{shown}]"
    if kind in ("dict_type", "model_type"):
        return f"{shown} is not a table"
    if kind == "string_type":
        return f"{shown} is not a string (put it in quotes)"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '').replace(chr(39), '')} (not {shown})"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "missing":
        return "is required"
    return error["msg"]


def _shown(value: Any) -> str:
    """A value as it may be printed: a URL-looking string masked, anything long cut."""
    if isinstance(value, str) and "://" in value:
        from engines import mask_url
        value = mask_url(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""psql-style backslash commands. Each returns lines to print; the REPL owns the screen.

>>> state = ShellState()
>>> run_meta("\\\\x", None, state), state.expanded
(['Expanded display is on.'], True)
>>> run_meta("\\\\timing off", None, state)
['Timing is off.']
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

from engines.base import ResultSet
from console.render import table

HELP = """\
  \\dt [PATTERN]    list tables (PATTERN may use * and ?)
  \\d TABLE         describe a table (columns, types, primary key)
  \\x [on|off]      toggle expanded output
  \\timing [on|off] toggle timing of statements
  \\pending         this session's approval requests
  \\q               quit (Ctrl-D works too)
  \\?               this help
SQL statements end with ';' and may span several lines. Reads run at once in a read-only
transaction; anything that can change data waits for a second person's approval
(`countersign approvals approve ID` in another terminal).
Ctrl-C cancels a running statement on the server, or stops waiting for an approval (the request
stays open); at the prompt it clears the line."""


@dataclass
class ShellState:
    expanded: bool = False
    timing: bool = True
    quit: bool = False
    block: list | None = None      # statements typed since BEGIN, run as one transaction at COMMIT


def run_meta(line: str, pipeline, state: ShellState) -> list[str]:
    command, _, argument = line.strip().partition(" ")
    handler: Callable | None = COMMANDS.get(command)
    if handler is None:
        return [f"unknown command {command}; \\? lists the commands"]
    return handler(argument.strip(), pipeline, state)


def _quit(_arg, _pipeline, state: ShellState) -> list[str]:
    state.quit = True
    return []


def _help(_arg, _pipeline, _state) -> list[str]:
    return HELP.splitlines()


def _switch(argument: str, current: bool) -> bool | None:
    """'' flips the setting, 'on'/'off' set it; anything else is None (not understood)."""
    if not argument:
        return not current
    return {"on": True, "off": False}.get(argument.lower())


def _toggle_expanded(argument, _pipeline, state: ShellState) -> list[str]:
    value = _switch(argument, state.expanded)
    if value is None:
        return [f"\\x: unrecognised value {argument!r}; use on or off"]
    state.expanded = value
    return [f"Expanded display is {'on' if value else 'off'}."]


def _toggle_timing(argument, _pipeline, state: ShellState) -> list[str]:
    value = _switch(argument, state.timing)
    if value is None:
        return [f"\\timing: unrecognised value {argument!r}; use on or off"]
    state.timing = value
    return [f"Timing is {'on' if value else 'off'}."]


def _tables(argument, pipeline, _state) -> list[str]:
    pattern = (argument or "*").lower()
    found = [t for t in pipeline.catalog().tables
             if fnmatch.fnmatchcase(t.name.lower(), pattern)
             or fnmatch.fnmatchcase(f"{t.schema}.{t.name}".lower(), pattern)]
    if not found:
        return [f'Did not find any table named "{argument}".' if argument else "No tables."]
    if any(t.schema for t in found):
        rows = tuple((t.schema or "", t.name, len(t.columns)) for t in found)
        return table(ResultSet(("schema", "table", "columns"), rows, len(rows)))
    rows = tuple((t.name, len(t.columns)) for t in found)
    return table(ResultSet(("table", "columns"), rows, len(rows)))


def _describe(argument, pipeline, state) -> list[str]:
    if not argument:
        return _tables(argument, pipeline, state)
    found = pipeline.catalog().table(argument)
    if found is None:
        return [f'Did not find any table named "{argument}". \\dt lists the tables.']
    rows = tuple((c.name, c.type, "" if c.nullable else "not null",
                  "PK" if c.name in found.primary_key else "") for c in found.columns)
    title = f'Table "{found.schema + "." if found.schema else ""}{found.name}"'
    key = f"Primary key: ({', '.join(found.primary_key)})" if found.primary_key else "No primary key."
    return [title] + table(ResultSet(("column", "type", "nullable", "key"), rows, len(rows))) + [key]


def _pending(_arg, pipeline, _state) -> list[str]:
    requests = pipeline.pending()
    if not requests:
        return ["No approval requests in this session."]
    rows = tuple((r.id, r.status, f"{sum(v.verdict == 'approve' for v in r.votes)}/{r.required_approvals}",
                  "?" if r.estimated_rows is None else r.estimated_rows, _abbrev(r.statement))
                 for r in requests)
    return table(ResultSet(("request", "status", "approvals", "rows", "statement"), rows, len(rows)))


def _abbrev(text: str, width: int = 60) -> str:
    """One line for the \\pending table: secrets redacted (the default patterns) and control or
    bidirectional characters shown as escapes, as every other view of a statement does.

    >>> _abbrev("UPDATE users SET password = 'hunter2'\\x1b[2K WHERE id = 1")
    "UPDATE users SET password = '<redacted>'\\\\x1b[2K WHERE id = 1"
    """
    from console.redact import redact, secret_patterns
    from console.render import visible
    flat = visible(" ".join(redact(text, secret_patterns(())).split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


COMMANDS = {
    "\\q": _quit, "\\?": _help, "\\x": _toggle_expanded, "\\timing": _toggle_timing,
    "\\dt": _tables, "\\d": _describe, "\\pending": _pending,
}

"""psql-style backslash commands. Each returns lines to print; the REPL owns the screen."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from console.drivers.base import ResultSet
from console.render import table

HELP = """\
  \\dt              list tables
  \\d TABLE         describe a table (columns, types, primary key)
  \\x               toggle expanded output
  \\timing          toggle timing of statements
  \\pending         this session's approval requests
  \\q               quit (Ctrl-D works too)
  \\?               this help
SQL statements end with ';'. Reads run at once in a read-only transaction; anything that can change
data waits for a second person's approval (`countersign approvals approve ID` in another terminal)."""


@dataclass
class ShellState:
    expanded: bool = False
    timing: bool = True
    quit: bool = False
    messages: list[str] = field(default_factory=list)


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


def _toggle_expanded(_arg, _pipeline, state: ShellState) -> list[str]:
    state.expanded = not state.expanded
    return [f"Expanded display is {'on' if state.expanded else 'off'}."]


def _toggle_timing(_arg, _pipeline, state: ShellState) -> list[str]:
    state.timing = not state.timing
    return [f"Timing is {'on' if state.timing else 'off'}."]


def _tables(_arg, pipeline, _state) -> list[str]:
    rows = tuple((t.schema or "", t.name, len(t.columns)) for t in pipeline.catalog().tables)
    return table(ResultSet(("schema", "table", "columns"), rows, len(rows)))


def _describe(argument, pipeline, state) -> list[str]:
    if not argument:
        return _tables(argument, pipeline, state)
    found = pipeline.catalog().table(argument)
    if found is None:
        return [f'Did not find any table named "{argument}". \\dt lists the tables.']
    rows = tuple((c.name, c.type, "" if c.nullable else "not null",
                  "PK" if c.name in found.primary_key else "") for c in found.columns)
    title = f'Table "{found.schema + "." if found.schema else ""}{found.name}"'
    return [title] + table(ResultSet(("column", "type", "nullable", "key"), rows, len(rows)))


def _pending(_arg, pipeline, _state) -> list[str]:
    requests = pipeline.pending()
    if not requests:
        return ["No approval requests in this session."]
    rows = tuple((r.id, r.status, f"{sum(v.verdict == 'approve' for v in r.votes)}/{r.required_approvals}",
                  "?" if r.estimated_rows is None else r.estimated_rows, _abbrev(r.statement))
                 for r in requests)
    return table(ResultSet(("request", "status", "approvals", "rows", "statement"), rows, len(rows)))


def _abbrev(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


COMMANDS = {
    "\\q": _quit, "\\?": _help, "\\x": _toggle_expanded, "\\timing": _toggle_timing,
    "\\dt": _tables, "\\d": _describe, "\\pending": _pending,
}

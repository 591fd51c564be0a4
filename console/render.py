"""Result sets to text. PURE: a ResultSet and output settings in, lines out.

>>> from engines.base import ResultSet
>>> print("\\n".join(table(ResultSet(("id", "name"), ((1, "a"), (22, None)), 2))))
 id | name
----+------
  1 | a
 22 | NULL
(2 rows)
"""
from __future__ import annotations

import csv
import io
import json
import unicodedata
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from engines.base import ResultSet

NULL = "NULL"

# Shown by name rather than as a hex code: they are familiar from SQL strings and logs.
_NAMED_ESCAPES = {"\r": "\\r", "\b": "\\b", "\x1b": "\\x1b"}


def visible(text: str) -> str:
    r"""The text with every character that could hide or rewrite what a reviewer reads shown as an escape.

    Terminal control codes (ESC sequences, carriage return, backspace, ...) and invisible format
    characters (bidirectional overrides and isolates, zero-width spaces and joiners, marks) become
    `\xNN` / `\uNNNN`; newlines and tabs stay, so a multi-line statement stays readable. A CR
    before a newline stays too: it moves nothing a reader could miss.

    >>> print(visible("UPDATE t SET a = 1\x1b[2K WHERE id = 2 -- \u202eevil\u202c"))
    UPDATE t SET a = 1\x1b[2K WHERE id = 2 -- \u202eevil\u202c
    >>> print(visible("a\rb\bc\u200bd\x7f\u2066"))
    a\rb\bc\u200bd\x7f\u2066
    >>> visible("SELECT 1\n\tFROM t;\r\n") == "SELECT 1\n\tFROM t;\r\n"
    True
    """
    return "".join(_visible_char(text, i) for i in range(len(text)))


def _visible_char(text: str, i: int) -> str:
    char = text[i]
    if char in "\n\t" or (char == "\r" and text[i + 1:i + 2] == "\n"):
        return char
    if unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp"):
        return char
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def cell(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value).replace("\n", "\\n")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _center(text: str, width: int) -> str:
    left = (width - len(text)) // 2  # like psql: the odd space goes to the right
    return (" " * left + text).ljust(width)


def footer(result: ResultSet) -> str:
    if not result.columns:
        return f"OK, {result.rowcount} row{'s' if result.rowcount != 1 else ''} affected"
    shown = len(result.rows)
    more = f" (only the first {shown} shown)" if result.truncated else ""
    return f"({shown} row{'s' if shown != 1 else ''}){more}"


def table(result: ResultSet) -> list[str]:
    if not result.columns:
        return [footer(result)]
    texts = [[cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in texts]) for i, c in enumerate(result.columns)]
    header = " | ".join(_center(c, w) for c, w in zip(result.columns, widths))
    lines = [" " + header.rstrip(), "-" + "-+-".join("-" * w for w in widths) + "-"]
    for row, values in zip(texts, result.rows):
        parts = [t.rjust(w) if _is_number(v) else t.ljust(w) for t, v, w in zip(row, values, widths)]
        lines.append((" " + " | ".join(parts)).rstrip())
    lines.append(footer(result))
    return lines


def expanded(result: ResultSet) -> list[str]:
    if not result.columns:
        return [footer(result)]
    width = max(len(c) for c in result.columns)
    lines: list[str] = []
    for number, row in enumerate(result.rows, 1):
        lines.append(f"-[ RECORD {number} ]" + "-" * max(0, width - 8))
        lines.extend(f"{c.ljust(width)} | {cell(v)}" for c, v in zip(result.columns, row))
    lines.append(footer(result))
    return lines


def as_csv(result: ResultSet) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if result.columns:
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else cell(v) for v in row] for row in result.rows])
    return buffer.getvalue().splitlines()


def as_json(result: ResultSet) -> list[str]:
    if not result.columns:
        return [json.dumps({"rows_affected": result.rowcount})]
    return [json.dumps(dict(zip(result.columns, row)), default=str, ensure_ascii=False) for row in result.rows]


FORMATS = {"table": table, "expanded": expanded, "csv": as_csv, "json": as_json}


def render(result: ResultSet, fmt: str = "table") -> list[str]:
    return FORMATS[fmt](result)


def rows_text(rows: int | None, exact: bool) -> str:
    """The count reviewers see: exact, labelled an estimate, or unknown — never a silent 0.

    >>> rows_text(25, True), rows_text(25, False), rows_text(None, False)
    ('25', '25 (estimate)', 'unknown')
    """
    if rows is None:
        return "unknown"
    return f"{rows}{'' if exact else ' (estimate)'}"


def reviewer_hint(event) -> str:
    """Where the request went and what a reviewer does: the approvals CLI, or a Slack channel.

    >>> from types import SimpleNamespace as Event
    >>> reviewer_hint(Event(request_id="r1", reviewers="slack:C0APPROVALS"))
    'a reviewer approves it in Slack, channel C0APPROVALS (the message is being posted)'
    """
    if event.reviewers.startswith("slack:"):
        from approvals.slack.links import waiting_hint
        return waiting_hint(event.reviewers.split(":", 1)[1])
    return f"a reviewer runs: countersign approvals approve {event.request_id}"


def awaiting_lines(event, *, interactive: bool = True) -> str:
    """The message shown while a statement waits for approval (the shell's, or `run`'s on stderr).

    The reason names tables, whose quoted names can hold control characters: all of it goes through
    `visible`.
    """
    rows = rows_text(event.estimated_rows, event.rows_exact)
    if interactive:
        return visible(f"⏳ needs approval: {event.reason}\n   request {event.request_id}, rows affected: {rows}, "
                       f"{event.required} approval(s) needed\n   {reviewer_hint(event)}\n"
                       "   waiting… (Ctrl-C stops waiting; the request stays open)")
    hint = reviewer_hint(event).replace("a reviewer runs:", "a reviewer approves with:")
    return visible(f"waiting for approval {event.request_id} ({event.reason}; rows: {rows}; "
                   f"{event.required} approval(s) needed)\n  {hint}")


def snapshot_line(outcome) -> str:
    return (f"snapshot {outcome.snapshot_id} holds the {outcome.snapshot_rows} rows as they were; "
            f"`countersign snapshots restore {outcome.snapshot_id}` puts them back")

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
import re
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
        return visible(json.dumps(value, default=str, ensure_ascii=False))
    # A value can hold terminal control codes too (a table or column name, a row's text): escaped.
    return visible(str(value).replace("\n", "\\n"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _center(text: str, width: int) -> str:
    left = (width - len(text)) // 2  # like psql: the odd space goes to the right
    return (" " * left + text).ljust(width)


def count(n: int) -> str:
    """
    >>> count(1000), count(200000), count(7)
    ('1,000', '200,000', '7')
    """
    return f"{n:,}"


def rows_footer(result: ResultSet) -> str:
    """How many rows a read returned, and, when the display limit cut it, how many there were.

    >>> rows_footer(ResultSet(("a",), ((1,),) * 3, 3))
    '(3 rows)'
    >>> rows_footer(ResultSet(("a",), ((1,),) * 1000, 200000, truncated=True))
    '(showing 1,000 of 200,000 rows)'
    >>> rows_footer(ResultSet(("a",), ((1,),) * 1000, 1000, truncated=True))
    '(showing the first 1,000 rows; more were not fetched)'
    """
    shown = len(result.rows)
    if not result.truncated:
        return f"({shown} row{'s' if shown != 1 else ''})"
    if result.rowcount > shown:   # the server counted every row (PostgreSQL sends them all)
        return f"(showing {count(shown)} of {count(result.rowcount)} rows)"
    return f"(showing the first {count(shown)} row{'s' if shown != 1 else ''}; more were not fetched)"


# Kinds whose statements return no rows and whose row count means nothing (SET, CREATE, BEGIN, GRANT ...).
_TAG_KINDS = ("session", "ddl", "transaction", "privilege", "admin")
_TAG_MODIFIERS = {"OR", "REPLACE", "UNIQUE", "TEMP", "TEMPORARY", "GLOBAL", "LOCAL", "UNLOGGED", "IF", "NOT",
                  "EXISTS", "DEFINER", "ALGORITHM", "SQL", "SECURITY", "CONCURRENTLY"}
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)


def command_tag(text: str) -> str:
    """psql's command tag for a statement that returns no rows: its verb, and what it creates,
    alters or drops.

    >>> command_tag("set statement_timeout = 0"), command_tag("/* x */ CREATE OR REPLACE VIEW v AS SELECT 1")
    ('SET', 'CREATE VIEW')
    """
    words = re.findall(r"[A-Za-z_]+", _LEADING_COMMENTS.sub("", text)[:300])
    if not words:
        return "OK"
    verb = words[0].upper()
    if verb in ("CREATE", "ALTER", "DROP") and len(words) > 1:
        rest = [w.upper() for w in words[1:] if w.upper() not in _TAG_MODIFIERS]
        return f"{verb} {rest[0]}" if rest else verb
    return verb


def footer(result: ResultSet, kind: str | None = None, text: str = "") -> str:
    """The line under a result: the rows a read returned (``(0 rows)`` when it found none), the rows
    a write changed, or the command tag of a statement with no rows (``SET``), never ``-1 rows``.

    >>> footer(ResultSet((), (), -1), "session", "SET search_path = app"), footer(ResultSet((), (), -1))
    ('SET', 'OK')
    >>> footer(ResultSet((), (), 0), "read"), footer(ResultSet((), (), 3), "write")
    ('(0 rows)', 'OK, 3 rows affected')
    """
    if result.columns or kind == "read":
        return rows_footer(result)
    if kind in _TAG_KINDS:
        return command_tag(text) if text else "OK"
    if result.rowcount < 0:
        return "OK"
    return f"OK, {result.rowcount} row{'s' if result.rowcount != 1 else ''} affected"


def table(result: ResultSet, *, kind: str | None = None, text: str = "", with_footer: bool = True) -> list[str]:
    if not result.columns:
        return [footer(result, kind, text)]
    texts = [[cell(v) for v in row] for row in result.rows]
    names = [visible(c) for c in result.columns]
    widths = [max([len(c)] + [len(r[i]) for r in texts]) for i, c in enumerate(names)]
    header = " | ".join(_center(c, w) for c, w in zip(names, widths))
    lines = [" " + header.rstrip(), "-" + "-+-".join("-" * w for w in widths) + "-"]
    for row, values in zip(texts, result.rows):
        parts = [t.rjust(w) if _is_number(v) else t.ljust(w) for t, v, w in zip(row, values, widths)]
        lines.append((" " + " | ".join(parts)).rstrip())
    if with_footer:
        lines.append(footer(result, kind, text))
    return lines


def expanded(result: ResultSet, *, kind: str | None = None, text: str = "") -> list[str]:
    if not result.columns:
        return [footer(result, kind, text)]
    names = [visible(c) for c in result.columns]
    width = max(len(c) for c in names)
    lines: list[str] = []
    for number, row in enumerate(result.rows, 1):
        lines.append(f"-[ RECORD {number} ]" + "-" * max(0, width - 8))
        lines.extend(f"{c.ljust(width)} | {cell(v)}" for c, v in zip(names, row))
    lines.append(footer(result, kind, text))
    return lines


def titled(title: str, lines: list[str]) -> list[str]:
    """psql's title centred over a table."""
    width = max((len(line) for line in lines), default=len(title))
    return [_center(title, width).rstrip()] + lines


def wider_than(lines: list[str], columns: int) -> bool:
    """Whether a table would wrap on a terminal ``columns`` wide (``\\x auto`` switches to expanded)."""
    return any(len(line) > columns for line in lines)


def as_csv(result: ResultSet) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if result.columns:
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else _csv_cell(v) for v in row] for row in result.rows])
    return buffer.getvalue().splitlines()


def _csv_cell(value: Any) -> str:
    """CSV is for programs: the value as text, newlines kept (the csv module quotes them)."""
    if isinstance(value, str):
        return value
    return cell(value)


def as_json(result: ResultSet) -> list[str]:
    if not result.columns:
        return [json.dumps({"rows_affected": result.rowcount})]
    return [json.dumps(dict(zip(result.columns, row)), default=str, ensure_ascii=False) for row in result.rows]


FORMATS = {"table": table, "expanded": expanded, "csv": as_csv, "json": as_json}


def render(result: ResultSet, fmt: str = "table", *, kind: str | None = None, text: str = "") -> list[str]:
    if fmt in ("table", "expanded"):
        return FORMATS[fmt](result, kind=kind, text=text)
    return FORMATS[fmt](result)


# -- errors ----------------------------------------------------------------------------------------
# The PostgreSQL driver ends a server error with "at character N" (1-based, in characters, as the
# server reports it), followed by "; detail: ..." and "; hint: ..."; MongoDB's parser says
# "(line L, column C)". Either becomes psql's LINE/caret display under the statement.
_AT_CHARACTER = re.compile(r" at character (\d+)")
_LINE_COLUMN = re.compile(r" \(line (\d+), column (\d+)\)")
_CONTEXT = 60          # characters of the statement shown either side of the caret


def error_position(message: str, text: str) -> tuple[str, int | None]:
    """The message without its position, and the position as a 0-based character offset into
    ``text`` (None when it gives none, or one outside the statement).

    >>> error_position('column "x" does not exist at character 8 (SQLSTATE 42703)', "SELECT x FROM t")
    ('column "x" does not exist (SQLSTATE 42703)', 7)
    >>> error_position("syntax error (line 2, column 3)", "db.c.find(\\n{a b})")
    ('syntax error', 13)
    """
    found = _AT_CHARACTER.search(message)
    if found:
        offset = int(found.group(1)) - 1
        message = message[:found.start()] + message[found.end():]
        return message, offset if 0 <= offset <= len(text) else None
    found = _LINE_COLUMN.search(message)
    if found:
        line, column = int(found.group(1)), int(found.group(2))
        lines = text.split("\n")
        message = message[:found.start()] + message[found.end():]
        if 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]) + 1:
            return message, sum(len(x) + 1 for x in lines[:line - 1]) + column - 1
    return message, None


def error_lines(label: str, message: str, text: str = "", position: int | None = None) -> list[str]:
    """An error as psql shows one: the message, the statement's line with a caret under the
    position, then DETAIL and HINT lines. ``position`` (0-based) may instead be in the message.

    >>> print("\\n".join(error_lines("ERROR", 'column "x" does not exist at character 8; hint: try y', "SELECT x FROM t")))
    ERROR: column "x" does not exist
    LINE 1: SELECT x FROM t
                   ^
    HINT: try y
    """
    if position is None:
        message, position = error_position(message, text)
    main, hint = _split_note(message, "; hint: ")
    main, detail = _split_note(main, "; detail: ")
    # MySQL's own form already starts with the label: "ERROR 1146 (42S02): Table 'shop.x' doesn't exist"
    lines = [visible(main) if main.startswith(f"{label} ") else f"{label}: {visible(main)}"]
    if text and position is not None:
        lines.extend(caret_lines(text, position))
    if detail:
        lines.append(f"DETAIL: {visible(detail)}")
    if hint:
        lines.append(f"HINT: {visible(hint)}")
    return lines


def _split_note(message: str, marker: str) -> tuple[str, str | None]:
    head, found, note = message.partition(marker)
    return (head, note) if found else (message, None)


def caret_lines(text: str, position: int) -> list[str]:
    """``LINE n: <the line>`` and a caret under ``position``; a long line is cut around it with "...".

    >>> caret_lines("SELECT 1,\\n  2 3", 14)
    ['LINE 2:   2 3', '            ^']
    """
    position = max(0, min(position, len(text)))
    line_number = text.count("\n", 0, position) + 1
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    line = text[start:end if end >= 0 else len(text)].rstrip("\r")
    column = position - start
    shown, offset = line, column
    if len(line) > 2 * _CONTEXT:
        cut = max(0, column - _CONTEXT)
        shown = line[cut:cut + 2 * _CONTEXT]
        offset = column - cut
        if cut > 0:
            shown, offset = "..." + shown, offset + 3
        if cut + 2 * _CONTEXT < len(line):
            shown += "..."
    prefix = f"LINE {line_number}: "
    escaped = visible(shown[:offset])   # an escaped character is wider: the caret follows it
    return [prefix + visible(shown), " " * (len(prefix) + len(escaped)) + "^"]


# -- MongoDB: documents, as mongosh shows them -----------------------------------------------------
MONGO_PAGE = 20          # documents per page; `it` shows the next ones, as in mongosh
INLINE_WIDTH = 60        # a sub-document or array this short is shown on one line


def _ejson_options():
    from bson import json_util
    from bson.binary import UuidRepresentation
    return json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED,
                                 uuid_representation=UuidRepresentation.STANDARD, tz_aware=True)


def ejson(value: Any) -> Any:
    """A value as relaxed Extended JSON data (what mongosh's EJSON.stringify gives)."""
    from bson import json_util
    return json.loads(json_util.dumps({"v": value}, json_options=_ejson_options()))["v"]


def document_lines(value: Any, indent: int = 0) -> list[str]:
    """Relaxed Extended JSON, indented; type wrappers (``{"$oid": ...}``, ``{"$date": ...}``) and short
    sub-documents stay on one line, as mongosh keeps ``ObjectId('...')`` and ``{ x: 1 }`` on one line.

    >>> from bson import ObjectId
    >>> print("\\n".join(document_lines(ejson({"_id": ObjectId("65a000000000000000000001"), "n": 1, "tags": ["a"]}))))
    {
      "_id": {"$oid": "65a000000000000000000001"},
      "n": 1,
      "tags": ["a"]
    }
    """
    pad = "  " * (indent + 1)
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if indent > 0 and len(flat) <= INLINE_WIDTH:   # a short sub-document or array stays on its line
        return [visible(flat)]
    if isinstance(value, dict) and value and not _is_wrapper(value):
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: " for k in value]
        lines = ["{"]
        for i, (prefix, item) in enumerate(zip(items, value.values())):
            inner = document_lines(item, indent + 1)
            inner[0] = prefix + inner[0]
            if i < len(value) - 1:
                inner[-1] += ","
            lines.extend(inner)
        return lines + ["  " * indent + "}"]
    if isinstance(value, list) and any(isinstance(v, (dict, list)) and not _compact(v) for v in value):
        lines = ["["]
        for i, item in enumerate(value):
            inner = document_lines(item, indent + 1)
            inner[0] = pad + inner[0]
            if i < len(value) - 1:
                inner[-1] += ","
            lines.extend(inner)
        return lines + ["  " * indent + "]"]
    return [visible(flat)]


def _is_wrapper(value: dict) -> bool:
    return all(isinstance(k, str) and k.startswith("$") for k in value)


def _compact(value: Any) -> bool:
    return isinstance(value, dict) and (not value or _is_wrapper(value)) or isinstance(value, list) and not value


def documents(result: ResultSet) -> list[list[str]]:
    """Each row of a MongoDB result as one document's lines. The driver gives rows with a column for
    every field seen in any document, a missing field as None: a None field is left out, except
    ``_id`` (``$group`` by null gives ``_id: null``)."""
    shown = []
    for row in result.rows:
        doc = {c: v for c, v in zip(result.columns, row) if v is not None or c == "_id"}
        shown.append(document_lines(ejson(doc)))
    return shown


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

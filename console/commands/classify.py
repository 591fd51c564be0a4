"""`countersign classify`: classify SQL from stdin, one JSON object per statement on stdout.

A contract scripts and CI pipelines rely on: exit 0 whenever it classified (UNKNOWN statements are a
classification, not an error), exit 2 for usage errors and malformed input, which is reported with
its line number before anything is printed, so output is never half-done.
"""
from __future__ import annotations

import argparse
import json
import sys

from classify.statements import DIALECTS

USAGE_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dialect", required=True, choices=DIALECTS, help="SQL dialect of the input")
    parser.add_argument("--input", choices=("text", "jsonl"), default="text",
                        help='text: stdin is one script (default); jsonl: each line is {"id": ..., "text": ...}')
    parser.add_argument("--format", choices=("json", "table"), default="json",
                        help="json: one object per statement (default); table: for people")


def run(args: argparse.Namespace) -> int:
    from classify.statements import classify
    from console.commands.text_input import checked, decoded
    data = decoded(sys.stdin.buffer.read(), "standard input")   # a UsageError: exit 2 with its message
    if args.input == "text":
        cells = [(None, data)]
    else:
        cells, errors = parse_jsonl(data)
        if errors:
            for error in errors:
                print(f"countersign classify: {error}", file=sys.stderr)
            return USAGE_ERROR
        cells = [(cell_id, checked(text, f'the "text" of id {cell_id!r}')) for cell_id, text in cells]
    results = []
    for cell_id, text in cells:
        for statement in classify(text, args.dialect):
            row = statement.as_json()
            if args.input == "jsonl":
                row["id"] = cell_id
            results.append(row)
    out = sys.stdout
    if args.format == "table":
        out.write("\n".join(table_lines(results, with_id=args.input == "jsonl")) + "\n")
    else:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in results)
    return 0


def parse_jsonl(data: str) -> tuple[list[tuple[object, str]], list[str]]:
    """(id, text) per non-blank line, or the errors naming each malformed line (1-based)."""
    cells, errors = [], []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            errors.append(f"line {number}: not valid JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(obj, dict) or "text" not in obj:
            errors.append(f'line {number}: expected an object like {{"id": 1, "text": "SELECT 1"}}')
        elif not isinstance(obj["text"], str):
            errors.append(f'line {number}: "text" must be a string, got {type(obj["text"]).__name__}')
        else:
            cells.append((obj.get("id"), obj["text"]))
    return cells, errors


def table_lines(rows: list[dict], *, with_id: bool) -> list[str]:
    from engines.base import ResultSet
    from console.render import table
    columns = (("id",) if with_id else ()) + ("#", "kind", "approval", "tables", "reason", "statement")
    body = tuple(
        ((row["id"],) if with_id else ())
        + (row["index"], row["kind"], "required" if row["requires_approval"] else "no",
           ", ".join(row["tables"]), row["reason"], _one_line(row["text"]))
        for row in rows)
    return table(ResultSet(columns, body, len(body)))


def _one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"

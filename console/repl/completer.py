"""Completion of SQL keywords, tables and columns from the live catalog (an immutable snapshot).

What is offered depends on the text before the cursor:
- after FROM / JOIN / UPDATE / INTO / TABLE / `\\d`: table names;
- after `name.`: the columns of table (or alias) `name`, or the tables of schema `name`;
- at the start of a backslash command: the meta commands;
- anywhere else: columns of the tables the statement mentions (all columns when it mentions none),
  then keywords, then tables. Keywords follow the case the user types in.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable

from prompt_toolkit.completion import Completer, Completion

from engines.base import Catalog, Table

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "NULL", "IS", "IN", "LIKE", "ILIKE", "BETWEEN",
    "ORDER BY", "GROUP BY", "HAVING", "LIMIT", "OFFSET", "JOIN", "LEFT JOIN", "INNER JOIN", "ON",
    "AS", "DISTINCT", "COUNT", "UPDATE", "SET", "DELETE FROM", "INSERT INTO", "VALUES", "RETURNING",
    "WITH", "UNION", "EXPLAIN", "CASE", "WHEN", "THEN", "ELSE", "END", "CREATE", "ALTER", "DROP",
    "TABLE", "INDEX", "TRUNCATE", "ASC", "DESC", "BEGIN", "COMMIT", "ROLLBACK",
)
META_COMMANDS = ("\\dt", "\\d", "\\x", "\\timing", "\\pending", "\\q", "\\?")
# Schemas whose tables are offered unqualified (the default search path of each dialect).
DEFAULT_SCHEMAS = (None, "", "public", "main")

TABLE_CONTEXT = re.compile(r"(?:\b(?:FROM|JOIN|UPDATE|INTO|TABLE)|^\s*\\dt?)\s+[\w.]*$", re.IGNORECASE)
WORD = re.compile(r"[\w.]*$")
META_WORD = re.compile(r"^\s*(\\[\w?]*)$")
# `FROM sites s`, `JOIN public.deploys AS d`, `UPDATE deploys d`: table names and their aliases.
TABLE_REFERENCE = re.compile(
    r"\b(?:FROM|JOIN|UPDATE|INTO)\s+([\w]+(?:\.[\w]+)?)(?:\s+(?:AS\s+)?(?!(?:WHERE|SET|ON|JOIN|LEFT|"
    r"RIGHT|INNER|OUTER|CROSS|FULL|GROUP|ORDER|LIMIT|VALUES|USING|NATURAL|UNION|RETURNING)\b)(\w+))?",
    re.IGNORECASE)


class CatalogCompleter(Completer):
    def __init__(self, catalog_source: Callable[[], Catalog]) -> None:
        self._source = catalog_source   # called lazily: the catalog may change after DDL

    def get_completions(self, document, complete_event) -> Iterable[Completion]:
        before = document.text_before_cursor
        meta = META_WORD.search(before)
        if meta:
            yield from _matching(META_COMMANDS, meta.group(1), "command")
            return
        catalog = self._catalog()
        word = WORD.search(before).group(0)
        if "." in word:
            qualifier, _, prefix = word.rpartition(".")
            yield from _after_dot(catalog, qualifier, prefix, document.text)
        elif TABLE_CONTEXT.search(before):
            yield from _matching(_table_names(catalog), word, "table")
        else:
            yield from _matching(_columns_in_scope(catalog, document.text), word, "column")
            yield from _matching(_keywords(word), word, "keyword")
            yield from _matching(_table_names(catalog), word, "table")

    def _catalog(self) -> Catalog:
        try:
            return self._source()
        except Exception:  # noqa: BLE001 - a catalog that cannot be read just means no suggestions
            return Catalog()


def _after_dot(catalog: Catalog, qualifier: str, prefix: str, text: str) -> Iterable[Completion]:
    table = _aliases(catalog, text).get(qualifier.lower()) or catalog.table(qualifier)
    if table is not None:
        yield from _matching([c.name for c in table.columns], prefix, "column")
        return
    in_schema = [t.name for t in catalog.tables if (t.schema or "").lower() == qualifier.lower()]
    yield from _matching(in_schema, prefix, "table")


def _aliases(catalog: Catalog, text: str) -> dict[str, Table]:
    """`FROM deploys d JOIN sites AS s` -> {"d": deploys, "s": sites} (aliases only)."""
    found: dict[str, Table] = {}
    for match in TABLE_REFERENCE.finditer(text):
        table = catalog.table(match.group(1))
        if table is not None and match.group(2):
            found[match.group(2).lower()] = table
    return found


def _columns_in_scope(catalog: Catalog, text: str) -> list[str]:
    mentioned = [t for t in (catalog.table(m.group(1)) for m in TABLE_REFERENCE.finditer(text)) if t]
    tables = mentioned or catalog.tables
    return sorted({c.name for t in tables for c in t.columns})


def _table_names(catalog: Catalog) -> list[str]:
    return [t.name if t.schema in DEFAULT_SCHEMAS else f"{t.schema}.{t.name}" for t in catalog.tables]


def _keywords(word: str) -> list[str]:
    return [k.lower() for k in KEYWORDS] if word and word.islower() else list(KEYWORDS)


def _matching(candidates: Iterable[str], prefix: str, meta: str) -> Iterable[Completion]:
    lowered = prefix.lower()
    for name in candidates:
        if name.lower().startswith(lowered) and name.lower() != lowered:
            yield Completion(name, start_position=-len(prefix), display_meta=meta)

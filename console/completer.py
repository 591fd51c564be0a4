"""Completion of SQL keywords, tables and columns from the live catalog (an immutable snapshot)."""
from __future__ import annotations

import re
from typing import Iterable

from prompt_toolkit.completion import Completer, Completion

from console.drivers.base import Catalog

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "NULL", "IS", "IN", "LIKE", "ILIKE", "BETWEEN",
    "ORDER BY", "GROUP BY", "HAVING", "LIMIT", "OFFSET", "JOIN", "LEFT JOIN", "INNER JOIN", "ON",
    "AS", "DISTINCT", "COUNT", "UPDATE", "SET", "DELETE FROM", "INSERT INTO", "VALUES", "RETURNING",
    "WITH", "UNION", "EXPLAIN", "CASE", "WHEN", "THEN", "ELSE", "END", "CREATE", "ALTER", "DROP",
    "TABLE", "INDEX", "TRUNCATE", "ASC", "DESC",
)
TABLE_CONTEXT = re.compile(r"\b(FROM|JOIN|UPDATE|INTO|TABLE|\\d)\s+[\w.]*$", re.IGNORECASE)
WORD = re.compile(r"[\w.\\]*$")


class CatalogCompleter(Completer):
    def __init__(self, catalog_source) -> None:
        self._source = catalog_source   # () -> Catalog; called lazily, the catalog may change after DDL

    def get_completions(self, document, complete_event) -> Iterable[Completion]:
        before = document.text_before_cursor
        word = WORD.search(before).group(0)
        catalog: Catalog = self._source()
        if "." in word:
            table_name, _, prefix = word.rpartition(".")
            table = catalog.table(table_name)
            names = [c.name for c in table.columns] if table else []
            yield from _matching(names, prefix)
            return
        tables = [t.name for t in catalog.tables]
        if TABLE_CONTEXT.search(before):
            yield from _matching(tables, word)
            return
        columns = sorted({c.name for t in catalog.tables for c in t.columns})
        yield from _matching(list(KEYWORDS) + tables + columns, word)


def _matching(candidates: list[str], prefix: str) -> Iterable[Completion]:
    lowered = prefix.lower()
    for name in candidates:
        if name.lower().startswith(lowered) and name.lower() != lowered:
            yield Completion(name, start_position=-len(prefix))

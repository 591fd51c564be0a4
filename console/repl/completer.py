"""Completion as you type (like pgcli): keywords, tables and columns from the live catalog.

What is offered depends on the text before the cursor:
- after FROM / JOIN / UPDATE / INTO / TABLE / `\\d`: table names (even before a letter is typed);
- after `name.`: the columns of table (or alias) `name`, or the tables of schema `name`;
- at the start of a backslash command: the meta commands;
- anywhere else, once a word is begun: columns of the tables the statement mentions (all columns
  when it mentions none), then keywords, then tables. Keywords follow the case the user types in.
- inside a string literal: nothing.
On MongoDB: `db.` offers collections, `db.<collection>.` the mongosh methods, a first word the shell's.

The catalog comes from the gate (``catalog``), loaded on a background thread (``BackgroundCatalog``)
so that no keystroke waits for the database: until it arrives, only keywords are offered.
"""
from __future__ import annotations

import re
import threading
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
META_COMMANDS = ("\\dt", "\\d", "\\x", "\\timing", "\\pending", "\\q", "\\?", "\\l", "\\conninfo", "\\copy",
                 "\\c", "\\i", "\\e", "\\o")
# Schemas whose tables are offered unqualified (the default search path of each dialect).
DEFAULT_SCHEMAS = (None, "", "public", "main")
MONGO_WORDS = ("db", "show dbs", "show collections", "use", "it", "exit", "help")
MONGO_METHODS = (
    "find", "findOne", "countDocuments", "estimatedDocumentCount", "distinct", "aggregate", "getIndexes",
    "stats", "insertOne", "insertMany", "updateOne", "updateMany", "replaceOne", "deleteOne", "deleteMany",
    "bulkWrite", "findOneAndUpdate", "findOneAndReplace", "findOneAndDelete", "createIndex", "dropIndex",
    "drop", "renameCollection", "dataSize", "totalIndexSize", "latencyStats",
)

TABLE_CONTEXT = re.compile(r"(?:\b(?:FROM|JOIN|UPDATE|INTO|TABLE)|^\s*\\d[tvi]?)\s+[\w.]*$", re.IGNORECASE)
WORD = re.compile(r"[\w.]*$")
META_WORD = re.compile(r"^\s*(\\[\w?]*)$")
# `FROM sites s`, `JOIN public.deploys AS d`, `UPDATE deploys d`: table names and their aliases.
TABLE_REFERENCE = re.compile(
    r"\b(?:FROM|JOIN|UPDATE|INTO)\s+([\w]+(?:\.[\w]+)?)(?:\s+(?:AS\s+)?(?!(?:WHERE|SET|ON|JOIN|LEFT|"
    r"RIGHT|INNER|OUTER|CROSS|FULL|GROUP|ORDER|LIMIT|VALUES|USING|NATURAL|UNION|RETURNING)\b)(\w+))?",
    re.IGNORECASE)
TAB_WAIT_S = 10.0         # how long Tab waits for a catalog still being fetched
MONGO_COLLECTION = re.compile(r"\bdb\.(\w*)$")
MONGO_METHOD = re.compile(r"\bdb\.\w+\.(\w*)$")


class BackgroundCatalog:
    """The catalog for completion, fetched on a background thread. Calling it never waits: it
    returns what has arrived (an empty catalog at first) and starts a fetch when none is running and
    the copy is stale. ``refresh()`` marks it stale (after DDL, after switching targets)."""

    def __init__(self, load: Callable[[], Catalog]) -> None:
        self._load = load
        self._catalog = Catalog()
        self._stale = True
        self._loading = False
        self._idle = threading.Condition()

    def __call__(self) -> Catalog:
        with self._idle:
            if self._stale and not self._loading:
                self._stale, self._loading = False, True
                threading.Thread(target=self._fetch, name="countersign-catalog", daemon=True).start()
            return self._catalog

    def _fetch(self) -> None:
        try:
            catalog = self._load()
        except Exception:  # noqa: BLE001 - no catalog just means fewer suggestions
            catalog = None
        with self._idle:
            if catalog is not None:
                self._catalog = catalog
            self._loading = False
            self._idle.notify_all()

    def refresh(self) -> None:
        with self._idle:
            self._stale = True

    def wait_loaded(self, timeout: float) -> bool:
        """True once no fetch is running (within ``timeout`` seconds)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._loading, timeout)


class CatalogCompleter(Completer):
    def __init__(self, catalog_source: Callable[[], Catalog], dialect: Callable[[], str] | None = None) -> None:
        self._source = catalog_source   # called on every completion: the catalog may change after DDL
        self._dialect = dialect or (lambda: "postgres")

    def get_completions(self, document, complete_event) -> Iterable[Completion]:
        before = document.text_before_cursor
        meta = META_WORD.search(before)
        if meta:
            yield from _matching(META_COMMANDS, meta.group(1), "command")
            return
        if _in_string(before):
            return
        if self._dialect() == "mongodb":
            yield from self._mongo(before, complete_event.completion_requested)
            return
        catalog = self._catalog(complete_event.completion_requested)
        word = WORD.search(before).group(0)
        if "." in word:
            qualifier, _, prefix = word.rpartition(".")
            yield from _after_dot(catalog, qualifier, prefix, document.text)
        elif TABLE_CONTEXT.search(before):
            yield from _matching(_table_names(catalog), word, "table")
        elif word and not word[0].isdigit():
            yield from _matching(_columns_in_scope(catalog, document.text), word, "column")
            yield from _matching(_keywords(word), word, "keyword")
            yield from _matching(_table_names(catalog), word, "table")

    def _mongo(self, before: str, requested: bool) -> Iterable[Completion]:
        method = MONGO_METHOD.search(before)
        if method:
            yield from _matching(MONGO_METHODS, method.group(1), "method")
            return
        collection = MONGO_COLLECTION.search(before)
        if collection:
            names = sorted({t.name for t in self._catalog(requested).tables})
            yield from _matching(names, collection.group(1), "collection")
            return
        word = WORD.search(before).group(0)
        if word and before.strip() == word:
            yield from _matching(MONGO_WORDS, word, "shell")

    def _catalog(self, requested: bool = False) -> Catalog:
        """The catalog as it is now. Completion while typing never waits for it; Tab (an explicit
        request, answered on prompt_toolkit's completion thread) waits a little for a fetch under way."""
        try:
            catalog = self._source()
            wait = getattr(self._source, "wait_loaded", None)
            if requested and wait is not None and wait(TAB_WAIT_S):
                catalog = self._source()
            return catalog
        except Exception:  # noqa: BLE001 - a catalog that cannot be read just means no suggestions
            return Catalog()


def _in_string(text: str) -> bool:
    """Inside an unfinished '...' (quotes counted, doubled ones cancel out)."""
    return text.count("'") % 2 == 1


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

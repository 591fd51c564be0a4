"""The one small interface every database sits behind.

The pipeline never talks to psycopg, SQLAlchemy or pymongo directly: it opens a transaction on a
Driver, runs exactly one statement per ``execute`` and commits or rolls back by leaving the block.
"""
from __future__ import annotations

import shlex
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ResultSet:
    columns: tuple[str, ...]          # empty for statements that return no rows
    rows: tuple[tuple[Any, ...], ...]
    rowcount: int                     # rows affected (writes) or rows returned (reads); -1 unknown
    truncated: bool = False           # more rows existed than max_rows allowed


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    schema: str | None
    name: str
    columns: tuple[Column, ...] = ()
    primary_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    tables: tuple[Table, ...] = field(default_factory=tuple)

    def table(self, name: str) -> Table | None:
        wanted = name.lower()
        for table in self.tables:
            if table.name.lower() == wanted or f"{table.schema}.{table.name}".lower() == wanted:
                return table
        return None


def identity_text(engine: str, parts: list[tuple[str, object]]) -> str:
    """A target's identity as one short canonical line: the engine, then ``key=value`` pairs in a fixed
    order, each value shell-quoted so the line splits back into exactly these pairs (shlex.split). A
    value the server reports as NULL is empty (no name can be empty, so it is never mistaken for one).

    >>> print(identity_text("postgresql", [("host", "127.0.0.1"), ("port", 5432), ("search_path", '"$user", public')]))
    postgresql host=127.0.0.1 port=5432 search_path='"$user", public'
    >>> print(identity_text("mysql", [("db", None)]))
    mysql db=''
    """
    return " ".join([engine] + [f"{key}={shlex.quote('' if value is None else str(value))}" for key, value in parts])


class DriverError(Exception):
    """Root of every database-side failure. ``str(err)`` is a message fit for the user."""


class ReadOnlyViolation(DriverError):
    """The server refused a statement because the transaction is read-only."""


class ConnectionLost(DriverError):
    """The server went away; the transaction did not commit."""


class StatementTimeout(DriverError):
    """The statement ran past the policy's timeout and was cancelled by the server."""


class QueryCancelled(DriverError):
    """The user cancelled the statement (Ctrl-C)."""


class ConcurrentChange(DriverError):
    """A concurrent change touched these rows (serialization failure, deadlock, lock wait timeout).

    Nothing was committed; running the statement again sees the other change."""


class Transaction(Protocol):
    def execute(self, sql: str, max_rows: int | None = None) -> ResultSet:
        """Run exactly ONE statement. Multi-statement strings must be refused by the server."""


class Driver(Protocol):
    dialect: str          # "postgres" | "mysql" | "sqlite" | "mongodb"
    url: str              # with the password masked, for display

    def transaction(self, *, read_only: bool, timeout_ms: int | None = None,
                    isolation: str | None = None) -> AbstractContextManager[Transaction]:
        """Commit when the block ends normally, roll back when it raises.

        read_only=True must be enforced BY THE SERVER (READ ONLY transaction / query_only), so a
        misclassified write fails instead of running. isolation="repeatable read" for approved writes.
        """

    def read(self, sql: str, *, timeout_ms: int | None = None, max_rows: int | None = None) -> ResultSet:
        """One statement in its own read-only transaction (a driver may send it in one round trip)."""

    def catalog(self) -> Catalog: ...

    def server_identity(self) -> str:
        """What the SERVER says this connection is on, read afresh on every call (never the URL, never
        a cache): host, port, database, the server's own id where it has one, and the session settings
        that change what a statement means (search_path, role, the current database, sql_mode). An
        approval binds to it (see ``identity_text`` for the form)."""

    def cancel(self) -> None:
        """Thread-safe: ask the server to cancel whatever this driver is running now."""
    def close(self) -> None: ...

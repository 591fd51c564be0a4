"""Every database Countersign serves, as data: one ``Engine`` record each.

The gate, the console, approvals and audit never branch on a dialect name: what differs between
databases is read from the record (which driver opens a URL, how reads are fenced by the server,
which snapshot backend takes before-images). SQL grammar differences stay where grammar is handled,
in classification and snapshot planning.

>>> engine_for_url("mariadb+pymysql://root@db/shop").name
'mysql'
>>> engine_for_url("postgres://db/shop").dialect
'postgres'
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from urllib.parse import urlsplit


class UnsupportedURL(ValueError):
    """The URL's scheme names no engine Countersign serves."""


@dataclass(frozen=True)
class Engine:
    name: str
    dialect: str                      # the classifier's and the snapshot planner's dialect
    schemes: tuple[str, ...]          # URL schemes that open it: this one list, for every caller
    driver: str                       # "module:Class" of its Driver, imported only when a URL is opened
    snapshot_backend: str             # module with plan/prepare/capture/discard/restore/sample
    read_only: str                    # how the server fences a read, for people (docs, config check)

    def open(self, url: str):
        module, _, name = self.driver.partition(":")
        return getattr(importlib.import_module(module), name)(url)

    def snapshots(self):
        return importlib.import_module(self.snapshot_backend)


ENGINES = (
    Engine("postgres", "postgres", ("postgresql", "postgres"), "engines.postgres.driver:PostgresDriver",
           "snapshots.sql_backend", "BEGIN READ ONLY"),
    Engine("mysql", "mysql", ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"), "engines.sqlalchemy.driver:SqlAlchemyDriver",
           "snapshots.sql_backend", "START TRANSACTION READ ONLY"),
    Engine("sqlite", "sqlite", ("sqlite",), "engines.sqlalchemy.driver:SqlAlchemyDriver",
           "snapshots.sql_backend", "PRAGMA query_only"),
    Engine("mongodb", "mongodb", ("mongodb", "mongodb+srv"), "engines.mongodb.driver:MongoDriver",
           "snapshots.mongo_snapshot", "the driver refuses anything but a read (MongoDB has no read-only transactions)"),
)

SUPPORTED_SCHEMES = tuple(scheme for engine in ENGINES for scheme in engine.schemes)


def engine_for_url(url: str) -> Engine:
    scheme = urlsplit(url).scheme.lower()
    for engine in ENGINES:
        if scheme in engine.schemes:
            return engine
    raise UnsupportedURL(f"unsupported database URL scheme {scheme or '(none)'!r}; supported: "
                         f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)}")


def engine_for_dialect(dialect: str) -> Engine:
    for engine in ENGINES:
        if engine.dialect == dialect:
            return engine
    raise ValueError(f"unknown dialect {dialect!r}")

"""Statement classification: SQL text and a dialect in, typed frozen results out. PURE: no I/O.

The public contract (used by the CLI's ``classify`` command, the policy and the snapshot planner):

>>> [s.kind for s in classify("SELECT 1; DELETE FROM t", "postgres")]
[<Kind.READ: 'read'>, <Kind.WRITE: 'write'>]
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from classify.kinds import Kind

DIALECTS = ("postgres", "mysql", "sqlite", "mongodb")


@dataclass(frozen=True)
class Statement:
    index: int                  # position in the script, from 0
    text: str                   # exactly what will be sent to the server (no trailing ';')
    kind: Kind
    requires_approval: bool
    reason: str                 # one line, for people
    tables: tuple[str, ...]     # tables touched, as written (schema-qualified when written so)
    has_where: bool | None      # for writes: does it carry a WHERE; None when not a write

    def as_json(self) -> dict:
        return {
            "index": self.index,
            "text": self.text,
            "kind": str(self.kind),
            "requires_approval": self.requires_approval,
            "reason": self.reason,
            "tables": list(self.tables),
            "has_where": self.has_where,
        }


CACHED_SCRIPT_CHARS = 4096       # consoles re-run the same short statements; long scripts are not kept


def classify(script: str, dialect: str) -> tuple[Statement, ...]:
    """Split ``script`` as the ``dialect``'s server would and classify every statement. Never raises
    for bad SQL: what cannot be understood comes back as UNKNOWN, requiring approval."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; use one of {', '.join(DIALECTS)}")
    if len(script) <= CACHED_SCRIPT_CHARS:
        return _classify_cached(script, dialect)   # pure, and its results are immutable
    return _classify(script, dialect)


@lru_cache(maxsize=1024)
def _classify_cached(script: str, dialect: str) -> tuple[Statement, ...]:
    return _classify(script, dialect)


def _classify(script: str, dialect: str) -> tuple[Statement, ...]:
    if dialect == "mongodb":
        from classify.mongosh.shell import classify_one as classify_mongosh, split_script
        verdicts = [(text, classify_mongosh(text)) for text in split_script(script)]
    else:
        from classify.sql.classifier import classify_one
        from classify.sql.splitting import split_statements
        verdicts = [(text, classify_one(text, dialect)) for text in split_statements(script, dialect)]
    return tuple(Statement(index, text, v.kind, v.requires_approval, v.reason, v.tables, v.has_where)
                 for index, (text, v) in enumerate(verdicts))

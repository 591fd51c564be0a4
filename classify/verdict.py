"""What the classifier says about one statement. PURE values, shared by the SQL and mongosh classifiers."""
from __future__ import annotations

from dataclasses import dataclass

from classify.kinds import Kind


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    requires_approval: bool
    reason: str
    tables: tuple[str, ...] = ()
    has_where: bool | None = None


def needs(kind: Kind, reason: str, tables: tuple[str, ...] = (), has_where: bool | None = None) -> Verdict:
    return Verdict(kind, True, reason, tables, has_where)


def passes(kind: Kind, reason: str, tables: tuple[str, ...] = ()) -> Verdict:
    return Verdict(kind, False, reason, tables, None)

"""Which schema revision the store needs, and whether a store has it, without importing Alembic.

Opening the store only has to compare one row (alembic_version) with the newest migration script.
Importing Alembic for that costs ~190 ms on every start, so the scripts' own `revision = "..."` and
`down_revision = "..."` lines are read as text here; tests/test_store_upgrade.py checks that this
reading agrees with Alembic's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"
UPGRADE_HINT = "run `countersign store upgrade` (add --store URL for a store other than the configured one)"

_REVISION = re.compile(r"""^revision\s*(?::[^=]*)?=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN = re.compile(r"""^down_revision\s*(?::[^=]*)?=\s*(?:None|["']([^"']+)["'])""", re.MULTILINE)


class RevisionScriptError(RuntimeError):
    """The migration scripts do not form one line of revisions (a packaging or merge mistake)."""


@dataclass(frozen=True)
class Revisions:
    """The migration chain: each revision and the one it revises (None for the first)."""
    parents: dict[str, str | None]

    @property
    def head(self) -> str:
        """The newest revision, the one no other revises.

        >>> Revisions({"0001": None, "0002": "0001"}).head
        '0002'
        """
        heads = set(self.parents) - set(self.parents.values())
        if len(heads) != 1:
            raise RevisionScriptError(f"the store's migration scripts have {len(heads)} heads "
                                      f"({', '.join(sorted(heads)) or 'none'}); expected exactly one")
        return heads.pop()


def script_revisions(directory: Path = VERSIONS) -> Revisions:
    """Read every migration script's revision and down_revision."""
    parents: dict[str, str | None] = {}
    for script in sorted(directory.glob("*.py")):
        text = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN.search(text)
        if revision is None or down is None:
            raise RevisionScriptError(f"{script.name} does not declare revision and down_revision")
        parents[revision.group(1)] = down.group(1)
    return Revisions(parents)


@dataclass(frozen=True)
class SchemaProblem:
    text: str              # completes "the audit store at URL ..."
    upgradable: bool       # `countersign store upgrade` fixes it (it never moves a store backwards)


def schema_problem(current: tuple[str, ...], revisions: Revisions) -> SchemaProblem | None:
    """What is wrong with a store whose alembic_version rows are ``current``; None when it is at head.

    >>> chain = Revisions({"0001": None, "0002": "0001"})
    >>> schema_problem(("0002",), chain) is None
    True
    >>> schema_problem(("0001",), chain)
    SchemaProblem(text='is at schema revision 0001 but this version of countersign needs 0002', upgradable=True)
    >>> schema_problem(("0009",), chain).upgradable
    False
    """
    head = revisions.head
    if not current:
        return SchemaProblem("has no schema yet", True)
    if len(current) > 1:
        return SchemaProblem(f"records several schema revisions ({', '.join(sorted(current))}); "
                             "expected one", False)
    (revision,) = current
    if revision == head:
        return None
    if revision not in revisions.parents:
        return SchemaProblem(f"is at schema revision {revision}, which this version of countersign does "
                             "not know (a newer countersign migrated it); upgrade countersign", False)
    return SchemaProblem(f"is at schema revision {revision} but this version of countersign needs {head}", True)

"""The PostgreSQL built-ins a read may call, as a value: derived from the server's own catalog
(pg_proc's volatility, minus a justified deny-list; see data/generate_pg_functions.py) and shipped
with the package as data/pg<major>_functions.json.

The classifier takes a ``PostgresBuiltins`` value and stays pure; ``postgres_builtins()`` is the one
place that reads the shipped file, once.

>>> builtins = postgres_builtins()
>>> "pg_blocking_pids" in builtins.functions, "pg_sleep" in builtins.functions
(True, False)
>>> builtins.denied["set_config"]
'changes a setting for the rest of the session (search_path, role, limits)'
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_MAJOR = 15        # the version the data was generated from; see data/
DATA = Path(__file__).resolve().parent / "data"     # shipped as package data (pyproject.toml)

# Names PostgreSQL's grammar (pglast's, which is newer than the data) turns SQL syntax into, as calls of
# pg_catalog functions that the data's server may not have: SYSTEM_USER (16+) reads the session's user.
_GRAMMAR_FUNCTIONS = frozenset({"system_user"})
# Words the grammar uses as operator names (`a BETWEEN b AND c` is an A_Expr named BETWEEN).
_GRAMMAR_OPERATORS = frozenset({"BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN SYMMETRIC"})


@dataclass(frozen=True)
class PostgresBuiltins:
    functions: frozenset[str]        # function names a read may call (in pg_catalog, side-effect free)
    operators: frozenset[str]        # operator names of pg_catalog whose functions are all side-effect free
    denied: dict[str, str]           # built-ins that never pass, with the reason a reviewer is shown
    server: str                      # the server the facts came from

    def __hash__(self) -> int:       # a value: equal when generated from the same server
        return hash((self.server, len(self.functions), len(self.operators)))


@lru_cache(maxsize=4)
def postgres_builtins(major: int = DEFAULT_MAJOR) -> PostgresBuiltins:
    """The shipped facts of PostgreSQL ``major``. Raises FileNotFoundError for a version not shipped."""
    data = json.loads((DATA / f"pg{major}_functions.json").read_text(encoding="utf-8"))
    return PostgresBuiltins(functions=frozenset(data["functions"]) | _GRAMMAR_FUNCTIONS,
                            operators=frozenset(data["operators"]) | _GRAMMAR_OPERATORS,
                            denied=dict(data["denied"]), server=data["server"])

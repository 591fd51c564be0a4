"""BEGIN ... COMMIT typed in the shell or a script: the statements between become ONE approval
request and run in ONE transaction, each with its own snapshot and the row guard; reads inside it
run as part of it; ROLLBACK abandons the block before anything runs. PURE.

>>> from classify.statements import classify
>>> [control(s) for s in classify("BEGIN; UPDATE t SET a = 1; COMMIT; ROLLBACK", "postgres")]
['begin', None, 'commit', 'rollback']
>>> control(classify("BEGIN ISOLATION LEVEL SERIALIZABLE", "postgres")[0]) is None
True
"""
from __future__ import annotations

import re

from classify.kinds import Kind

# Plain forms only: a BEGIN with options (READ ONLY, an isolation level) asks for something the
# approved transaction would not honour (it always runs at REPEATABLE READ), so it stays refused.
_CONTROLS = {
    "begin": re.compile(r"(?:begin|start\s+transaction)(?:\s+(?:work|transaction))?", re.I),
    "commit": re.compile(r"(?:commit|end)(?:\s+(?:work|transaction))?", re.I),
    "rollback": re.compile(r"(?:rollback|abort)(?:\s+(?:work|transaction))?", re.I),
}


def control(statement) -> str | None:
    """"begin", "commit" or "rollback" for a plain transaction-control statement, else None."""
    if statement.kind is not Kind.TRANSACTION:
        return None
    text = " ".join(statement.text.split())
    return next((name for name, form in _CONTROLS.items() if form.fullmatch(text)), None)


def block_purpose(statements) -> str:
    """The reason's lead for reviewers: they see the whole block."""
    return f"a transaction of {len(statements)} statement(s) (BEGIN ... COMMIT)"


class UnclosedBlock(ValueError):
    """A script opened a transaction it never committed or rolled back (or opened one inside another)."""


def units(statements) -> list[tuple]:
    """A script as what runs: ``("one", statement)``, ``("block", statements)`` for BEGIN ... COMMIT,
    ``("dropped", statements)`` for BEGIN ... ROLLBACK. A COMMIT with no BEGIN stays a statement (the
    policy refuses it with advice).

    >>> from classify.statements import classify
    >>> [(kind, len(body) if kind != "one" else body.text) for kind, body in
    ...  units(classify("SELECT 1; BEGIN; DELETE FROM t; SELECT 2; COMMIT; BEGIN; DELETE FROM u; ROLLBACK", "sqlite"))]
    [('one', 'SELECT 1'), ('block', 2), ('dropped', 1)]
    """
    found, block = [], None
    for statement in statements:
        step = control(statement)
        if step == "begin":
            if block is not None:
                raise UnclosedBlock(f"statement {statement.index + 1}: BEGIN inside BEGIN; COMMIT or ROLLBACK first")
            block = []
        elif block is not None and step in ("commit", "rollback"):
            found.append(("block" if step == "commit" else "dropped", tuple(block)))
            block = None
        elif block is not None:
            block.append(statement)
        else:
            found.append(("one", statement))
    if block is not None:
        raise UnclosedBlock("the script ends inside BEGIN without COMMIT or ROLLBACK; nothing of it ran")
    return found

"""Exit codes of every `countersign` command, in one place.

0 it ran; 1 `audit verify` found the trail broken; 2 usage or configuration; 3 the approval was
rejected, expired or not given in time; 4 blocked by policy; 5 the database failed or the guard
rolled the write back; 70 an internal error (a bug: one line, no traceback); 130 interrupted
(Ctrl-C); 141 the reader of our output went away (`... | head`), as a shell reports SIGPIPE.
"""
from __future__ import annotations

OK = 0
TRAIL_BROKEN = 1
USAGE = 2
NOT_APPROVED = 3
BLOCKED = 4
FAILED = 5
INTERNAL = 70                   # EX_SOFTWARE (sysexits.h)
INTERRUPTED = 130
BROKEN_PIPE = 141               # 128 + SIGPIPE

# By gate.api.Status value (a StrEnum, so its members look these up directly; keyed by text so the
# CLI's entry point stays free of the gate's imports).
BY_STATUS = {
    "ok": OK,
    "rejected": NOT_APPROVED, "expired": NOT_APPROVED, "pending": NOT_APPROVED, "cancelled": NOT_APPROVED,
    "blocked": BLOCKED,
    "failed": FAILED, "rolled_back": FAILED,
}


def for_status(status: str) -> int:
    """
    >>> from gate.api import Status
    >>> for_status(Status.ROLLED_BACK), for_status(Status.PENDING)
    (5, 3)
    """
    return BY_STATUS[status]

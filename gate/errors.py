"""The gate's own error root. Each edge (the CLI's exit codes, later the service's HTTP statuses) maps
errors to its own signals in exactly one place; the message always says what to do next."""
from __future__ import annotations


class GateError(Exception):
    """A request the gate cannot serve as asked (no such session, several statements where one was
    expected). ``code`` is a stable name an edge maps to its own status."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code

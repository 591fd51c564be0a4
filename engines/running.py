"""What a driver is running now, and cancelling it reliably. Shared by the SQL drivers.

A server forgets a cancel that arrives just before the statement starts (PostgreSQL ignores one that
lands between two protocol messages; MySQL's KILL QUERY and SQLite's interrupt only stop what runs at
that moment), and a fast Ctrl-C hits that window. So a cancel is re-sent until the statement stops.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

CANCEL_RETRY_S = 0.2        # a cancel not yet honoured is sent again after this long ...
CANCEL_PERSIST_S = 10       # ... until the statement stops or this much time has passed


class Running:
    """One statement at a time on a connection; `cancelled` tells a QueryCanceled from a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.cancelled = threading.Event()

    @contextmanager
    def statement(self) -> Iterator[None]:
        with self._lock:
            self.cancelled.clear()
            self._idle.clear()
            try:
                yield
            finally:
                self._idle.set()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def cancel(self, send: Callable[[], bool]) -> None:
        """Mark it cancelled and call `send` (which returns False when there is nothing left to ask)
        until the running statement has stopped."""
        self.cancelled.set()
        for _ in range(int(CANCEL_PERSIST_S / CANCEL_RETRY_S)):
            if not self.busy or not send():
                return
            if self._idle.wait(CANCEL_RETRY_S):
                return

"""The console session while it opens on a background thread, so the prompt does not wait for it.

Opening imports SQLAlchemy, the classifier and the database driver, opens the store, connects to
the target and records the session start: most of a second. None of that is needed to draw the
prompt, so it runs while the person types. Everything the prompt shows (user, target, environment,
dialect) is known from the configuration up front; any other use waits until the session is open,
so no statement is classified or run before the session-start event is in the trail. If opening
fails, every later use raises that error: nothing runs.
"""
from __future__ import annotations

import threading
from typing import Callable


class OpeningSession:
    def __init__(self, open_session: Callable[[], object], *, user: str, target_name: str, dialect: str,
                 environment: str) -> None:
        self.user = user
        self.target_name = target_name
        self.dialect = dialect
        self.environment = environment
        self._open_session = open_session
        self._opened = threading.Event()
        self._started = False
        self._start_lock = threading.Lock()
        self._session = None
        self.error: BaseException | None = None
        self.on_done: Callable[[], None] = lambda: None   # e.g. redraw the prompt to show a failure

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Begin opening (once; later calls do nothing)."""
        with self._start_lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._open, name="countersign-open", daemon=True).start()

    def _open(self) -> None:
        try:
            self._session = self._open_session()
        except BaseException as err:  # noqa: BLE001 - kept and re-raised on every use, never swallowed
            self.error = err
        finally:
            self._opened.set()
            self.on_done()

    def opened(self):
        """The open session, waiting for it if need be (and starting it if nobody has)."""
        self.start()
        self._wait_opened()
        if self.error is not None:
            raise self.error
        return self._session

    def _wait_opened(self) -> None:
        # In slices: Linux may deliver Ctrl-C's SIGINT to the opening thread, and Python runs the
        # handler only when the main thread next runs code.
        while not self._opened.wait(0.1):
            pass

    def __getattr__(self, name: str):
        # Only attributes not set in __init__ get here: everything else needs the open session.
        return getattr(self.opened(), name)

    def close(self) -> None:
        """Close the session if it opened; one still opening is waited for, so its start is never
        recorded without its end. A failure to open is raised here too, so it is never unreported."""
        if not self._started:
            return
        self._wait_opened()
        if self.error is not None:
            raise self.error
        self._session.close()

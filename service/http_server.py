"""uvicorn for `countersign serve`, stopping cleanly on SIGINT/SIGTERM."""
from __future__ import annotations

import contextlib
import signal

import uvicorn


class Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, which kills the process before the poster
    can release its lease; here a signal only asks the server to stop, and `run` returns."""

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, *_signal) -> None:
        self.should_exit = True


def serve(app, host: str, port: int) -> None:
    Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run()

"""uvicorn for `countersign serve`, draining before it stops on SIGINT/SIGTERM.

The first signal begins the drain (service/health.py): the server keeps listening so that /readyz can
say 503 and new work is refused with 503, while the work already admitted finishes, for at most
`drain_seconds`. Then uvicorn's own shutdown closes the listener and the idle connections, and `run`
returns so the poster can flush and release its lease. A second signal stops without waiting.
"""
from __future__ import annotations

import contextlib
import logging
import signal

import uvicorn

from service.health import Drain

log = logging.getLogger("countersign.serve")
DRAIN_SECONDS = 20.0


class Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, which kills the process before the poster
    can release its lease; here a signal only begins the drain, and `run` returns once it is over."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_seconds: float = DRAIN_SECONDS) -> None:
        super().__init__(config)
        self.drain, self.drain_seconds = drain, drain_seconds
        self._told = False

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, *_signal) -> None:
        if not self.drain.begin():           # a second signal: stop now
            self.should_exit = self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        """uvicorn asks ten times a second whether to stop: once draining, when the admitted work is
        done or the drain time is up."""
        if await super().on_tick(counter):
            return True
        if not self.drain.draining:
            return False
        waited = self.drain.elapsed()
        if not self._told:
            self._told = True
            log.info("draining: refusing new work, waiting up to %.0fs for what is in flight", self.drain_seconds,
                     extra={"in_flight": self.drain.in_flight, "drain_seconds": self.drain_seconds})
        if self.drain.idle() or waited >= self.drain_seconds:
            if not self.drain.idle():
                log.warning("drain time is up with work in flight; stopping anyway",
                            extra={"in_flight": self.drain.in_flight})
            # what is left of the drain time, for uvicorn to wait on open connections
            self.config.timeout_graceful_shutdown = max(0.5, self.drain_seconds - waited)
            return True
        return False


def serve(app, host: str, port: int, *, drain: Drain, drain_seconds: float = DRAIN_SECONDS) -> None:
    # log_config=None: uvicorn's records go through the process's own handler (service/logs.py)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", log_config=None)
    Server(config, drain, drain_seconds).run()

"""Socket Mode for `countersign serve --socket-mode`: Slack's events over a WebSocket the service opens,
for teams without a public endpoint. Bolt's built-in client (no extra dependency); its Web API client
is the app's, so COUNTERSIGN_SLACK_API_URL applies to apps.connections.open too."""
from __future__ import annotations

import signal
import threading

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler


def connect(bolt: App, app_token: str) -> SocketModeHandler:
    """Open the connection and return at once; `close()` the handler to stop."""
    handler = SocketModeHandler(bolt, app_token, web_client=bolt.client)
    handler.connect()
    return handler


def serve(bolt: App, app_token: str) -> None:
    """Take events until SIGINT or SIGTERM, then close the connection and return (so the poster can
    release its lease); Bolt's own `start()` blocks forever instead."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    handler = connect(bolt, app_token)
    try:
        stop.wait()
    finally:
        handler.close()
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)

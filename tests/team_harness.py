"""A running team service for tests: `countersign serve`'s app (wiring.build: the team API, Slack's
events, health, login) under uvicorn on a free port, in a thread, against the Slack emulator, with
its own store, targets and configuration; and the consoles that talk to it.

    with team_service(tmp_path, TEAM_CONFIG.format(...), env={"PROD_URL": url}) as team:
        gate = team.gate("alice")                        # a RemoteGate with a token for alice
        env = team.console_env(tmp_path, "alice")        # a `countersign` process in team mode

Tokens are issued directly on the store (service/tokens.py), as an admin would; the store's clock
is the test's to move (expiry is judged on it). Nothing here knows about a particular test.
"""
from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import uvicorn
from slack_sdk import WebClient

from audit.store import Store
from gate.remote import RemoteGate
from service import slack_settings, wiring
from service.tokens import Tokens
from tests.slack_emulator import SlackEmulator
from tests.slack_harness import SECRET, UvicornThread, add_people
from tests.store_helpers import migrated

REPO = Path(__file__).resolve().parents[1]

# A service configuration: admins and auditors, Slack channels and people, and targets whose URLs
# come from the SERVICE's environment (the test passes them in `env`).
SERVER_TABLES = """
[server]
admins = ["carol"]
auditors = ["dave"]

[slack]
channel = "CAPPROVALS"
audit_channel = "CAUDITLOG"

[people]
alice = "alice@example.com"
bob = "bob@example.com"
carol = "carol@example.com"
dave = "dave@example.com"
"""


def target_tables(name: str = "prod", *, url_env: str = "TEAM_TARGET_URL", policy: str = "prod",
                  environment: str = "production", **policy_settings) -> str:
    """A [targets.NAME] and its [policies.POLICY], the URL read from the service's `url_env`."""
    lines = [f"[targets.{name}]", f'url_env = "{url_env}"', f'environment = "{environment}"', f'policy = "{policy}"',
             "", f"[policies.{policy}]"]
    lines += [f"{key} = {_toml(value)}" for key, value in policy_settings.items()]
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f'"{value}"' if isinstance(value, str) else str(value)


class ServiceClock:
    """The service's clock (its store's): real time plus whatever the test adds."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **kwargs) -> None:
        self.offset += timedelta(**kwargs)


@dataclass
class TeamService:
    url: str
    store: Store
    service: wiring.Service
    slack: SlackEmulator
    config_file: Path
    env: dict[str, str]
    clock: ServiceClock
    gates: list[RemoteGate] = field(default_factory=list)

    @property
    def api(self):
        return self.service.team

    def token(self, person: str, *, lifetime: timedelta = timedelta(hours=1), label: str = "test") -> str:
        """A token for ``person``, issued on the store as an admin would issue it."""
        return Tokens(self.store).issue(person, label=label, lifetime=lifetime, by="carol").secret

    def gate(self, person: str | None = None, *, token: str | None = None, heartbeat: float = 60.0) -> RemoteGate:
        """A RemoteGate as a console in team mode has it (closed when the service stops)."""
        gate = RemoteGate(self.url, token or self.token(person), heartbeat=heartbeat)
        self.gates.append(gate)
        return gate

    def console_env(self, home: Path, person: str | None = None, *, token: str | None = None,
                    **extra: str) -> dict[str, str]:
        """The environment of a `countersign` process in team mode: the service's URL and a token, its own
        home and state directories, and nothing of the service's (no store, no target URLs, no user)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("COUNTERSIGN_", "SLACK_")) and k not in self.env}
        env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_STATE_HOME": str(home / "state"), "PYTHONPATH": str(REPO), "PAGER": "cat",
                    "COUNTERSIGN_SERVER": self.url})
        if token or person:
            env["COUNTERSIGN_TOKEN"] = token or self.token(person)
        env.update(extra)
        return env

    def events(self, type_: str | None = None, session_id: str | None = None) -> list:
        return [e for e in self.store.events(session_id=session_id) if type_ is None or e.type == type_]


class ServerThread(UvicornThread):
    """UvicornThread on a socket opened as TCP (IPPROTO_TCP), as uvicorn opens its own for `serve`: asyncio
    then sets TCP_NODELAY on each connection. On a socket opened with protocol 0 it does not, and each
    response on a kept-alive connection waits ~40 ms for the client's delayed ACK (Nagle's algorithm)."""

    def __init__(self, app) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)


@contextmanager
def team_service(tmp_path: Path, targets: str = "", *, env: dict[str, str] | None = None,
                 store_url: str | None = None, idle_timeout: float = 300.0,
                 housekeeping: float = 0.2) -> Iterator[TeamService]:
    """The service with SERVER_TABLES + ``targets`` as its configuration and ``env`` as its environment
    (the targets' URLs), its own Slack emulator and store; stopped (sessions closed) at the end."""
    env = dict(env or {})
    config_file = tmp_path / "service.toml"
    config_file.write_text(SERVER_TABLES + "\n" + targets)
    settings, config = slack_settings.load(config_file, env)
    clock = ServiceClock()
    store = Store.open(migrated(store_url or f"sqlite:///{tmp_path / 'service-store.db'}"), clock=clock)
    with SlackEmulator() as slack:
        add_people(slack)
        service = wiring.build(store, WebClient(token=slack.token, base_url=slack.base_url), config,
                               signing_secret=SECRET, settings=settings, idle_timeout=idle_timeout,
                               poster_interval=0.05)
        service.team.interval = housekeeping
        service.team.start()
        running = None
        try:
            with ServerThread(service.asgi) as server:
                running = TeamService(f"http://127.0.0.1:{server.port}", store, service, slack, config_file, env,
                                      clock)
                yield running
                for gate in running.gates:
                    gate.close()
        finally:
            service.team.stop()
            if getattr(service, "logins", None) is not None:
                service.logins.close()
            store.dispose()


# -- the pipeline tests' third way to reach the gate: over HTTP ---------------------------------------------
class HttpGate(RemoteGate):
    """A RemoteGate to a TeamApi served in this process for one LocalGate; ``inner`` is that gate (for the
    pipeline tests' white-box helpers), ``close`` stops the server."""

    def __init__(self, inner, server: ServerThread, token: str) -> None:
        super().__init__(f"http://127.0.0.1:{server.port}", token)
        self.inner, self.server = inner, server

    def close(self) -> None:
        super().close()
        self.server.__exit__(None, None, None)


OPEN_HTTP_GATES: list[HttpGate] = []   # closed by the gate_mode fixture after each test


def http_gate(inner, targets: dict, user: str) -> HttpGate:
    """``inner`` (a LocalGate) behind the team API on a free port, and a RemoteGate to it holding a token
    for ``user``: every call, value and error of the pipeline tests then crosses real HTTP."""
    from starlette.applications import Starlette

    from audit.store import StoreUnavailable
    from config.settings import Settings
    from service.auth import Authenticator
    from service.gate_api import TeamApi
    from service.tokens import Tokens
    settings = Settings(store_url=None, targets=dict(targets))
    tokens = Tokens(inner.store)
    try:
        token = tokens.issue(user, label="pipeline test", lifetime=timedelta(days=366), by="tests").secret
    except StoreUnavailable:
        return inner   # a test broke the store on purpose: no token can be issued, and nothing runs anyway
    api = TeamApi(inner, settings=settings, tokens=tokens, authenticator=Authenticator(tokens, settings.server))
    server = ServerThread(Starlette(routes=api.routes())).__enter__()
    gate = HttpGate(inner, server, token)
    OPEN_HTTP_GATES.append(gate)
    return gate


def close_http_gates() -> None:
    while OPEN_HTTP_GATES:
        OPEN_HTTP_GATES.pop().close()

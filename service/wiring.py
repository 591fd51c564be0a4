"""The composition root of `countersign serve`: one store, one Slack client, the listeners, the poster."""
from __future__ import annotations

from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from starlette.applications import Starlette

from approvals.service import ApprovalService
from audit.store import Store
from gate.errors import GateError
from gate.local import LocalGate
from service import health
from service.asgi import build_asgi
from service.decisions import Decisions
from service.metrics import Metrics
from service.outbox import Outbox
from service.poster import Poster
from service.sender import Sender
from service.slack_app import Listeners, build_app
from service.slack_settings import SlackConfig
from config.settings import Settings
from service.auth import Authenticator
from service.gate_api import IDLE_TIMEOUT_S, TeamApi, build_gate
from service.tokens import Tokens
from service import login_routes
from service.login import LoginClicks, Logins


def store_gate(store: Store) -> LocalGate:
    """The gate Slack's clicks decide through: votes only, it opens no target (the consoles' sessions
    are on the team API's gate, `team_api` below)."""
    def no_targets(name: str):
        raise GateError(f"`countersign serve` opens no target (asked for {name!r})")
    return LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=no_targets)


@dataclass(frozen=True)
class Service:
    store: Store
    outbox: Outbox
    poster: Poster
    bolt: App
    asgi: Starlette
    drain: health.Drain          # SIGTERM begins it: /readyz 503, new work refused, admitted work counted
    metrics: Metrics
    team: TeamApi | None = None  # the consoles' API (/api/v1/...): the gate over the service's own targets
    logins: Logins | None = None  # `countersign login`: confirmed in Slack (/api/v1/login, the DM's buttons)


def build(store: Store, client: WebClient, config: SlackConfig, *, signing_secret: str,
          poster_interval: float = 0.2, lease: float = 10.0, holder: str | None = None,
          settings: Settings | None = None, idle_timeout: float = IDLE_TIMEOUT_S) -> Service:
    outbox, drain = Outbox(store.engine, store.clock), health.Drain()
    metrics = Metrics(store, outbox, drain)
    decisions = Decisions(store_gate(store), on_decided=metrics.decided)
    poster = Poster(store, outbox, Sender(client, outbox, decisions, config), config,
                    interval=poster_interval, lease=lease, holder=holder, expire=decisions.expire_due)
    listeners = Listeners(store, decisions, outbox, config, on_decision=poster.wake)
    logins = Logins(store, Tokens(store), client, config, (settings or Settings(store_url=None, targets={})).server)
    bolt = build_app(client=client, signing_secret=signing_secret, listeners=listeners,
                     logins=LoginClicks(logins, config))
    # Bolt answers Slack at ack() and finishes a click (the vote, its audit event) on its executor:
    # counted, so a drain waits for the vote as it waits for a request.
    runner = bolt.listener_runner
    runner.listener_executor = drain.counted(runner.listener_executor)
    team = team_api(store, settings or Settings(store_url=None, targets={}), drain=drain,
                    on_decided=metrics.decided, idle_timeout=idle_timeout)
    asgi = build_asgi(bolt, health.routes(store, outbox, drain) + metrics.routes() + team.routes()
                      + login_routes.routes(logins) + auditor_pages(store, team, settings),
                      middleware=[metrics.middleware(), health.drain_middleware(drain)])
    return Service(store, outbox, poster, bolt, asgi, drain, metrics, team, logins)


def auditor_pages(store: Store, team: TeamApi, settings: Settings | None) -> list:
    """The auditor's read-only pages at /audit, signed in with the same tokens as the API."""
    from audit.redact import redact, secret_patterns
    from service import pages
    settings = settings or Settings(store_url=None, targets={})
    patterns = secret_patterns(settings.secret_patterns)
    return pages.routes(store, team.auth, engines={t.name: t.dialect for t in settings.targets.values()},
                        redact=lambda text: redact(text, patterns))


def team_api(store: Store, settings: Settings, *, drain: health.Drain | None = None, on_decided=None,
             idle_timeout: float = IDLE_TIMEOUT_S) -> TeamApi:
    """The consoles' API over a gate on the service's own targets, policies and store (started by
    the caller: its thread closes abandoned sessions and expires due requests)."""
    tokens = Tokens(store)
    return TeamApi(build_gate(settings, store), settings=settings, tokens=tokens,
                   authenticator=Authenticator(tokens, settings.server), idle_timeout=idle_timeout,
                   stopping=drain.stopping if drain else None, on_decided=on_decided)

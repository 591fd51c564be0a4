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
from service.asgi import build_asgi
from service.decisions import Decisions
from service.outbox import Outbox
from service.poster import Poster
from service.sender import Sender
from service.slack_app import Listeners, build_app
from service.slack_settings import SlackConfig


def store_gate(store: Store) -> LocalGate:
    """The gate the service decides through. It opens no target yet: until team mode moves the
    credentials here, consoles run statements and the service only takes reviewers' votes."""
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


def build(store: Store, client: WebClient, config: SlackConfig, *, signing_secret: str,
          poster_interval: float = 0.2, lease: float = 10.0, holder: str | None = None) -> Service:
    outbox, decisions = Outbox(store.engine, store.clock), Decisions(store_gate(store))
    poster = Poster(store, outbox, Sender(client, outbox, decisions, config), config,
                    interval=poster_interval, lease=lease, holder=holder, expire=decisions.expire_due)
    listeners = Listeners(store, decisions, outbox, config, on_decision=poster.wake)
    bolt = build_app(client=client, signing_secret=signing_secret, listeners=listeners)
    return Service(store, outbox, poster, bolt, build_asgi(bolt, outbox))

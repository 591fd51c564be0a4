"""Prometheus metrics of `countersign serve`, at GET /metrics in the text exposition format.

    countersign_http_requests_total{route,method,status}   requests answered (route: the route's
                                                            template, never the raw path)
    countersign_http_request_duration_seconds{route}       how long they took
    countersign_approval_decision_seconds{outcome}         request created -> the vote that decided it
                                                            (votes taken here: Slack, the team API)
    countersign_approval_requests_pending                  open requests, read from the store per scrape
    countersign_slack_outbox_depth                         Slack posts waiting to go out, likewise
    countersign_store_up                                   1 when the store answered this scrape
    countersign_work_in_flight                             requests and Slack clicks being worked on
                                                            (long-polls included: what a drain waits for)
    countersign_draining                                   1 once SIGTERM began the drain

Each app has its own CollectorRegistry, so tests (and one process) may build several apps. The store
is read only at scrape time, by a collector; a store that does not answer gives store_up 0 and no
store gauges, never a failed scrape.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from approvals.models import ApprovalRequest, Status
from audit.schema import approval_requests
from audit.store import Store
from service.health import Drain
from service.outbox import Outbox

log = logging.getLogger("countersign.serve.metrics")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"      # the route label of a request no route took (a 404): raw paths are unbounded
# People decide requests in seconds to hours.
DECISION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400)
DECIDED = {Status.APPROVED: "approved", Status.REJECTED: "rejected"}


class Metrics:
    """The metrics of one app: its own registry, the HTTP middleware, the /metrics route."""

    def __init__(self, store: Store, outbox: Outbox, drain: Drain) -> None:
        self.registry = CollectorRegistry()
        Gauge("countersign_work_in_flight", "Requests and Slack clicks being worked on (a drain waits for them)",
              registry=self.registry).set_function(lambda: drain.in_flight)
        Gauge("countersign_draining", "1 once a SIGTERM began the drain", registry=self.registry) \
            .set_function(lambda: int(drain.draining))
        self.requests = Counter("countersign_http_requests", "HTTP requests answered, by route template and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("countersign_http_request_duration_seconds", "Time to answer an HTTP request",
                                 ["route"], registry=self.registry)
        self.decisions = Histogram("countersign_approval_decision_seconds",
                                   "From an approval request's creation to the vote that decided it",
                                   ["outcome"], buckets=DECISION_BUCKETS, registry=self.registry)
        self.registry.register(StoreGauges(store, outbox))

    def decided(self, request: ApprovalRequest) -> None:
        """Observe a request a vote just decided (called with the request as the vote left it)."""
        outcome = DECIDED.get(request.status)
        if outcome is None or not request.votes:
            return
        seconds = decision_seconds(request.created_at, max(v.ts for v in request.votes))
        self.decisions.labels(outcome=outcome).observe(seconds)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The metrics in the format the scraper asked for (Accept: OpenMetrics, else Prometheus text),
        and its content type."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    def middleware(self) -> Middleware:
        return Middleware(RequestMetrics, metrics=self)

    def routes(self) -> list[Route]:
        async def metrics(request: Request) -> Response:
            # the collectors read the store: off the event loop
            body, content_type = await run_in_threadpool(self.exposition, request.headers.get("accept"))
            return Response(body, headers={"Content-Type": content_type})
        return [Route("/metrics", metrics, methods=["GET"])]


def decision_seconds(created_at: datetime, decided_at: datetime) -> float:
    """Seconds from creation to decision, never negative (clocks of two hosts may disagree a little).

    >>> from datetime import timedelta
    >>> t = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    >>> decision_seconds(t, t + timedelta(minutes=2)), decision_seconds(t, t - timedelta(seconds=1))
    (120.0, 0.0)
    """
    return max(0.0, (decided_at - created_at).total_seconds())


def route_label(scope: Scope, root_path: str) -> str:
    """The template of the route that took the request (`/api/requests/{id}` under a Mount), else
    UNMATCHED. `root_path` is the scope's root_path before routing; a Mount extends it. A request
    answered before routing (refused while draining) is labelled with the route it would have taken."""
    route = scope.get("route") or _would_take(scope)
    template = getattr(route, "path", None)
    if template is None:
        return UNMATCHED
    return scope.get("root_path", "")[len(root_path):] + template


def _would_take(scope: Scope):
    app = scope.get("app")
    for route in getattr(app, "routes", ()):
        if route.matches(scope)[0] == Match.FULL:
            return route
    return None


class RequestMetrics:
    """Pure ASGI middleware: counts each HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, root_path, status = time.perf_counter(), scope.get("root_path", ""), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_label(scope, root_path)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(route=route, method=method, status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - started)


class StoreGauges(Collector):
    """Gauges read from the store when Prometheus scrapes: pending requests and the outbox depth."""

    def __init__(self, store: Store, outbox: Outbox) -> None:
        self.store, self.outbox = store, outbox

    def describe(self) -> list[Metric]:
        return []    # nothing at registration: describing would read the store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("countersign_store_up", "1 when the store answered this scrape, else 0")
        try:
            pending, waiting = pending_requests(self.store), self.outbox.waiting()
        except Exception as err:  # noqa: BLE001 - a scrape reports the outage instead of failing
            log.warning("metrics: the store did not answer: %s", err)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("countersign_approval_requests_pending",
                                "Approval requests waiting for a decision (not yet expired)", value=pending)
        yield GaugeMetricFamily("countersign_slack_outbox_depth", "Slack posts pending or being sent", value=waiting)


def pending_requests(store: Store) -> int:
    """Open requests that have not expired: only the pending rows of the requests table are counted,
    never the audit trail."""
    now = store.clock()
    now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now
    query = (select(func.count()).select_from(approval_requests)
             .where(approval_requests.c.status == Status.PENDING.value, approval_requests.c.expires_at > now))
    with store.engine.connect() as conn:
        return conn.execute(query).scalar_one()

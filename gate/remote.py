"""The gate across a network: the Gate protocol over the team API of `countersign serve` (wire
protocol v1, service/gate_api.py), for a console that holds no database URL, no policy and no store.

Every call is one HTTP POST on a kept-alive connection, its values in gate.codec's JSON. It goes
through httpcore's connection pool (the transport under httpx) rather than an httpx.Client, whose
per-request work (merging URLs and headers, a cookie jar, hooks) cost a tenth of what a read may add
over loopback, and each request leaves in one write (see _WholeRequests). The service
decides who the caller is from the token, never from an argument: the names sent for ``user`` and
``person`` are only checked there. Errors come back as the exceptions the console already handles
(an approval refusal as its ApprovalError, a database failure as a DriverError, an unknown snapshot
as SnapshotNotFound) or, for what only a network has, as a RemoteError whose message says what to
do: log in again, check the URL, retry later.

While a session is open a thread sends a heartbeat every ``heartbeat`` seconds, so the service can
tell a console that is idle at its prompt from one that is gone (it closes the latter's sessions).
"""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpcore
import httpx

from gate.api import Outcome, Reply, RequestState, RestorePlan, SessionInfo
from gate.codec import decode, encode
from gate.errors import GateError

WAIT_CAP_S = 30.0          # the service answers a long-poll after at most this long
HEARTBEAT_S = 60.0         # the service closes a session after five missed heartbeats (`serve --idle-seconds`)
CONNECT_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 900.0     # a statement's own timeout (the service's policy) is far shorter: this only
                           # bounds a network that stopped answering
API = "/api/v1"
JSON_BODY = [(b"Content-Type", b"application/json")]


class RemoteError(GateError):
    """The service refused or failed the call, or could not be reached; the message says what to do."""

    code = "remote"


class NotAuthenticated(RemoteError):
    code = "not_authenticated"


class Forbidden(RemoteError):
    code = "forbidden"


class NotFound(RemoteError):
    code = "not_found"


class BadRequest(RemoteError):
    code = "bad_request"


class Unavailable(RemoteError):
    """The service cannot serve now (its store failed, it is shutting down) or cannot be reached."""
    code = "unavailable"


BY_STATUS = {401: NotAuthenticated, 403: Forbidden, 404: NotFound, 422: BadRequest, 503: Unavailable}


@dataclass(frozen=True)
class WhoAmI:
    person: str
    roles: tuple[str, ...]
    token_id: str
    expires_at: datetime


class RemoteGate:
    def __init__(self, server_url: str, token: str, *, heartbeat: float = HEARTBEAT_S) -> None:
        self.server_url = server_url.rstrip("/")
        self.heartbeat_interval = heartbeat
        # As httpx would set it up: its TLS context (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), its limits.
        # TCP_NODELAY: with Nagle's algorithm a small write can wait for the service's delayed ACK (~40 ms
        # on Linux) of what was sent before it.
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), max_connections=100,
                                             max_keepalive_connections=20, keepalive_expiry=5.0,
                                             network_backend=_WholeRequests(),
                                             socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._headers = [(b"Authorization", b"Bearer " + token.encode("utf-8", "replace")),
                         (b"User-Agent", b"countersign-console"), (b"Accept", b"application/json")]
        self._base: httpx.URL | None = None
        self._beats: dict[str, threading.Event] = {}

    # -- the Gate protocol ------------------------------------------------------------------------
    def open_session(self, user: str | None, target: str, reason: str | None = None) -> SessionInfo:
        info = self._call("open_session", user, target, reason)
        self._start_heartbeat(info.id)
        return info

    def close_session(self, session_id: str) -> None:
        self._stop_heartbeat(session_id)
        self._call("close_session", session_id)

    def classify(self, session_id: str, text: str):
        return self._call("classify", session_id, text)

    def submit(self, session_id: str, text: str, *, as_one: bool = False, purpose: str | None = None,
               restores: str | None = None) -> tuple[Reply, ...]:
        return self._call("submit", session_id, text, as_one=as_one, purpose=purpose, restores=restores)

    def wait(self, request_id: str, timeout: float) -> RequestState:
        # The service caps one long-poll at WAIT_CAP_S; the read timeout leaves it room to answer.
        return self._call("wait", request_id, min(float(timeout), WAIT_CAP_S), timeout_s=WAIT_CAP_S + 30)

    def resume(self, session_id: str, request_id: str) -> tuple[Outcome, ...]:
        return self._call("resume", session_id, request_id)

    def stop_waiting(self, session_id: str, request_id: str) -> tuple[Outcome, ...]:
        return self._call("stop_waiting", session_id, request_id)

    def cancel(self, session_id: str) -> None:
        self._call("cancel", session_id, timeout_s=30)

    def catalog(self, session_id: str):
        return self._call("catalog", session_id)

    def restore_plan(self, session_id: str, snapshot_id: str) -> RestorePlan:
        return self._call("restore_plan", session_id, snapshot_id)

    def snapshot_sample(self, session_id: str, snapshot_id: str, limit: int) -> Outcome:
        return self._call("snapshot_sample", session_id, snapshot_id, limit)

    def prune_snapshot(self, session_id: str, snapshot_id: str) -> None:
        self._call("prune_snapshot", session_id, snapshot_id)

    def requests(self, pending_only: bool = False) -> tuple[Any, ...]:
        return self._call("requests", pending_only)

    def request(self, id_or_prefix: str):
        return self._call("request", id_or_prefix)

    def vote(self, request_id: str, person: str | None, verdict: str, comment: str | None = None,
             source: str = "api"):
        return self._call("vote", request_id, person, verdict, comment)

    def check_vote(self, request_id: str, person: str | None):
        return self._call("check_vote", request_id, person)

    def expire_due(self) -> tuple[str, ...]:
        raise RemoteError("the service expires requests itself; a console cannot ask it to")

    def withdraw(self, request_id: str, person: str | None):
        return self._call("withdraw", request_id, person)

    def pending(self, session_id: str) -> tuple[Any, ...]:
        return self._call("pending", session_id)

    # -- the service's own verbs ------------------------------------------------------------------
    def now(self) -> datetime:
        """The service's clock (what expiry is judged on), for showing ages and deadlines."""
        return self._call("now")

    def target(self, name: str) -> dict:
        """A configured target as a console may know it: name, environment, dialect, policy name,
        whether a reason is required, where its requests are decided."""
        return self._call("target", name)

    def snapshots(self, target: str | None = None) -> list:
        return [_snapshot(fields) for fields in self._call("snapshots", target)]

    def snapshot(self, id_or_prefix: str):
        return _snapshot(self._call("snapshot", id_or_prefix))

    def prunable(self, older_than: timedelta | None = None) -> list:
        return [_snapshot(fields) for fields in self._call("prunable", older_than)]

    def audit_sessions(self) -> list:
        from audit.store import SessionInfo as StoredSession
        return [StoredSession(**fields) for fields in self._call("audit_sessions")]

    def audit_session(self, id_or_prefix: str):
        from audit.store import SessionInfo as StoredSession
        return StoredSession(**self._call("audit_session", id_or_prefix))

    def audit_events(self, *, session_id: str | None = None, since: datetime | None = None,
                     after_seq: int = 0, limit: int = 1000) -> list:
        from audit.chain import AuditEvent
        return [AuditEvent(**fields) for fields in self._call("audit_events", session_id, since, after_seq, limit)]

    def audit_event(self, seq: int):
        from audit.chain import AuditEvent
        fields = self._call("audit_event", seq)
        return AuditEvent(**fields) if fields is not None else None

    def audit_verify(self):
        from audit.chain import VerifyResult
        return VerifyResult(**self._call("audit_verify"))

    def whoami(self) -> WhoAmI:
        body = self._request("GET", f"{API}/whoami", what="whoami")
        return WhoAmI(body["person"], tuple(body["roles"]), body["token_id"], datetime.fromisoformat(body["expires_at"]))

    def tokens(self, *, include_inactive: bool = False) -> list[dict]:
        return self._request("GET", f"{API}/tokens" + ("?all=1" if include_inactive else ""),
                             what="tokens list")["tokens"]

    def issue_token(self, person: str, label: str, lifetime: timedelta) -> dict:
        body = {"person": person, "label": label, "lifetime_seconds": lifetime.total_seconds()}
        return self._request("POST", f"{API}/tokens", what="tokens issue", body=json.dumps(body).encode())

    def revoke_token(self, token_id: str) -> dict:
        segment = quote(token_id, safe="")     # an id is one path segment, whatever was typed
        return self._request("POST", f"{API}/tokens/{segment}/revoke", what="tokens revoke", body=b"")

    def close(self) -> None:
        for session_id in list(self._beats):
            self._stop_heartbeat(session_id)
        self._pool.close()

    # -- the wire -----------------------------------------------------------------------------------
    def _call(self, verb: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        body = {"args": [encode(a) for a in args], "kwargs": {k: encode(v) for k, v in kwargs.items()}}
        answer = self._request("POST", f"{API}/gate/{verb}", body=json.dumps(body).encode(), what=verb,
                               timeout=timeout_s)
        return decode(answer["result"])

    def _request(self, method: str, target: str, *, what: str, timeout: float | None = None,
                 body: bytes | None = None) -> dict:
        """One request; ``target`` is the path (and query) under the service's URL, ``body`` JSON."""
        try:
            seconds = CALL_TIMEOUT_S if timeout is None else timeout
            response = self._pool.request(method, self._url(target), content=body,
                                          headers=self._headers if body is None else self._headers + JSON_BODY,
                                          extensions={"timeout": _timeout(seconds)})
        except (httpcore.ConnectError, httpcore.UnsupportedProtocol, httpx.InvalidURL) as err:
            raise Unavailable(f"cannot reach the Countersign service at {self.server_url} ({_reason(err)}); check "
                              "the URL (COUNTERSIGN_SERVER or [server] url) and that `countersign serve` runs "
                              "there") from None
        except httpcore.TimeoutException:
            raise Unavailable(f"the Countersign service at {self.server_url} did not answer {what} in time; "
                              "what it was running stops or finishes there (`countersign audit` shows which)") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError) as err:
            raise Unavailable(f"the connection to the Countersign service at {self.server_url} broke during "
                              f"{what} ({_reason(err)}); what it was running was cancelled or finished there "
                              "(`countersign audit` shows which)") from None
        return self._answer(response.status, response.content)

    def _url(self, target: str) -> httpcore.URL:
        """The service's URL (parsed once, by httpx's rules: IDNA hosts, default ports) with ``target``."""
        if self._base is None:
            base = httpx.URL(self.server_url)
            if base.scheme not in ("http", "https") or not base.host:
                raise httpcore.UnsupportedProtocol("the URL must start with http:// or https:// and name a host")
            self._base = base
        base = self._base
        return httpcore.URL(scheme=base.raw_scheme, host=base.raw_host, port=base.port,
                            target=base.raw_path.rstrip(b"/") + target.encode("ascii"))

    def _answer(self, status: int, content: bytes) -> dict:
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if status == 200 and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        kind, message = (error.get("type"), error.get("message")) if isinstance(error, dict) else (None, error)
        raise self._error(status, kind, message or f"HTTP {status}")

    def _error(self, status: int, kind: str | None, message: str) -> Exception:
        if status == 401:
            return NotAuthenticated(f"your login to {self.server_url} expired or was revoked (or the token is "
                                    f"wrong): run `countersign login {self.server_url}`")
        known = _known_errors().get(kind or "")
        if known is not None:
            return known(message)
        if status >= 500 and status != 503:
            return RemoteError(f"the Countersign service failed: {message}")
        return BY_STATUS.get(status, RemoteError)(message)

    # -- heartbeats ---------------------------------------------------------------------------------
    def _start_heartbeat(self, session_id: str) -> None:
        stop = self._beats[session_id] = threading.Event()
        threading.Thread(target=self._beat, args=(session_id, stop), daemon=True,
                         name="countersign-heartbeat").start()

    def _stop_heartbeat(self, session_id: str) -> None:
        stop = self._beats.pop(session_id, None)
        if stop is not None:
            stop.set()

    def _beat(self, session_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            try:
                self._call("heartbeat", session_id, timeout_s=30)
            except (NotFound, Forbidden, NotAuthenticated):
                return          # the session is gone: the next real call says so
            except RemoteError:
                continue        # the service is unreachable for now: try again at the next beat


def _timeout(seconds: float) -> dict[str, float]:
    """A call's timeouts as httpcore takes them: ``seconds`` to answer, CONNECT_TIMEOUT_S to connect."""
    return {"connect": CONNECT_TIMEOUT_S, "read": seconds, "write": seconds, "pool": seconds}


class _WholeRequests(httpcore.NetworkBackend):
    """httpcore's own sockets, each request sent in one write: httpcore writes a request's headers and its
    body apart, and each write wakes the service, which on a busy machine costs a scheduling delay twice."""

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _HeldWrites(self._sockets.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _HeldWrites(self._sockets.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class _HeldWrites(httpcore.NetworkStream):
    """Holds what is written until the answer is read, then sends it in one write (HTTP/1.1: a request is
    written whole before its response is read)."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream, self._held = stream, bytearray()

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._held += buffer

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            held, self._held = bytes(self._held), bytearray()
            self._stream.write(held, timeout)
        return self._stream.read(max_bytes, timeout)

    def close(self) -> None:
        self._held.clear()
        self._stream.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _HeldWrites(self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _snapshot(fields: dict):
    from snapshots.records import SnapshotRecord
    return SnapshotRecord(**fields)


def _reason(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0][:200]


@lru_cache(maxsize=1)
def _known_errors() -> dict[str, type[Exception]]:
    """The server's error types a console already handles, by class name; anything else becomes a
    RemoteError (a name from the network never picks an arbitrary class)."""
    from approvals import models
    from audit.store import StoreUnavailable, UnknownSession
    from engines import base
    from snapshots.records import SnapshotNotFound
    classes = [GateError, base.DriverError, *base.DriverError.__subclasses__(), SnapshotNotFound, UnknownSession,
               models.ApprovalError, *models.ApprovalError.__subclasses__()]
    known = {cls.__name__: cls for cls in classes}
    # The service's store failed: an Unavailable for the console's messages and exit code, and the
    # StoreUnavailable that code written against the in-process gate catches.
    known["StoreUnavailable"] = type("StoreUnavailable", (Unavailable, StoreUnavailable),
                                     {"__doc__": "The service's audit store cannot record or be read."})
    return known

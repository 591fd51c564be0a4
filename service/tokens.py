"""API tokens: how a console, a script or an auditor's browser proves who it is to `countersign serve`.

A token is ``cs_<id>_<secret>``. It is shown once, when issued; the store keeps only the SHA-256 of the
whole string, so someone who reads the store (or a backup of it) holds no usable credential, and an
edited row cannot mint one either: the hash of a token nobody was given matches nothing. Every
issue and revocation is recorded in the audit trail before it takes effect. Expiry is judged on the
service's clock, on every use.

A token the store has verified is trusted for VERIFIED_FOR_S (1 s) without asking the store again: the
store's read was most of the cost of an authenticated call. A revocation made in this process (the
team API, a logout, anything holding a Tokens) is refused on the token's next use all the same: it
voids every verification made before it. One made by another process on the same store (another
`countersign serve`, `countersign tokens revoke` on the service's host) is refused within that second.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select, update

from approvals.names import canonical
from audit.events import TokenIssuedEvent, TokenRevokedEvent
from audit.schema import api_tokens as tokens_t
from audit.store import Store, StoreUnavailable

KINDS = ("login", "automation")
MAX_LIFETIME = timedelta(days=366)
VERIFIED_FOR_S = 1.0         # how long a verification by the store is trusted (see the module's doc)
MAX_VERIFIED = 4096          # verified tokens remembered at once (more are simply verified again)


class TokenError(Exception):
    """A token request that cannot be granted; the message says why and what to do."""


@dataclass(frozen=True)
class IssuedToken:
    id: str
    secret: str                     # shown once; never stored
    person: str
    label: str
    kind: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    id: str
    person: str
    label: str
    kind: str
    issued_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class _Revocations:
    """This process's revocations, counted: a verification remembered from before the latest one is void."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latest = 0

    def happened(self) -> None:
        with self._lock:
            self.latest += 1


_revocations = _Revocations()


@dataclass(frozen=True)
class _Verified:
    record: TokenRecord
    asked_at: float                  # time.monotonic() just before the store was asked
    revocations: int                 # _revocations.latest then


class _VerifiedTokens:
    """Tokens the store verified in the last VERIFIED_FOR_S seconds, by the hash of their secret."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_digest: dict[str, _Verified] = {}

    def get(self, key: str) -> TokenRecord | None:
        seen = self._by_digest.get(key)
        if seen is None or seen.revocations != _revocations.latest \
                or time.monotonic() - seen.asked_at >= VERIFIED_FOR_S:
            return None
        return seen.record

    def put(self, key: str, verified: _Verified) -> None:
        with self._lock:
            if len(self._by_digest) >= MAX_VERIFIED:
                now = time.monotonic()
                self._by_digest = {k: v for k, v in self._by_digest.items() if now - v.asked_at < VERIFIED_FOR_S}
                if len(self._by_digest) >= MAX_VERIFIED:
                    self._by_digest.clear()
            self._by_digest[key] = verified


class Tokens:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._verified = _VerifiedTokens()

    def now(self) -> datetime:
        return _utc(self.store.clock())

    def issue(self, person: str, *, label: str, lifetime: timedelta, by: str,
              kind: str = "automation") -> IssuedToken:
        if kind not in KINDS:
            raise TokenError(f"unknown token kind {kind!r}; use one of {', '.join(KINDS)}")
        if not timedelta(0) < lifetime <= MAX_LIFETIME:
            raise TokenError(f"a token lives more than 0s and at most {MAX_LIFETIME.days} days; "
                             "issue a new one when it expires")
        label = label.strip()
        if not label or len(label) > 200:
            raise TokenError("give the token a label of 1 to 200 characters (what it is for)")
        person, by = canonical(person), canonical(by)
        token_id = self.store.new_id()
        secret = f"cs_{token_id.replace('-', '')}_{secrets.token_urlsafe(32)}"
        now = self.now()
        expires = now + lifetime
        # Recorded first: a token the trail does not know about is never created.
        self.store.append(None, TokenIssuedEvent(token_id=token_id, user=person, label=label, kind=kind,
                                                 issued_by=by, expires_at=expires.isoformat()))
        with self._writing("issue the token") as conn:
            conn.execute(insert(tokens_t).values(
                id=token_id, secret_hash=digest(secret), person=person, label=label, kind=kind, issued_by=by,
                created_at=now, expires_at=expires))
        return IssuedToken(token_id, secret, person, label, kind, expires)

    def authenticate(self, secret: str | None) -> TokenRecord | None:
        """The token's record when it is known, unexpired now and unrevoked (by the store's answer, at most
        VERIFIED_FOR_S old and younger than this process's last revocation); None otherwise."""
        if not secret or not secret.startswith("cs_") or len(secret) > 200:
            return None
        key = digest(secret)
        record = self._verified.get(key)
        if record is None:
            # noted before the store is asked: a revocation after this point voids the answer
            asked_at, revocations = time.monotonic(), _revocations.latest
            with self.store.engine.connect() as conn:
                row = conn.execute(select(tokens_t).where(tokens_t.c.secret_hash == key)).first()
            if row is None:
                return None
            record = _record(row)
            if record.revoked_at is None:
                self._verified.put(key, _Verified(record, asked_at, revocations))
        return record if record.usable_at(self.now()) else None

    def list(self, *, include_inactive: bool = False) -> tuple[TokenRecord, ...]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(tokens_t).order_by(tokens_t.c.created_at)).all()
        now = self.now()
        return tuple(r for r in map(_record, rows) if include_inactive or r.usable_at(now))

    def get(self, id_or_prefix: str) -> TokenRecord:
        matches = [t for t in self.list(include_inactive=True) if t.id.startswith(id_or_prefix.strip())]
        if len(matches) != 1 or not id_or_prefix.strip():
            raise TokenError(f"no single token has an id starting {id_or_prefix!r}; `countersign tokens list` "
                             "shows them")
        return matches[0]

    def revoke(self, id_or_prefix: str, *, by: str) -> TokenRecord:
        token = self.get(id_or_prefix)
        if token.revoked_at is not None:
            return token
        by = canonical(by)
        self.store.append(None, TokenRevokedEvent(token_id=token.id, user=token.person, revoked_by=by))
        now = self.now()
        try:
            with self._writing("revoke the token") as conn:
                conn.execute(update(tokens_t).where(tokens_t.c.id == token.id, tokens_t.c.revoked_at.is_(None))
                             .values(revoked_at=now, revoked_by=by))
        finally:   # after the commit: a verification that read the row before it is void from here on
            _revocations.happened()
        return self.get(token.id)

    def _writing(self, what: str):
        from contextlib import contextmanager

        from sqlalchemy.exc import SQLAlchemyError

        @contextmanager
        def scope():
            try:
                with self.store.engine.begin() as conn:
                    yield conn
            except SQLAlchemyError as err:
                raise StoreUnavailable(f"the store could not {what}: {type(err).__name__}") from err
        return scope()


def _record(row) -> TokenRecord:
    return TokenRecord(row.id, row.person, row.label, row.kind, row.issued_by, _utc(row.created_at),
                       _utc(row.expires_at), _utc(row.revoked_at), row.revoked_by)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

"""`countersign login`: a person proves who they are by answering, in Slack, a direct message only they
receive; the console then collects a short-lived token, once.

    start(person, host)  -> a login id and a poll secret. The service finds the person's Slack account by
                            their work email in [people] and asks them "Is this you, logging in to
                            Countersign from HOST?" (Yes / No).
    the click            -> only the Slack user the message went to, who must still be that person,
                            while the login is pending and unexpired on the service's clock. A replayed
                            click changes nothing.
    poll(id, secret)     -> pending | confirmed (the token: issued when first collected, never again) |
                            denied | expired | collected.

Nobody learns who exists from it: a name not in [people], or whose Slack account cannot be found, gets
the same answer as everyone (a login that stays pending until it expires), and the Slack work happens
after the answer, so its time does not tell either. The trail records why (a `refused` login event).
Starts are limited per person, so nobody can fill someone's direct messages.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from approvals.names import BadName, canonical
from approvals.slack.text import one_line
from audit.events import LoginEvent
from audit.schema import logins as logins_t
from audit.store import Store, StoreUnavailable
from config.settings import ServerSettings
from service.people import Person, Unmapped, person_for
from service.slack_settings import SlackConfig
from service.tokens import TokenError, TokenRecord, Tokens

log = logging.getLogger("countersign.serve.login")

# What a console sees. REFUSED is kept in the store only: to the console such a login is pending until
# it expires, exactly like a real one nobody answers.
PENDING, CONFIRMED, DENIED, EXPIRED, COLLECTED, REFUSED = (
    "pending", "confirmed", "denied", "expired", "collected", "refused")
LOGIN_CONFIRM, LOGIN_DENY = "login_confirm", "login_deny"      # the buttons' action ids
STARTS_PER_PERSON, STARTS_WINDOW = 5, timedelta(minutes=10)
MAX_WAIT = 30.0                  # seconds one poll may wait for the answer
REREAD = 0.5                     # seconds between store reads while waiting (another `serve` may take the click)
COLLECT_WITHIN = timedelta(minutes=1)   # a confirmed login's token is collected this soon, or never
HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class LoginError(Exception):
    """A login the service will not start or answer; the message says what to do."""


class BadLogin(LoginError):
    """The request itself is wrong (not a name, not a host name)."""


class TooManyLogins(LoginError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownLogin(LoginError):
    """No login has this id and poll secret."""


@dataclass(frozen=True)
class LoginStarted:
    login_id: str
    poll_secret: str                 # shown once; the store keeps its SHA-256
    expires_at: datetime


@dataclass(frozen=True)
class LoginState:
    """What a poll answers; the token only with the one `confirmed` answer."""
    status: str
    token: str | None = None
    person: str | None = None
    expires_at: datetime | None = None      # the token's

    def to_json(self) -> dict:
        if self.token is None:
            return {"status": self.status}
        return {"status": self.status, "token": self.token, "person": self.person,
                "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True)
class Login:
    id: str
    poll_hash: str
    person: str
    slack_user: str | None
    host: str
    status: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    token_id: str | None


@dataclass(frozen=True)
class Answer:
    """What one click did."""
    accepted: bool
    status: str                      # confirmed | denied, or the refusal's kind
    why: str | None                  # for the clicker, when refused
    login: Login | None


class Logins:
    def __init__(self, store: Store, tokens: Tokens, client: WebClient, config: SlackConfig,
                 server: ServerSettings) -> None:
        self.store, self.tokens, self.client, self.config, self.server = store, tokens, client, config, server
        self._asking = ThreadPoolExecutor(max_workers=2, thread_name_prefix="countersign-login")
        self._watchers: set[Callable[[], None]] = set()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return _utc(self.store.clock())

    def close(self) -> None:
        """Finish the direct messages already being sent."""
        self._asking.shutdown(wait=True)

    # -- start ----------------------------------------------------------------------------------
    def start(self, person: str, host: str, address: str | None = None) -> LoginStarted:
        """A pending login; the direct message is sent after this returns (see the module's note)."""
        name, host = _name(person), _host(host)
        now = self.now()
        self._limit(name, now)
        login_id, secret = self.store.new_id(), secrets.token_urlsafe(32)
        expires = now + self.server.login_window
        with self._writing("start the login") as conn:
            conn.execute(insert(logins_t).values(id=login_id, poll_hash=_digest(secret), person=name, host=host,
                                                 status=PENDING, created_at=now, expires_at=expires))
        self._asking.submit(self._ask, login_id, name, host, address, expires)
        return LoginStarted(login_id, secret, expires)

    def _limit(self, name: str, now: datetime) -> None:
        """At most STARTS_PER_PERSON starts per STARTS_WINDOW for one name, whoever asks and whether or
        not the name is a person (so the limit tells nothing either)."""
        since = now - STARTS_WINDOW
        with self.store.engine.connect() as conn:
            recent = conn.execute(select(func.count(), func.min(logins_t.c.created_at)).where(
                logins_t.c.person == name, logins_t.c.created_at > since)).one()
        if recent[0] >= STARTS_PER_PERSON:
            wait = max(1, int((_utc(recent[1]) + STARTS_WINDOW - now).total_seconds()) + 1)
            raise TooManyLogins(f"too many logins for {name} in the last {_minutes(STARTS_WINDOW)}; try again "
                                f"in {_minutes(timedelta(seconds=wait))}", wait)

    def _ask(self, login_id: str, name: str, host: str, address: str | None, expires: datetime) -> None:
        """Find the person's Slack account and send the question; a refusal is recorded, never shown."""
        try:
            why = self._send_question(login_id, name, host, address, expires)
        except Exception as err:  # noqa: BLE001 - a thread of its own: the trail and the log say what failed
            log.exception("login %s: the question could not be sent", login_id)
            why = f"the question could not be sent ({type(err).__name__})"
        if why is not None:
            self._refuse(login_id, name, host, why)

    def _send_question(self, login_id: str, name: str, host: str, address: str | None,
                       expires: datetime) -> str | None:
        email = self.config.people.get(name)
        if email is None:
            return "not in [people]"
        try:
            user = self.client.users_lookupByEmail(email=email)["user"]
        except SlackApiError as err:
            return f"no Slack account for their email ({err.response.get('error', 'error')})"
        if user.get("deleted") or user.get("is_bot"):
            return "their Slack account is deactivated or a bot"
        slack_user = user["id"]
        # Recorded, and the recipient stored, before the message exists: a click can never outrun them.
        self.store.append(None, LoginEvent(login_id=login_id, user=name, host=host, status="requested",
                                           slack_user=slack_user))
        with self._writing("record the login's Slack user") as conn:
            conn.execute(update(logins_t).where(logins_t.c.id == login_id).values(slack_user=slack_user))
        message = question(login_id, name, host, address, expires)
        try:
            self.client.chat_postMessage(channel=slack_user, text=message["text"], blocks=message["blocks"])
        except SlackApiError as err:
            return f"Slack did not deliver the question ({err.response.get('error', 'error')})"
        return None

    def _refuse(self, login_id: str, name: str, host: str, why: str) -> None:
        try:
            self.store.append(None, LoginEvent(login_id=login_id, user=name, host=host, status="refused", why=why))
            self._move(login_id, PENDING, REFUSED, self.now())
        except (StoreUnavailable, SQLAlchemyError):
            log.exception("login %s: refused (%s), but the store did not take it", login_id, why)

    # -- poll -----------------------------------------------------------------------------------
    def poll(self, login_id: str, poll_secret: str, wait: float = 0.0) -> LoginState:
        """The login's state, waiting up to `wait` seconds (at most MAX_WAIT) while it is pending."""
        deadline = time.monotonic() + max(0.0, min(float(wait), MAX_WAIT))
        woken = threading.Event()
        with self.watching(woken.set):
            while True:
                woken.clear()
                state = self.check(login_id, poll_secret)
                left = deadline - time.monotonic()
                if state.status != PENDING or left <= 0:
                    return state
                woken.wait(min(left, REREAD))

    @contextmanager
    def watching(self, wake: Callable[[], None]) -> Iterator[None]:
        """Call `wake` (from any thread) whenever a click here answers a login."""
        with self._lock:
            self._watchers.add(wake)
        try:
            yield
        finally:
            with self._lock:
                self._watchers.discard(wake)

    @property
    def waiting(self) -> int:
        """How many polls are waiting for an answer now."""
        with self._lock:
            return len(self._watchers)

    def check(self, login_id: str, poll_secret: str) -> LoginState:
        """The state now, without waiting; a confirmed login hands out its token here, once."""
        login = self._load(login_id)
        if login is None or not hmac.compare_digest(login.poll_hash, _digest(str(poll_secret))):
            raise UnknownLogin("no such login (or the wrong poll secret); run `countersign login` again")
        now = self.now()
        if login.status in (PENDING, REFUSED):
            if now < login.expires_at:
                return LoginState(PENDING)
            self._move(login.id, login.status, EXPIRED, now)
            return LoginState(EXPIRED)
        if login.status == CONFIRMED:
            if login.decided_at is None or now >= login.decided_at + COLLECT_WITHIN:
                self._move(login.id, CONFIRMED, EXPIRED, now)
                return LoginState(EXPIRED)
            return self._collect(login, now)
        return LoginState(login.status)

    def _collect(self, login: Login, now: datetime) -> LoginState:
        if not self._move(login.id, CONFIRMED, COLLECTED, now):   # another poll took it first
            return LoginState(COLLECTED)
        self.store.append(None, LoginEvent(login_id=login.id, user=login.person, host=login.host,
                                           status="collected", slack_user=login.slack_user))
        try:
            issued = self.tokens.issue(login.person, label=f"login from {login.host}", kind="login",
                                       lifetime=self.server.login_lifetime, by=login.person)
        except TokenError as err:    # the service's [server] login_lifetime cannot be issued
            raise LoginError(f"the service could not issue your token ({err}); ask an admin to check "
                             "[server] login_lifetime") from None
        with self._writing("record the login's token") as conn:
            conn.execute(update(logins_t).where(logins_t.c.id == login.id).values(token_id=issued.id))
        return LoginState(CONFIRMED, issued.secret, issued.person, issued.expires_at)

    # -- the click --------------------------------------------------------------------------------
    def answer(self, login_id: str, slack_user: str, verdict: str, clicker: Person | Unmapped) -> Answer:
        """Confirm or deny a login for the Slack user who clicked; every click is recorded."""
        login, now = self._load(login_id), self.now()
        kind, why = _refusal(login, slack_user, clicker, now)
        if kind is None:
            if self._move(login.id, PENDING, verdict, now, unexpired=True):
                kind = verdict
            else:
                kind, why = "answered", "this login was answered already; nothing changed"
        accepted = kind == verdict
        self.store.append(None, LoginEvent(
            login_id=login_id, user=login.person if login else "", host=login.host if login else "",
            status=verdict if accepted else "refused", slack_user=slack_user,
            why=None if accepted else f"{kind}: {why}"))
        if accepted:
            self._changed()
            if verdict == DENIED:
                log.warning("login %s as %s from %s was denied in Slack by its person", login.id, login.person,
                            login.host)
        return Answer(accepted, kind, why, login)

    def _changed(self) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for wake in watchers:
            wake()

    # -- logout -----------------------------------------------------------------------------------
    def logout(self, token: str | None) -> TokenRecord | None:
        """Revoke the caller's own token; None when it is not a usable token."""
        record = self.tokens.authenticate(token)
        if record is None:
            return None
        return self.tokens.revoke(record.id, by=record.person)

    # -- the store ------------------------------------------------------------------------------
    def _load(self, login_id: str) -> Login | None:
        if not isinstance(login_id, str) or not login_id or len(login_id) > 36:
            return None
        with self.store.engine.connect() as conn:
            row = conn.execute(select(logins_t).where(logins_t.c.id == login_id)).first()
        if row is None:
            return None
        return Login(row.id, row.poll_hash, row.person, row.slack_user, row.host, row.status, _utc(row.created_at),
                     _utc(row.expires_at), _utc(row.decided_at), row.token_id)

    def _move(self, login_id: str, before: str, after: str, now: datetime, *, unexpired: bool = False) -> bool:
        """One conditional UPDATE: True for the one caller that moved it (several `serve` processes,
        a replayed click and a second poll race here)."""
        where = [logins_t.c.id == login_id, logins_t.c.status == before]
        if unexpired:
            where.append(logins_t.c.expires_at > now)
        values = {"status": after}
        if after in (CONFIRMED, DENIED):
            values["decided_at"] = now
        with self._writing("record the login") as conn:
            return conn.execute(update(logins_t).where(*where).values(**values)).rowcount == 1

    @contextmanager
    def _writing(self, what: str):
        try:
            with self.store.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreUnavailable(f"the store could not {what}: {type(err).__name__}") from err


def _refusal(login: Login | None, slack_user: str, clicker: Person | Unmapped,
             now: datetime) -> tuple[str | None, str | None]:
    """Why this click may not answer this login: (kind, why), or (None, None) when it may."""
    if login is None:
        return "unknown", "Countersign knows no such login"
    if login.slack_user is None or not hmac.compare_digest(login.slack_user, slack_user):
        return "not_the_recipient", "this login question was sent to someone else; only they can answer it"
    if not isinstance(clicker, Person):
        return "unmapped", clicker.why
    if clicker.name != login.person:
        return "not_the_person", (f"Slack says you are {clicker.name}, not {login.person}; "
                                  "ask an admin to check [people]")
    if login.status != PENDING:
        return "answered", f"this login is already {login.status}; nothing changed"
    if now >= login.expires_at:
        return "expired", "this login expired; run `countersign login` again"
    return None, None


# -- Bolt -----------------------------------------------------------------------------------------
class LoginClicks:
    """The Slack listeners for the question's two buttons (registered in service/slack_app.py)."""

    def __init__(self, logins: Logins, config: SlackConfig) -> None:
        self.logins, self.config = logins, config

    def confirm(self, ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        self._answer(CONFIRMED, body, action, client)

    def deny(self, ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        self._answer(DENIED, body, action, client)

    def _answer(self, verdict: str, body: dict, action: dict, client: WebClient) -> None:
        slack_user = body["user"]["id"]
        clicker = person_for(client, slack_user, self.config)
        answer = self.logins.answer(str(action.get("value", "")), slack_user, verdict, clicker)
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        try:
            if answer.accepted and channel and ts:
                message = answered(answer.login, verdict)
                client.chat_update(channel=channel, ts=ts, text=message["text"], blocks=message["blocks"])
            elif not answer.accepted and channel:
                client.chat_postEphemeral(channel=channel, user=slack_user, text=f":no_entry: {answer.why}")
        except SlackApiError as err:   # the answer is recorded; only its display failed
            log.warning("login %s: Slack refused the update (%s)", action.get("value"), err.response.get("error"))


# -- the messages (pure) --------------------------------------------------------------------------
def question(login_id: str, person: str, host: str, address: str | None, expires: datetime) -> dict:
    """The direct message: who, from which machine, until when; Yes / No.

    >>> m = question("l1", "alice", "laptop-7", "10.0.0.5", datetime(2026, 1, 1, 12, 5, tzinfo=timezone.utc))
    >>> m["text"]
    'Is this you, logging in to Countersign from laptop-7?'
    >>> [(b["action_id"], b["value"]) for b in m["blocks"][-1]["elements"]]
    [('login_confirm', 'l1'), ('login_deny', 'l1')]
    """
    where = f" (the request came from address `{one_line(address, 60)}`)" if address else ""
    return {"text": f"Is this you, logging in to Countersign from {one_line(host, 200)}?", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"*Is this you, logging in to Countersign from `{one_line(host, 200)}`?*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"Someone asked to log in as *{one_line(person, 200)}*{where}. Answer *Yes* only if you just ran "
            f"`countersign login` on that machine yourself. The question expires at {expires:%H:%M:%S} UTC."}]},
        {"type": "actions", "block_id": "countersign_login", "elements": [
            {"type": "button", "action_id": LOGIN_CONFIRM, "value": login_id, "style": "primary",
             "text": {"type": "plain_text", "text": "Yes, it's me"}},
            {"type": "button", "action_id": LOGIN_DENY, "value": login_id, "style": "danger",
             "text": {"type": "plain_text", "text": "No"}}]}]}


def answered(login: Login, verdict: str) -> dict:
    """The direct message once answered: no buttons left to click again.

    >>> answered(Login("l1", "h", "alice", "U1", "laptop-7", "pending", None, None, None, None), "denied")["text"]
    'Denied: nobody was logged in from laptop-7.'
    """
    host = one_line(login.host, 200)
    if verdict == CONFIRMED:
        text = f"Confirmed: you are logging in to Countersign from {host}."
        shown = f":white_check_mark: *Confirmed:* you are logging in to Countersign from `{host}`."
    else:
        text = f"Denied: nobody was logged in from {host}."
        shown = (f":no_entry: *Denied:* nobody was logged in from `{host}`. If you did not try to log in "
                 "there, someone else asked to log in as you: tell your security team.")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": shown}}]}


# -- small pieces -----------------------------------------------------------------------------------
def _name(person) -> str:
    try:
        return canonical(person)
    except BadName as err:
        raise BadLogin(str(err)) from None


def _host(host) -> str:
    """The console's machine name, as it will be shown in the question: a plain host name only, so it
    cannot carry words of its own ("laptop (this is IT, click Yes)").

    >>> _host("laptop-7.corp")
    'laptop-7.corp'
    """
    host = str(host).strip()
    if not HOST.fullmatch(host):
        raise BadLogin(f"{host[:60]!r} is not a host name: letters, digits, '.', '_' and '-' only")
    return host


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _minutes(span: timedelta) -> str:
    minutes = max(1, round(span.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

"""Who may call which verb of the team API, with which arguments. PURE: no I/O; the caller passes in
who owns which session.

The caller never says who it is: the person comes from its token (service/auth.py). So
``open_session``'s user and ``vote``/``check_vote``/``withdraw``'s person are the principal's,
whatever the body says (a different name is refused, never silently replaced, so a script that tries
to act as someone else learns it at once); a session's verbs are for the person who opened it; the
auditor's verbs need the auditor role. Arguments are checked by name and type before the gate sees
them, and long-polls and samples are capped, so no caller can hold a thread or a response unbounded.

>>> alice = Principal("alice", "t1", frozenset())
>>> authorize(alice, "vote", ["r1", "alice", "approve"], {}, {}.get).arguments["person"]
'alice'
>>> authorize(alice, "wait", ["r1", 3600], {}, {}.get).arguments["timeout"]
30.0
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from approvals.names import BadName, canonical, looks_like
from service.auth import AUDITOR, Principal

MAX_WAIT_S = 30.0          # one long-poll; the console calls again (console/session.py waits in slices)
MAX_SAMPLE_ROWS = 1000     # rows of a snapshot one call may read
MAX_LISTED = 1000          # requests or snapshots one listing returns (the newest)
API_SOURCE = "api"         # how a vote cast through this API is recorded (the caller cannot claim "slack")

_REQUIRED = object()


class Denied(Exception):
    """A call the service refuses; ``status`` is its HTTP status, the message says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Param:
    name: str
    types: tuple[type, ...]
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def _p(name: str, *types: type, default: Any = _REQUIRED) -> Param:
    return Param(name, types, default)


_STR, _OPT = (str,), (str, type(None))
_SESSION = _p("session_id", str)

# Each verb's parameters in the order the gate declares them (tests/test_team_mode.py checks them
# against gate.api.Gate), then the service's own verbs: what a console needs that the gate does not
# serve (target descriptions, the service's clock, snapshot records, the trail for auditors).
SIGNATURES: dict[str, tuple[Param, ...]] = {
    "open_session": (_p("user", *_OPT, default=None), _p("target", str), _p("reason", *_OPT, default=None)),
    "close_session": (_SESSION,),
    "classify": (_SESSION, _p("text", str)),
    "submit": (_SESSION, _p("text", str), _p("as_one", bool, default=False), _p("purpose", *_OPT, default=None),
               _p("restores", *_OPT, default=None)),
    "wait": (_p("request_id", str), _p("timeout", int, float)),
    "resume": (_SESSION, _p("request_id", str)),
    "stop_waiting": (_SESSION, _p("request_id", str)),
    "cancel": (_SESSION,),
    "catalog": (_SESSION,),
    "restore_plan": (_SESSION, _p("snapshot_id", str)),
    "snapshot_sample": (_SESSION, _p("snapshot_id", str), _p("limit", int)),
    "prune_snapshot": (_SESSION, _p("snapshot_id", str)),
    "requests": (_p("pending_only", bool, default=False),),
    "request": (_p("id_or_prefix", str),),
    "vote": (_p("request_id", str), _p("person", *_OPT, default=None), _p("verdict", str),
             _p("comment", *_OPT, default=None), _p("source", str, default=API_SOURCE)),
    "check_vote": (_p("request_id", str), _p("person", *_OPT, default=None)),
    "withdraw": (_p("request_id", str), _p("person", *_OPT, default=None)),
    "pending": (_SESSION,),
    # the service's own verbs
    "heartbeat": (_SESSION,),
    "target": (_p("name", str),),
    "now": (),
    "snapshots": (_p("target", *_OPT, default=None),),
    "snapshot": (_p("id_or_prefix", str),),
    "prunable": (_p("older_than", timedelta, type(None), default=None),),
    "audit_sessions": (),
    "audit_session": (_p("id_or_prefix", str),),
    "audit_events": (_p("session_id", *_OPT, default=None), _p("since", datetime, type(None), default=None),
                     _p("after_seq", int, default=0), _p("limit", int, default=MAX_LISTED)),
    "audit_event": (_p("seq", int),),
    "audit_verify": (),
}
GATE_VERBS = frozenset(SIGNATURES) - {"heartbeat", "target", "now", "snapshots", "snapshot", "prunable",
                                      "audit_sessions", "audit_session", "audit_events", "audit_event",
                                      "audit_verify"}
SESSION_VERBS = frozenset(v for v, params in SIGNATURES.items() if params[:1] == (_SESSION,))
PERSON_ARGUMENT = {"open_session": "user", "vote": "person", "check_vote": "person", "withdraw": "person"}
AUDITOR_VERBS = frozenset(v for v in SIGNATURES if v.startswith("audit_"))


@dataclass(frozen=True)
class Call:
    """A verb the principal may call, with its arguments by name, checked and rewritten."""
    verb: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def session_id(self) -> str | None:
        return self.arguments.get("session_id") if self.verb in SESSION_VERBS else None


def authorize(principal: Principal, verb: str, args: list, kwargs: dict,
              owner_of: Callable[[str], str | None]) -> Call:
    """The call as the service will make it, or Denied: 404 unknown verb or session, 422 bad
    arguments, 403 someone else's session or name, or a role the principal lacks."""
    arguments = bind(verb, args, kwargs)
    if verb in AUDITOR_VERBS and not principal.has(AUDITOR):
        raise Denied(403, f"{verb.replace('_', ' ')} reads the whole audit trail: it needs the auditor role "
                          "([server] auditors in the service's configuration); ask an admin")
    if verb in PERSON_ARGUMENT:
        name = PERSON_ARGUMENT[verb]
        arguments[name] = as_principal(principal, arguments[name])
    if verb == "vote":
        arguments["source"] = API_SOURCE
    if verb in SESSION_VERBS:
        check_owner(principal, arguments["session_id"], owner_of(arguments["session_id"]))
    if verb == "wait":
        arguments["timeout"] = capped(arguments["timeout"], MAX_WAIT_S)
    if verb == "snapshot_sample":
        arguments["limit"] = max(1, min(arguments["limit"], MAX_SAMPLE_ROWS))
    if verb == "audit_events":
        arguments["limit"] = max(1, min(arguments["limit"], MAX_LISTED))
    return Call(verb, arguments)


def bind(verb: str, args: list, kwargs: dict) -> dict[str, Any]:
    """Positional and keyword arguments -> {name: value}, every one of the right type.

    >>> bind("submit", ["s1", "SELECT 1"], {"as_one": True})["as_one"]
    True
    >>> bind("submit", ["s1"], {})
    Traceback (most recent call last):
    ...
    service.gate_access.Denied: submit needs its argument 'text'
    """
    params = SIGNATURES.get(verb)
    if params is None:
        raise Denied(404, f"the service has no verb {verb!r}; update countersign on this machine if it is older "
                          "than the service")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise Denied(422, "the body must be {\"args\": [...], \"kwargs\": {...}}")
    if len(args) > len(params):
        raise Denied(422, f"{verb} takes at most {len(params)} argument(s), got {len(args)}")
    values = {p.name: value for p, value in zip(params, args)}
    known = {p.name: p for p in params}
    for name, value in kwargs.items():
        if name not in known:
            raise Denied(422, f"{verb} has no argument {name!r}")
        if name in values:
            raise Denied(422, f"{verb} got argument {name!r} twice")
        values[name] = value
    for p in params:
        if p.name not in values:
            if p.required:
                raise Denied(422, f"{verb} needs its argument {p.name!r}")
            values[p.name] = p.default
        value = values[p.name]
        # bool is an int to Python; a flag is never a count, nor a count a flag
        if not isinstance(value, p.types) or (isinstance(value, bool) and bool not in p.types):
            raise Denied(422, f"{verb}: argument {p.name!r} must be {' or '.join(t.__name__ for t in p.types)}, "
                              f"not {type(value).__name__}")
    return values


def as_principal(principal: Principal, given: str | None) -> str:
    """The principal's own name; a body naming anyone else is refused (403), not rewritten.

    >>> as_principal(Principal("alice", "t1", frozenset()), "Alice")
    'alice'
    """
    if given is None:
        return principal.person
    try:
        same = canonical(given) == principal.person
    except BadName:
        same = False
    if not same:
        raise Denied(403, f"you are authenticated as {principal.person}; the service acts only as the person "
                          f"your token was issued to, never as {given!r}")
    return principal.person


def check_owner(principal: Principal, session_id: str, owner: str | None) -> None:
    """A session's verbs are for the person who opened it."""
    if owner is None:
        raise Denied(404, f"no open session {session_id} on the service; it ended (closed, or closed by the "
                          "service after the console went silent): open a new one")
    if owner != principal.person:
        raise Denied(403, f"session {session_id} is {owner}'s; only the person who opened a session may use it")


def capped(seconds: float, most: float) -> float:
    """A wait from 0 to ``most`` seconds (NaN and negatives are 0).

    >>> capped(-1, 30), capped(float("nan"), 30), capped(5, 30), capped(1e9, 30)
    (0.0, 0.0, 5.0, 30.0)
    """
    return float(min(seconds, most)) if seconds >= 0 else 0.0


def may_prune(principal: Principal, *, admin: bool, created_at: datetime, retention: timedelta,
              now: datetime) -> None:
    """A snapshot is the undo of a write: before its target's retention has passed, only an admin may
    drop it (judged on the service's clock).

    >>> t = datetime(2026, 1, 31)
    >>> may_prune(Principal("bob", "t", frozenset()), admin=False, created_at=datetime(2026, 1, 1),
    ...           retention=timedelta(days=30), now=t)
    """
    if not admin and now - created_at < retention:
        raise Denied(403, f"this snapshot is younger than its target's retention ({retention.days} days); only "
                          "an admin may prune it before then")


def token_owner_or_admin(principal: Principal, token_person: str, *, admin: bool) -> None:
    """Anyone may revoke their own token (a leaked one must die at once); others' need an admin."""
    if not admin and token_person != principal.person:
        raise Denied(403, "only an admin may revoke another person's token ([server] admins in the service's "
                          "configuration)")


def look_alike(person: str, known: set[str] | frozenset[str]) -> str | None:
    """An existing person whose name could be mistaken for ``person`` (and is not it).

    >>> look_alike("a1ice", {"alice", "bob"}), look_alike("alice", {"alice"})
    ('alice', None)
    """
    return next((name for name in sorted(known) if name != person and looks_like(name, person)), None)

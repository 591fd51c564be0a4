"""`countersign tokens issue PERSON --label L --expires 30d | list [--all] | revoke ID`: API tokens for
automation (a CI job, a script) and for people who cannot use `countersign login`.

In team mode (COUNTERSIGN_SERVER or `[server] url`) every action goes through the service and needs
the admin role there (`[server] admins` in the service's configuration); anyone may revoke a token
of their own. On the service's own host, without a service URL, the command works directly on the
store named by the service's configuration (that host holds it, and whoever can read that store's
configuration there is trusted with it): the issuer is then recorded as the machine login, as
``login@host``, since no token says who it is.

A secret is shown once, when issued; the store keeps only its hash. Exit codes: 0 done; 2 refused
(not an admin, unknown token, bad name or lifetime) or the store or service cannot be reached.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone

from console.errors import UsageError

DEFAULT_LIFETIME = "30d"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = actions.add_parser("issue", help="issue a token for PERSON (its secret is shown once)")
    issue.add_argument("person", help="who the token acts as (their Countersign name)")
    issue.add_argument("--label", required=True, help="what it is for, e.g. 'nightly cleanup job'")
    issue.add_argument("--expires", default=DEFAULT_LIFETIME, metavar="DURATION",
                       help=f"how long it lives, e.g. 12h, 30d (default {DEFAULT_LIFETIME}; at most 366d)")
    issue.add_argument("--json", action="store_true", help="print the token as one JSON object")
    listing = actions.add_parser("list", help="the tokens that can be used now")
    listing.add_argument("--all", action="store_true", help="include revoked and expired tokens")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", help="token id or a unique prefix of it")


def run(args: argparse.Namespace) -> int:
    from console.wiring import console_for, team_server_url
    tokens = ServiceTokens(console_for(args).gate) if team_server_url(args) else HostTokens.open(args)
    try:
        return ACTIONS[args.action](tokens, args)
    finally:
        tokens.close()


# -- where the tokens are ---------------------------------------------------------------------------
class ServiceTokens:
    """Team mode: the service's API (admin role)."""

    def __init__(self, gate) -> None:
        self.gate = gate

    def issue(self, person: str, label: str, lifetime: timedelta) -> dict:
        return self.gate.issue_token(person, label, lifetime)

    def list(self, include_inactive: bool) -> list[dict]:
        return self.gate.tokens(include_inactive=include_inactive)

    def revoke(self, token_id: str) -> dict:
        return self.gate.revoke_token(token_id)

    def close(self) -> None:
        pass


class HostTokens:
    """On the service's host: the store from the service's configuration, the machine login as issuer."""

    def __init__(self, store, settings) -> None:
        from service.auth import Authenticator
        from service.tokens import Tokens
        self.store, self.settings = store, settings
        self.tokens = Tokens(store)
        self.auth = Authenticator(self.tokens, settings.server)
        self.by = machine_login()

    @classmethod
    def open(cls, args) -> "HostTokens":
        from audit.store import Store, StoreUnavailable, default_store_url
        from console.wiring import settings_from_args
        settings = settings_from_args(args)
        try:
            return cls(Store.open(settings.store_url or default_store_url()), settings)
        except StoreUnavailable as err:
            raise UsageError(f"{err}; run this on the service's host with its configuration (--config), or set "
                             "COUNTERSIGN_SERVER to manage tokens through the service") from None

    def issue(self, person: str, label: str, lifetime: timedelta) -> dict:
        from approvals.names import canonical
        from service.gate_access import look_alike
        known = ({t.person for t in self.tokens.list(include_inactive=True)} | set(self.auth.admins)
                 | set(self.auth.auditors))
        twin = look_alike(canonical(person), known)
        if twin is not None:
            raise UsageError(f"{person!r} looks like {twin!r}, who already exists: one person must never be two "
                             "approvers; use their exact name")
        issued = self.tokens.issue(person, label=label, lifetime=lifetime, by=self.by)
        return {"id": issued.id, "secret": issued.secret, "person": issued.person, "label": issued.label,
                "kind": issued.kind, "expires_at": issued.expires_at.isoformat()}

    def list(self, include_inactive: bool) -> list[dict]:
        from service.gate_api import token_json
        return [token_json(t) for t in self.tokens.list(include_inactive=include_inactive)]

    def revoke(self, token_id: str) -> dict:
        from service.gate_api import token_json
        return token_json(self.tokens.revoke(token_id, by=self.by))

    def close(self) -> None:
        self.store.dispose()


def machine_login() -> str:
    """``login@host`` of the account running this, from the operating system (not $USER or
    $COUNTERSIGN_USER, which anyone can set)."""
    import os
    import pwd
    import socket
    from approvals.names import BadName, canonical
    login = pwd.getpwuid(os.getuid()).pw_name
    try:
        return canonical(f"{login}@{socket.gethostname()}")
    except BadName:
        return canonical(login)


# -- actions ----------------------------------------------------------------------------------------
def _issue(tokens, args) -> int:
    from config.settings import ConfigError, parse_duration
    try:
        lifetime = parse_duration(args.expires, "--expires")
    except ConfigError as err:
        raise UsageError(str(err)) from None
    issued = _refusing(lambda: tokens.issue(args.person, args.label, lifetime))
    if args.json:
        print(json.dumps(issued, sort_keys=True))
        return 0
    print(f"token {issued['id']} for {issued['person']} ({issued['label']}), expires {_when(issued['expires_at'])}:")
    print(issued["secret"])
    print(f"This is the only time it is shown. Give it to {issued['person']} privately; it is used as "
          "COUNTERSIGN_TOKEN with COUNTERSIGN_SERVER.", file=sys.stderr)
    return 0


def _list(tokens, args) -> int:
    found = _refusing(lambda: tokens.list(args.all))
    if args.json:
        for token in found:
            print(json.dumps(token, sort_keys=True))
        return 0
    if not found:
        print("No tokens." if args.all else "No usable tokens (--all shows revoked and expired ones).")
        return 0
    print("\n".join(list_lines(found, datetime.now(timezone.utc))))
    return 0


def _revoke(tokens, args) -> int:
    token = _refusing(lambda: tokens.revoke(args.id))
    print(f"revoked token {token['id']} of {token['person']} ({token['label']}); it is refused from now on")
    return 0


ACTIONS = {"issue": _issue, "list": _list, "revoke": _revoke}


def _refusing(action):
    """The store's refusals (bad name, unknown token, lifetime) as usage errors."""
    from approvals.names import BadName
    from service.tokens import TokenError
    try:
        return action()
    except (TokenError, BadName) as err:
        raise UsageError(str(err)) from None


# -- presentation (pure) ------------------------------------------------------------------------------
COLUMNS = ("id", "person", "label", "kind", "issued by", "expires", "status")


def list_lines(tokens: list[dict], now: datetime) -> list[str]:
    """A fixed-width table; every cell through `visible` (labels are free text).

    >>> t = {"id": "t1", "person": "ci", "label": "nightly", "kind": "automation", "issued_by": "alice",
    ...      "expires_at": "2026-02-01T00:00:00+00:00", "revoked_at": None}
    >>> list_lines([t], datetime(2026, 1, 1, tzinfo=timezone.utc))[1]
    't1  ci      nightly  automation  alice      2026-02-01 00:00  active'
    """
    from console.render import visible
    rows = [COLUMNS] + [(t["id"], t["person"], t["label"], t["kind"], t["issued_by"], _when(t["expires_at"]),
                         status(t, now)) for t in tokens]
    rows = [tuple(visible(str(cell)) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def status(token: dict, now: datetime) -> str:
    if token.get("revoked_at"):
        return "revoked"
    return "expired" if datetime.fromisoformat(token["expires_at"]) <= now else "active"


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")

"""Who is calling: a bearer token -> the authenticated person and their roles, or nobody.

People are never declared by the caller: the person comes from the token the service issued (after a
Slack-confirmed login, or by an admin), and the roles from the service's own configuration. A
console's `COUNTERSIGN_USER` or a name in a request body counts for nothing here.
"""
from __future__ import annotations

from dataclasses import dataclass

from approvals.names import BadName, canonical
from config.settings import ServerSettings
from service.tokens import Tokens

ADMIN, AUDITOR = "admin", "auditor"


@dataclass(frozen=True)
class Principal:
    person: str                      # canonical name, the same one Slack clicks map to
    token_id: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles


class Authenticator:
    def __init__(self, tokens: Tokens, server: ServerSettings) -> None:
        self.tokens = tokens
        self.admins = _names(server.admins, "admins")
        self.auditors = _names(server.auditors, "auditors")

    def principal(self, secret: str | None) -> Principal | None:
        record = self.tokens.authenticate(secret)
        if record is None:
            return None
        roles = frozenset(role for role, people in ((ADMIN, self.admins), (AUDITOR, self.auditors))
                          if record.person in people)
        return Principal(record.person, record.id, roles)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header.

    >>> bearer("Bearer cs_x_y"), bearer("Basic abc"), bearer(None)
    ('cs_x_y', None, None)
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _names(names: tuple[str, ...], where: str) -> frozenset[str]:
    try:
        return frozenset(canonical(n) for n in names)
    except BadName as err:
        from config.settings import ConfigError
        raise ConfigError(f"[server] {where}: {err}") from None

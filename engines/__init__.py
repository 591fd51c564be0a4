"""Open the right Driver for a database URL.

Driver modules import psycopg / SQLAlchemy, which costs a noticeable fraction of start-up time, so
they are imported only when a URL of their kind is actually opened.

>>> mask_url("postgresql://app:s3cret@db.internal:5432/shop")
'postgresql://app:***@db.internal:5432/shop'
>>> mask_url("sqlite:///tmp/shop.db")
'sqlite:///tmp/shop.db'
>>> mask_url("postgresql://app@db/shop?sslmode=verify-full&sslpassword=pw&sslkey=/k.pem")
'postgresql://app@db/shop?sslmode=verify-full&sslpassword=***&sslkey=***'
>>> mask_url("mongodb://db/?authSource=admin&password=pw&tlsCertificateKeyFilePassword=pw&access_token=t")
'mongodb://db/?authSource=admin&password=***&tlsCertificateKeyFilePassword=***&access_token=***'
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus, urlsplit, urlunsplit

from engines.base import Driver, DriverError

# The isolation levels a caller may ask for, as SQL. Everything else is refused: the value ends up
# inside a BEGIN statement, so it must never be free text.
ISOLATION_LEVELS = {
    "read committed": "READ COMMITTED",
    "repeatable read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}

# Query parameters that carry a secret (or name the file holding one): every name ending in one of
# these words (`password`, `sslpassword`, `tlsCertificateKeyFilePassword`, `sslkey`, `access_token`,
# `client_secret`), and MongoDB's authMechanismProperties, which can hold AWS_SESSION_TOKEN.
_PASSWORD_PARAM = re.compile(r"^(.*(password|passwd|pwd|secret|token|key)|authmechanismproperties)$",
                             re.IGNORECASE)


def open_driver(url: str) -> Driver:
    """Connect to ``url``; every failure comes back as a DriverError with a readable message."""
    from engines.registry import UnsupportedURL, engine_for_url
    try:
        engine = engine_for_url(url)
    except UnsupportedURL as err:
        raise DriverError(f"{err} (in {mask_url(url)})") from None
    return engine.open(url)


def mask_url(url: str) -> str:
    """The URL with its password (in the netloc) and every secret-bearing query parameter replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. a malformed port; still never echo the raw text back
        return "<unparseable URL>"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if password is None and not any(_PASSWORD_PARAM.match(key) for key, _ in pairs):
        return url   # nothing to hide; urlunsplit would also drop sqlite:///'s empty host
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostinfo}"
    return urlunsplit((parts.scheme, netloc, parts.path, _mask_query(parts.query), parts.fragment))


def _mask_query(query: str) -> str:
    """Each secret parameter's value replaced; every other parameter exactly as written."""
    masked = []
    for item in query.split("&") if query else []:
        key, equals, _ = item.partition("=")
        masked.append(f"{key}=***" if equals and _PASSWORD_PARAM.match(unquote_plus(key)) else item)
    return "&".join(masked)


def isolation_sql(isolation: str | None) -> str | None:
    """``"repeatable read"`` -> ``"REPEATABLE READ"``; None stays None (the server's default).

    >>> isolation_sql("Repeatable Read")
    'REPEATABLE READ'
    """
    if isolation is None:
        return None
    try:
        return ISOLATION_LEVELS[" ".join(isolation.lower().split())]
    except KeyError:
        raise ValueError(f"unknown isolation level {isolation!r}; "
                         f"use one of: {', '.join(ISOLATION_LEVELS)}") from None

"""Open the right Driver for a database URL.

Driver modules import psycopg / SQLAlchemy, which costs a noticeable fraction of start-up time, so
they are imported only when a URL of their kind is actually opened.

>>> mask_url("postgresql://app:s3cret@db.internal:5432/shop")
'postgresql://app:***@db.internal:5432/shop'
>>> mask_url("sqlite:///tmp/shop.db")
'sqlite:///tmp/shop.db'
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engines.base import Driver, DriverError

# The isolation levels a caller may ask for, as SQL. Everything else is refused: the value ends up
# inside a BEGIN statement, so it must never be free text.
ISOLATION_LEVELS = {
    "read committed": "READ COMMITTED",
    "repeatable read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}

_PASSWORD_PARAM = re.compile(r"^(password|passwd|pwd)$", re.IGNORECASE)


def open_driver(url: str) -> Driver:
    """Connect to ``url``; every failure comes back as a DriverError with a readable message."""
    from engines.registry import UnsupportedURL, engine_for_url
    try:
        engine = engine_for_url(url)
    except UnsupportedURL as err:
        raise DriverError(f"{err} (in {mask_url(url)})") from None
    return engine.open(url)


def mask_url(url: str) -> str:
    """The URL with its password (in the netloc or a ``password=`` query parameter) replaced by ***."""
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
    query = parts.query
    if query:
        if any(_PASSWORD_PARAM.match(key) for key, _ in pairs):
            query = urlencode([(k, "***" if _PASSWORD_PARAM.match(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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

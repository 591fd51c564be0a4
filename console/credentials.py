"""The console's saved logins: one token per service URL, in
``$XDG_CONFIG_HOME/countersign/credentials.json`` (default ``~/.config/countersign/``).

A token is a credential, so the file is readable by its owner only from the moment it exists: each
save writes a new file created with mode 0600 (``O_CREAT | O_EXCL``, never a chmod afterwards, so
there is no instant at which another user could open it) and renames it over the old one, which also
means a crash mid-save leaves the previous file whole. A file that others can read is refused, not
used. ``COUNTERSIGN_TOKEN`` (for automation) overrides what is saved here.
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from console.errors import UsageError

FILE_NAME = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    server_url: str
    token: str
    person: str | None
    expires_at: datetime | None


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "countersign" / FILE_NAME


def normalized(server_url: str) -> str:
    """One entry per service, however its URL was typed.

    >>> normalized("HTTPS://Countersign.example.com/"), normalized("http://127.0.0.1:3000")
    ('https://countersign.example.com', 'http://127.0.0.1:3000')
    """
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(server_url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def load(server_url: str) -> Credentials | None:
    """The saved login for this service, or None."""
    entry = _read().get(normalized(server_url))
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        return None
    expires = entry.get("expires_at")
    return Credentials(normalized(server_url), entry["token"], entry.get("person"),
                       datetime.fromisoformat(expires) if isinstance(expires, str) else None)


def save(server_url: str, token: str, person: str | None, expires_at: datetime | None) -> Path:
    entries = _read()
    entries[normalized(server_url)] = {"token": token, "person": person,
                                       "expires_at": expires_at.isoformat() if expires_at else None}
    return _write(entries)


def forget(server_url: str) -> bool:
    """Drop the saved login for this service; whether there was one."""
    entries = _read()
    if entries.pop(normalized(server_url), None) is None:
        return False
    _write(entries)
    return True


def _read() -> dict:
    where = path()
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise UsageError(f"cannot read {where}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) & 0o077:
            raise UsageError(f"{where} holds login tokens and can be read by other users of this machine; "
                             f"remove it (`rm {where}`) and log in again")
        try:
            data = json.loads(handle.read().decode("utf-8"))
        except ValueError:
            raise UsageError(f"{where} is not a credentials file countersign wrote; remove it and log in again") from None
    servers = data.get("servers") if isinstance(data, dict) else None
    return dict(servers) if isinstance(servers, dict) else {}


def _write(entries: dict) -> Path:
    where = path()
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = where.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    try:
        os.unlink(temporary)           # left by a save that died; O_EXCL below must create it afresh
    except FileNotFoundError:
        pass
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps({"servers": entries}, indent=2, sort_keys=True).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, where)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return where

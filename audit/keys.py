"""The audit key: the secret that keys every link of the trail, and the files kept beside it.

Each event's link is HMAC-SHA256 under this key (see `keyed_link`), so editing an event and then
recomputing the chain needs the key, not just the published hash formula. In embedded mode the key is
a file in the user's state directory, created 0600 on first use; COUNTERSIGN_AUDIT_KEY_FILE points
elsewhere. Whoever can read that file can still rewrite the trail: in team mode the service alone
holds it.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

KEY_FILE_ENV = "COUNTERSIGN_AUDIT_KEY_FILE"
KEY_BYTES = 32
LINK_FORMAT = "countersign-audit-link-v2"   # domain separation: a keyed link is never some other HMAC


class AuditKeyError(Exception):
    """The audit key cannot be read or created; the message names the file and what to do."""


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = field(repr=False)
    path: Path

    def link(self, *, store_id: str, seq: int, prev_link: str, digest: str) -> str:
        return keyed_link(self.secret, store_id=store_id, seq=seq, prev_link=prev_link, digest=digest)


def keyed_link(secret: bytes, *, store_id: str, seq: int, prev_link: str, digest: str) -> str:
    """HMAC-SHA256 over the store's id, the event's seq, the previous link and the event's content hash.

    The store id and seq are in it so a keyed link cannot be moved to another store or position.

    >>> keyed_link(b"k" * 32, store_id="s", seq=1, prev_link="0" * 64, digest="ab" * 32)[:16]
    'e8928ca8399d9d7f'
    """
    message = f"{LINK_FORMAT}|{store_id}|{seq}|{prev_link}|{digest}".encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def state_dir() -> Path:
    """$XDG_STATE_HOME/countersign, else ~/.local/state/countersign (created 0700 when missing)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base) / "countersign"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def key_path() -> Path:
    """Where the audit key is: $COUNTERSIGN_AUDIT_KEY_FILE, else audit.key in the state directory."""
    configured = os.environ.get(KEY_FILE_ENV)
    return Path(configured).expanduser() if configured else state_dir() / "audit.key"


def load_key(path: Path) -> AuditKey | None:
    """The key in ``path``, or None when there is no such file."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise AuditKeyError(f"cannot read the audit key {path}: {err}") from err
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < KEY_BYTES:
        raise AuditKeyError(f"the audit key {path} is not {KEY_BYTES * 2} hex digits; restore it from a backup "
                            f"or point {KEY_FILE_ENV} at the right file")
    return AuditKey(secret, path)


def load_or_create_key(path: Path) -> AuditKey:
    """The key in ``path``, created (0600, random) when there is none. Safe when several processes
    create it at once: the file appears complete or not at all, and the first one wins."""
    found = load_key(path)
    if found is not None:
        return found
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        write_private(draft, secrets.token_hex(KEY_BYTES) + "\n")
        try:
            os.link(draft, path)   # atomic, and refuses to replace a key another process just made
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
    except OSError as err:
        raise AuditKeyError(f"cannot create the audit key {path}: {err}; set {KEY_FILE_ENV} to a "
                            "writable place") from err
    return load_key(path)


def write_private(path: Path, text: str) -> None:
    """Create ``path`` readable and writable by its owner only (0600, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file at ``path`` unless one exists (an existing file keeps its mode)."""
    try:
        write_private(path, "")
    except FileExistsError:
        pass

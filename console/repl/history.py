"""Persistent shell history that never stores literals the configuration marks as secret (or, when it
marks none, the default secret patterns). What counts as secret is audit/redact.py's rule, the
same one every view of a statement uses; these examples show what reaches the history file.

>>> redact("UPDATE users SET password = 'hunter2' WHERE name = 'bob'", ("password",))
"UPDATE users SET password = '<redacted>' WHERE name = 'bob'"
>>> redact("SELECT 'sk_live_abc'", (r"sk_live_\\w+",))
"SELECT '<redacted>'"
>>> redact("INSERT INTO users (name, password) VALUES ('bob', crypt('hunter2', 'bf')); SELECT 'ok'", ("password",))
"INSERT INTO users (name, password) VALUES ('<redacted>', crypt('<redacted>', '<redacted>')); SELECT 'ok'"
>>> redact("UPDATE users SET secret = 'x'", secret_patterns(()))
"UPDATE users SET secret = '<redacted>'"
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from prompt_toolkit.history import FileHistory

# The redaction itself lives in audit.redact (the trail's and approvals' views use it too); these
# names stay importable from here.
from audit.redact import (DEFAULT_SECRET_PATTERNS, REDACTED, SecretPatternError, Token,  # noqa: F401
                            compile_patterns, redact, secret_patterns, tokenize)


class RedactingHistory(FileHistory):
    """prompt_toolkit's FileHistory, written through `redact`, in a file only its owner can read.

    With no configured patterns it uses the defaults (`audit.redact.DEFAULT_SECRET_PATTERNS`).
    """

    def __init__(self, path: Path, patterns: tuple[str, ...], dialect: str | None = None) -> None:
        # a bad pattern fails at start, not mid-session
        self.patterns = compile_patterns(secret_patterns(patterns))
        self.dialect = dialect
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
        super().__init__(str(path))

    def store_string(self, string: str) -> None:
        # Bytes that were not UTF-8 arrive as lone surrogates, which the file cannot hold: U+FFFD.
        text = string.encode("utf-8", "replace").decode("utf-8")
        super().store_string(mask_urls(redact(text, self.patterns, self.dialect)))


_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def mask_urls(text: str) -> str:
    """A URL typed at the prompt (``\\c postgresql://app:pw@db/shop``, refused there) keeps no password
    in the history file either.

    >>> mask_urls("\\\\c postgresql://app:hunter2@db/shop")
    '\\\\c postgresql://app:***@db/shop'
    """
    from engines import mask_url
    return _URL.sub(lambda found: mask_url(found.group(0)), text)

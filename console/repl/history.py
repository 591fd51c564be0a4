"""Persistent shell history that never stores literals the configuration marks as secret (or, when it
marks none, the default secret patterns). What counts as secret is console/redact.py's rule, the
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
from pathlib import Path

from prompt_toolkit.history import FileHistory

# The redaction itself lives in console.redact (the trail's and approvals' views use it too); these
# names stay importable from here.
from console.redact import (DEFAULT_SECRET_PATTERNS, REDACTED, SecretPatternError, Token,  # noqa: F401
                            compile_patterns, redact, secret_patterns, tokenize)


class RedactingHistory(FileHistory):
    """prompt_toolkit's FileHistory, written through `redact`, in a file only its owner can read.

    With no configured patterns it uses the defaults (`console.redact.DEFAULT_SECRET_PATTERNS`).
    """

    def __init__(self, path: Path, patterns: tuple[str, ...], dialect: str | None = None) -> None:
        # a bad pattern fails at start, not mid-session
        self.patterns = compile_patterns(secret_patterns(patterns))
        self.dialect = dialect
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
        super().__init__(str(path))

    def store_string(self, string: str) -> None:
        super().store_string(redact(string, self.patterns, self.dialect))

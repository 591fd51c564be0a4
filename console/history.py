"""Persistent shell history that never stores literals the configuration marks as secret.

>>> redact("UPDATE users SET password = 'hunter2' WHERE id = 1", ("password",))
"UPDATE users SET password = '<redacted>' WHERE id = 1"
>>> redact("SELECT 'sk_live_abc'", (r"sk_live_\\w+",))
"SELECT '<redacted>'"
"""
from __future__ import annotations

import re
from pathlib import Path

from prompt_toolkit.history import FileHistory

LITERAL = re.compile(r"'(?:[^']|'')*'")
# The identifier a literal is compared with or assigned to: `password = '...'`, `token IN ('...'`.
LEADING_NAME = re.compile(r"([A-Za-z_][\w.\"]*)\s*(?:=|:=|<>|!=|\bLIKE\b|\bIN\b\s*\(|,)?\s*$", re.IGNORECASE)


def redact(text: str, patterns: tuple[str, ...]) -> str:
    if not patterns:
        return text
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]

    def replace(match: re.Match) -> str:
        literal = match.group(0)[1:-1]
        before = LEADING_NAME.search(text[max(0, match.start() - 80):match.start()])
        name = before.group(1) if before else ""
        if any(p.search(literal) or (name and p.search(name)) for p in compiled):
            return "'<redacted>'"
        return match.group(0)

    return LITERAL.sub(replace, text)


class RedactingHistory(FileHistory):
    def __init__(self, path: Path, secret_patterns: tuple[str, ...]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(path))
        self.secret_patterns = secret_patterns

    def store_string(self, string: str) -> None:
        super().store_string(redact(string, self.secret_patterns))

"""The logs of `countersign serve`: one line per record, text for a person at a terminal, JSON lines
for a log pipeline (`--log-format json|text`; the default is text on a TTY, JSON otherwise).

A JSON line has ts, level, logger and message, then any `extra={...}` fields of the record:

    {"ts": "2026-12-01T09:00:00.123000+00:00", "level": "INFO", "logger": "countersign.serve", "message": "draining", "in_flight": 1}

What the service logs never includes tokens, secrets or statements (the audit trail holds those).
As a second line of defence every line is scrubbed of the secret values the process was given (the
Slack tokens and signing secret, passwords inside database URLs), whatever logged them.
"""
from __future__ import annotations

import logging
import sys
from typing import IO, Iterable
from urllib.parse import urlsplit

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FORMATS = ("json", "text")
REDACTED = "[redacted]"
MIN_SECRET = 6        # shorter values would scrub ordinary words out of every line
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def default_format(stream: IO) -> str:
    """Text for a person watching a terminal, JSON for anything else (a container's log driver)."""
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):    # a closed or odd stream: not a terminal
        return "json"


class JsonLines(JsonFormatter):
    """ts, level, logger, message first, then the record's extra fields."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level", "name": "logger"},
                         timestamp="ts",
                         # uvicorn adds an ANSI-coloured copy of some messages; one message is enough
                         reserved_attrs=[*RESERVED_ATTRS, "color_message"])

    def process_log_record(self, log_data: dict) -> dict:
        return {"ts": log_data.pop("ts"), **log_data}


class Redacting(logging.Formatter):
    """Wraps a formatter and replaces each secret value in its output with [redacted]."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        # longest first, so a secret that contains another is replaced whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def url_password(url: str | None) -> str | None:
    """The password inside a database URL, if it carries one.

    >>> url_password("postgresql://countersign:s3cret-pw@store:5432/countersign"), url_password("sqlite:///x.db")
    ('s3cret-pw', None)
    """
    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None


def configure(log_format: str, *, secrets: Iterable[str] = (), level: int = logging.INFO,
              stream: IO | None = None) -> logging.Handler:
    """Send every logger's records (uvicorn's too) through one handler on `stream` (stderr)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    inner = JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(Redacting(inner, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler

"""What a statement is, as the classifier names it. A leaf module: every classifier imports it,
and it imports nothing of theirs."""
from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    READ = "read"
    WRITE = "write"
    DDL = "ddl"
    PRIVILEGE = "privilege"
    ADMIN = "admin"
    SESSION = "session"
    TRANSACTION = "transaction"
    UNKNOWN = "unknown"

"""Stores for tests: opening a store never migrates it, so a test that wants a ready store asks here."""
from __future__ import annotations

from audit.store import Store


def migrated(url: str) -> str:
    """Create the store at ``url`` (if needed) and migrate it to the newest schema, as
    `countersign store upgrade` does; returns ``url`` so a test can write Store.open(migrated(url))."""
    Store.upgrade(url)
    return url

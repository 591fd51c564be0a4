"""Alembic environment for the control-plane store, run only from audit.store.migrate().

There is no alembic.ini: the Store builds the Config in code and hands over the connection it has
already locked (advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), so migrations run inside
that transaction and concurrent opens take turns instead of racing to create the same tables.
"""
from __future__ import annotations

from alembic import context

from audit.schema import metadata

if context.is_offline_mode():
    raise RuntimeError("the countersign store migrates online only; open it with audit.store.Store.open")

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():  # a no-op inside the caller's transaction, which it commits
    context.run_migrations()

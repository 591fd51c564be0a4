"""`countersign store upgrade [--store URL]`: migrate the control-plane store to the newest schema.

Opening the store never migrates it: a read-only auditor must be able to open it, every start would
pay for importing Alembic, and changing a schema other people's consoles use is a deliberate step.
This is the one command that takes it (run it as a role allowed to change the store's schema).
"""
from __future__ import annotations

import sys

UNAVAILABLE = 2   # the store cannot be reached or migrated: a configuration problem for the caller


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    upgrade = sub.add_parser("upgrade", help="create the store if needed and migrate it to the newest schema "
                             "(does nothing when it is already there)")
    upgrade.add_argument("--store", metavar="URL", help="the store to migrate (default: store_url from the "
                         "configuration, else $COUNTERSIGN_STORE, else the SQLite file in your state directory)")


def run(args) -> int:
    from audit.store import Store, StoreUnavailable
    url = args.store or _configured_url(args)
    try:
        before, after = Store.upgrade(url)
    except StoreUnavailable as err:
        print(f"countersign store: {err}", file=sys.stderr)
        return UNAVAILABLE
    print(f"{_shown(url)}: {upgrade_summary(before, after)}")
    return 0


def upgrade_summary(before: str | None, after: str) -> str:
    """What an upgrade did, in words.

    >>> upgrade_summary(None, "0002"), upgrade_summary("0001", "0002"), upgrade_summary("0002", "0002")
    ('created at schema revision 0002', 'migrated from schema revision 0001 to 0002', 'already at schema revision 0002; nothing to do')
    """
    if before is None:
        return f"created at schema revision {after}"
    if before != after:
        return f"migrated from schema revision {before} to {after}"
    return f"already at schema revision {after}; nothing to do"


def _configured_url(args) -> str:
    from console.wiring import settings_from_args, store_url
    return store_url(settings_from_args(args))


def _shown(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url

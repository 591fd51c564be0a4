"""Snapshots: every before-image the store has a record of, and one snapshot with its restore history.

The rows of a before-image stay on the target database (that is where a restore puts them back
from); these pages never connect to a target, so they show what the store records of it: which
table, which rows (the write's own statement and the key columns), how many, where they are kept,
and every restore or prune since.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.pages import queries
from service.pages.context import Pages
from service.pages.views.sessions import not_found


def snapshots(pages: Pages, request: Request, principal) -> Response:
    after = queries.Cursor.parse(request.query_params.get("after"))
    before = queries.Cursor.parse(request.query_params.get("before"))
    with pages.reading() as conn:
        page = queries.snapshots_page(conn, after=after, before=before)
    return pages.render(request, "snapshots.html", principal, active="snapshots", title="Snapshots", page=page,
                        redact=pages.redact)


def snapshot(pages: Pages, request: Request, principal) -> Response:
    snapshot_id = request.path_params["snapshot_id"]
    with pages.reading() as conn:
        record = queries.snapshots_by_id(conn, [snapshot_id]).get(snapshot_id)
        if record is None:
            return not_found(pages, request, principal, f"no snapshot {snapshot_id}")
        changes = queries.snapshot_changes(conn, [snapshot_id])[snapshot_id]
        approval_ids = [a for a in [record.approval_id, *(e.payload.get("approval_id") for e in changes)] if a]
        approvals = queries.approvals_by_id(conn, approval_ids)
    return pages.render(request, "snapshot.html", principal, active="snapshots", title=f"Snapshot {snapshot_id[:8]}",
                        record=record, changes=changes, approvals=approvals, now=pages.now(),
                        statement=pages.redact(record.statement))

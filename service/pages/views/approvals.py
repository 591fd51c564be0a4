"""Approval requests: pending, decided, expired; who voted (and through what), and how long it took."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.pages import params, queries
from service.pages.context import Pages


def approvals(pages: Pages, request: Request, principal) -> Response:
    view = params.approval_view(request.query_params)
    after = queries.Cursor.parse(request.query_params.get("after"))
    before = queries.Cursor.parse(request.query_params.get("before"))
    now = pages.now()
    with pages.reading() as conn:
        page = queries.approvals_page(conn, view, now, after=after, before=before)
    return pages.render(request, "approvals.html", principal, active="approvals", title="Approvals", page=page,
                        view=view, views=queries.APPROVAL_VIEWS, now=now, redact=pages.redact)

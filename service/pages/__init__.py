"""The auditor's pages, served by `countersign serve` at /audit: who ran what against which database,
who approved it (and through which Slack identity), what it changed (snapshots and restores), and
whether the record can be trusted (the chain's state, on every page). Server-rendered HTML, no
scripts; read-only; auditors only; every view recorded in the trail.

    from service.pages import routes
    Starlette(routes=[..., *routes(store, authenticator, engines={...}, redact=...)])
"""
from service.pages.routes import routes

__all__ = ["routes"]

"""`countersign serve`: Slack sign-off as a long-running service.

    Slack --signed HTTP (or Socket Mode)--> asgi (Starlette) -> Bolt -> slack_app.Listeners
        -> people (Slack user -> person) -> decisions (the ONE door into the approvals core)
        -> audit event per click -> chat.update / ephemeral

    audit trail --poster (lease holder only)--> feed (pure: events -> posts) -> outbox (store)
        -> sender (one row at a time, oldest first; Retry-After / backoff) -> Slack Web API

The store is the source of truth: consoles only ever write the audit trail, and Slack gets copies
from the outbox, so Slack being slow or down never delays or loses an audit event.
"""

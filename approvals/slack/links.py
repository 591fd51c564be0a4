"""What a waiting console says when its request went to Slack. PURE.

The console names the channel (and links the message once it is posted) instead of suggesting a
CLI command nobody in Slack will type. `team_url` is auth.test's `url`; the outbox knows the ts.
"""
from __future__ import annotations


def message_link(team_url: str, channel: str, ts: str) -> str:
    """Slack's permalink form for a message.

    >>> message_link("https://acme.slack.com/", "C0APPROVALS", "1700000000.000100")
    'https://acme.slack.com/archives/C0APPROVALS/p1700000000000100'
    """
    return f"{team_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


def waiting_hint(channel: str, link: str | None = None) -> str:
    """The line a console shows while its request waits for a reviewer in Slack.

    >>> waiting_hint("C0APPROVALS")
    'a reviewer approves it in Slack, channel C0APPROVALS (the message is being posted)'
    >>> waiting_hint("C0APPROVALS", "https://acme.slack.com/archives/C0APPROVALS/p1")
    'a reviewer approves it in Slack: https://acme.slack.com/archives/C0APPROVALS/p1'
    """
    if link:
        return f"a reviewer approves it in Slack: {link}"
    return f"a reviewer approves it in Slack, channel {channel} (the message is being posted)"

"""A session as a readable plain-text transcript (what the session page shows, for a ticket or an email). PURE.

Statements are shown as the pages show them: secret literals redacted, and control and format
characters as `\\uXXXX` escapes, so `less` or a terminal shows the text instead of obeying it. The
JSON Lines export carries the real text for re-verification.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from approvals.slack.text import visible
from service.pages.chain_state import ChainState
from service.pages.queries import SessionRow
from service.pages.timeline import Command, Entry


def transcript(session: SessionRow, entries: tuple[Entry, ...], chain: ChainState, engine: str | None) -> str:
    lines = [f"Countersign session {session.id}",
             f"person    {session.user}",
             f"target    {session.target} ({session.environment}{', ' + engine if engine else ''})",
             f"host      {session.host}",
             f"reason    {session.reason or '-'}",
             f"started   {_when(session.started_at)} UTC",
             f"ended     {_when(session.ended_at) + ' UTC' if session.ended_at else 'still open'}",
             f"commands  {session.commands}",
             f"chain     {chain.headline()}", ""]
    for entry in entries:
        if entry.command is not None:
            lines += _command(entry.command)
        else:
            lines.append(f"{_when(entry.at)}  #{entry.seq}  {entry.summary}")
    return "\n".join(visible(line) for line in lines) + "\n"


def _command(c: Command) -> list[str]:
    outcome = c.status or "no outcome recorded"
    facts = [f"[{c.kind}]", c.decision, outcome]
    if c.rows is not None:
        facts.append(f"rows={c.rows}")
    if c.duration_ms is not None:
        facts.append(f"{float(c.duration_ms):.1f} ms")
    lines = [f"{_when(c.at)}  #{c.seq}  {'  '.join(facts)}"]
    # Not splitlines(): it also splits at \x1c-\x1e and U+2028, which must show as escapes instead.
    lines += [f"    {line}" for line in re.split(r"\r?\n", c.text)]
    if c.error:
        lines.append(f"    error: {c.error}")
    if c.approval is not None:
        a = c.approval
        lines.append(f"    approval {a.id}: {a.status}, {a.approvals}/{a.required} approval(s), requested by "
                     f"{a.requester} at {_when(a.requested_at)}; reason: {a.reason}")
        for v in a.approvers:
            slack = f" (Slack user {v.slack_user})" if v.slack_user else ""
            comment = f": {v.comment}" if v.comment else ""
            lines.append(f"      {v.verdict} by {v.person} via {v.source}{slack} at {_when(v.at)}{comment}")
        if a.time_to_decision is not None:
            lines.append(f"      decided after {int(a.time_to_decision.total_seconds())} s")
        for click in a.refused_clicks:
            lines.append(f"      Slack click by {click.slack_user} ({click.person or 'unmapped'}) did not count: "
                         f"{click.result}")
        if a.slack_url:
            lines.append(f"      Slack: {a.slack_url}")
    for s in c.snapshots:
        lines.append(f"    snapshot {s.id}: {s.rows} row(s) of {s.table} ({s.operation}), {s.status_text}")
        for change in s.changes:
            under = f" under approval {change.approval_id}" if change.approval_id else ""
            lines.append(f"      {change.what} at {_when(change.at)}{under} (event {change.seq})")
    return lines


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

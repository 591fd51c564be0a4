"""`countersign approvals`: list, show, approve, reject and cancel requests from a terminal.

Every action is taken as `current_user()` (in team mode: the person the login token names, and the
service applies the rules). Exit codes: 0 done; 2 refused (your own request, not an
approver, unknown id, already decided, expired) or the store cannot be opened — the message says
what to do next.

Statements are shown as a reviewer must read them: literals matching the secret patterns
(`[history] secret_patterns`, or the defaults) redacted, and control and bidirectional characters as
visible escapes (`console.render.visible`), so nothing in the text can rewrite what the terminal shows.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timedelta

from approvals.models import ApprovalError, ApprovalRequest, Status
from audit.serialize import approval_json, json_document, json_line
from console.commands.exit_codes import USAGE as REFUSED
from audit.redact import compile_patterns, redact, secret_patterns
from console.render import visible


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list approval requests (oldest first)")
    listing.add_argument("--pending", action="store_true", help="only requests still waiting for votes")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="show one request in full, with its votes")
    show.add_argument("id", help="request id or a unique prefix of it")
    show.add_argument("--json", action="store_true")
    approve = actions.add_parser("approve", help="approve a request as the current user")
    approve.add_argument("id", help="request id or a unique prefix of it")
    approve.add_argument("--comment", help="a note kept with your vote")
    reject = actions.add_parser("reject", help="reject a request as the current user")
    reject.add_argument("id", help="request id or a unique prefix of it")
    reject.add_argument("--reason", required=True, help="why; shown to the requester")
    cancel = actions.add_parser("cancel", help="withdraw your own request")
    cancel.add_argument("id", help="request id or a unique prefix of it")


def run(args: argparse.Namespace) -> int:
    from console.wiring import console_for, store_gate
    console = console_for(args)
    args.user = console.user              # team mode: the person the service knows from the token
    if console.team:
        gate, close = console.gate, lambda: None
    else:
        try:
            gate = store_gate(getattr(args, "store_url", None))
        except Exception as err:  # noqa: BLE001 - any failure to open the store is reported the same way
            return _refuse(f"cannot open the approval store: {err}; check COUNTERSIGN_STORE or store_url "
                           "in the configuration")
        close = gate.store.dispose
    try:
        args.patterns = _patterns(args)
        return ACTIONS[args.action](gate, args)
    except ApprovalError as err:
        return _refuse(str(err))
    finally:
        close()


def _patterns(args) -> tuple:
    from console.wiring import console_for
    return compile_patterns(secret_patterns(console_for(args).settings.secret_patterns))


def _refuse(message: str) -> int:
    print(f"countersign approvals: {message}", file=sys.stderr)
    return REFUSED


# -- actions ------------------------------------------------------------------------------------
def _list(gate, args) -> int:
    requests = [displayed(r, args.patterns) for r in gate.requests(pending_only=args.pending)]
    if args.json:
        for request in requests:
            print(json_line(approval_json(request)))
        return 0
    if not requests:
        print("No pending approval requests." if args.pending else "No approval requests.")
        return 0
    print("\n".join(list_lines(requests, gate.now())))
    return 0


def _show(gate, args) -> int:
    request = displayed(gate.request(args.id), args.patterns)
    if args.json:
        print(json_document(approval_json(request)))
    else:
        print("\n".join(show_lines(request, gate.now())))
    return 0


def _approve(gate, args) -> int:
    request = gate.vote(args.id, args.user, "approve", comment=args.comment)
    if request.status == Status.APPROVED:
        print(f"approved {request.id}: it may now run once, exactly as written, on {request.target}")
    else:
        print(f"recorded your approval of {request.id}: {request.approvals} of {request.required_approvals} "
              "approvals; it waits for another approver")
    print(_indent(displayed(request, args.patterns).statement))
    return 0


def _reject(gate, args) -> int:
    request = gate.vote(args.id, args.user, "reject", comment=args.reason)
    print(visible(f"rejected {request.id}; {request.requester} sees your reason: {args.reason}"))
    return 0


def _cancel(gate, args) -> int:
    request = gate.withdraw(args.id, args.user)
    print(f"cancelled {request.id}; it can no longer run")
    return 0


ACTIONS = {"list": _list, "show": _show, "approve": _approve, "reject": _reject, "cancel": _cancel}


# -- presentation (pure) -------------------------------------------------------------------------
def displayed(request: ApprovalRequest, patterns: tuple) -> ApprovalRequest:
    """The request as shown (its statement's secret literals redacted); the store keeps the real text."""
    return replace(request, statement=redact(request.statement, patterns))


LIST_COLUMNS = ("id", "age", "requester", "target", "kind", "status", "approvals", "rows", "statement")


def list_lines(requests: list[ApprovalRequest], now: datetime) -> list[str]:
    """A fixed-width table, one request per line, every cell through `visible`."""
    rows = [LIST_COLUMNS] + [
        (r.id, age(now - r.created_at), r.requester, f"{r.target} ({r.environment})", r.kind, str(r.status),
         f"{r.approvals}/{r.required_approvals}", rows_text(r), abbreviate(r.statement)) for r in requests]
    rows = [tuple(visible(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def show_lines(request: ApprovalRequest, now: datetime) -> list[str]:
    r = request
    approvers = ", ".join(r.allowed_approvers) if r.allowed_approvers is not None else f"anyone but {r.requester}"
    lines = [f"request     {r.id}", f"status      {r.status}", f"requester   {r.requester}",
             f"target      {r.target} ({r.environment})",
             # Where it runs, as the target's server said; the approval runs only while it still says so.
             f"runs on     {r.target_identity or '(not recorded: made before approvals named their database)'}",
             f"kind        {r.kind}", f"why         {r.reason}",
             f"rows        {rows_text(r)}", f"created     {_when(r.created_at)} ({age(now - r.created_at)} ago)",
             f"expires     {_when(r.expires_at)}" + _until(r.expires_at, now),
             f"approvals   {r.approvals} of {r.required_approvals} (approvers: {approvers})"]
    if r.used_at is not None:
        lines.append(f"used        {_when(r.used_at)}")
    for v in r.votes:
        note = f": {v.comment}" if v.comment else ""
        lines.append(f"  {v.verdict:<8}{v.approver} at {_when(v.ts)} via {v.source}{note}")
    lines = [visible(line) for line in lines]   # names, reasons and comments are free text too
    return lines + [f"binding     {r.binding}", "statement", _indent(r.statement)]


def age(delta: timedelta) -> str:
    """Coarse, for a table column.

    >>> age(timedelta(seconds=42)), age(timedelta(minutes=90)), age(timedelta(days=3, hours=5))
    ('42s', '1h', '3d')
    """
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rows_text(request: ApprovalRequest) -> str:
    if request.estimated_rows is None:
        return "?"
    return f"{request.estimated_rows}" if request.rows_exact else f"~{request.estimated_rows}"


def abbreviate(text: str, width: int = 60) -> str:
    r"""One line of at most `width` characters, control characters escaped.

    >>> abbreviate("UPDATE t\n   SET a = 1\x1b[2K WHERE id = 2", 30)
    'UPDATE t SET a = 1\\x1b[2K WHE…'
    """
    flat = visible(" ".join(text.split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _until(expires_at: datetime, now: datetime) -> str:
    return f" (in {age(expires_at - now)})" if expires_at > now else " (passed)"


def _indent(text: str) -> str:
    r"""A statement, indented, control characters escaped; split only at real newlines (`splitlines`
    would also break at a bare CR or a form feed, hiding them).

    >>> print(_indent("DELETE FROM t\rUPDATE t SET a = 1\nWHERE id = 2"))
        DELETE FROM t\rUPDATE t SET a = 1
        WHERE id = 2
    """
    return "\n".join("    " + line for line in visible(text).split("\n"))

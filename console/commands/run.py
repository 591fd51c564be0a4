"""`countersign run TARGET (-c SQL | -f FILE)`: the pipeline, non-interactively, for scripts."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

from console.errors import UsageError
from gate.api import ApprovalWaiting, Notice, Outcome, Status

EXIT_CODES = {
    Status.OK: 0,
    Status.REJECTED: 3, Status.EXPIRED: 3, Status.PENDING: 3, Status.CANCELLED: 3,
    Status.BLOCKED: 4,
    Status.FAILED: 5, Status.ROLLED_BACK: 5,
}


def add_arguments(parser) -> None:
    parser.add_argument("target", help="a configured target name, a database URL, or 'demo'")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", "--command", help="SQL to run (one or more statements)")
    source.add_argument("-f", "--file", help="a file of SQL statements ('-' for stdin)")
    parser.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                        help="how long to wait for an approval (default: until the request expires)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--reason", help="why you are running this (recorded in the audit trail)")


def read_sql(args) -> str:
    if args.command is not None:
        return args.command
    if args.file == "-":
        return sys.stdin.read()
    try:
        return Path(args.file).read_text()
    except OSError as err:
        raise UsageError(f"cannot read {args.file}: {err.strerror}") from None


def tell(event) -> None:
    if isinstance(event, ApprovalWaiting):
        rows = "unknown" if event.estimated_rows is None else \
            f"{event.estimated_rows}{'' if event.rows_exact else ' (estimate)'}"
        print(f"waiting for approval {event.request_id} ({event.reason}; rows: {rows}; "
              f"{event.required} approval(s) needed)\n  a reviewer approves with: {event.approve_hint}",
              file=sys.stderr, flush=True)
    elif isinstance(event, Notice):
        print(event.text, file=sys.stderr, flush=True)


def run(args) -> int:
    from approvals.identity import current_user
    from console.wiring import build_pipeline, choose_target, settings_from_args
    settings = settings_from_args(args)
    target = choose_target(settings, args.target)
    text = read_sql(args)
    pipeline = build_pipeline(settings, target, current_user())
    statements = pipeline.classify(text)
    if not statements:
        pipeline.close()
        raise UsageError("no SQL statement given")
    cancel = threading.Event()
    try:
        pipeline.open_session(args.reason)
        for statement in statements:
            outcome = pipeline.submit(statement, wait=args.wait, cancel=cancel, notify=tell)
            report(outcome, args.format)
            if outcome.status is not Status.OK:
                return EXIT_CODES[outcome.status]
        return 0
    except KeyboardInterrupt:
        cancel.set()
        pipeline.cancel_running()
        return 130
    finally:
        pipeline.close()


def report(outcome: Outcome, fmt: str) -> None:
    from console import render
    if outcome.status is Status.OK and outcome.result is not None:
        for line in render.render(outcome.result, fmt):
            print(line)
        return
    print(f"{outcome.status}: {outcome.message}", file=sys.stderr)

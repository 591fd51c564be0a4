"""`countersign run TARGET (-c SQL | -f FILE)`: the pipeline, non-interactively, for scripts."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

from console.errors import UsageError
from gate.api import Awaiting, Outcome, Status

from console.commands import exit_codes


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
    from console import render
    if isinstance(event, Awaiting):
        print(render.awaiting_lines(event, interactive=False), file=sys.stderr, flush=True)


def run(args) -> int:
    from approvals.identity import current_user
    from console.wiring import build_pipeline, choose_target, open_session, settings_from_args
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
        open_session(pipeline, args.reason)
        for statement in statements:
            outcome = pipeline.submit(statement, wait=args.wait, cancel=cancel, notify=tell)
            report(outcome, args.format)
            if outcome.status is not Status.OK:
                return exit_codes.for_status(outcome.status)
        return exit_codes.OK
    except KeyboardInterrupt:
        cancel.set()
        pipeline.cancel_running()
        return exit_codes.INTERRUPTED
    finally:
        pipeline.close()


def report(outcome: Outcome, fmt: str) -> None:
    from console import render
    if outcome.snapshot_id is not None:
        print(render.snapshot_line(outcome), file=sys.stderr, flush=True)
    if outcome.status is Status.OK and outcome.result is not None:
        for line in render.render(outcome.result, fmt):
            print(line)
        return
    print(f"{outcome.status}: {outcome.message}", file=sys.stderr)

"""`countersign run TARGET (-c SQL | -f FILE)`: the pipeline, non-interactively, for scripts."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

from classify.unparsed import parse_error
from console import transaction
from console.commands import exit_codes
from console.errors import UsageError
from gate.api import Awaiting, Outcome, Status


def add_arguments(parser) -> None:
    parser.add_argument("target", help="a configured target name, a database URL, or 'demo'")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", "--command", help="SQL to run (one or more statements)")
    source.add_argument("-f", "--file", help="a file of SQL statements ('-' for stdin)")
    parser.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                        help="how long to wait for an approval (default: until the request expires)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--reason", help="why you are running this (recorded in the audit trail)")
    parser.add_argument("--request-anyway", action="store_true",
                        help="file an approval request even for a statement that does not parse")


def read_sql(args) -> str:
    """The statements' text, as UTF-8; anything else is a UsageError saying where the bad byte is."""
    from console.commands.text_input import checked, decoded
    if args.command is not None:
        return checked(args.command, "the -c text")
    if args.file == "-":
        return decoded(sys.stdin.buffer.read(), "standard input")
    try:
        return decoded(Path(args.file).read_bytes(), args.file)
    except IsADirectoryError:
        raise UsageError(f"cannot read {args.file}: it is a directory; give a file of SQL statements") from None
    except OSError as err:
        raise UsageError(f"cannot read {args.file}: {err.strerror}") from None


def refuse_unparsed(statements, dialect: str, pipeline) -> None:
    """A typo must not become a request in reviewers' queues: refuse, before anything is filed, a
    statement the classifier could not read, with the parser's own words."""
    for statement in statements:
        error = _readable(parse_error(statement, dialect), statement, dialect)
        if error is not None:
            pipeline.close()
            raise UsageError(f"statement {statement.index + 1} does not parse as {dialect}: {error}; fix it, "
                             f"or pass --request-anyway to ask for approval of it as written: {_one_line(statement.text)}")


def _readable(error: str | None, statement, dialect: str) -> str | None:
    """The parser's words, unless they name sqlglot's own classes ("Required keyword: 'expression'
    missing for <class 'sqlglot.expressions.core.Mul'>"): then the server's kind of message, with
    where (console/repl/syntax.py)."""
    if error is None or "<class '" not in error:
        return error
    from console.repl.syntax import syntax_error
    problem = syntax_error(statement, dialect)
    if problem is None:
        return error
    if problem.position is None:
        return problem.message
    line = statement.text.count("\n", 0, problem.position) + 1
    column = problem.position - (statement.text.rfind("\n", 0, problem.position) + 1) + 1
    return f"{problem.message} (line {line}, column {column})"


def _one_line(text: str, width: int = 80) -> str:
    """The statement on one line, control characters shown escaped.

    >>> _one_line("SELEC\\n  1\\x1b[2K")
    'SELEC 1\\\\x1b[2K'
    """
    flat = " ".join(text.split())
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def tell(event) -> None:
    from console import render
    if isinstance(event, Awaiting):
        print(render.awaiting_lines(event, interactive=False), file=sys.stderr, flush=True)


def run(args) -> int:
    from console.wiring import console_for, open_session
    console = console_for(args)            # this process, or the team's service (console/wiring.py)
    target = console.target(args.target)
    text = read_sql(args)
    pipeline = console.pipeline(target)
    statements = pipeline.classify(text)
    if not statements:
        pipeline.close()
        raise UsageError("no SQL statement given")
    if not args.request_anyway:
        refuse_unparsed(statements, target.dialect, pipeline)
    try:
        script = transaction.units(statements)
    except transaction.UnclosedBlock as err:
        pipeline.close()
        raise UsageError(str(err)) from None
    cancel = threading.Event()
    try:
        open_session(pipeline, args.reason)
        for kind, body in script:
            for outcome in _run_unit(pipeline, kind, body, args, cancel):
                report(outcome, args.format, target.dialect)
                if outcome.status is not Status.OK:
                    return exit_codes.for_status(outcome.status)
        return exit_codes.OK
    except KeyboardInterrupt:
        cancel.set()
        pipeline.cancel_running()
        return exit_codes.INTERRUPTED
    finally:
        pipeline.close()


def _run_unit(pipeline, kind: str, body, args, cancel) -> tuple[Outcome, ...]:
    """One statement, a BEGIN ... COMMIT block as ONE approved transaction, or a dropped block."""
    if kind == "one":
        return (pipeline.submit(body, wait=args.wait, cancel=cancel, notify=tell),)
    if kind == "dropped":
        print(f"ROLLBACK: {len(body)} statement(s) dropped; nothing ran", file=sys.stderr, flush=True)
        return ()
    return pipeline.submit_batch(body, wait=args.wait, cancel=cancel, notify=tell,
                                 purpose=transaction.block_purpose(body))


def report(outcome: Outcome, fmt: str, dialect: str | None = None) -> None:
    from console import render
    if outcome.snapshot_id is not None:
        print(render.snapshot_line(outcome), file=sys.stderr, flush=True)
    if outcome.status is Status.OK and outcome.result is not None:
        statement = outcome.statement
        if dialect == "mongodb" and fmt == "table":   # documents, as mongosh prints them, all pages at once
            from console.repl.documents import paged
            pages = paged(statement.text, outcome.result, str(statement.kind))
            lines = [line for page in pages.pages for line in page] + ([pages.end] if pages.end else [])
        else:
            lines = render.render(outcome.result, fmt, kind=str(statement.kind), text=statement.text)
        for line in lines:
            print(line)
        if outcome.result.truncated and fmt != "table":   # the table's footer says so itself
            print(f"note: only the first {len(outcome.result.rows)} rows are shown (the policy's "
                  "max_display_rows); narrow the query to see the rest", file=sys.stderr)
        return
    if outcome.status is Status.FAILED:   # with where the server says it failed, as psql shows it
        print("\n".join(render.error_lines(str(outcome.status), outcome.message, outcome.statement.text)),
              file=sys.stderr)
        return
    print(f"{outcome.status}: {outcome.message}", file=sys.stderr)

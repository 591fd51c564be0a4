"""`countersign shell [TARGET]`: the interactive console. With no target and no config: the demo.

The prompt comes first (drawn before prompt_toolkit loads, see console/repl/instant.py); the store,
the gate and the connection open behind it on a background thread, and the first statement waits
for them (console/repl/opening.py).
"""
from __future__ import annotations

import os
import sys

from console.commands import exit_codes

SETTLE_S = 10.0     # how long closing a session waits for the completion catalog being read on it


def add_arguments(parser) -> None:
    parser.add_argument("target", nargs="?", help="a configured target, a database URL, or 'demo' "
                        "(default: the embedded demo when nothing is configured)")
    parser.add_argument("--reason", help="why you are opening this session (recorded and announced)")


def banner(pipeline) -> list[str]:
    lines = [f"Countersign — {pipeline.target_name} ({pipeline.environment}, {pipeline.dialect}) as "
             f"{pipeline.user}. Every statement is audited; writes need a second person's approval."]
    if pipeline.environment == "production":
        lines.append("*** PRODUCTION *** You are connected to a production database.")
    if pipeline.environment == "demo":
        lines.append("This is the embedded demo (tables: sites, deploys). Try:\n"
                     "  SELECT status, count(*) FROM deploys GROUP BY status;\n"
                     "  UPDATE deploys SET status = 'archived' WHERE site_id = 3;\n"
                     "then approve from another terminal: COUNTERSIGN_USER=reviewer countersign approvals "
                     "approve <id>")
    lines.append("Type \\? for help, \\q to quit.")
    return lines


def run(args) -> int:
    from console.repl import instant
    from console.repl.opening import OpeningSession
    from console.wiring import console_for

    console = console_for(args)            # this process, or the team's service (console/wiring.py)
    settings = console.settings
    target = console.target(args.target)
    reason = args.reason
    if target.policy.require_reason and not reason:
        reason = input("Reason for this session (recorded in the audit trail): ").strip()
        if not reason:
            print("countersign: this target's policy asks for a reason; pass --reason", file=sys.stderr)
            return exit_codes.USAGE
    user = console.user
    session = OpeningSession(lambda: _open(console, target, reason), user=user, target_name=target.name,
                             dialect=target.dialect, environment=target.environment)
    print("\n".join(banner(session)), flush=True)
    held = instant.draw(instant.prompt_text(target.environment, user, target.name, "NO_COLOR" not in os.environ))
    try:
        # a bad secret pattern: nothing opens
        repl = _repl(session, _history(settings, target.dialect), _switcher(console))
    finally:
        instant.hand_over(held)
    try:
        repl.loop()
    finally:
        repl.settle()
        repl.pipeline.close()   # the session open now (\c may have replaced the first one)
    return 0


def _open(console, target, reason: str | None):
    """Open the store and the gate (or reach the service), connect, and record the session start (on a
    background thread)."""
    from console.wiring import open_session
    pipeline = console.pipeline(target)
    open_session(pipeline, reason)
    return pipeline


def _history(settings, dialect: str):
    from console.cli import UsageError
    from console.demo import state_dir
    from console.repl.history import RedactingHistory, SecretPatternError
    try:
        return RedactingHistory(state_dir() / "history", settings.secret_patterns, dialect)
    except SecretPatternError as err:
        raise UsageError(f"configuration: {err}") from None


def _repl(session, history, switch):
    from console.repl.completer import BackgroundCatalog, CatalogCompleter
    from console.repl.loop import Repl, build_session
    from console.repl.meta import ShellState
    repl = Repl(session, None, ShellState(), switch=switch)
    catalog = BackgroundCatalog(lambda: repl.pipeline.catalog())   # completion never waits for it
    dialect = lambda: repl.pipeline.dialect   # noqa: E731 - \c may switch to another dialect
    repl.session = build_session(dialect, history, CatalogCompleter(catalog, dialect))
    repl.on_switch = repl.on_change = catalog.refresh
    repl.settle = lambda: catalog.wait_loaded(SETTLE_S)
    _open_once_drawn(repl.session.app, session, then=catalog)
    return repl


def _switcher(console):
    """``\\c TARGET``: a session on another target, opened the way the first one was (the same
    refusals as on the command line, a reason when the target's policy asks for one)."""
    def switch(name: str, _current):
        from console.errors import UsageError
        from console.wiring import open_session
        target = console.target(name)
        reason = None
        if target.policy.require_reason:
            reason = input(f"Reason for this session on {target.name} (recorded in the audit trail): ").strip()
            if not reason:
                raise UsageError(f"target {target.name!r} asks for a reason; nothing was opened")
        opened = console.pipeline(target)
        open_session(opened, reason)
        return opened
    return switch


def _open_once_drawn(app, session, then=lambda: None) -> None:
    """Start opening the session once the prompt is on screen, not before: opening and drawing would
    share one interpreter (one GIL) and the prompt would come later. A failure to open ends the prompt
    at once with its error (exit 2, as before any statement); until it is open, statements wait.
    ``then`` starts too (the completion catalog's fetch, which waits for the session in the background)."""
    def after_render(_app) -> None:
        if not session.started:
            session.start()
            then()
        if session.error is not None and app.is_running and not app.is_done:
            app.exit(exception=session.error)
    session.on_done = app.invalidate   # thread-safe: redraw, so after_render sees the outcome
    app.after_render += after_render

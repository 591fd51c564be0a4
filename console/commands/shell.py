"""`countersign shell [TARGET]`: the interactive console. With no target and no config: the demo.

The prompt comes first (drawn before prompt_toolkit loads, see console/repl/instant.py); the store,
the gate and the connection open behind it on a background thread, and the first statement waits
for them (console/repl/opening.py).
"""
from __future__ import annotations

import os
import sys

from console.commands import exit_codes


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
    from approvals.identity import current_user
    from console.repl import instant
    from console.repl.opening import OpeningSession
    from console.wiring import choose_target, settings_from_args

    settings = settings_from_args(args)
    target = choose_target(settings, args.target)
    reason = args.reason
    if target.policy.require_reason and not reason:
        reason = input("Reason for this session (recorded in the audit trail): ").strip()
        if not reason:
            print("countersign: this target's policy asks for a reason; pass --reason", file=sys.stderr)
            return exit_codes.USAGE
    user = current_user()
    session = OpeningSession(lambda: _open(settings, target, user, reason), user=user, target_name=target.name,
                             dialect=target.dialect, environment=target.environment)
    print("\n".join(banner(session)), flush=True)
    held = instant.draw(instant.prompt_text(target.environment, user, target.name, "NO_COLOR" not in os.environ))
    try:
        repl = _repl(session, _history(settings, target.dialect))   # a bad secret pattern: nothing opens
    finally:
        instant.hand_over(held)
    try:
        repl.loop()
    finally:
        session.close()
    return 0


def _open(settings, target, user: str, reason: str | None):
    """Open the store and the gate, connect, and record the session start (on a background thread)."""
    from console.wiring import build_pipeline, open_session
    pipeline = build_pipeline(settings, target, user)
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


def _repl(session, history):
    from console.repl.completer import CatalogCompleter
    from console.repl.loop import Repl, build_session
    from console.repl.meta import ShellState
    prompt = build_session(session, history, CatalogCompleter(lambda: session.catalog()))
    _open_once_drawn(prompt.app, session)
    return Repl(session, prompt, ShellState())


def _open_once_drawn(app, session) -> None:
    """Start opening the session once the prompt is on screen, not before: opening and drawing would
    share one interpreter (one GIL) and the prompt would come later. A failure to open ends the prompt
    at once with its error (exit 2, as before any statement); until it is open, statements wait."""
    def after_render(_app) -> None:
        session.start()
        if session.error is not None and app.is_running and not app.is_done:
            app.exit(exception=session.error)
    session.on_done = app.invalidate   # thread-safe: redraw, so after_render sees the outcome
    app.after_render += after_render

"""`countersign shell [TARGET]`: the interactive console. With no target and no config: the demo."""
from __future__ import annotations

import sys


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
    from console.wiring import build_pipeline, choose_target, settings_from_args

    settings = settings_from_args(args)
    target = choose_target(settings, args.target)
    history = _history(settings, target.dialect)   # a bad secret pattern stops us before anything opens
    pipeline = build_pipeline(settings, target, current_user())
    try:
        reason = args.reason
        if target.policy.require_reason and not reason:
            reason = input("Reason for this session (recorded in the audit trail): ").strip()
            if not reason:
                print("countersign: this target's policy asks for a reason; pass --reason", file=sys.stderr)
                return 2
        pipeline.open_session(reason)
        _run_repl(pipeline, history)
    finally:
        pipeline.close()
    return 0


def _history(settings, dialect: str):
    from console.cli import UsageError
    from console.demo import state_dir
    from console.repl.history import RedactingHistory, SecretPatternError
    try:
        return RedactingHistory(state_dir() / "history", settings.secret_patterns, dialect)
    except SecretPatternError as err:
        raise UsageError(f"configuration: {err}") from None


def _run_repl(pipeline, history) -> None:
    from console.repl.completer import CatalogCompleter
    from console.repl.meta import ShellState
    from console.repl.loop import Repl, build_session
    session = build_session(pipeline, history, CatalogCompleter(pipeline.catalog))
    print("\n".join(banner(pipeline)), flush=True)
    Repl(pipeline, session, ShellState()).loop()

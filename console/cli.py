"""The `countersign` command: argument parsing and dispatch only.

Each subcommand lives in the module that owns it and is imported lazily, so that a one-statement
`countersign classify` does not pay for prompt_toolkit, SQLAlchemy or psycopg at start-up.
Exit codes live in one place, console/commands/exit_codes.py.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from console.commands import exit_codes
from console.errors import UsageError

# subcommand -> module exposing add_arguments(parser) and run(args) -> int
SUBCOMMANDS = {
    "classify": ("console.commands.classify", "classify SQL statements (JSON lines out)"),
    "shell": ("console.commands.shell", "open the interactive console on a target"),
    "run": ("console.commands.run", "run SQL non-interactively through the same pipeline"),
    "approvals": ("console.commands.approvals", "list, approve or reject approval requests"),
    "audit": ("console.commands.audit", "read and verify the audit trail"),
    "snapshots": ("console.commands.snapshots", "list, show, restore and prune pre-write snapshots"),
    "config": ("console.commands.config", "check the configuration"),
    "store": ("console.commands.store", "migrate the control-plane store to the newest schema (store upgrade)"),
    "serve": ("service.serve_cmd", "run the Slack sign-off service (approval messages, session threads)"),
    "login": ("console.commands.login", "log in to a team's service, confirming it is you in Slack"),
    "logout": ("console.commands.login", "revoke and forget your token for a team's service"),
    "tokens": ("console.commands.tokens", "issue, list and revoke API tokens (admins; or on the service's host)"),
}


# Commands that read the control-plane store; the CLI resolves its URL for them (config, env, default).
STORE_COMMANDS = ("approvals", "audit", "snapshots")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countersign", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="configuration file (default: $COUNTERSIGN_CONFIG)")
    parser.add_argument("--version", action="version", version=f"countersign {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen subcommand's module is imported
            module = importlib.import_module(module_name)
            module.add_arguments(sp)
            sp.set_defaults(_module=module)
    return parser


def version() -> str:
    """This installation's version (from the package metadata; a source checkout that was never
    installed says so instead)."""
    from importlib import metadata
    try:
        return metadata.version("countersign")
    except metadata.PackageNotFoundError:
        return "(not installed: run `pip install -e .`)"


def config_first(argv: list[str]) -> list[str]:
    """`--config FILE` may come anywhere (`countersign config check --config x.toml`); argparse wants
    it before the subcommand.

    >>> config_first(["snapshots", "restore", "ab12", "--config", "c.toml"])
    ['--config', 'c.toml', 'snapshots', 'restore', 'ab12']
    """
    moved, rest, i = [], [], 0
    while i < len(argv):
        if argv[i] == "--config" and i + 1 < len(argv):
            moved += argv[i:i + 2]
            i += 2
            continue
        (moved if argv[i].startswith("--config=") else rest).append(argv[i])
        i += 1
    return moved + rest


def main(argv: list[str] | None = None) -> int:
    argv = config_first(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help(sys.stderr)
        return exit_codes.USAGE
    try:
        if args.command in STORE_COMMANDS:
            from console.wiring import settings_from_args, store_url, team_server_url
            # a team console has no store: the service reads its own for it
            args.store_url = None if team_server_url(args) else store_url(settings_from_args(args))
        return args._module.run(args)
    except UsageError as err:
        print(f"countersign: {err}", file=sys.stderr)
        return exit_codes.USAGE
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        return quiet_broken_pipe()
    except RecursionError:
        print("countersign: the input is nested too deeply to analyse; simplify it (e.g. fewer nested "
              "parentheses)", file=sys.stderr)
        return exit_codes.USAGE
    except Exception as err:  # noqa: BLE001 - the last resort: one line, never a traceback
        if _from_service(err):   # refused by the team's service, or it cannot be reached: not a bug here
            print(f"countersign: {err}", file=sys.stderr)
            return exit_codes.USAGE
        return internal_error(err)
    finally:
        console = getattr(args, "_console", None)
        if console is not None:
            console.close()


def _from_service(err: Exception) -> bool:
    """A RemoteError (gate/remote.py), which exists only once a team console reached for the service."""
    remote = sys.modules.get("gate.remote")
    return remote is not None and isinstance(err, remote.RemoteError)


def quiet_broken_pipe() -> int:
    """The reader went away (`countersign classify | head -1`): stop without a word. stdout is
    pointed at /dev/null so that the interpreter's own flush at exit cannot fail again."""
    import os
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return exit_codes.BROKEN_PIPE


def internal_error(err: Exception) -> int:
    """A bug reaches the user as one line; COUNTERSIGN_DEBUG=1 shows the traceback."""
    import os
    if os.environ.get("COUNTERSIGN_DEBUG"):
        import traceback
        traceback.print_exception(err, file=sys.stderr)
    first = str(err).splitlines()[0][:300] if str(err) else ""
    print(f"countersign: internal error ({type(err).__name__}{': ' + first if first else ''}); "
          "this is a bug: please report it (COUNTERSIGN_DEBUG=1 shows the traceback)", file=sys.stderr)
    return exit_codes.INTERNAL


if __name__ == "__main__":
    sys.exit(main())

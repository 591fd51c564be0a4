"""`countersign config check`: validate the configuration and say exactly what is wrong."""
from __future__ import annotations

import sys

from console.commands import exit_codes


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate the config file, its policies and every target's env vars")
    check.add_argument("--connect", action="store_true", help="also connect to each target and the store")


def run(args) -> int:
    from config.settings import ConfigError, config_path, load_settings
    path = config_path(args.config)
    if path is None:
        print("no configuration: pass --config FILE or set COUNTERSIGN_CONFIG "
              "(without one, `countersign shell` opens the embedded demo)", file=sys.stderr)
        return exit_codes.USAGE
    try:
        settings = load_settings(path)
    except ConfigError as err:
        print(f"{path}: {err}", file=sys.stderr)
        return exit_codes.USAGE
    for target in settings.targets.values():
        print(f"target {target.name}: {target.dialect}, {target.environment}, policy {target.policy.name}")
    from engines import mask_url   # a store URL from the environment may carry a password: never print it
    print(f"store: {mask_url(settings.store_url) if settings.store_url else 'default (a SQLite file in your state directory)'}")
    slack = _slack_problems(path, args.connect)
    if args.connect:
        return _connect_all(settings) or (exit_codes.USAGE if slack else exit_codes.OK)
    if slack:
        return exit_codes.USAGE
    print(f"{path}: OK")
    return exit_codes.OK


def _slack_problems(path, connect: bool) -> list[str]:
    """[slack], [people] and the Slack secrets (with --connect, Slack's auth.test proves the token)."""
    import os
    from service.check import slack_problems
    problems = slack_problems(path, dict(os.environ), connect=connect)
    for problem in problems:
        print(f"slack: {problem}", file=sys.stderr)
    return problems


def _connect_all(settings) -> int:
    from audit.store import Store, StoreUnavailable, default_store_url
    from engines import open_driver
    from engines.base import DriverError
    failed = 0
    for target in settings.targets.values():
        try:
            open_driver(target.url).close()
            print(f"target {target.name}: connected")
        except DriverError as err:
            failed += 1
            print(f"target {target.name}: cannot connect: {err}", file=sys.stderr)
    try:
        Store.open(settings.store_url or default_store_url())
        print("store: connected")
    except StoreUnavailable as err:
        failed += 1
        print(f"store: {err}", file=sys.stderr)
    return exit_codes.USAGE if failed else exit_codes.OK

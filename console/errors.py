"""The console's own error, shared by every subcommand (its own module so that `python -m console.cli`,
which runs cli.py as __main__, still catches the same class the subcommands raise)."""
from __future__ import annotations


class UsageError(Exception):
    """Bad arguments or configuration: exit 2 with the message."""

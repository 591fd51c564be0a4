"""The prompt drawn before prompt_toolkit is imported, so that it appears at once.

Importing prompt_toolkit and building its prompt costs ~80 ms, more than everything else the shell
does before its prompt. So on a terminal the shell first writes the same prompt as plain ANSI text
and turns echo and line editing off: keys typed meanwhile wait, untouched, in the terminal's input
queue. Then prompt_toolkit takes over: the terminal settings are restored (the queue is kept), the
line is cleared, and prompt_toolkit draws its prompt and reads the waiting keys as if typed into it.
This module imports nothing heavy, since it runs before the prompt.
"""
from __future__ import annotations

import os
import re
import sys
from urllib.parse import urlsplit

# SGR codes matching prompt_toolkit's rendering of loop.prompt_message (same colours, same bold).
PRODUCTION_BADGE = "\x1b[0;97;41;1m PRODUCTION \x1b[0m "
ENV_BADGE = "\x1b[0;32m[{env}]\x1b[0m "
USER = "\x1b[0;1m{user}\x1b[0m"
DUMB_TERMINALS = ("dumb", "unknown")   # prompt_toolkit falls back to a plain prompt there; so do we


def target_label(name: str) -> str:
    """A URL target is shown as host/database (or the SQLite file name); a configured name as is.

    >>> target_label("postgresql://app@db.internal:5432/shop"), target_label("sqlite:////tmp/x/a.db")
    ('db.internal:5432/shop', 'a.db')
    """
    if "://" not in name:
        return name
    parts = urlsplit(name)
    if parts.scheme.startswith("sqlite"):
        return parts.path.rsplit("/", 1)[-1] or name
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname or ''}{port}{parts.path}"


def prompt_text(environment: str, user: str, target_name: str, color: bool = True) -> str:
    """The prompt as ANSI text, as prompt_toolkit will draw it (NO_COLOR: without colours, as it does).

    >>> prompt_text("demo", "alice", "demo")
    '\\x1b[0;32m[demo]\\x1b[0m \\x1b[0;1malice\\x1b[0m@demo=> '
    >>> prompt_text("production", "bob", "postgresql://db/shop", color=False)
    ' PRODUCTION  bob@db/shop=> '
    """
    badge = PRODUCTION_BADGE if environment == "production" else ENV_BADGE.format(env=environment)
    text = f"{badge}{USER.format(user=user)}@{target_label(target_name)}=> "
    return text if color else re.sub(r"\x1b\[[0-9;]*m", "", text)


def draw(text: str) -> list | None:
    """Write the prompt and hold typed keys back; returns the terminal settings to restore, or None
    when stdin or stdout is not a terminal (then nothing is written)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or os.environ.get("TERM") in DUMB_TERMINALS:
        return None
    try:
        import termios
    except ImportError:   # no POSIX terminal: prompt_toolkit draws the prompt itself
        return None
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    held = [list(field) if isinstance(field, list) else field for field in saved]
    # What prompt_toolkit's raw mode turns off, so keys queue exactly as it will read them: Enter as
    # CR, Ctrl-C as a key (it clears the line) rather than a signal, nothing echoed or edited by the tty.
    held[0] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.IGNCR)
    held[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    termios.tcsetattr(fd, termios.TCSANOW, held)   # TCSANOW: never discard what was typed
    sys.stdout.write(text)
    sys.stdout.flush()
    return saved


def hand_over(saved: list | None) -> None:
    """Restore the terminal settings (keeping typed keys queued) and clear the drawn prompt."""
    if saved is None:
        return
    import termios
    termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, saved)
    sys.stdout.write("\r\x1b[K")
    sys.stdout.flush()

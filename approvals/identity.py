"""Who is at the keyboard: the name every request and vote is recorded under."""
from __future__ import annotations

import getpass
import os


def current_user() -> str:
    """COUNTERSIGN_USER when set (shared hosts, tests), else the login name.

    The name is not a credential: separation of duties rests on the store recording who voted, and
    on deployments giving each person their own login (or their own Slack identity).
    """
    name = os.environ.get("COUNTERSIGN_USER", "").strip()
    return name or getpass.getuser()

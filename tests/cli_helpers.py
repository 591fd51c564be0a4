"""Running the real `countersign` command in tests, with its own state directory and store."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.store_helpers import migrated

REPO = Path(__file__).resolve().parents[1]


def cli_env(tmp_path: Path, user: str = "alice", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    env.update({
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "COUNTERSIGN_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "COUNTERSIGN_USER": user,
        "PAGER": "cat",
        "PYTHONPATH": str(REPO),
    })
    env.update(extra)
    migrated(env["COUNTERSIGN_STORE"])   # a configured store is never migrated by opening it
    return env


def countersign(*args: str, env: dict[str, str], input: str | None = None, timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def spawn_countersign(*args: str, env: dict[str, str], stdout=subprocess.PIPE):
    return subprocess.Popen([sys.executable, "-m", "console.cli", *args], env=env, stdout=stdout,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)

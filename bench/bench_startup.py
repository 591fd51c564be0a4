"""Start to prompt: `countersign shell postgresql://…/DB` against pgcli on the same database, side by side.

Each run spawns both in a pseudo-terminal (pexpect), alternately, and times two things from the spawn:
  prompt  the prompt text is on the terminal;
  typing  a few keys typed right after the prompt are drawn back (the line editor is live).
The first run of each creates state (countersign's default store, the demo database, pgcli's config)
and is not counted. Target: countersign's prompt <= 0.5x pgcli's. Also the demo (`countersign shell`).

pgcli is a benchmark-only tool, not a dependency:

    pip install pgcli        # into the same virtualenv
    python bench/bench_startup.py [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--runs 9]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import servers  # noqa: E402  (scratch databases, the same helper the tests use)

PROBE = "SELECT 8765"     # typed at the prompt; its number is drawn as one token by both tools
NEW_PROMPT = "\x1b[?2004h"  # prompt_toolkit (both tools) turns bracketed paste on as it starts a prompt


@dataclass(frozen=True)
class Tool:
    name: str
    argv: list[str]
    prompt: str            # a regular expression for the drawn prompt


@dataclass(frozen=True)
class Timing:
    prompt: float
    typing: float


def executable(name: str) -> str | None:
    """The tool installed next to this interpreter (the virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def tools(url: str, database: str) -> list[Tool]:
    countersign, pgcli = executable("countersign"), executable("pgcli")
    if countersign is None:
        sys.exit("countersign is not installed in this environment: pip install -e .")
    if pgcli is None:
        sys.exit("pgcli is not installed; it is needed only for this benchmark:\n"
                 "    pip install pgcli    # into this virtualenv, not a project dependency")
    return [Tool("countersign", [countersign, "shell", url], re.escape(database) + "=>"),
            Tool("pgcli", [pgcli, url], re.escape(database) + ">"),
            Tool("countersign demo", [countersign, "shell"], "@demo=>")]


def isolated_env(home: Path) -> dict[str, str]:
    """No configuration and fresh state for both tools; countersign uses its default local store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COUNTERSIGN_", "PG"))}
    env.update({"HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "XDG_CONFIG_HOME": str(home / "config"),
                "COUNTERSIGN_USER": "bench", "TERM": "xterm", "PAGER": "cat"})
    return env


def time_once(tool: Tool, env: dict[str, str]) -> Timing:
    started = time.perf_counter()
    child = pexpect.spawn(tool.argv[0], tool.argv[1:], env=env, encoding="utf-8", dimensions=(40, 160),
                          timeout=30)
    child.delaybeforesend = None
    child.expect(tool.prompt)
    prompt = time.perf_counter() - started
    child.send(PROBE)
    child.expect_exact(PROBE.split()[-1])
    typing = time.perf_counter() - started
    child.sendcontrol("c")          # both: clear the line and draw a new prompt
    child.expect_exact(NEW_PROMPT)  # a key sent between two prompts could be lost
    child.expect(tool.prompt)
    child.sendcontrol("d")          # both: quit
    child.expect(pexpect.EOF)
    child.close()
    return Timing(prompt, typing)


def measure(all_tools: list[Tool], env: dict[str, str], runs: int) -> dict[str, list[Timing]]:
    timings: dict[str, list[Timing]] = {tool.name: [] for tool in all_tools}
    for run in range(runs + 1):
        for tool in all_tools:            # alternate, so drift on the machine hits every tool alike
            timing = time_once(tool, env)
            if run:
                timings[tool.name].append(timing)
    return timings


def report(timings: dict[str, list[Timing]]) -> None:
    medians = {}
    for name, found in timings.items():
        prompt = statistics.median(t.prompt for t in found)
        typing = statistics.median(t.typing for t in found)
        medians[name] = prompt
        runs = " ".join(f"{t.prompt * 1000:.0f}" for t in found)
        print(f"{name:17} prompt {prompt * 1000:6.1f} ms   typing shown {typing * 1000:6.1f} ms   "
              f"(median of {len(found)}; prompts: {runs})")
    ratio = medians["countersign"] / medians["pgcli"]
    print(f"ratio countersign/pgcli (prompt): {ratio:.2f}x (target <= 0.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=os.environ.get("COUNTERSIGN_TEST_PG_URL", servers.DEFAULT_PG_URL))
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    database = f"cs_bench_{uuid.uuid4().hex[:8]}"
    url = servers.create_pg_database(args.pg_url, database)
    try:
        found = tools(url, database)
        with tempfile.TemporaryDirectory() as home:
            timings = measure(found, isolated_env(Path(home)), args.runs)
    finally:
        servers.drop_pg_database(args.pg_url, database)
    report(timings)


if __name__ == "__main__":
    main()

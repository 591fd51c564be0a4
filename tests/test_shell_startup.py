"""`countersign shell` draws its prompt at once and opens the session behind it.

The real command in a pseudo-terminal (pexpect). What must hold however fast the person types: a
statement typed at the very first prompt runs only after the session start is in the trail, and a
store that cannot record ends the shell before anything runs.
"""
from __future__ import annotations

import json
import sys

import pexpect

from tests.cli_helpers import REPO, cli_env, countersign

# The prompt drawn before prompt_toolkit loads (console/repl/instant.py), exactly as written.
INSTANT_DEMO_PROMPT = "\x1b[0;32m[demo]\x1b[0m \x1b[0;1malice\x1b[0m@demo=> "


def spawn_shell(env: dict) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "console.cli", "shell"], env=env, encoding="utf-8",
                         dimensions=(40, 160), cwd=REPO, timeout=30)


def test_a_statement_typed_at_the_first_prompt_runs_after_the_session_start_is_recorded(tmp_path):
    env = cli_env(tmp_path, TERM="xterm")
    shell = spawn_shell(env)
    shell.expect_exact(INSTANT_DEMO_PROMPT)
    shell.send("SELECT count(*) AS n FROM sites;\r")    # typed before prompt_toolkit or the session exist
    shell.expect(r"\r\n +40\r\n")
    shell.expect_exact("@demo=>")   # prompt_toolkit draws the space as a cursor move
    shell.sendline("\\q")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0

    sessions = countersign("audit", "sessions", "--json", env=env)
    (session,) = [json.loads(line) for line in sessions.stdout.splitlines()]
    shown = countersign("audit", "show", session["id"], "--json", env=env)
    events = json.loads(shown.stdout)["events"]
    assert [e["type"] for e in events] == ["session_start", "intent", "outcome", "session_end"]
    assert events[1]["payload"]["text"] == "SELECT count(*) AS n FROM sites"


def test_a_store_that_cannot_record_ends_the_shell_before_anything_runs(tmp_path):
    env = cli_env(tmp_path, TERM="xterm")
    env["COUNTERSIGN_STORE"] = f"sqlite:///{tmp_path / 'never_migrated.db'}"   # configured, no schema
    shell = spawn_shell(env)
    shell.expect_exact(INSTANT_DEMO_PROMPT)
    shell.send("SELECT 4000 + 2 AS answer;\r")
    shell.expect(pexpect.EOF)
    shell.close()
    output = shell.before
    assert shell.exitstatus == 2
    assert "the audit store is unavailable, so nothing may run" in output
    assert "has no schema yet; run `countersign store upgrade`" in output
    assert "4002" not in output


def test_reading_no_configuration_imports_no_schema_library():
    """The prompt of a URL target or the demo must not wait for pydantic: the schema is loaded only
    where a configuration file is read."""
    import subprocess
    import sys
    probe = ("import sys; from config.settings import load_settings, target_from_url; load_settings(None); "
             "target_from_url('postgresql://db/shop'); print('pydantic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"

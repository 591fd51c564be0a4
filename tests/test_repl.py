"""End-to-end: the real `countersign shell` in a pseudo-terminal, driven with pexpect.

How the tests know where one command's output ends: prompt_toolkit switches bracketed paste on
(ESC[?2004h) when it draws a prompt and off (ESC[?2004l) when it hands the typed text over. So
"the text was accepted" is ESC[?2004l, and everything up to the next ESC[?2004h is that command's
output. Nothing here sleeps to synchronise: every wait is an expect (or a deadline-bounded poll of
PostgreSQL's own pg_stat_activity).
"""
from __future__ import annotations

import io
import json
import re
import sqlite3
import stat
import sys
import time

import pexpect
import psycopg
import pytest

from console.repl.loop import is_complete, pager_command, target_label
from tests.cli_helpers import REPO, cli_env, countersign

INPUT_DONE = "\x1b[?2004l"
PROMPT_START = "\x1b[?2004h"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
STYLE = r"(?:\x1b\[[0-9;]*m)*"
LONG_READ = "SELECT count(*) FROM generate_series(1, 2000000000)"


def plain(text: str) -> str:
    return ANSI.sub("", text)


class Shell:
    """One `countersign shell` process in a 40x160 pseudo-terminal."""

    def __init__(self, env: dict, *args: str, user: str = "alice", target: str = "demo") -> None:
        """`target` is a regular expression for the target as the prompt shows it."""
        self.prompt = re.escape(user) + STYLE + "@" + STYLE + target + "=>"
        self.child = pexpect.spawn(sys.executable, ["-m", "console.cli", *args], env=env, encoding="utf-8",
                                   dimensions=(40, 160), cwd=REPO, timeout=30)
        self.transcript = io.StringIO()   # everything the shell wrote to the terminal
        self.child.logfile_read = self.transcript
        self.banner = self.wait_prompt()

    def wait_prompt(self, timeout: float = 30) -> str:
        """Everything printed until the next prompt, without terminal control sequences."""
        self.child.expect_exact(PROMPT_START, timeout=timeout)
        output = plain(self.child.before)
        self.child.expect(self.prompt, timeout=timeout)
        self.last_prompt = self.child.before + self.child.after   # the prompt as drawn (with styles)
        return output

    def send(self, line: str) -> None:
        """Type a line and Enter; returns once the console has taken it (not when it has finished)."""
        self.child.sendline(line)
        self.child.expect_exact(INPUT_DONE)

    def run(self, line: str) -> str:
        self.send(line)
        return self.wait_prompt()

    def quit(self, how: str = "\\q") -> int:
        if how == "ctrl-d":
            self.child.sendcontrol("d")
        else:
            self.child.sendline(how)
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture
def shells():
    started: list[Shell] = []

    def start(env: dict, *args: str, **kwargs) -> Shell:
        shell = Shell(env, *args, **kwargs)
        started.append(shell)
        return shell

    yield start
    for shell in started:
        if shell.child.isalive():
            shell.child.terminate(force=True)


def shell_env(tmp_path, user: str = "alice", **extra: str) -> dict:
    """cli_env, plus a terminal that is the same wherever the tests run (colours on, xterm)."""
    env = cli_env(tmp_path, user=user, TERM="xterm", **extra)
    for name in ("NO_COLOR", "PROMPT_TOOLKIT_COLOR_DEPTH", "PROMPT_TOOLKIT_NO_CPR", "COLUMNS", "LINES", "LESS"):
        env.pop(name, None)
    return env


def write_config(tmp_path, environment: str, secret_patterns: tuple[str, ...] = ()) -> str:
    database = tmp_path / "app.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, password TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'alice', 'old'), (2, 'bob', 'hunter2')")
    config = tmp_path / "countersign.toml"
    patterns = ", ".join(json.dumps(p) for p in secret_patterns)
    config.write_text(f'[history]\nsecret_patterns = [{patterns}]\n\n'
                      f'[targets.local]\nurl = "sqlite:///{database}"\ndialect = "sqlite"\n'
                      f'environment = "{environment}"\n')
    return str(config)


def audit_events(env: dict) -> list[dict]:
    sessions = countersign("audit", "sessions", "--json", env=env)
    assert sessions.returncode == 0, sessions.stderr
    (session,) = [json.loads(line) for line in sessions.stdout.splitlines()]
    shown = countersign("audit", "show", session["id"], "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["events"]


def approval_requests(env: dict) -> list[dict]:
    listed = countersign("approvals", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_demo_banner_prompt_read_and_meta_commands(tmp_path, shells):
    shell = shells(shell_env(tmp_path), "shell")
    assert "Countersign — demo (demo, sqlite) as alice" in shell.banner
    assert re.search(r"\[demo\]" + STYLE + " " + STYLE + "alice" + STYLE + "@demo=>", shell.last_prompt)

    out = shell.run("SELECT id, name, plan FROM sites WHERE id <= 2 ORDER BY id;")
    assert re.search(r"\x1b\[[0-9;]+mSELECT\x1b\[0m", shell.transcript.getvalue())   # syntax highlighted
    assert re.search(r"^ id \| +name +\| +plan$", out, re.M)
    assert re.search(r"^  1 \| \S+-1 +\| \w+$", out, re.M) and "(2 rows)" in out

    tables = shell.run("\\dt")
    assert re.search(r"^ deploys +\| table$", tables, re.M) and re.search(r"^ sites +\| table$", tables, re.M)

    described = shell.run("\\d deploys")
    assert 'Table "deploys"' in described
    assert re.search(r"^ id +\| INTEGER +\| +\|$", described, re.M)
    assert re.search(r"^ commit_sha +\| TEXT +\| not null \|$", described, re.M)
    assert "PRIMARY KEY (id)" in described and "FOREIGN KEY (site_id) REFERENCES sites(id)" in described

    assert "Expanded display is on." in shell.run("\\x")
    expanded = shell.run("SELECT id, name FROM sites WHERE id = 3;")
    assert "-[ RECORD 1 ]" in expanded and re.search(r"^name \| \S+-3$", expanded, re.M)
    assert "Expanded display is off." in shell.run("\\x")
    assert "Timing is off." in shell.run("\\timing")
    untimed = shell.run("SELECT 40 + 2 AS answer;")
    assert re.search(r"^ +42$", untimed, re.M) and "Time:" not in untimed

    help_text = shell.run("\\?")
    assert "describe a table" in help_text and "\\pending" in help_text
    assert shell.quit() == 0
    # no cursor position requests, so no "terminal doesn't support CPR" warning and no pause
    assert "\x1b[6n" not in shell.transcript.getvalue() and "CPR" not in shell.transcript.getvalue()


def test_demo_write_waits_for_a_second_person_then_runs_and_is_audited(tmp_path, shells):
    env = shell_env(tmp_path)
    shell = shells(env, "shell")
    shell.send("UPDATE deploys SET status = 'archived' WHERE site_id = 3;")
    shell.child.expect(r"request ([0-9a-f-]{36}), rows affected: 25")
    request_id = shell.child.match.group(1)
    shell.child.expect_exact("waiting")

    approved = countersign("approvals", "approve", request_id, env=shell_env(tmp_path, user="bob"))
    assert approved.returncode == 0, approved.stderr

    out = shell.wait_prompt()
    assert "OK, 25 rows affected" in out
    assert re.search(r"snapshot \S+ holds the 25 rows as they were", out)
    assert shell.quit() == 0

    with sqlite3.connect(tmp_path / "state" / "countersign" / "demo.db") as conn:
        assert conn.execute("SELECT count(*) FROM deploys WHERE status = 'archived'").fetchone() == (25,)
    events = audit_events(env)
    intent = [e for e in events if e["type"] == "intent" and e["payload"]["approval_id"] == request_id]
    outcome = [e for e in events if e["type"] == "outcome" and e["payload"]["approval_id"] == request_id]
    assert intent and intent[0]["payload"]["text"] == "UPDATE deploys SET status = 'archived' WHERE site_id = 3"
    assert outcome and outcome[0]["payload"]["status"] == "ok" and outcome[0]["payload"]["rows"] == 25
    verified = countersign("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_ctrl_c_stops_waiting_for_approval_and_the_request_stays_open(tmp_path, shells):
    env = shell_env(tmp_path)
    shell = shells(env, "shell")
    shell.send("UPDATE deploys SET status = 'paused' WHERE site_id = 4;")
    shell.child.expect(r"request ([0-9a-f-]{36})")
    request_id = shell.child.match.group(1)
    shell.child.expect_exact("waiting")
    shell.child.sendintr()

    out = shell.wait_prompt()
    assert f"CANCELLED: stopped waiting for approval {request_id}" in out and "stays open" in out
    pending = shell.run("\\pending")
    assert re.search(rf"^ {request_id} \| pending \| 0/1 +\| +25 \| UPDATE deploys", pending, re.M)
    assert [(r["id"], r["status"]) for r in approval_requests(env)] == [(request_id, "pending")]
    assert re.search(r"^ +40$", shell.run("SELECT count(*) AS n FROM sites;"), re.M)
    assert shell.quit() == 0


def test_ctrl_c_cancels_a_long_read_on_the_postgres_server(tmp_path, shells, pg_url, pg_admin_url):
    database = pg_url.rsplit("/", 1)[1]
    shell = shells(shell_env(tmp_path), "shell", pg_url, target=r"127\.0\.0\.1:\d+/" + re.escape(database))
    assert "*** PRODUCTION ***" in shell.banner   # a bare URL is treated as production
    shell.send(LONG_READ + ";")
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        assert poll(lambda: running(admin, database), deadline=20), "the read never started on the server"
        shell.child.sendintr()
        out = shell.wait_prompt()
        assert poll(lambda: not running(admin, database), deadline=10), "the server is still running it"
    assert "CANCELLED: cancelled on the server" in out
    assert re.search(r"^ +42$", shell.run("SELECT 6 * 7 AS answer;"), re.M)
    assert shell.quit() == 0


def running(admin, database: str) -> bool:
    return bool(admin.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                              "AND query LIKE %s", (database, f"%{LONG_READ}%")).fetchall())


def poll(condition, deadline: float) -> bool:
    """True as soon as condition() holds; False if it still does not after `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)   # poll interval for an external observer, not synchronisation with the shell
    return condition()


def test_a_statement_over_several_lines_runs_once_its_semicolon_ends_it(tmp_path, shells):
    env = shell_env(tmp_path)
    shell = shells(env, "shell")
    for line in ("SELECT id, name", "FROM sites", "WHERE name <> 'a;", "' AND id IN (1, 2, 3)"):
        shell.child.sendline(line)   # the ';' inside the string does not end the statement
        shell.child.expect(r"\.{10,}")   # a continuation line was drawn: nothing ran yet
    out = shell.run("ORDER BY id;")
    assert "(3 rows)" in out and re.search(r"^  3 \| \S+-3$", out, re.M)
    assert shell.quit("exit") == 0

    intents = [e["payload"]["text"] for e in audit_events(env) if e["type"] == "intent"]
    assert intents == ["SELECT id, name\nFROM sites\nWHERE name <> 'a;\n' AND id IN (1, 2, 3)\nORDER BY id"]


def test_history_never_stores_secret_literals(tmp_path, shells):
    config = write_config(tmp_path, "staging", secret_patterns=("password",))
    shell = shells(shell_env(tmp_path), "--config", config, "shell", "local", target="local")
    assert "(staging, sqlite)" in shell.banner and "[staging]" in plain(shell.last_prompt)
    assert "(1 row)" in shell.run("SELECT id FROM users WHERE password = 'hunter2';")
    for statement in ("UPDATE users SET password = 'hunter2' WHERE id = 1;",
                      "INSERT INTO users (name, password)\nVALUES ('carol', 'hunter2');"):
        shell.send(statement)
        shell.child.expect_exact("waiting")
        shell.child.sendintr()
        assert "stopped waiting for approval" in shell.wait_prompt()
    assert shell.quit() == 0

    history = tmp_path / "state" / "countersign" / "history"
    text = history.read_text()
    assert "hunter2" not in text
    assert "+UPDATE users SET password = '<redacted>' WHERE id = 1;" in text
    assert "+SELECT id FROM users WHERE password = '<redacted>';" in text
    assert "+VALUES ('<redacted>', '<redacted>');" in text
    assert stat.S_IMODE(history.stat().st_mode) == 0o600


def test_a_production_target_is_marked_in_the_prompt_and_banner(tmp_path, shells):
    config = write_config(tmp_path, "production")
    shell = shells(shell_env(tmp_path), "--config", config, "shell", "local", target="local")
    assert "(production, sqlite)" in shell.banner and "*** PRODUCTION ***" in shell.banner
    assert re.search(r" PRODUCTION " + STYLE + " " + STYLE + "alice", shell.last_prompt)
    assert re.search(r"\x1b\[(?:\d+;)*41(?:;\d+)*m PRODUCTION", shell.last_prompt)   # on a red background
    assert shell.quit() == 0


def test_tab_completes_from_the_live_catalog(tmp_path, shells):
    shell = shells(shell_env(tmp_path), "shell")
    shell.child.send("SELECT count(*) AS n FROM depl\t")
    shell.child.expect("oys")   # the one match was inserted
    assert re.search(r"^ +1000$", shell.run(";"), re.M)

    shell.child.send("SELECT count(*) AS n FROM sites WHERE reg\t")   # a column of the table named
    shell.child.expect("ion")
    shell.child.send(" <> ''")
    assert re.search(r"^ +40$", shell.run(";"), re.M)

    shell.child.send("SELECT count(*) AS n FROM ")
    shell.child.expect(r"deploys.*sites")   # completion as you type: the tables, before a letter is typed
    shell.child.send("\t")                 # Tab highlights the first
    shell.child.send("\r")                 # Enter takes the completion; it does not submit
    shell.child.expect("deploys")
    assert re.search(r"^ +1000$", shell.run(";"), re.M)
    assert shell.quit() == 0


def test_errors_are_shown_and_the_console_keeps_running(tmp_path, shells):
    env = shell_env(tmp_path)
    shell = shells(env, "shell")
    assert "ERROR: no such table: nowhere" in shell.run("SELECT * FROM nowhere;")

    shell.send("SELEC * FROM sites;")
    shell.child.expect_exact("Send it for approval anyway? [y/N]")
    asked = plain(shell.child.before)   # a clean message with a caret, not the parser's internals
    assert 'ERROR: syntax error at or near "FROM"\nLINE 1: SELEC * FROM sites\n                ^' in asked
    assert "sqlglot" not in asked and "<class" not in asked
    shell.child.sendline("n")
    assert "Not sent." in shell.wait_prompt()

    assert "unknown command \\nonsense" in shell.run("\\nonsense")
    assert 'Did not find any relation named "nowhere"' in shell.run("\\d nowhere")
    assert re.search(r"^ +42$", shell.run("SELECT 6 * 7 AS answer;"), re.M)
    assert shell.quit() == 0
    assert approval_requests(env) == []   # the typo never became an approval request


def test_ctrl_c_at_the_prompt_clears_the_line_and_ctrl_d_quits(tmp_path, shells):
    shell = shells(shell_env(tmp_path), "shell")
    shell.child.send("SELECT * FROM half_typed")
    shell.child.expect("half_typed")
    shell.child.sendintr()
    shell.wait_prompt()
    out = shell.run("SELECT 6 * 7 AS answer;")
    assert re.search(r"^ +42$", out, re.M) and "ERROR" not in out
    assert shell.quit("ctrl-d") == 0


def test_a_long_result_goes_through_the_pager_and_the_console_carries_on(tmp_path, shells):
    env = shell_env(tmp_path, PAGER="sed 's/^/paged: /'")
    shell = shells(env, "shell")
    out = shell.run("SELECT * FROM deploys;")
    assert re.search(r"^paged: +1000 \| +40 \|", out, re.M)
    assert re.search(r"^paged: \(1000 rows\)\nTime: [\d.]+ ms$", out, re.M)   # the footer is not garbled
    short = shell.run("SELECT 6 * 7 AS answer;")
    assert re.search(r"^ +42$", short, re.M) and "paged:" not in short   # one screen: no pager
    assert shell.quit() == 0


# -- the REPL's pure helpers ----------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize("text, complete", [
    ("SELECT 1;", True), ("SELECT 1", False), ("SELECT 'a;", False), ("SELECT 'a;';", True),
    ("SELECT 1 /* x; */", False), ("SELECT 1; -- done", True), ("SELECT 1 -- x;", False),
    ("SELECT 1;\nSELECT 2", False), ("", True), ("\\dt", True), ("\\d deploys", True), ("exit", True),
    ("help", True), ("quit;", True), ("EXIT", True),
])
def test_is_complete(text, complete, dialect):
    assert is_complete(text, dialect) is complete


def test_is_complete_knows_postgres_dollar_quotes():
    assert not is_complete("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1;", "postgres")
    assert is_complete("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;", "postgres")


def test_target_label_and_pager_command():
    assert target_label("deploys-prod") == "deploys-prod"
    assert target_label("postgresql://app@db.internal:5432/shop") == "db.internal:5432/shop"
    assert target_label("sqlite:////var/lib/app/data.db") == "data.db"
    assert pager_command({"PAGER": "less -R"}) == "less -R"
    assert pager_command({"PAGER": "  "}) is None


def test_doctests():
    import doctest

    from console.repl import instant, loop as repl
    result = doctest.testmod(repl)
    assert result.failed == 0 and result.attempted >= 2
    drawn = doctest.testmod(instant)   # target_label moved here: the prompt is drawn before prompt_toolkit
    assert drawn.failed == 0 and drawn.attempted >= 2


def test_begin_commit_in_the_shell_is_one_approval_and_one_transaction(tmp_path, shells):
    env = shell_env(tmp_path)
    shell = shells(env, "shell")
    assert "sent for approval together" in shell.run("BEGIN;")
    assert "queued (1)" in shell.run("UPDATE deploys SET status = 'archived' WHERE site_id = 3;")
    assert "queued (2)" in shell.run("DELETE FROM deploys WHERE site_id = 4;")
    shell.send("COMMIT;")
    shell.child.expect(r"request ([0-9a-f-]{36}), rows affected: (\d+)")
    request_id = shell.child.match.group(1)
    shell.child.expect_exact("waiting")
    shown = countersign("approvals", "show", request_id, env=shell_env(tmp_path, user="bob"))
    assert "UPDATE deploys" in shown.stdout and "DELETE FROM deploys" in shown.stdout   # the whole block
    assert countersign("approvals", "approve", request_id, env=shell_env(tmp_path, user="bob")).returncode == 0
    out = shell.wait_prompt()
    assert "OK, 25 rows affected" in out and out.count("snapshot ") >= 2
    assert "ROLLBACK: 1 queued statement(s) dropped" in shell.run("BEGIN; DELETE FROM deploys; ROLLBACK;")
    assert shell.quit() == 0

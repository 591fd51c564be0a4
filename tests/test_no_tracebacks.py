"""No input produces a traceback: random bytes (invalid UTF-8 among them), deep nesting, huge inputs,
NUL bytes and control characters, fed to `countersign run -c/-f`, `countersign classify` and the shell.
Every run ends with an exit code from console/commands/exit_codes.py (never 70, an internal error) and,
for a usage error, one line saying what is wrong.

Hypothesis drives the command's entry point (console.cli.main, what the process runs) in this process,
so it can try many inputs quickly, and the shell's own loop; the real processes (and the real shell in
a terminal) then get the hardest inputs of each kind.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit.store import Store
from console import cli
from console.commands import exit_codes
from console.demo import demo_database
from tests.cli_helpers import REPO, cli_env
from tests.pipeline_helpers import make_pipeline
from tests.store_helpers import migrated
from tests.test_psql_parity import Console
from tests.test_repl import Shell, plain, shell_env

CLEAN = {exit_codes.OK, exit_codes.USAGE, exit_codes.NOT_APPROVED, exit_codes.BLOCKED, exit_codes.FAILED}
FRAGMENTS = ["SELECT", " ", "(", ")", "[", "]", "{", "}", "'", '"', "`", ";", "--", "/*", "*/", "\x00", "\x1b[2J",
             "\x07", "\r", "\n", "\t", "\u202e", "\u200b", "é", "$$", "\\", "1", ",", "FROM sites", "db.sites.find(",
             "$where", "BEGIN;", "COMMIT;", "DELETE FROM deploys", "\\d", "\\copy", "it", "exit", "0x", "E'", "%s"]
NESTING = st.integers(500, 1500)
TEXT = st.one_of(
    st.text(max_size=200),                                              # any Unicode: controls, NUL, marks
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),     # the pieces parsers stumble on
    NESTING.map(lambda n: "SELECT " + "(" * n + "1" + ")" * n),
    NESTING.map(lambda n: "db.sites.find(" + "[" * n + "]" * n + ")"),
    NESTING.map(lambda n: "SELECT " + "-" * n + "1"),
)
BYTES = st.one_of(st.binary(max_size=400), TEXT.map(lambda t: t.encode("utf-8")),
                  st.tuples(TEXT, st.binary(min_size=1, max_size=8)).map(lambda p: p[0].encode() + p[1]))
DIALECTS = st.sampled_from(["postgres", "mysql", "sqlite", "mongodb"])
HUGE = 3 * 1024 * 1024
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@pytest.fixture
def embedded(monkeypatch, tmp_path):
    """The command as a person runs it on this machine: embedded mode, the demo, its own store."""
    for name in [n for n in os.environ if n.startswith("COUNTERSIGN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COUNTERSIGN_USER", "alice")
    monkeypatch.setenv("COUNTERSIGN_STORE", migrated(f"sqlite:///{tmp_path / 'store.db'}"))
    monkeypatch.chdir(tmp_path)


def main(argv: list, stdin: bytes = b"") -> tuple[int, str, str]:
    """console.cli.main with these arguments and this standard input; an exception escaping it fails
    the test (the process would print a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")), \
            redirect_stdout(out), redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_clean(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code in CLEAN, (code, err[-2000:])
    if code == exit_codes.USAGE:
        assert len(err.strip().splitlines()) == 1, err[-2000:]


# -- the command's entry point, in this process ---------------------------------------------------
@PROPERTY
@given(data=BYTES, dialect=DIALECTS)
def test_classify_never_crashes(embedded, data, dialect):
    code, _, err = main(["classify", "--dialect", dialect], data)
    assert code in (exit_codes.OK, exit_codes.USAGE)
    assert_clean(code, err)


@PROPERTY
@given(data=BYTES)
def test_classify_jsonl_never_crashes(embedded, data):
    code, _, err = main(["classify", "--dialect", "postgres", "--input", "jsonl"], data)
    assert code in (exit_codes.OK, exit_codes.USAGE)
    assert "Traceback" not in err
    lines = err.strip().splitlines()   # one line per malformed input line, each naming it (the contract)
    assert all(re.match(r"countersign classify: line \d+: ", line) for line in lines) or len(lines) == 1, err


@PROPERTY
@given(data=BYTES)
def test_run_a_file_never_crashes(embedded, tmp_path, data):
    path = tmp_path / "script.sql"
    path.write_bytes(data)
    assert_clean(*_code_err(main(["run", "demo", "-f", str(path), "--wait", "0"])))
    assert_clean(*_code_err(main(["run", "demo", "-f", "-", "--wait", "0"], data)))


@PROPERTY
@given(data=BYTES)
def test_run_a_command_line_never_crashes(embedded, data):
    # The process gets its arguments as bytes decoded with surrogateescape (a NUL cannot be in one).
    text = data.replace(b"\x00", b"").decode("utf-8", "surrogateescape")
    assert_clean(*_code_err(main(["run", "demo", "-c", text, "--wait", "0"])))


def _code_err(result: tuple[int, str, str]) -> tuple[int, str]:
    return result[0], result[2]


# -- the shell's loop, in this process -------------------------------------------------------------
class NoWait:
    """A console session whose writes wait for approval 0 seconds (nobody approves in this test)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def submit(self, statement, **kwargs):
        return self.inner.submit(statement, wait=0, **kwargs)

    def submit_batch(self, statements, **kwargs):
        return self.inner.submit_batch(statements, wait=0, **kwargs)


@pytest.fixture
def shell_loop(tmp_path, capsys, monkeypatch, gate_mode):
    store = Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))
    pipeline = make_pipeline(f"sqlite:///{demo_database(tmp_path / 'demo.db')}", store, "alice")
    pipeline.open_session()
    monkeypatch.setattr("builtins.input", lambda _question: "n")   # "send it anyway?": no
    monkeypatch.setenv("EDITOR", "true")                           # \e: an editor that changes nothing
    monkeypatch.chdir(tmp_path)                                    # \o and \copy write here, if anywhere
    yield Console(NoWait(pipeline), capsys)
    pipeline.close()


@PROPERTY
@given(data=st.one_of(TEXT, st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape")),
                      st.tuples(st.sampled_from(["\\d ", "\\dt ", "\\i ", "\\copy ", "\\x ", "\\o ", "\\c "]), TEXT)
                      .map("".join)))
def test_the_shell_loop_never_crashes(shell_loop, data):
    out = shell_loop.run(data)   # an exception escaping handle() would end the shell with a traceback
    # ... and one caught there, but unforeseen, is shown as "ERROR: <its class>: ... (the console keeps running)"
    assert "Traceback" not in out and "(the console keeps running)" not in out, out[-2000:]
    shell_loop.repl.state.quit = False   # `exit` may be among the input: the next example types on


# -- the real processes, with the hardest input of each kind -------------------------------------
PAYLOADS = {
    "not UTF-8": b"SELECT '\xff\xfe' FROM sites;",
    "NUL and control characters": b"SELECT '\x00\x1b[2J\x07\x08\r' AS x;",
    "1,000 nested parentheses": b"SELECT " + b"(" * 1000 + b"1" + b")" * 1000,
    "1,000 nested brackets": b"db.sites.find({a: " + b"[" * 1000 + b"]" * 1000 + b"})",
    "3 MB": b"SELECT '" + b"x" * HUGE + b"' AS big;",
}


def process(*args: str, stdin: bytes = b"", env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], input=stdin, env=env, capture_output=True,
                          timeout=120, cwd=REPO)


@pytest.mark.parametrize("what", list(PAYLOADS))
def test_the_real_commands_end_cleanly(tmp_path, what):
    env = cli_env(tmp_path)
    data = PAYLOADS[what]
    dialect = "mongodb" if b"db.sites" in data else "postgres"
    classified = process("classify", "--dialect", dialect, stdin=data, env=env)
    assert_clean(classified.returncode, classified.stderr.decode("utf-8", "replace"))
    script = tmp_path / "script.sql"
    script.write_bytes(data)
    ran = process("run", "demo", "-f", str(script), "--wait", "0", env=env)
    assert_clean(ran.returncode, ran.stderr.decode("utf-8", "replace"))
    if b"\x00" not in data and len(data) < 100_000:   # an argument cannot hold a NUL; keep argv small
        ran = subprocess.run([sys.executable.encode(), b"-m", b"console.cli", b"run", b"demo", b"-c", data,
                              b"--wait", b"0"], env=env, capture_output=True, timeout=120, cwd=REPO)
        assert_clean(ran.returncode, ran.stderr.decode("utf-8", "replace"))


def test_the_real_shell_takes_bad_bytes_control_characters_and_deep_nesting(tmp_path):
    shell = Shell(shell_env(tmp_path), "shell")
    os.write(shell.child.child_fd, b"SELECT '\xff\xfe' AS x;\r")   # a terminal that is not UTF-8
    shell.child.expect_exact("\x1b[?2004l")
    assert "is not UTF-8 text (byte 0xff at offset 8)" in shell.wait_prompt()
    shell.send("SELECT " + "(" * 600 + "1" + ")" * 600 + ";")
    shell.child.expect_exact("Send it for approval anyway? [y/N]")
    assert "nested too deeply to analyse; simplify it" in plain(shell.child.before)
    shell.child.sendline("n")
    assert "Not sent." in shell.wait_prompt()
    shell.child.send("SELECT 'a\x07b\x1b[2Jc\x00' AS x;\r")   # typed controls are keys to the terminal:
    shell.child.sendintr()                                      # whatever they did, Ctrl-C clears the line
    shell.child.sendline("SELECT 'marker' || '-77' AS m;")
    shell.child.expect(r"\r\n marker-77\r\n")
    shell.wait_prompt()
    stored = shell.run("SELECT 'a' || char(7) || 'b' || char(27) || '[2Jc' AS x;")
    assert "a\\x07b\\x1b[2Jc" in stored   # control characters in data are shown escaped, not obeyed
    # Half a megabyte pasted (a terminal brackets a paste, so it arrives as one piece, not as keys).
    shell.child.send("\x1b[200~SELECT length('" + "x" * 500_000 + "') AS n;\x1b[201~")
    assert re.search(r"^ 500000$", shell.run(""), re.M)
    assert re.search(r"^ +42$", shell.run("SELECT 6 * 7 AS answer;"), re.M)
    assert shell.quit() == 0
    assert "Traceback" not in plain(shell.transcript.getvalue())

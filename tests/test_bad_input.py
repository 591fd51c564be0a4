"""Bad input never produces a traceback: the real command, one clear line, a clean exit code."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli_helpers import REPO, cli_env, countersign

NOT_UTF8 = b"SELECT \xff 1"
DEEP = "SELECT " + "(" * 500 + "1" + ")" * 500


def run_bytes(*args: str, env: dict, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """The command with raw bytes on stdin (and in its arguments), its output as bytes."""
    return subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, input=stdin,
                          capture_output=True, timeout=60, cwd=REPO)


def one_clean_line(done, code: int, *said: str) -> None:
    err = done.stderr.decode() if isinstance(done.stderr, bytes) else done.stderr
    assert done.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for words in said:
        assert words in err, err


def test_non_utf8_file_for_run(tmp_path):
    path = tmp_path / "latin1.sql"
    path.write_bytes(NOT_UTF8)
    done = run_bytes("run", "demo", "-f", str(path), env=cli_env(tmp_path))
    one_clean_line(done, 2, f"{path} is not UTF-8 text (byte 0xff at offset 7)", "convert it to UTF-8")


def test_non_utf8_on_stdin_for_run(tmp_path):
    done = run_bytes("run", "demo", "-f", "-", env=cli_env(tmp_path), stdin=NOT_UTF8)
    one_clean_line(done, 2, "standard input is not UTF-8 text (byte 0xff at offset 7)")


def test_non_utf8_in_the_command_line_for_run(tmp_path):
    done = subprocess.run([sys.executable.encode(), b"-m", b"console.cli", b"run", b"demo", b"-c", NOT_UTF8],
                          env=cli_env(tmp_path), capture_output=True, timeout=60, cwd=REPO)
    one_clean_line(done, 2, "the -c text is not UTF-8 text (byte 0xff at offset 7)")


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite", "mongodb"])
def test_non_utf8_to_classify(tmp_path, dialect):
    done = run_bytes("classify", "--dialect", dialect, env=cli_env(tmp_path), stdin=NOT_UTF8)
    one_clean_line(done, 2, "standard input is not UTF-8 text")
    assert done.stdout == b""


def test_a_lone_surrogate_in_classify_jsonl(tmp_path):
    done = run_bytes("classify", "--dialect", "postgres", "--input", "jsonl", env=cli_env(tmp_path),
                     stdin=b'{"id": 7, "text": "SELECT \\ud800"}\n')
    one_clean_line(done, 2, 'the "text" of id 7 is not valid Unicode')


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_deep_nesting_run_says_to_simplify(tmp_path, request, dialect):
    url = request.getfixturevalue({"mysql": "mysql_url", "sqlite": "sqlite_url"}[dialect])
    done = countersign("run", url, "-c", DEEP, "--wait", "0", env=cli_env(tmp_path))
    one_clean_line(done, 2, "nested too deeply", "simplify it")


def test_deep_nesting_on_postgres_is_read_by_its_own_parser_and_runs(tmp_path, pg_url):
    done = countersign("run", pg_url, "-c", DEEP, "--format", "csv", env=cli_env(tmp_path))
    assert done.returncode == 0 and done.stdout.splitlines()[1:] == ["1"], done.stderr


def test_deep_nesting_with_request_anyway_still_ends_cleanly(tmp_path):
    done = countersign("run", "demo", "-c", DEEP, "--wait", "0", "--request-anyway", env=cli_env(tmp_path))
    one_clean_line(done, 2, "nested too deeply", "simplify it")


@pytest.mark.parametrize("dialect, kind", [("postgres", "read"), ("mysql", "unknown"), ("sqlite", "unknown")])
def test_deep_nesting_is_classified_not_a_crash(tmp_path, dialect, kind):
    done = countersign("classify", "--dialect", dialect, input=DEEP, env=cli_env(tmp_path))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f'"kind": "{kind}"' in done.stdout


def test_a_broken_pipe_ends_quietly(tmp_path):
    """`countersign classify ... | head -1`: the reader goes away after one line."""
    env = cli_env(tmp_path)
    script = "SELECT 1;\n" * 20000
    shell = subprocess.run(
        f"{sys.executable} -m console.cli classify --dialect sqlite | head -1; echo \"exit=${{PIPESTATUS[0]}}\"",
        shell=True, executable="/bin/bash", input=script, env=env, capture_output=True, text=True,
        timeout=120, cwd=REPO)
    lines = shell.stdout.splitlines()
    assert lines[0].startswith('{"index": 0') and lines[-1] == "exit=141", shell.stdout
    assert shell.stderr == "", shell.stderr


def test_a_config_that_is_a_directory(tmp_path):
    folder = tmp_path / "conf.d"
    folder.mkdir()
    done = countersign("run", "demo", "-c", "SELECT 1", "--config", str(folder), env=cli_env(tmp_path))
    one_clean_line(done, 2, f"config file {folder} is a directory; pass the TOML file inside it")
    checked = countersign("config", "check", "--config", str(folder), env=cli_env(tmp_path))
    one_clean_line(checked, 2, "is a directory")


def test_a_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "countersign.toml"
    path.write_bytes(b'[targets.a]\nurl = "sqlite:///caf\xe9.db"\n')
    done = countersign("config", "check", "--config", str(path), env=cli_env(tmp_path))
    one_clean_line(done, 2, "is not UTF-8 text (line 2, byte 32); save it as UTF-8")
    ran = countersign("run", "a", "-c", "SELECT 1", "--config", str(path), env=cli_env(tmp_path))
    one_clean_line(ran, 2, "not UTF-8 text")


@pytest.mark.parametrize("args", [("run", "demo", "-c", "SELECT 1"), ("approvals", "list"), ("audit", "verify"),
                                  ("config", "check")])
def test_a_store_url_with_a_bad_port(tmp_path, args):
    env = {**cli_env(tmp_path), "COUNTERSIGN_STORE": "postgresql://x:secret@127.0.0.1:notaport/db"}
    if args[0] == "config":
        config = tmp_path / "countersign.toml"
        config.write_text("")
        args = (*args, "--config", str(config))
    done = countersign(*args, env=env)
    one_clean_line(done, 2, "COUNTERSIGN_STORE: the URL's port is not a number from 0 to 65535; fix the URL")
    assert "secret" not in done.stderr + done.stdout

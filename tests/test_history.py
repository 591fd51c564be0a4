"""console.repl.history: `redact` (pure) and the history file it guards."""
from __future__ import annotations

import stat

import pytest

from console.repl.history import RedactingHistory, SecretPatternError, redact, tokenize

PATTERNS = ("password", "token", r"sk_live_\w+")


@pytest.mark.parametrize("text, expected", [
    # a literal assigned to or compared with a secret column
    ("UPDATE users SET password = 'hunter2' WHERE id = 1",
     "UPDATE users SET password = '<redacted>' WHERE id = 1"),
    ("SELECT * FROM users WHERE u.password='hunter2'", "SELECT * FROM users WHERE u.password='<redacted>'"),
    ('UPDATE users SET "Password" = \'hunter2\'', "UPDATE users SET \"Password\" = '<redacted>'"),
    # the column is named but the literal sits elsewhere: every literal of that statement goes
    ("INSERT INTO users (name, password) VALUES ('bob', 'hunter2')",
     "INSERT INTO users (name, password) VALUES ('<redacted>', '<redacted>')"),
    ("UPDATE users SET password = crypt('hunter2', gen_salt('bf'))",
     "UPDATE users SET password = crypt('<redacted>', gen_salt('<redacted>'))"),
    ("ALTER USER bob WITH PASSWORD 'hunter2'", "ALTER USER bob WITH PASSWORD '<redacted>'"),
    ("SELECT * FROM t WHERE token IN ('a', 'b')", "SELECT * FROM t WHERE token IN ('<redacted>', '<redacted>')"),
    ("SELECT * FROM t WHERE token NOT IN ('a') AND name LIKE 'b%'",
     "SELECT * FROM t WHERE token NOT IN ('<redacted>') AND name LIKE 'b%'"),
    ("UPDATE users SET password = CASE WHEN id = 1 THEN 'hunter2' ELSE 'x' || 'y' END",
     "UPDATE users SET password = CASE WHEN id = 1 THEN '<redacted>' ELSE '<redacted>' || '<redacted>' END"),
    ("SELECT id FROM users WHERE 'hunter2' = password", "SELECT id FROM users WHERE '<redacted>' = password"),
    # a literal tied to another name stays, even next to a secret
    ("UPDATE users SET password = 'hunter2' WHERE email = 'a@b.c'",
     "UPDATE users SET password = '<redacted>' WHERE email = 'a@b.c'"),
    # a literal that is itself secret, wherever it is
    ("SELECT 'sk_live_abc123'", "SELECT '<redacted>'"),
    ("SELECT $$sk_live_abc$$, $q$fine$q$", "SELECT '<redacted>', $q$fine$q$"),
    ("SELECT E'it\\'s sk_live_x'", "SELECT '<redacted>'"),
    ("SELECT 'unterminated sk_live_abc", "SELECT '<redacted>'"),
    # numbers only when assigned to a secret name
    ("UPDATE t SET token = 12345 WHERE id = 7", "UPDATE t SET token = '<redacted>' WHERE id = 7"),
    # comments that hold a secret
    ("SELECT 1 -- sk_live_abc", "SELECT 1 -- <redacted>"),
    ("SELECT /* token sk_live_x */ 1", "SELECT /* <redacted> */ 1"),
    # nothing secret: unchanged, including quotes inside literals
    ("SELECT name FROM users WHERE name = 'O''Brien'", "SELECT name FROM users WHERE name = 'O''Brien'"),
    ("UPDATE deploys SET status = 'archived' WHERE site_id = 3",
     "UPDATE deploys SET status = 'archived' WHERE site_id = 3"),
])
def test_redact(text, expected):
    assert redact(text, PATTERNS) == expected


def test_redact_works_statement_by_statement():
    text = "SELECT 'keep me'; UPDATE users SET password = 'hunter2'; SELECT 'and me'"
    assert redact(text, PATTERNS) == "SELECT 'keep me'; UPDATE users SET password = '<redacted>'; SELECT 'and me'"


def test_redact_multi_line_entry():
    text = "INSERT INTO users (name, password)\nVALUES ('carol',\n        'hunter2');"
    assert redact(text, PATTERNS) == "INSERT INTO users (name, password)\nVALUES ('<redacted>',\n        '<redacted>');"


def test_redact_mysql_strings_use_backslash_escapes_and_double_quotes():
    text = """UPDATE t SET note = 'it\\'s', password = "hunter2" """
    assert redact(text, PATTERNS, "mysql") == "UPDATE t SET note = 'it\\'s', password = '<redacted>' "


def test_redact_is_case_insensitive_and_needs_patterns():
    assert redact("update USERS set PASSWORD = 'x'", ("password",)) == "update USERS set PASSWORD = '<redacted>'"
    assert redact("UPDATE users SET password = 'hunter2'", ()) == "UPDATE users SET password = 'hunter2'"


def test_tokenize_round_trips_the_text():
    text = "SELECT $a$x;y$a$, 'q''s', \"id\" -- c\n/* b */ FROM t WHERE v >= 1.5e3;"
    assert "".join(t.text for t in tokenize(text)) == text
    assert [t.kind for t in tokenize(text) if t.kind not in ("space", "other")] == [
        "word", "dollar", "string", "dquote", "line_comment", "block_comment", "word", "word", "word",
        "word", "compare", "number", "semicolon"]


def test_history_file_is_redacted_and_private(tmp_path):
    path = tmp_path / "state" / "countersign" / "history"
    history = RedactingHistory(path, ("password",), "sqlite")
    history.append_string("UPDATE users SET password = 'hunter2' WHERE id = 1;")
    history.append_string("SELECT 1;")
    text = path.read_text()
    assert "hunter2" not in text
    assert "+UPDATE users SET password = '<redacted>' WHERE id = 1;" in text and "+SELECT 1;" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reloaded = list(RedactingHistory(path, ("password",)).load_history_strings())
    assert reloaded == ["SELECT 1;", "UPDATE users SET password = '<redacted>' WHERE id = 1;"]


def test_a_bad_secret_pattern_is_refused_up_front(tmp_path):
    with pytest.raises(SecretPatternError, match=r"secret_patterns: 'pass\(' is not a valid regex"):
        RedactingHistory(tmp_path / "history", ("pass(",))
    assert not (tmp_path / "history").exists()


def test_doctests():
    import doctest

    from console.repl import history
    result = doctest.testmod(history)
    assert result.failed == 0 and result.attempted >= 4

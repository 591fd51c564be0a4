"""psql habits on PostgreSQL, MariaDB and SQLite, on the real servers: the catalog commands (each an
audited read through the gate), honest output, the server's own errors with psql's caret, \\x auto,
\\i, \\e, \\o, \\c, help/exit/quit, completion as you type and --version.

Most tests drive the shell's own loop (console.repl.loop.Repl) in this process, on a pipeline whose
gate is in process or round-trips every call through JSON; the ones about the terminal drive the real
`countersign shell` in a pseudo-terminal.
"""
from __future__ import annotations

import re
import sys

import pexpect
import pytest

from audit.store import Store
from config.settings import Policy
from console.repl.loop import Repl
from console.repl.meta import ShellState
from console.session import ConsoleSession
from engines import open_driver
from tests.cli_helpers import REPO, countersign
from tests.pipeline_helpers import make_gate, make_pipeline, target_for
from tests.store_helpers import migrated
from tests.test_repl import STYLE, Shell, shell_env

SCHEMA = {
    "postgres": [
        "CREATE TABLE sites (id serial PRIMARY KEY, name varchar(40) NOT NULL UNIQUE, plan text DEFAULT 'free')",
        "CREATE TABLE deploys (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "site_id int NOT NULL REFERENCES sites(id) ON DELETE CASCADE, "
        "price numeric(12,2) NOT NULL DEFAULT 0 CHECK (price >= 0), status varchar(20))",
        "CREATE INDEX deploys_status_idx ON deploys (status)",
        "CREATE VIEW ready AS SELECT id, site_id FROM deploys WHERE status = 'ready'",
        "CREATE FUNCTION add_one(a integer, b text) RETURNS integer LANGUAGE sql AS 'SELECT a + 1'",
        "CREATE SCHEMA billing",
        "INSERT INTO sites (name) VALUES ('a'), ('b')",
    ],
    "mysql": [
        "CREATE TABLE sites (id int AUTO_INCREMENT PRIMARY KEY, name varchar(40) NOT NULL UNIQUE, "
        "plan varchar(10) DEFAULT 'free')",
        "CREATE TABLE deploys (id bigint AUTO_INCREMENT PRIMARY KEY, site_id int NOT NULL, "
        "price decimal(12,2) NOT NULL DEFAULT 0, status varchar(20), CONSTRAINT price_ok CHECK (price >= 0), "
        "CONSTRAINT deploys_site FOREIGN KEY (site_id) REFERENCES sites(id) ON DELETE CASCADE, "
        "KEY deploys_status_idx (status))",
        "CREATE VIEW ready AS SELECT id, site_id FROM deploys WHERE status = 'ready'",
        "CREATE FUNCTION add_one(a int, b varchar(10)) RETURNS int DETERMINISTIC RETURN a + 1",
        "INSERT INTO sites (name) VALUES ('a'), ('b')",
    ],
    "sqlite": [
        "CREATE TABLE sites (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL UNIQUE, plan TEXT DEFAULT 'free')",
        "CREATE TABLE deploys (id INTEGER PRIMARY KEY, site_id INTEGER NOT NULL REFERENCES sites(id) "
        "ON DELETE CASCADE, price NUMERIC(12,2) NOT NULL DEFAULT 0 CHECK (price >= 0), status VARCHAR(20))",
        "CREATE INDEX deploys_status_idx ON deploys (status)",
        "CREATE VIEW ready AS SELECT id, site_id FROM deploys WHERE status = 'ready'",
        "INSERT INTO sites (name) VALUES ('a'), ('b')",
    ],
}
URL_FIXTURES = {"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}


def create_schema(url: str, dialect: str) -> None:
    driver = open_driver(url)
    try:
        with driver.transaction(read_only=False) as tx:
            for statement in SCHEMA[dialect]:
                tx.execute(statement)
    finally:
        driver.close()


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def dialect(request):
    return request.param


@pytest.fixture
def target_url(request, dialect):
    url = request.getfixturevalue(URL_FIXTURES[dialect])
    create_schema(url, dialect)
    return url


@pytest.fixture
def store(tmp_path):
    return Store.open(migrated(f"sqlite:///{tmp_path / 'store.db'}"))


class Console:
    """The shell's loop in this process: type a line, get what it printed."""

    def __init__(self, pipeline, capsys, **kwargs) -> None:
        self.repl = Repl(pipeline, None, ShellState(timing=False), **kwargs)
        self.capsys = capsys

    def run(self, text: str) -> str:
        self.capsys.readouterr()
        self.repl.handle(text)
        return self.capsys.readouterr().out


@pytest.fixture
def console(target_url, store, capsys, gate_mode):
    pipeline = make_pipeline(target_url, store, "alice")
    pipeline.open_session()
    yield Console(pipeline, capsys)
    pipeline.close()


# -- the catalog -------------------------------------------------------------------------------------
EXPECTED_DESCRIBE = {
    "postgres": [r'Table "public\.deploys"',
                 r"^ id +\| bigint +\| not null \| generated always as identity$",
                 r"^ price +\| numeric\(12,2\) +\| not null \| 0$",
                 r"^ status +\| character varying\(20\) +\| +\|$",
                 r'^    "deploys_pkey" PRIMARY KEY, btree \(id\)$',
                 r'^    "deploys_status_idx" btree \(status\)$',
                 r"^Check constraints:\n    \"deploys_price_check\" CHECK \(price >= 0::numeric\)$",
                 r'^Foreign-key constraints:\n    "deploys_site_id_fkey" FOREIGN KEY \(site_id\) REFERENCES '
                 r"sites\(id\) ON DELETE CASCADE$"],
    "mysql": [r'Table "cs_my_\w+\.deploys"',
              r"^ id +\| bigint\(20\) +\| not null \| auto_increment$",
              r"^ price +\| decimal\(12,2\) +\| not null \| 0\.00$",
              r"^ status +\| varchar\(20\) +\| +\|$",
              r'^    "PRIMARY" PRIMARY KEY, BTREE \(id\)$',
              r'^    "deploys_status_idx" BTREE \(status\)$',
              r"^Check constraints:\n    \"price_ok\" CHECK \(`price` >= 0\)$",
              r'^Foreign-key constraints:\n    "deploys_site" FOREIGN KEY \(site_id\) REFERENCES sites\(id\) '
              r"ON DELETE CASCADE$"],
    "sqlite": [r'Table "deploys"',
               r"^ id +\| INTEGER +\| +\|$",
               r"^ price +\| NUMERIC\(12,2\) +\| not null \| 0$",
               r"^ status +\| VARCHAR\(20\) +\| +\|$",
               r"^    PRIMARY KEY \(id\)$",
               r'^    "deploys_status_idx" \(status\)$',
               r"^Check constraints:\n    CHECK \(price >= 0\)$",
               r"^Foreign-key constraints:\n    FOREIGN KEY \(site_id\) REFERENCES sites\(id\) ON DELETE CASCADE$"],
}
EXPECTED_REFERENCED = {
    "postgres": r'^Referenced by:\n    TABLE "deploys" CONSTRAINT "deploys_site_id_fkey" FOREIGN KEY \(site_id\)',
    "mysql": r'^Referenced by:\n    TABLE "deploys" CONSTRAINT "deploys_site" FOREIGN KEY \(site_id\)',
    "sqlite": r'^Referenced by:\n    TABLE "deploys" FOREIGN KEY \(site_id\) REFERENCES sites\(id\)',
}
UNIQUE_NAME = {"postgres": r'"sites_name_key" UNIQUE CONSTRAINT, btree \(name\)',
               "mysql": r'"name" UNIQUE, BTREE \(name\)',
               "sqlite": r'"sqlite_autoindex_sites_1" UNIQUE CONSTRAINT \(name\)'}
DEFAULT_PLAN = {"postgres": r"^ plan +\| text +\| +\| 'free'::text$",
                "mysql": r"^ plan +\| varchar\(10\) +\| +\| 'free'$",
                "sqlite": r"^ plan +\| TEXT +\| +\| 'free'$"}


def test_describe_shows_exact_types_defaults_indexes_and_constraints(console, dialect):
    described = console.run("\\d deploys")
    for pattern in EXPECTED_DESCRIBE[dialect]:
        assert re.search(pattern, described, re.M), (pattern, described)
    sites = console.run("\\d sites")
    assert re.search(UNIQUE_NAME[dialect], sites), sites
    assert re.search(DEFAULT_PLAN[dialect], sites, re.M), sites
    assert re.search(EXPECTED_REFERENCED[dialect], sites, re.M), sites


def test_views_are_listed_and_described_as_views(console, dialect):
    tables = console.run("\\dt")
    assert re.search(r"\bdeploys +\| table\b", tables) and "ready" not in tables
    views = console.run("\\dv")
    assert re.search(r"\bready +\| view\b", views) and "deploys |" not in views
    relations = console.run("\\d")
    assert re.search(r"\bready +\| view\b", relations) and re.search(r"\bsites +\| table\b", relations)
    view = console.run("\\d ready")
    assert 'View "' in view and "View definition:" in view and re.search(r"^ site_id +\|", view, re.M)


def test_index_listing(console, dialect):
    indexes = console.run("\\di")
    assert "List of indexes" in indexes and "deploys_status_idx" in indexes


@pytest.mark.parametrize("command, expected", [
    ("\\l", {"postgres": r"^ cs_pg_\w+ +\| postgres", "mysql": r"^ cs_my_\w+ +\| utf8",
             "sqlite": r"^\\l is not available on SQLite"}),
    ("\\dn", {"postgres": r"^ billing +\| postgres", "mysql": r"^ cs_my_\w+ +\|",
              "sqlite": r"^\\dn is not available on SQLite"}),
    ("\\df", {"postgres": r"^ public +\| add_one \| integer +\| integer, text +\| func$",
              "mysql": r"^ add_one \| function \| int\(11\) +\| IN a int\(11\), IN b varchar\(10\)$",
              "sqlite": r"^\\df is not available on SQLite"}),
    ("\\du", {"postgres": r"^ postgres +\| Superuser", "mysql": r"^ root +\|",
              "sqlite": r"^\\du is not available on SQLite"}),
])
def test_database_schema_function_and_role_listings(console, dialect, command, expected):
    out = console.run(command)
    assert re.search(expected[dialect], out, re.M), out


def test_every_catalog_command_is_in_the_trail_as_a_read(console, store):
    for command in ("\\dt", "\\dv", "\\di", "\\l", "\\dn", "\\df", "\\du", "\\d deploys"):
        console.run(command)
    pipeline = console.repl.pipeline
    events = [e.payload for e in store.events(session_id=pipeline.session_id) if e.type == "intent"]
    assert events and {(e["kind"], e["decision"]) for e in events} == {("read", "allow")}
    assert not pipeline.pending()   # nothing became an approval request


# -- honest output -------------------------------------------------------------------------------
SET_STATEMENT = {"postgres": "SET timezone = 'UTC';", "mysql": "SET @answer = 42;", "sqlite": None}


def test_an_empty_read_says_0_rows_and_set_says_set(console, dialect):
    out = console.run("SELECT id, name FROM sites WHERE id < 0;")
    assert out.rstrip().endswith("(0 rows)") and "affected" not in out
    if SET_STATEMENT[dialect]:
        assert console.run(SET_STATEMENT[dialect]).strip() == "SET"


LONG_READ = {
    "postgres": ("SELECT g FROM generate_series(1, 5000) AS g;", "(showing 1,000 of 5,000 rows)"),
    "mysql": ("SELECT seq FROM seq_1_to_5000;", "(showing the first 1,000 rows; more were not fetched)"),
    "sqlite": ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) SELECT i FROM n;",
               "(showing the first 1,000 rows; more were not fetched)"),
}


def test_a_result_cut_at_the_display_limit_says_so(console, dialect):
    text, footer = LONG_READ[dialect]
    out = console.run(text)
    assert out.rstrip().splitlines()[-1] == footer, out[-300:]


def test_expanded_display_switches_on_when_a_row_is_wider_than_the_terminal(console, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    assert console.run("\\x auto").strip() == "Expanded display is used automatically."
    narrow = console.run("SELECT 1 AS a;")
    assert "-[ RECORD" not in narrow and re.search(r"^ +1$", narrow, re.M)
    wide = console.run("SELECT 'a fairly long value to fill a line' AS first_column, 'and another one' AS second;")
    assert "-[ RECORD 1 ]" in wide and re.search(r"^second +\| and another one$", wide, re.M)


# -- errors ------------------------------------------------------------------------------------------
def test_postgres_errors_show_the_servers_message_position_and_hint(request, store, capsys):
    url = request.getfixturevalue("pg_url")
    create_schema(url, "postgres")
    pipeline = make_pipeline(url, store, "alice")
    pipeline.open_session()
    try:
        out = Console(pipeline, capsys).run("SELECT id,\n       sites.nme\nFROM sites;")
    finally:
        pipeline.close()
    assert out.splitlines() == [
        "ERROR: column sites.nme does not exist (SQLSTATE 42703)",
        "LINE 2:        sites.nme",
        "               ^",
        'HINT: Perhaps you meant to reference the column "sites.name".',
    ]


def test_mariadb_errors_read_as_the_mysql_client_prints_them(request, store, capsys):
    url = request.getfixturevalue("mysql_url")
    pipeline = make_pipeline(url, store, "alice")
    pipeline.open_session()
    try:
        out = Console(pipeline, capsys).run("SELECT * FROM nowhere;")
    finally:
        pipeline.close()
    database = url.rsplit("/", 1)[1]
    assert out.strip() == f"ERROR 1146 (42S02): Table '{database}.nowhere' doesn't exist"


def open_console(request, dialect: str, store, capsys) -> Console:
    url = request.getfixturevalue(URL_FIXTURES[dialect])
    create_schema(url, dialect)
    pipeline = make_pipeline(url, store, "alice")
    pipeline.open_session()
    request.addfinalizer(pipeline.close)
    return Console(pipeline, capsys)


def test_a_postgres_syntax_error_is_the_parsers_own_and_is_never_sent(request, store, capsys):
    """PostgreSQL's own parser (pglast) read it: the server would refuse it too, so it is not sent at
    all, not even offered for approval, and nothing reaches the trail."""
    console = open_console(request, "postgres", store, capsys)
    out = console.run("SELECT id\n  FROM sites WHER id = 1;")
    assert out.splitlines() == ['ERROR: syntax error at or near "id"', "LINE 2:   FROM sites WHER id = 1",
                                "                          ^", "Not sent."]
    intents = [e for e in store.events(session_id=console.repl.pipeline.session_id) if e.type == "intent"]
    assert intents == [] and not console.repl.pipeline.pending()


@pytest.mark.parametrize("other", ["mysql", "sqlite"])
def test_a_mysql_or_sqlite_syntax_error_is_clean_and_asks_before_filing(request, store, capsys, monkeypatch, other):
    """sqlglot reads MySQL and SQLite, not the server: its words become the server's kind of message
    with a caret, and the person is asked before the text could become an approval request."""
    console = open_console(request, other, store, capsys)
    asked = []
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or "n")
    out = console.run("SELECT 1 +;")
    assert out.splitlines()[:3] == ['ERROR: syntax error at or near "+"', "LINE 1: SELECT 1 +", "                 ^"]
    assert "sqlglot" not in out and "<class" not in out and "Required keyword" not in out
    assert asked == ["Send it for approval anyway? [y/N] "] and "Not sent." in out
    assert not console.repl.pipeline.pending()


# -- files, the editor, switching --------------------------------------------------------------------
def test_include_runs_a_files_statements_and_commands_as_if_typed(console, tmp_path, store):
    script = tmp_path / "check.sql"
    script.write_text("SELECT count(*) AS n FROM sites;\n\\dv\nSELECT name\n  FROM sites\n  WHERE id = 1;\nSELECT 'last' AS x")
    out = console.run(f"\\i {script}")
    assert re.search(r"^ +2$", out, re.M) and "ready" in out and re.search(r"^ a$", out, re.M)
    assert re.search(r"^ last$", out, re.M)   # the unterminated last statement runs too, as in psql
    assert "cannot read" in console.run(f"\\i {tmp_path}/missing.sql")
    looping = tmp_path / "loop.sql"
    looping.write_text(f"\\i {looping}\n")
    assert "include each other more than 16 deep" in console.run(f"\\i {looping}")
    latin1 = tmp_path / "latin1.sql"
    latin1.write_bytes(b"SELECT '\xe9';")
    assert "is not UTF-8 text (byte 0xe9 at offset 8)" in console.run(f"\\i {latin1}")


def test_edit_opens_the_editor_on_the_last_statement_then_runs_what_comes_back(console, tmp_path, monkeypatch):
    seen = tmp_path / "seen.sql"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\ncp "$1" {seen}\nprintf "SELECT 6 * 7 AS answer;\\n" > "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    console.run("SELECT 1 AS one;")
    out = console.run("\\e")
    assert seen.read_text() == "SELECT 1 AS one\n"   # the editor got the query buffer
    assert out.startswith("SELECT 6 * 7 AS answer;\n") and re.search(r"^ +42$", out, re.M)
    editor.write_text('#!/bin/sh\nprintf "SELECT 7 *" > "$1"\n')   # an unfinished statement waits at the prompt
    assert "SELECT 7 *" in console.run("\\e") and console.repl._next_text == "SELECT 7 *"
    editor.write_text("#!/bin/sh\nexit 3\n")
    assert "the editor exited with status 3; nothing runs" in console.run("\\e")


def test_output_goes_to_a_file_until_turned_back(console, tmp_path):
    path = tmp_path / "out.txt"
    console.run(f"\\o {path}")
    assert console.run("SELECT name FROM sites ORDER BY id;") == ""
    console.run("\\dt")
    assert "no such" in console.run("SELECT * FROM no_such_table;").lower() or "nowhere" not in path.read_text()
    console.run("\\o")
    written = path.read_text()
    assert re.search(r"^ a$", written, re.M) and "(2 rows)" in written and "List of relations" in written
    assert "ERROR" not in written   # errors stay on the screen, as in psql
    assert "(2 rows)" in console.run("SELECT name FROM sites;")


def test_switching_targets_closes_the_session_and_opens_another_through_the_gate(store, capsys, tmp_path,
                                                                                  gate_mode):
    from console.demo import demo_database
    from console.errors import UsageError
    first, second = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{demo_database(tmp_path / 'two.db')}"
    create_schema(first, "sqlite")
    targets = {"one": target_for(first, Policy(), "one"), "two": target_for(second, Policy(), "two")}
    gate = make_gate(store, targets)

    def open_named(name: str, _current):
        if name not in targets:
            raise UsageError(f"unknown target {name!r}")
        session = ConsoleSession(gate, user="alice", target=name, dialect="sqlite", environment="production")
        session.open_session()
        return session

    console = Console(open_named("one", None), capsys, switch=open_named)
    assert "(2 rows)" in console.run("SELECT name FROM sites;")
    assert 'You are connected to target "two"' in console.run("\\c two")
    assert re.search(r"^ +40$", console.run("SELECT count(*) FROM sites;"), re.M)   # the demo's 40 sites
    assert console.run("\\c nowhere").strip() == "ERROR: unknown target 'nowhere'; still connected to two"
    assert re.search(r"^ +40$", console.run("SELECT count(*) FROM sites;"), re.M)   # the session stayed
    console.repl.pipeline.close()
    recorded = {s.target: s for s in store.sessions()}
    assert set(recorded) == {"one", "two"} and all(s.ended_at is not None for s in recorded.values())


# -- the real shell in a terminal ----------------------------------------------------------------
@pytest.mark.parametrize("word", ["exit", "quit", "\\q", "exit;", "QUIT"])
def test_exit_and_quit_leave_at_once(tmp_path, word):
    shell = Shell(shell_env(tmp_path), "shell")
    assert shell.quit(word) == 0


def test_help_answers_and_leaves_no_continuation_prompt(tmp_path):
    shell = Shell(shell_env(tmp_path), "shell")
    out = shell.run("help")
    assert "\\conninfo" in out and "\\copy" in out and "...." not in out
    assert re.search(r"^ +42$", shell.run("SELECT 6 * 7 AS answer;"), re.M)
    assert shell.quit() == 0


def test_completion_offers_tables_and_columns_as_you_type(tmp_path):
    shell = Shell(shell_env(tmp_path), "shell")
    shell.child.send("SELECT * FROM depl\t")   # Tab waits for the catalog, fetched in the background
    shell.child.expect("oys")
    shell.child.send("\x15")                   # Ctrl-U clears the line
    shell.child.send("SELECT * FROM ")         # no Tab: the menu comes while typing
    shell.child.expect(r"deploys[^\n]*\n[^\n]*sites")
    shell.child.send("sites WHERE reg")
    shell.child.expect(r"region")
    shell.child.send("\x15")
    assert shell.quit() == 0


def test_switch_target_in_the_real_shell(tmp_path):
    from console.demo import demo_database
    other = f"sqlite:///{demo_database(tmp_path / 'other.db')}"
    env = shell_env(tmp_path)
    shell = Shell(env, "shell")
    shell.send(f"\\c {other}")
    shell.prompt = "alice" + STYLE + "@" + STYLE + r"other\.db=>"   # the prompt names the other database now
    out = shell.wait_prompt()
    assert 'You are connected to target "sqlite:///' in out and "(environment development, dialect sqlite)" in out
    assert re.search(r"^ +40$", shell.run("SELECT count(*) FROM sites;"), re.M)
    refused = shell.run("\\c postgresql://app:hunter2@127.0.0.1/shop")
    assert "carries a password" in refused and "hunter2" not in refused
    assert shell.quit() == 0
    history = (tmp_path / "state" / "countersign" / "history").read_text()
    assert "hunter2" not in history and "app:***@" in history
    sessions = countersign("audit", "sessions", "--json", env=env)
    assert sessions.returncode == 0 and len(sessions.stdout.splitlines()) == 2


def test_version():
    done = pexpect.run(f"{sys.executable} -m console.cli --version", cwd=str(REPO), withexitstatus=True,
                       encoding="utf-8")
    output, status = done
    assert status == 0 and re.fullmatch(r"countersign \d+\.\d+\.\d+\S*\s*", output), output

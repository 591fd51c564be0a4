"""psql-style backslash commands. Each returns lines to print; the REPL owns the screen.

Everything a command shows about the database comes from the server's own catalog through the gate:
the command becomes SELECTs on the catalog (console/repl/catalog_sql.py), each submitted like a
typed read, so it runs in a read-only transaction, under the policy's timeout and row limit, and is
in the audit trail. Nothing here opens a connection of its own, so it works the same on a remote gate.

>>> state = ShellState()
>>> run_meta("\\\\x", None, state), state.expanded
(['Expanded display is on.'], 'on')
>>> run_meta("\\\\x auto", None, state), state.expanded
(['Expanded display is used automatically.'], 'auto')
>>> run_meta("\\\\timing off", None, state)
['Timing is off.']
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import IO, Callable

from console.render import error_lines, table, titled, visible
from console.repl import catalog_sql, describe
from engines.base import ResultSet

HELP = """\
General
  \\q, quit, exit   quit (Ctrl-D works too)
  \\?, help         this help
  \\conninfo        the target, environment and dialect of this session
  \\c TARGET        close this session and open one on another target
Query buffer and files
  \\e [FILE]        edit the last statement (or FILE) in $EDITOR, then run it
  \\i FILE          run the statements (and backslash commands) of FILE as if typed
  \\o [FILE]        send query results to FILE (\\o alone: back to the screen)
  \\copy (SELECT ...) TO 'file' [CSV [HEADER]]   write a read's rows to a file (reads only)
Catalog (each is an audited read on the server's catalog; PATTERN may use * and ?)
  \\l [PATTERN]     list databases
  \\dn [PATTERN]    list schemas
  \\dt [PATTERN]    list tables
  \\dv [PATTERN]    list views
  \\di [PATTERN]    list indexes
  \\df [PATTERN]    list functions
  \\du [PATTERN]    list roles
  \\d [NAME]        describe a table or view (columns, exact types, defaults, indexes,
                   constraints, references); alone, list every relation
Display
  \\x [on|off|auto] expanded output (auto: when a row is wider than the terminal)
  \\timing [on|off] time each statement
  \\pending         this session's approval requests
SQL statements end with ';' and may span several lines. Reads run at once in a read-only
transaction; anything that can change data waits for a second person's approval
(`countersign approvals approve ID` in another terminal). BEGIN; ...; COMMIT; sends the whole block
for one approval and runs it as one transaction.
Ctrl-C cancels a running statement on the server, or stops waiting for an approval (the request
stays open); at the prompt it clears the line."""

MONGO_HELP = """\
  show dbs          list databases
  show collections  list the collections of the current database
  use DB            switch to database DB
  it                show the next 20 documents of the last result
  db.<collection>.find({...}), .aggregate([...]), .countDocuments({...}) ... run at once (reads);
                    anything that writes waits for a second person's approval
  \\conninfo, \\c TARGET, \\i FILE, \\e, \\o FILE, \\x, \\timing, \\pending  as in psql
  exit, quit, \\q    quit (Ctrl-D works too)
Enter runs a complete expression; an open bracket, string or comment continues on the next line."""


@dataclass
class ShellState:
    expanded: str = "off"          # "off" | "on" | "auto" (expanded when a row is wider than the terminal)
    timing: bool = True
    quit: bool = False
    block: list | None = None      # statements typed since BEGIN, run as one transaction at COMMIT
    output: IO[str] | None = None  # \o FILE: query results go there
    output_name: str = ""
    more: list = field(default_factory=list)   # pages of the last MongoDB result not shown yet (`it`)
    more_note: str = ""            # shown after the last page: what the display limit left unfetched
    last_query: str = ""           # what \e edits


class MetaFailed(Exception):
    """A catalog read did not succeed; ``lines`` say why."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


Reader = Callable[[str], ResultSet]


def audited_read(pipeline, text: str, submit: Callable | None = None) -> ResultSet:
    """Submit one catalog query to the gate as a read. It must classify as a plain read: a catalog
    query is never sent for approval (catalog_sql's queries all are reads; this is the guard)."""
    from classify.statements import Kind
    from gate.api import Status
    statements = pipeline.classify(text)
    if len(statements) != 1 or statements[0].kind is not Kind.READ:
        raise MetaFailed(["ERROR: this catalog query does not classify as a plain read, so it was not sent "
                          "(a bug: please report it)"])
    outcome = (submit or pipeline.submit)(statements[0])
    if outcome.status is not Status.OK:
        raise MetaFailed(error_lines(str(outcome.status).upper() if outcome.status != "failed" else "ERROR",
                                     outcome.message))
    return outcome.result


def run_meta(line: str, pipeline, state: ShellState, read: Reader | None = None) -> list[str]:
    command, _, argument = line.strip().partition(" ")
    command = command.rstrip("+") if command not in ("\\?",) else command   # \dt+ : we show one level
    handler: Callable | None = COMMANDS.get(command)
    if handler is None:
        return [f"unknown command {visible(command)}; \\? lists the commands"]
    reader = read or (lambda text: audited_read(pipeline, text))
    try:
        return handler(argument.strip(), _Context(pipeline, state, reader, command))
    except catalog_sql.NotAvailable as err:
        return [str(err)]
    except MetaFailed as err:
        return err.lines


def shows_results(line: str) -> bool:
    """Whether a command's output is query output (``\\o`` sends it to the file, as psql does)."""
    return line.strip().partition(" ")[0].rstrip("+") in RESULT_COMMANDS


@dataclass
class _Context:
    pipeline: object
    state: ShellState
    read: Reader
    command: str

    @property
    def dialect(self) -> str:
        return self.pipeline.dialect


def _quit(_arg, ctx: _Context) -> list[str]:
    ctx.state.quit = True
    return []


def _help(_arg, ctx: _Context) -> list[str]:
    if ctx.pipeline is not None and getattr(ctx.pipeline, "dialect", None) == "mongodb":
        return MONGO_HELP.splitlines()
    return HELP.splitlines()


def _switch(argument: str, current: bool) -> bool | None:
    """'' flips the setting, 'on'/'off' set it; anything else is None (not understood)."""
    if not argument:
        return not current
    return {"on": True, "off": False}.get(argument.lower())


EXPANDED_WORDS = {"on": "Expanded display is on.", "off": "Expanded display is off.",
                  "auto": "Expanded display is used automatically."}


def _toggle_expanded(argument, ctx: _Context) -> list[str]:
    wanted = argument.lower()
    if wanted == "auto":
        ctx.state.expanded = "auto"
    else:
        value = _switch(argument, ctx.state.expanded == "on")
        if value is None:
            return [f"\\x: unrecognised value {visible(argument)!r}; use on, off or auto"]
        ctx.state.expanded = "on" if value else "off"
    return [EXPANDED_WORDS[ctx.state.expanded]]


def _toggle_timing(argument, ctx: _Context) -> list[str]:
    value = _switch(argument, ctx.state.timing)
    if value is None:
        return [f"\\timing: unrecognised value {visible(argument)!r}; use on or off"]
    ctx.state.timing = value
    return [f"Timing is {'on' if value else 'off'}."]


# -- catalog listings ------------------------------------------------------------------------------
def _listing(query: catalog_sql.Query, ctx: _Context, empty: str) -> list[str]:
    result = ctx.read(query.sql)
    if not result.rows:
        return [empty]
    return titled(query.title, table(result, kind="read"))


def _not_found(what: str, argument: str) -> str:
    return f'Did not find any {what} named "{visible(argument)}".' if argument else f"No {what}s found."


def _relations(kind: str, what: str):
    def handler(argument, ctx: _Context) -> list[str]:
        return _listing(catalog_sql.relations(kind, argument, ctx.dialect), ctx, _not_found(what, argument))
    return handler


def _catalog_list(build: Callable[[str, str], catalog_sql.Query], what: str):
    def handler(argument, ctx: _Context) -> list[str]:
        return _listing(build(argument, ctx.dialect), ctx, _not_found(what, argument))
    return handler


def _describe(argument, ctx: _Context) -> list[str]:
    if not argument:
        return _relations("relation", "relation")(argument, ctx)
    name = _unquoted(argument) if ctx.dialect != "postgres" else argument
    queries = catalog_sql.describe(name, ctx.dialect)
    columns = ctx.read(queries.pop("columns").sql)
    if not columns.rows:
        return [f'Did not find any relation named "{visible(argument)}". \\dt lists the tables.']
    sections = {"columns": columns} | {section: ctx.read(query.sql) for section, query in queries.items()}
    return {"postgres": describe.postgres, "mysql": describe.mysql, "sqlite": describe.sqlite}[ctx.dialect](sections)


def _unquoted(name: str) -> str:
    """`shop`.`deploys` or "deploys" as typed on MySQL or SQLite -> the bare names.

    >>> _unquoted('`shop`.`de``ploys`'), _unquoted('"Deploys"')
    ('shop.de`ploys', 'Deploys')
    """
    parts = re.findall(r'`((?:[^`]|``)*)`|"((?:[^"]|"")*)"|([^.`"]+)', name)
    return ".".join((a.replace("``", "`") if a else b.replace('""', '"') if b else c) for a, b, c in parts)


# -- session ---------------------------------------------------------------------------------------
def _conninfo(_arg, ctx: _Context) -> list[str]:
    from engines import mask_url
    pipeline = ctx.pipeline
    session = getattr(pipeline, "session_id", None)
    return [f'You are connected to target "{visible(mask_url(pipeline.target_name))}" '
            f"(environment {visible(pipeline.environment)}, dialect {pipeline.dialect}) as "
            f'"{visible(pipeline.user)}"' + (f", session {session}." if session else ".")]


def _pending(_arg, ctx: _Context) -> list[str]:
    requests = ctx.pipeline.pending()
    if not requests:
        return ["No approval requests in this session."]
    rows = tuple((r.id, r.status, f"{sum(v.verdict == 'approve' for v in r.votes)}/{r.required_approvals}",
                  "?" if r.estimated_rows is None else r.estimated_rows, _abbrev(r.statement))
                 for r in requests)
    return table(ResultSet(("request", "status", "approvals", "rows", "statement"), rows, len(rows)))


def _abbrev(text: str, width: int = 60) -> str:
    """One line for the \\pending table: secrets redacted (the default patterns) and control or
    bidirectional characters shown as escapes, as every other view of a statement does.

    >>> _abbrev("UPDATE users SET password = 'hunter2'\\x1b[2K WHERE id = 1")
    "UPDATE users SET password = '<redacted>'\\\\x1b[2K WHERE id = 1"
    """
    from audit.redact import redact, secret_patterns
    flat = visible(" ".join(redact(text, secret_patterns(())).split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- files -----------------------------------------------------------------------------------------
def open_private(path: str, mode: str = "w") -> IO[str]:
    """A file for query output, readable by its owner only when we create it: it holds rows copied
    from the database (an existing file keeps its permissions, as with psql)."""
    path = os.path.expanduser(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode, encoding="utf-8", newline="")


def _output(argument, ctx: _Context) -> list[str]:
    state = ctx.state
    if state.output is not None:
        state.output.close()
        state.output, state.output_name = None, ""
    if not argument:
        return ["Query results go to the screen."]
    path = _unquote_path(argument)
    try:
        state.output = open_private(path)
    except OSError as err:
        return [f"\\o: cannot write {visible(path)}: {err.strerror}"]
    state.output_name = path
    return [f"Query results go to {visible(path)} (\\o alone: back to the screen)."]


def _unquote_path(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


_COPY = re.compile(r"""^(?P<source>\(.*\)|[\w."`]+(?:\s*\([^)]*\))?)\s+(?P<direction>to|from)\s+
                       (?P<target>'(?:[^']|'')*'|"[^"]*"|\S+)(?P<options>.*)$""", re.I | re.S | re.X)


def _copy(argument, ctx: _Context) -> list[str]:
    """``\\copy (query) TO 'file' [CSV [HEADER]]``: the query runs as an audited read, the rows are
    written here. ``\\copy ... FROM`` would insert rows: it is refused (INSERT statements go for
    approval like any other write)."""
    found = _COPY.match(argument.strip())
    if not found:
        return ["\\copy: expected \\copy (SELECT ...) TO 'file' [CSV [HEADER]] or \\copy TABLE TO 'file'"]
    if found.group("direction").lower() == "from":
        return ["\\copy ... FROM is refused: it writes rows into a table, and every write needs a second "
                "person's approval with a snapshot. Load the rows with INSERT statements (\\i FILE runs a "
                "file of them), which go for approval together inside BEGIN; ... COMMIT;"]
    source, target = found.group("source").strip(), found.group("target")
    options = found.group("options").lower()
    text = source[1:-1].strip() if source.startswith("(") else _table_query(source)
    statements = ctx.pipeline.classify(text)
    from classify.statements import Kind
    if len(statements) != 1 or statements[0].kind is not Kind.READ:
        return ["\\copy ... TO runs reads only (one SELECT); this is not one, so nothing was sent"]
    result = ctx.read(statements[0].text)
    path = _unquote_path(target)
    if path.lower() in ("stdout", "pstdout"):
        return _copy_lines(result, options)
    try:
        with open_private(path) as handle:
            handle.write("".join(line + "\n" for line in _copy_lines(result, options)))
    except OSError as err:
        return [f"\\copy: cannot write {visible(path)}: {err.strerror}"]
    lines = [f"COPY {len(result.rows)}"]
    if result.truncated:
        lines.append(f"only the first {len(result.rows):,} rows were copied: the policy's display limit caps every "
                     "read (max_display_rows)")
    return lines


def _table_query(source: str) -> str:
    name, _, columns = source.partition("(")
    return f"SELECT {columns.rstrip(') ') if columns else '*'} FROM {name.strip()}"


def _copy_lines(result: ResultSet, options: str) -> list[str]:
    from console.render import as_csv
    if "csv" in options:
        lines = as_csv(result)
        return lines if "header" in options else lines[1:]
    # psql's text format: tab-separated, \N for NULL, backslash escapes for tab, newline and backslash
    def text(value) -> str:
        if value is None:
            return "\\N"
        from console.render import cell
        raw = value if isinstance(value, str) else cell(value)
        return raw.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    body = ["\t".join(text(v) for v in row) for row in result.rows]
    return (["\t".join(result.columns)] if "header" in options else []) + body


COMMANDS = {
    "\\q": _quit, "\\?": _help, "\\x": _toggle_expanded, "\\timing": _toggle_timing,
    "\\l": _catalog_list(catalog_sql.databases, "database"), "\\dn": _catalog_list(catalog_sql.schemas, "schema"),
    "\\dt": _relations("table", "table"), "\\dv": _relations("view", "view"), "\\di": _relations("index", "index"),
    "\\df": _catalog_list(catalog_sql.functions, "function"), "\\du": _catalog_list(catalog_sql.roles, "role"),
    "\\d": _describe, "\\conninfo": _conninfo, "\\pending": _pending, "\\o": _output, "\\copy": _copy,
}
RESULT_COMMANDS = frozenset({"\\l", "\\dn", "\\dt", "\\dv", "\\di", "\\df", "\\du", "\\d"})
# Handled by the REPL itself (they read files, run an editor or switch the session); listed for completion.
REPL_COMMANDS = ("\\i", "\\e", "\\c", "\\connect")

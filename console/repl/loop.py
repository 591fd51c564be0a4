"""The interactive loop only: prompt -> pipeline -> render. Decisions live in the pipeline.

Each submitted statement (and each catalog read behind a backslash command) runs on a worker thread
so that Ctrl-C in the main thread can cancel the query on the server, or stop waiting for an
approval, without killing the console.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.lexers import PygmentsLexer

from console import render, transaction
from engines.base import DriverError
from console.repl.meta import ShellState, audited_read, run_meta, shows_results
from console.repl.instant import target_label   # also drawn before prompt_toolkit loads
from gate.api import Awaiting, Outcome, Status
from classify.statements import Kind

LEXERS = {"postgres": "PostgresLexer", "mysql": "MySqlLexer", "sqlite": "SqlLexer",
          "mongodb": "JavascriptLexer"}   # mongosh syntax is JavaScript
# A cancel request can be lost (PostgreSQL drops one that arrives while the backend is between
# protocol messages), so while a cancelled statement is still running we ask again this often.
SIGNAL_CHECK_S = 0.1      # how soon a Ctrl-C is noticed while a statement runs or waits
CANCEL_RETRY_S = 2.0
COMPLETE_WHILE_TYPING_CHARS = 2000   # longer statements complete on Tab only
TAB_WAIT_S = 10.0         # how long Tab waits for completions already being found
TAB_POLL_S = 0.02
MAX_INCLUDE_DEPTH = 16    # \i inside \i inside ...: a file that includes itself stops here
# How each non-OK outcome is labelled, and in which colour (SGR code) on a terminal.
LABELS = {
    Status.FAILED: ("ERROR", "1;31"), Status.BLOCKED: ("BLOCKED", "1;31"),
    Status.REJECTED: ("REJECTED", "1;31"), Status.EXPIRED: ("EXPIRED", "1;31"),
    Status.ROLLED_BACK: ("ROLLED BACK", "1;31"), Status.PENDING: ("PENDING", "1;33"),
    Status.CANCELLED: ("CANCELLED", "1;33"),
}
QUIT_WORDS = ("quit", "exit", "\\q", "quit()", "exit()")
# Words the shell answers itself, whatever the dialect ("it" only means something on MongoDB).
SHELL_WORDS = QUIT_WORDS + ("help",)


def is_complete(text: str, dialect: str = "postgres") -> bool:
    """Enter submits a statement ended by a real ';' (not one inside a string or comment; a comment
    may follow it), a backslash command, or quit/exit/help. Otherwise it starts a new line. Whether
    the statement is finished is the dialect's own tokenizer's call (the one splitting uses).

    >>> [is_complete(t, "postgres") for t in ("SELECT 1;", "SELECT ';", "SELECT 1; -- done", "\\\\dt", "help")]
    [True, False, True, True, True]
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("\\") or stripped.rstrip(";").strip().lower() in SHELL_WORDS:
        return True
    if not _is_unicode(stripped):
        return True   # bytes that are not UTF-8 (a terminal in another encoding): submitted, and refused
    from classify.complete import is_complete_statement
    return is_complete_statement(stripped, dialect)


def _is_unicode(text: str) -> bool:
    """False when the text holds lone surrogates: bytes that were not UTF-8, as the terminal input
    decodes them."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def prompt_message(pipeline) -> HTML:
    env = pipeline.environment
    if env == "production":
        badge = "<style bg='ansired' fg='ansiwhite'><b> PRODUCTION </b></style> "
    else:
        badge = f"<style fg='ansigreen'>[{_escape(env)}]</style> "
    return HTML(f"{badge}<b>{_escape(pipeline.user)}</b>@{_escape(target_label(pipeline.target_name))}=&gt; ")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _key_bindings(dialect: Callable[[], str]) -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)   # Enter picks the highlighted completion
        elif is_complete(buffer.text, dialect()):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    @bindings.add("tab")
    def _(event) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.completions:
            buffer.complete_next()
            return
        # prompt_toolkit runs one completion at a time and drops a request made while one runs, so a
        # Tab typed while completions-as-you-type are still being found would be lost: wait for them,
        # then take the first, or ask explicitly (which waits for a catalog still being fetched).
        event.app.create_background_task(_tab_when_idle(buffer))

    return bindings


async def _tab_when_idle(buffer) -> None:
    import asyncio
    await asyncio.sleep(0)   # completions started by the keys typed before this Tab begin first
    deadline = asyncio.get_running_loop().time() + TAB_WAIT_S
    while buffer.complete_state is not None and not buffer.complete_state.completions \
            and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(TAB_POLL_S)
    if buffer.complete_state is not None and buffer.complete_state.completions:
        buffer.complete_next()
    else:
        buffer.complete_state = None
        buffer.start_completion(insert_common_part=True)


def _output():
    """The terminal output, without cursor position requests (CPR). prompt_toolkit uses CPR only to
    size menus; a terminal that does not answer (pexpect, some serial and web terminals) costs a
    1 s pause on the first Enter and a WARNING printed into the session 2 s later."""
    from prompt_toolkit.output import create_output
    output = create_output()
    if hasattr(output, "enable_cpr"):
        output.enable_cpr = False
    return output


def lexer_for(dialect: str) -> PygmentsLexer:
    from pygments import lexers
    return PygmentsLexer(getattr(lexers, LEXERS.get(dialect, "SqlLexer")))


def build_session(dialect: Callable[[], str], history, completer) -> PromptSession:
    """The prompt. Completion runs as you type (like pgcli) from a catalog loaded in the background
    (console/repl/completer.py), so no keystroke waits for the database."""
    from prompt_toolkit.application.current import get_app
    from prompt_toolkit.filters import Condition
    # Completing as you type looks at the text before the cursor on every key: past a long statement
    # (a paste typed out by a terminal without bracketed paste) it would make typing quadratic.
    short = Condition(lambda: len(get_app().current_buffer.text) <= COMPLETE_WHILE_TYPING_CHARS)
    return PromptSession(history=history, completer=completer, lexer=lexer_for(dialect()), multiline=True,
                         key_bindings=_key_bindings(dialect), complete_while_typing=short, complete_in_thread=True,
                         prompt_continuation=lambda width, *_: "." * (width - 1) + " ", output=_output())


@dataclass
class Repl:
    pipeline: object
    session: PromptSession | None
    state: ShellState
    # \c TARGET: opens a session on another target through the gate (None: not offered here)
    switch: Callable[[str, object], object] | None = None
    on_switch: Callable[[], None] = lambda: None       # e.g. reload the completion catalog
    on_change: Callable[[], None] = lambda: None       # after a statement that may change the catalog
    settle: Callable[[], None] = lambda: None          # before a session closes: let background reads end
    _next_text: str = ""                                # \e's text that is not a finished statement yet
    _include_depth: int = 0
    _lexers: dict = field(default_factory=dict)

    def loop(self) -> None:
        try:
            while not self.state.quit:
                try:
                    text = self.session.prompt(prompt_message(self.pipeline), default=self._take_next_text(),
                                               lexer=self._lexer())
                except KeyboardInterrupt:
                    continue          # Ctrl-C at the prompt clears the line, like psql
                except EOFError:
                    break             # Ctrl-D
                try:
                    self.handle(text)
                except KeyboardInterrupt:
                    print("(interrupted)", flush=True)   # e.g. while a long result was being printed
        finally:
            if self.state.output is not None:
                self.state.output.close()

    def _take_next_text(self) -> str:
        text, self._next_text = self._next_text, ""
        return text

    def _lexer(self) -> PygmentsLexer:
        dialect = self.pipeline.dialect
        if dialect not in self._lexers:
            self._lexers[dialect] = lexer_for(dialect)
        return self._lexers[dialect]

    def handle(self, text: str) -> None:
        stripped = text.strip()
        if not stripped:
            return
        word = stripped.rstrip(";").strip().lower()
        if not _is_unicode(text):
            from console.commands.text_input import checked
            from console.errors import UsageError
            try:
                checked(text, "the typed text")
            except UsageError as err:
                self.error("ERROR", f"{err}; nothing was sent (set the terminal to UTF-8)")
            return
        try:
            if word in QUIT_WORDS:
                self.state.quit = True
            elif word == "help":
                self.show(run_meta("\\?", self.pipeline, self.state))
            elif word == "it" and self.pipeline.dialect == "mongodb":
                self.show_more()
            elif stripped.startswith("\\"):
                self.backslash(stripped)
            else:
                self.run_statements(text)
        except Exception as err:  # noqa: BLE001 - shown to the user; the console keeps running
            self.error("ERROR", _error_text(err))

    # -- backslash commands ---------------------------------------------------------------------------
    def backslash(self, line: str) -> None:
        line = line.rstrip(";").strip()
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command == "\\i":
            self.include(argument)
        elif command == "\\e":
            self.edit(argument)
        elif command in ("\\c", "\\connect"):
            self.connect(argument)
        else:
            lines = run_meta(line, self.pipeline, self.state, read=self.read)
            self.show(lines, result=shows_results(line))

    def read(self, text: str):
        """A catalog read for a backslash command: submitted like a typed read, Ctrl-C cancels it."""
        return audited_read(self.pipeline, text, submit=self.submit)

    def include(self, argument: str) -> None:
        """\\i FILE: every statement and backslash command of the file, as if typed."""
        from console.commands.text_input import decoded
        from console.errors import UsageError
        if not argument:
            self.error("ERROR", "\\i needs a file name: \\i FILE")
            return
        if self._include_depth >= MAX_INCLUDE_DEPTH:
            self.error("ERROR", f"\\i: files include each other more than {MAX_INCLUDE_DEPTH} deep; stopped")
            return
        path = Path(_unquote(argument)).expanduser()
        try:
            text = decoded(path.read_bytes(), str(path))
        except IsADirectoryError:
            self.error("ERROR", f"\\i: {path} is a directory; give a file of statements")
            return
        except OSError as err:
            self.error("ERROR", f"\\i: cannot read {path}: {err.strerror}")
            return
        except UsageError as err:
            self.error("ERROR", f"\\i: {err}")
            return
        self._include_depth += 1
        try:
            self.run_script(text)
        finally:
            self._include_depth -= 1

    def run_script(self, text: str) -> None:
        """Lines as if typed at the prompt: a backslash line runs on its own, statements run once
        complete (what is left at the end runs as it is, as psql does)."""
        buffer: list[str] = []
        for line in text.splitlines():
            if self.state.quit:
                return
            if not buffer and (line.strip().startswith("\\") or line.strip().rstrip(";").lower() in SHELL_WORDS):
                self.handle(line)
                continue
            buffer.append(line)
            chunk = "\n".join(buffer)
            if chunk.strip() and is_complete(chunk, self.pipeline.dialect):
                self.handle(chunk)
                buffer = []
            elif not chunk.strip():
                buffer = []
        rest = "\n".join(buffer)
        if rest.strip() and not self.state.quit:
            self.handle(rest)

    def edit(self, argument: str) -> None:
        """\\e [FILE]: the last statement (or FILE) in $VISUAL / $EDITOR; what comes back runs when it is
        a finished statement, else it waits at the next prompt to be finished."""
        from console.commands.text_input import decoded
        from console.errors import UsageError
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or ("vi" if shutil.which("vi") else "")
        if not editor:
            self.error("ERROR", "\\e: no editor; set EDITOR (for example EDITOR=nano)")
            return
        suffix = ".js" if self.pipeline.dialect == "mongodb" else ".sql"
        temporary = None
        if argument:
            path = Path(_unquote(argument)).expanduser()
        else:
            handle, name = tempfile.mkstemp(prefix="countersign-", suffix=suffix)   # 0600
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(self.state.last_query + ("\n" if self.state.last_query else ""))
            path = temporary = Path(name)
        try:
            sys.stdout.flush()
            code = subprocess.call(f"{editor} {shlex.quote(str(path))}", shell=True)
            if code != 0:
                self.error("ERROR", f"\\e: the editor exited with status {code}; nothing runs")
                return
            text = decoded(path.read_bytes(), str(path)).strip()
        except OSError as err:
            self.error("ERROR", f"\\e: {err.strerror or err}")
            return
        except UsageError as err:
            self.error("ERROR", f"\\e: {err}")
            return
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
        if not text:
            return
        print(render.visible(text), flush=True)   # what runs is on the screen, as typed text would be
        if is_complete(text, self.pipeline.dialect):
            self.run_script(text)
        else:
            self._next_text = text

    def connect(self, argument: str) -> None:
        """\\c TARGET: open a session on TARGET through the gate, then close this one. If it cannot
        be opened, this session stays (as psql keeps its connection)."""
        if not argument:
            self.show(run_meta("\\conninfo", self.pipeline, self.state))
            return
        if self.switch is None:
            self.error("ERROR", "\\c is not available here")
            return
        if self.state.block is not None:
            self.error("ERROR", "inside BEGIN: COMMIT or ROLLBACK before switching targets")
            return
        from console.errors import UsageError
        try:
            opened = self.switch(_unquote(argument), self.pipeline)
        except (UsageError, DriverError) as err:
            self.error("ERROR", f"{err}; still connected to {target_label(self.pipeline.target_name)}")
            return
        previous, self.pipeline = self.pipeline, opened
        self.state.more = []
        self.settle()   # a completion catalog still being read on the old session finishes first
        previous.close()
        self.on_switch()
        self.show(run_meta("\\conninfo", self.pipeline, self.state))

    # -- statements ----------------------------------------------------------------------------------
    def run_statements(self, text: str) -> None:
        for statement in self.pipeline.classify(text):
            step = transaction.control(statement)
            if step is not None or self.state.block is not None:
                if not self.in_block(statement, step):
                    return
                continue
            if statement.kind is Kind.UNKNOWN and not self.confirm_unknown(statement):
                return
            self.state.last_query = statement.text
            outcome = self.submit(statement)
            self.show_outcome(outcome)
            if statement.kind not in (Kind.READ,):
                self.on_change()
            if outcome.status is not Status.OK:
                return  # the rest of a multi-statement entry does not run after a failure

    def in_block(self, statement, step: str | None) -> bool:
        """BEGIN opens a block, statements queue in it, COMMIT submits it as ONE approved transaction,
        ROLLBACK drops it. False when the rest of the entry must not go on."""
        block = self.state.block
        if step == "begin":
            if block is not None:
                self.error("ERROR", "already inside BEGIN; COMMIT or ROLLBACK first")
                return False
            self.state.block = []
            print("BEGIN: the statements up to COMMIT are sent for approval together and run as one "
                  "transaction (ROLLBACK drops them)", flush=True)
        elif step == "rollback":
            self.state.block = None
            print(f"ROLLBACK: {len(block or [])} queued statement(s) dropped; nothing ran", flush=True)
        elif step == "commit":
            self.state.block = None
            return self.commit_block(block or [])
        else:
            problem = self._syntax(statement) if self.pipeline.dialect in ("postgres", "mongodb") else None
            if problem is not None:   # the server's own grammar refuses it: it could never run
                self._show_syntax(statement, problem)
                print("Not queued: fix the statement (the block is still open).", flush=True)
                return False
            block.append(statement)
            print(f"queued ({len(block)}): runs at COMMIT", flush=True)
        return True

    def commit_block(self, block: list) -> bool:
        if not block:
            print("COMMIT: nothing to run", flush=True)
            return True
        outcomes = self._in_worker(lambda cancel: self.pipeline.submit_batch(
            tuple(block), cancel=cancel, notify=self.tell, purpose=transaction.block_purpose(block)))
        for outcome in outcomes:
            self.show_outcome(outcome)
        self.on_change()
        return all(o.status is Status.OK for o in outcomes)

    def _syntax(self, statement):
        from console.repl.syntax import syntax_error
        return syntax_error(statement, self.pipeline.dialect)

    def _show_syntax(self, statement, problem) -> None:
        self.error_lines("ERROR", render.error_lines("ERROR", problem.message, statement.text, problem.position))

    def confirm_unknown(self, statement) -> bool:
        """A statement nobody can read is usually a typo. PostgreSQL's and mongosh's own grammars
        have read it, so a syntax error there is final (the server would refuse it too); MySQL's and
        SQLite's text is read by sqlglot, so the server might still accept it: ask, before it becomes
        an approval request."""
        problem = self._syntax(statement)
        if problem is not None:
            self._show_syntax(statement, problem)
            if self.pipeline.dialect in ("postgres", "mongodb"):
                print("Not sent.", flush=True)
                return False
            print("countersign's parser cannot read it; the server's might.", flush=True)
        else:
            self.error("UNRECOGNISED", f"countersign cannot tell what this statement does: {statement.reason}",
                       color="1;33")
        question = "Send it for approval anyway? [y/N] " if statement.requires_approval else "Run it anyway? [y/N] "
        try:
            answer = input(question)
        except (KeyboardInterrupt, EOFError):
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return True
        print("Not sent. Fix the statement and try again.", flush=True)
        return False

    def submit(self, statement) -> Outcome:
        return self._in_worker(lambda cancel: self.pipeline.submit(statement, cancel=cancel, notify=self.tell))

    def _in_worker(self, call):
        """Run ``call(cancel)`` on a worker thread, so Ctrl-C in this one can cancel it."""
        cancel = threading.Event()
        done = threading.Event()
        box: list = []

        def work() -> None:
            try:
                box.append(call(cancel))
            except BaseException as err:  # re-raised in the main thread, never swallowed
                box.append(err)
            finally:
                done.set()

        threading.Thread(target=work, name="countersign-statement", daemon=True).start()
        self._wait(done, cancel)
        result = box[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _wait(self, done: threading.Event, cancel: threading.Event) -> None:
        """Wait for the worker. Ctrl-C cancels; the cancel is repeated until the statement stops, and
        the worker is always waited for, so the connection is never left busy behind the prompt."""
        retries = 0
        while not done.is_set():
            try:
                if not cancel.is_set():
                    # Timed, not forever: Linux may deliver Ctrl-C's SIGINT to another of our threads,
                    # and Python runs the handler only when the main thread next runs code.
                    done.wait(SIGNAL_CHECK_S)
                    continue
                self.pipeline.cancel_running()
                if not done.wait(CANCEL_RETRY_S):
                    retries += 1
                    if retries == 1:
                        print("the statement is still running; asking the server again…", flush=True)
            except KeyboardInterrupt:
                if not cancel.is_set():
                    print("cancelling…", flush=True)
                cancel.set()

    def tell(self, event) -> None:
        if isinstance(event, Awaiting):
            print(render.awaiting_lines(event), flush=True)

    # -- output --------------------------------------------------------------------------------------
    def show_outcome(self, outcome: Outcome) -> None:
        statement = outcome.statement
        if outcome.status is not Status.OK:
            label, color = LABELS.get(outcome.status, (str(outcome.status).upper(), "1;31"))
            self.error_lines(label, render.error_lines(label, outcome.message, statement.text), color)
            return
        if outcome.snapshot_id is not None:
            print(render.snapshot_line(outcome), flush=True)
        if self.pipeline.dialect == "mongodb":
            self.show_documents(outcome)
        elif outcome.result is not None:
            self.show(self.result_lines(outcome.result, str(statement.kind), statement.text), result=True)
        else:
            print("OK")
        if self.state.timing:
            print(f"Time: {outcome.duration_ms:.3f} ms", flush=True)

    def result_lines(self, result, kind: str, text: str) -> list[str]:
        """A table, or expanded records (\\x on; \\x auto when the table is wider than the terminal)."""
        mode = self.state.expanded
        if mode == "on":
            return render.render(result, "expanded", kind=kind, text=text)
        lines = render.render(result, "table", kind=kind, text=text)
        if mode == "auto" and result.columns and render.wider_than(lines, self._size()[1]):
            return render.render(result, "expanded", kind=kind, text=text)
        return lines

    def show_documents(self, outcome: Outcome) -> None:
        from console.repl.documents import paged
        pages = paged(outcome.statement.text, outcome.result, str(outcome.statement.kind))
        self.state.more, self.state.more_note = list(pages.pages[1:]), pages.end
        self._show_page(list(pages.pages[0]) if pages.pages else [])

    def show_more(self) -> None:
        """``it``: the next page of the last MongoDB result."""
        if not self.state.more:
            print("no cursor", flush=True)
            return
        self._show_page(list(self.state.more.pop(0)))

    def _show_page(self, lines: list[str]) -> None:
        if self.state.more:
            lines = lines + ['Type "it" for more']
        elif self.state.more_note:   # the last page: say what was not fetched
            lines, self.state.more_note = lines + [self.state.more_note], ""
        self.show(lines, result=True)

    def error(self, label: str, message: str, color: str = "1;31") -> None:
        self.error_lines(label, [f"{label}: {message}"], color)

    def error_lines(self, label: str, lines: list[str], color: str = "1;31") -> None:
        """Lines whose first starts with ``label`` (render.error_lines), the label in colour."""
        colored = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        if colored and lines and lines[0].startswith(label):
            lines = [f"\x1b[{color}m{label}\x1b[0m{lines[0][len(label):]}"] + lines[1:]
        print("\n".join(lines), flush=True)

    def show(self, lines: list[str], result: bool = False) -> None:
        """Print lines (through the pager when they do not fit); query results go to the \\o file
        when there is one."""
        if result and self.state.output is not None:
            try:
                self.state.output.write("".join(line + "\n" for line in lines))
                self.state.output.flush()
            except OSError as err:
                self.error("ERROR", f"\\o: cannot write {self.state.output_name} ({err.strerror}); results go to "
                           "the screen again")
                self.state.output = None
            else:
                return
        rows = self._size()[0]
        command = pager_command(os.environ)
        if command and len(lines) > rows - 2 and sys.stdout.isatty() and page(command, lines):
            return
        if lines:
            print("\n".join(lines), flush=True)

    def _size(self) -> tuple[int, int]:
        """(rows, columns) of the terminal."""
        output = getattr(self.session, "output", None)
        if output is not None:
            try:
                size = output.get_size()
                return size.rows, size.columns
            except Exception:  # noqa: BLE001 - not a terminal: use the fallback below
                pass
        size = shutil.get_terminal_size()
        return size.lines, size.columns


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _error_text(err: Exception) -> str:
    if isinstance(err, DriverError):
        return str(err)   # written for people already
    from console.errors import UsageError
    if isinstance(err, UsageError):
        return str(err)
    if isinstance(err, RecursionError):
        return "the input is nested too deeply to analyse; simplify it (e.g. fewer nested parentheses)"
    return f"{type(err).__name__}: {err} (the console keeps running)"


def pager_command(env) -> str | None:
    """$PAGER; an empty PAGER turns paging off; unset means `less` when it is installed.

    >>> pager_command({"PAGER": "cat"}), pager_command({"PAGER": ""})
    ('cat', None)
    """
    if "PAGER" in env:
        return env["PAGER"].strip() or None
    return "less" if shutil.which("less") else None


def page(command: str, lines: list[str]) -> bool:
    """Pipe the lines through the pager; False when the pager could not run (then print them)."""
    env = dict(os.environ)
    env.setdefault("LESS", "-SRXF")   # chop long lines, keep colours, stay on screen, quit if it fits
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env,
                                encoding="utf-8", errors="replace")
    except OSError:
        return False
    try:
        proc.stdin.write("\n".join(lines) + "\n")
    except (BrokenPipeError, KeyboardInterrupt):
        pass   # the reader quit early (q in less) or Ctrl-C: stop feeding it
    finally:
        try:
            proc.stdin.close()
        except (BrokenPipeError, KeyboardInterrupt):
            pass
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            pass   # Ctrl-C reaches the pager too; wait until it gives the terminal back
    return code != 127   # 127: the shell could not find the pager command

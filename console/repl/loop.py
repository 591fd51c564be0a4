"""The interactive loop only: prompt -> pipeline -> render. Decisions live in the pipeline.

Each submitted statement runs on a worker thread so that Ctrl-C in the main thread can cancel the
query on the server, or stop waiting for an approval, without killing the console.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.lexers import PygmentsLexer

from console import render, transaction
from engines.base import DriverError
from console.repl.meta import ShellState, run_meta
from console.repl.instant import target_label   # also drawn before prompt_toolkit loads
from gate.api import Awaiting, Outcome, Status
from classify.statements import Kind

LEXERS = {"postgres": "PostgresLexer", "mysql": "MySqlLexer", "sqlite": "SqlLexer",
          "mongodb": "JavascriptLexer"}   # mongosh syntax is JavaScript
# A cancel request can be lost (PostgreSQL drops one that arrives while the backend is between
# protocol messages), so while a cancelled statement is still running we ask again this often.
SIGNAL_CHECK_S = 0.1      # how soon a Ctrl-C is noticed while a statement runs or waits
CANCEL_RETRY_S = 2.0
# How each non-OK outcome is labelled, and in which colour (SGR code) on a terminal.
LABELS = {
    Status.FAILED: ("ERROR", "1;31"), Status.BLOCKED: ("BLOCKED", "1;31"),
    Status.REJECTED: ("REJECTED", "1;31"), Status.EXPIRED: ("EXPIRED", "1;31"),
    Status.ROLLED_BACK: ("ROLLED BACK", "1;31"), Status.PENDING: ("PENDING", "1;33"),
    Status.CANCELLED: ("CANCELLED", "1;33"),
}


def is_complete(text: str, dialect: str = "postgres") -> bool:
    """Enter submits a statement ended by a real ';' (not one inside a string or comment; a comment
    may follow it), a backslash command, or quit/exit. Otherwise it starts a new line. Whether the
    statement is finished is the dialect's own tokenizer's call (the one splitting uses).

    >>> [is_complete(t, "postgres") for t in ("SELECT 1;", "SELECT ';", "SELECT 1; -- done", "\\\\dt")]
    [True, False, True, True]
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("\\") or stripped.lower() in ("quit", "exit"):
        return True
    from classify.complete import is_complete_statement
    return is_complete_statement(stripped, dialect)


def prompt_message(pipeline) -> HTML:
    env = pipeline.environment
    if env == "production":
        badge = "<style bg='ansired' fg='ansiwhite'><b> PRODUCTION </b></style> "
    else:
        badge = f"<style fg='ansigreen'>[{_escape(env)}]</style> "
    return HTML(f"{badge}<b>{_escape(pipeline.user)}</b>@{_escape(target_label(pipeline.target_name))}=&gt; ")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _key_bindings(dialect: str) -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)   # Enter picks the highlighted completion
        elif is_complete(buffer.text, dialect):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    return bindings


def _output():
    """The terminal output, without cursor position requests (CPR). prompt_toolkit uses CPR only to
    size menus; a terminal that does not answer (pexpect, some serial and web terminals) costs a
    1 s pause on the first Enter and a WARNING printed into the session 2 s later."""
    from prompt_toolkit.output import create_output
    output = create_output()
    if hasattr(output, "enable_cpr"):
        output.enable_cpr = False
    return output


def build_session(pipeline, history, completer) -> PromptSession:
    from pygments import lexers
    lexer = PygmentsLexer(getattr(lexers, LEXERS.get(pipeline.dialect, "SqlLexer")))
    return PromptSession(history=history, completer=completer, lexer=lexer, multiline=True,
                         key_bindings=_key_bindings(pipeline.dialect), complete_while_typing=False,
                         prompt_continuation=lambda width, *_: "." * (width - 1) + " ", output=_output())


@dataclass
class Repl:
    pipeline: object
    session: PromptSession
    state: ShellState

    def loop(self) -> None:
        message = prompt_message(self.pipeline)
        while not self.state.quit:
            try:
                text = self.session.prompt(message)
            except KeyboardInterrupt:
                continue          # Ctrl-C at the prompt clears the line, like psql
            except EOFError:
                break             # Ctrl-D
            try:
                self.handle(text)
            except KeyboardInterrupt:
                print("(interrupted)", flush=True)   # e.g. while a long result was being printed

    def handle(self, text: str) -> None:
        stripped = text.strip()
        if not stripped:
            return
        if stripped.lower() in ("quit", "exit"):
            self.state.quit = True
            return
        try:
            if stripped.startswith("\\"):
                self.show(run_meta(stripped.rstrip(";").strip(), self.pipeline, self.state))
            else:
                self.run_statements(text)
        except Exception as err:  # noqa: BLE001 - shown to the user; the console keeps running
            self.error("ERROR", _error_text(err))

    def run_statements(self, text: str) -> None:
        for statement in self.pipeline.classify(text):
            step = transaction.control(statement)
            if step is not None or self.state.block is not None:
                if not self.in_block(statement, step):
                    return
                continue
            if statement.kind is Kind.UNKNOWN and not self.confirm_unknown(statement):
                return
            outcome = self.submit(statement)
            self.show_outcome(outcome)
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
        return all(o.status is Status.OK for o in outcomes)

    def confirm_unknown(self, statement) -> bool:
        """A statement nobody can read is usually a typo: ask before it becomes an approval request."""
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

    def show_outcome(self, outcome: Outcome) -> None:
        if outcome.status is not Status.OK:
            label, color = LABELS.get(outcome.status, (str(outcome.status).upper(), "1;31"))
            self.error(label, outcome.message, color=color)
            return
        if outcome.snapshot_id is not None:
            print(render.snapshot_line(outcome), flush=True)
        if outcome.result is not None:
            self.show(render.render(outcome.result, "expanded" if self.state.expanded else "table"))
        else:
            print("OK")
        if self.state.timing:
            print(f"Time: {outcome.duration_ms:.3f} ms", flush=True)

    def error(self, label: str, message: str, color: str = "1;31") -> None:
        colored = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        shown = f"\x1b[{color}m{label}:\x1b[0m" if colored else f"{label}:"
        print(f"{shown} {message}", flush=True)

    def show(self, lines: list[str]) -> None:
        rows = self.session.output.get_size().rows
        command = pager_command(os.environ)
        if command and len(lines) > rows - 2 and sys.stdout.isatty() and page(command, lines):
            return
        if lines:
            print("\n".join(lines), flush=True)


def _error_text(err: Exception) -> str:
    if isinstance(err, DriverError):
        return str(err)   # written for people already
    return f"{type(err).__name__}: {err} (the console keeps running)"


def pager_command(env) -> str | None:
    """$PAGER; an empty PAGER turns paging off; unset means `less` when it is installed.

    >>> pager_command({"PAGER": "cat"}), pager_command({"PAGER": ""})
    ('cat', None)
    """
    if "PAGER" in env:
        return env["PAGER"].strip() or None
    import shutil
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

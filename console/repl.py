"""The interactive loop only: prompt -> pipeline -> render. Decisions live in the pipeline.

Each submitted statement runs on a worker thread so that Ctrl-C in the main thread can cancel the
query on the server, or stop waiting for an approval, without killing the console.
"""
from __future__ import annotations

import os
import pydoc
import shutil
import threading
from dataclasses import dataclass

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.lexers import PygmentsLexer

from console import render
from console.meta import ShellState, run_meta
from console.pipeline import ApprovalWaiting, Notice, Outcome, Status

LEXERS = {"postgres": "PostgresLexer", "mysql": "MySqlLexer", "sqlite": "SqlLexer"}


def is_complete(text: str) -> bool:
    """Enter submits a statement ended by ';', a backslash command, or quit/exit."""
    stripped = text.strip()
    return (not stripped or stripped.endswith(";") or stripped.startswith("\\")
            or stripped.lower() in ("quit", "exit"))


def prompt_message(pipeline) -> HTML:
    env = pipeline.environment
    if env == "production":
        badge = "<style bg='ansired' fg='ansiwhite'><b> PRODUCTION </b></style> "
    else:
        badge = f"<style fg='ansigreen'>[{env}]</style> "
    return HTML(f"{badge}<b>{pipeline.user}</b>@{_escape(pipeline.target_name)}=&gt; ")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter", filter=Condition(lambda: True))
    def _(event) -> None:
        buffer = event.current_buffer
        if is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    return bindings


def build_session(pipeline, history, completer) -> PromptSession:
    from pygments import lexers
    lexer = PygmentsLexer(getattr(lexers, LEXERS.get(pipeline.dialect, "SqlLexer")))
    return PromptSession(history=history, completer=completer, lexer=lexer, multiline=True,
                         key_bindings=_key_bindings(), complete_while_typing=False,
                         prompt_continuation=lambda width, *_: "." * (width - 1) + " ")


@dataclass
class Repl:
    pipeline: object
    session: PromptSession
    state: ShellState

    def loop(self) -> None:
        while not self.state.quit:
            try:
                text = self.session.prompt(prompt_message(self.pipeline))
            except KeyboardInterrupt:
                continue          # Ctrl-C at the prompt clears the line, like psql
            except EOFError:
                break
            self.handle(text)

    def handle(self, text: str) -> None:
        stripped = text.strip()
        if not stripped:
            return
        if stripped.lower() in ("quit", "exit"):
            self.state.quit = True
            return
        if stripped.startswith("\\"):
            self.show(run_meta(stripped.rstrip(";"), self.pipeline, self.state))
            return
        for statement in self.pipeline.classify(text):
            outcome = self.submit(statement)
            self.show_outcome(outcome)
            if outcome.status is not Status.OK:
                break  # the rest of a multi-statement entry does not run after a failure

    def submit(self, statement) -> Outcome:
        cancel = threading.Event()
        done = threading.Event()
        box: list = []

        def work() -> None:
            try:
                box.append(self.pipeline.submit(statement, cancel=cancel, notify=self.tell))
            except BaseException as err:  # shown to the user, never swallowed
                box.append(err)
            finally:
                done.set()

        threading.Thread(target=work, name="countersign-statement", daemon=True).start()
        try:
            done.wait()
        except KeyboardInterrupt:
            cancel.set()
            self.pipeline.cancel_running()
            print("cancelling…", flush=True)
            done.wait()
        result = box[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def tell(self, event) -> None:
        if isinstance(event, ApprovalWaiting):
            rows = "unknown" if event.estimated_rows is None else \
                f"{event.estimated_rows}{'' if event.rows_exact else ' (estimate)'}"
            print(f"⏳ needs approval: {event.reason}\n   request {event.request_id}, rows affected: {rows}, "
                  f"{event.required} approval(s) needed\n   a reviewer runs: {event.approve_hint}\n"
                  "   waiting… (Ctrl-C stops waiting; the request stays open)", flush=True)
        elif isinstance(event, Notice):
            print(event.text, flush=True)

    def show_outcome(self, outcome: Outcome) -> None:
        if outcome.status is Status.OK and outcome.result is not None:
            fmt = "expanded" if self.state.expanded else "table"
            self.show(render.render(outcome.result, fmt))
            if self.state.timing:
                print(f"Time: {outcome.duration_ms:.3f} ms")
            return
        print(f"{str(outcome.status).upper()}: {outcome.message}")

    def show(self, lines: list[str]) -> None:
        height = shutil.get_terminal_size((80, 24)).lines
        if len(lines) > height - 2 and os.environ.get("PAGER", "less") != "":
            os.environ.setdefault("LESS", "-SRXF")
            pydoc.pager("\n".join(lines))
        else:
            for line in lines:
                print(line)

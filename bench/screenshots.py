"""Screenshots of the auditor's pages for the README (docs/screenshots/*.png), taken in Debian's Chromium.

A SQLite store is filled through the real pipeline: a month of history (sessions by five people on a
production and a staging target, reads, writes approved after a while or rejected, statements the
policy blocks; the store's clock moved by hand so the days differ), then today's scenario from
tests/test_auditor_pages.py (a write approved with a click in Slack, through the Slack emulator, and
its restore). The pages are served by uvicorn on 127.0.0.1 and photographed signed in as an auditor.

    python bench/screenshots.py [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHOTS = [("overview", "/"), ("sessions", "/sessions"), ("session", "/sessions/{alice}"),
         ("approvals", "/approvals?status=decided"), ("snapshot", "/snapshots/{snapshot}")]
PEOPLE = ("alice", "dave", "erin", "frank", "grace")


class MovingClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def history(store_url: str, target_db: Path, days: int = 30, seed: int = 13) -> None:
    """A month of ordinary work, day by day, through the gate (local votes by bob and carol)."""
    from approvals.service import ApprovalService
    from audit.store import Store
    from config.settings import Policy, Target
    from console.session import ConsoleSession
    from gate.local import LocalGate
    from tests.pipeline_helpers import Submission
    rng = random.Random(seed)
    first = datetime.now(timezone.utc).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=days)
    clock = MovingClock(first)
    store = Store.open(store_url, clock=clock)
    url = f"sqlite:///{target_db}"
    targets = {"billing": Target("billing", url, "sqlite", "production",
                                 Policy(name="prod", approvers=("bob", "carol"), blocked=(r"(?i)^\s*drop\b",))),
               "billing-staging": Target("billing-staging", url, "sqlite", "staging",
                                         Policy(name="staging", approvers=("bob", "carol")))}
    gate = LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=targets.__getitem__)
    votes = ApprovalService.from_store(store)
    for day in range(days):          # up to yesterday: today is fill()'s
        clock.now = first + timedelta(days=day)
        for _ in range(rng.randint(2, 6)):
            clock.now += timedelta(minutes=rng.randint(5, 50))
            target = rng.choice(("billing", "billing", "billing-staging"))
            console = ConsoleSession(gate, user=rng.choice(PEOPLE), target=target, dialect="sqlite",
                                     environment=targets[target].environment)
            console.open_session(rng.choice((None, f"INC-{rng.randint(100, 999)}")))
            for _ in range(rng.randint(1, 4)):
                Submission(console, f"SELECT id, metadata FROM deploys WHERE site_id = {rng.randint(0, 4)}").start().result()
            roll = rng.random()
            if roll < 0.55:
                run = Submission(console, f"UPDATE deploys SET metadata = 'day {day}' WHERE id = {rng.randint(1, 40)}").start()
                request_id = run.request_id           # asked; the reviewer takes a while
                clock.now += timedelta(seconds=rng.choice((20, 45, 90, 200, 400, 900, 1500)))
                verdict = "reject" if rng.random() < 0.15 else "approve"
                votes.vote(request_id, rng.choice(("bob", "carol")), verdict)
                run.result()
            elif roll < 0.7:
                Submission(console, "DROP TABLE deploys").start().result()
            console.close()
    gate.close()
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = tempfile.TemporaryDirectory()
    os.environ["XDG_STATE_HOME"] = work.name        # the audit key and anchors of this store, not yours
    from playwright.sync_api import sync_playwright
    from starlette.applications import Starlette

    from approvals.service import ApprovalService
    from audit.store import Store
    from config.settings import ServerSettings
    from service.auth import Authenticator
    from service.pages import routes
    from service.tokens import Tokens
    from tests.slack_emulator import SlackEmulator
    from tests.slack_harness import Running, UvicornThread, add_people, start, wait_until
    from tests.store_helpers import migrated
    from tests.test_auditor_pages import ENGINES, fill

    for attempt in range(5):
        store_url, target_db = f"sqlite:///{Path(work.name) / f'store{attempt}.db'}", Path(work.name) / f"t{attempt}.db"
        migrated(store_url)
        with sqlite3.connect(target_db) as conn:   # history's table; fill() makes its own in another file
            conn.execute("CREATE TABLE deploys (id INTEGER PRIMARY KEY, site_id INTEGER NOT NULL, metadata TEXT)")
            conn.executemany("INSERT INTO deploys (site_id, metadata) VALUES (?, 'm')", [(n % 5,) for n in range(40)])
        history(store_url, target_db, seed=13 + attempt)
        verdict = Store.open(store_url).verify(anchor=False)
        if verdict.ok:
            break
        # A vote's "approved" event can land after the "used" event of the console it woke (two
        # appends after the row changed), which verify then reports; the README wants an intact trail.
        print(f"the month of history does not verify ({verdict.problem}); making it again", file=sys.stderr)
    with sqlite3.connect(Path(work.name) / f"store{attempt}.db") as conn:   # Slack joins today: no backlog to post
        conn.execute("UPDATE cs_slack_cursor SET last_seq = (SELECT last_seq FROM cs_audit_chain_head)")
    with SlackEmulator() as slack:
        add_people(slack)
        store, service = start(slack, store_url)
        service.poster.start()
        try:
            with UvicornThread(service.asgi) as slack_app:
                running = Running(slack, store, service, f"http://127.0.0.1:{slack_app.port}",
                                  ApprovalService.from_store(store))
                ids = fill(store, Path(work.name) / "today.db", running)
                wait_until(lambda: service.outbox.waiting() == 0, timeout=30)
        finally:
            service.poster.stop()
    tokens = Tokens(store)
    secret = tokens.issue("ada", label="screenshots", lifetime=timedelta(hours=1), by="root").secret
    app = Starlette(routes=routes(store, Authenticator(tokens, ServerSettings(auditors=("ada",))), engines=ENGINES))
    with UvicornThread(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        base = f"http://127.0.0.1:{server.port}/audit"
        page.goto(base + "/login")
        page.screenshot(path=str(out / "signin.png"))
        page.fill("#token", secret)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        for name, path in SHOTS:
            page.goto(base + path.format(**ids))
            page.screenshot(path=str(out / f"{name}.png"), full_page=name in ("overview", "session"))
            print(f"{out / name}.png")
        browser.close()
    store.dispose()
    work.cleanup()


if __name__ == "__main__":
    main()

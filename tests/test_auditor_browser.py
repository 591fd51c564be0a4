"""The auditor's pages in a real browser: Debian's Chromium (/usr/bin/chromium) driven by Playwright.

Signing in, the filters, search and pagination, a session's timeline, a broken chain shown as broken,
an unauthorised person refused, and the exports downloaded and verified, on a trail the real pipeline
made (tests/test_auditor_pages.py's fixtures) in a SQLite and a PostgreSQL store. No page may break
its own Content-Security-Policy or run anything: every console message about the policy and every
dialog fails the test.

Without Chromium or Playwright the tests are skipped on a workstation and FAIL in CI (CI=true):
.ci/run installs Debian's chromium.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from audit.keys import load_key
from service.pages import queries
from tests.slack_harness import wait_until
from tests.test_auditor_pages import check_chain_lines, small_trail, tamper, trail  # noqa: F401 - fixtures

CHROMIUM = Path("/usr/bin/chromium")


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must run the browser tests (.ci/run installs Debian's chromium)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh browser profile per test; anything the page's own policy blocks, or any dialog, fails it."""
    context = browser.new_context(accept_downloads=True)
    tab = context.new_page()
    complaints: list[str] = []
    tab.on("console", lambda message: complaints.append(message.text)
           if "Content Security Policy" in message.text else None)
    tab.on("dialog", lambda dialog: (complaints.append(f"a dialog opened: {dialog.message}"), dialog.dismiss()))
    tab.on("pageerror", lambda error: complaints.append(f"page error: {error}"))
    yield tab
    context.close()
    assert not complaints, complaints


def sign_in(page, trail, token: str, path: str = "/") -> None:
    page.goto(trail.url + path)
    assert "/audit/login" in page.url
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def listed(page) -> list[str]:
    """The session ids in the sessions table, in order."""
    return [href.rsplit("/", 1)[1] for href in
            page.eval_on_selector_all("#sessions tbody a", "links => links.map(a => a.getAttribute('href'))")]


# -- who may look ----------------------------------------------------------------------------------
def test_an_auditor_signs_in_and_the_overview_shows_the_plots_and_the_chain(page, trail):
    sign_in(page, trail, trail.auditor)
    assert page.url == trail.url + "/"
    assert page.locator("svg.plot").count() == 4
    assert page.locator("#chart-writes svg rect title").count() >= 1
    chain = page.locator("#chain-state")
    assert "intact" in chain.get_attribute("class") and "Audit chain intact up to event" in chain.inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "countersign_audit")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/audit"
    assert page.evaluate("document.cookie") == ""          # no script can read either cookie


def test_a_person_who_is_not_an_auditor_is_refused(page, trail):
    sign_in(page, trail, trail.outsider)
    assert "Not allowed" in page.inner_text("h1")
    assert "signed in as bob, who is not an auditor" in page.inner_text("main")
    assert page.locator("#chain-state").count() == 0 and page.locator("nav a").count() == 0
    page.goto(trail.url + "/sessions")
    assert "/audit/login" in page.url                       # no cookie was given to bob
    sign_in(page, trail, "cs_not_a_token")
    assert "not accepted" in page.inner_text(".error")


def test_signing_out_forgets_the_token(page, trail):
    sign_in(page, trail, trail.auditor, "/approvals")
    assert page.url == trail.url + "/approvals"
    page.click("form.who button")
    page.wait_for_load_state()
    assert "/audit/login" in page.url
    page.goto(trail.url + "/approvals")
    assert "/audit/login" in page.url


# -- finding sessions -------------------------------------------------------------------------------
def test_filters_and_search_narrow_the_sessions(page, trail):
    sign_in(page, trail, trail.auditor, "/sessions")
    page.fill("input[name=person]", "dave")
    page.click("form.filters button")
    assert listed(page) == [trail.dave]
    page.goto(trail.url + "/sessions")
    page.check("input[name=wrote]")
    page.click("form.filters button")
    assert set(listed(page)) == {trail.alice, trail.erin, trail.restorer}
    page.uncheck("input[name=wrote]")
    page.check("input[name=refused]")
    page.click("form.filters button")
    assert set(listed(page)) == {trail.dave, trail.erin}
    page.goto(trail.url + "/sessions")
    page.select_option("select[name=environment]", "staging")
    page.click("form.filters button")
    assert listed(page) == [trail.erin]
    page.goto(trail.url + "/sessions")
    page.fill("input[name=q]", "WHERE site_id = 1")
    page.click("form.filters button")
    assert listed(page) == [trail.dave]
    page.goto(trail.url + "/sessions")
    page.select_option("select[name=engine]", "postgres")
    page.click("form.filters button")
    assert listed(page) == [] and "No session matches." in page.inner_text("#sessions")
    today = datetime.now(timezone.utc).date()
    page.goto(trail.url + "/sessions")
    page.fill("input[name=from]", today.isoformat())
    page.fill("input[name=to]", today.isoformat())
    page.fill("input[name=person]", "erin")
    page.click("form.filters button")
    assert listed(page) == [trail.erin]
    page.fill("input[name=from]", (today + timedelta(days=1)).isoformat())
    page.fill("input[name=to]", (today + timedelta(days=1)).isoformat())
    page.click("form.filters button")
    assert listed(page) == []


def test_the_sessions_page_back_and_forth(page, trail):
    sign_in(page, trail, trail.auditor, "/sessions?person=carol")
    first = listed(page)
    assert len(first) == queries.PAGE_SIZE and page.locator(".pager .off", has_text="Newer").count() == 1
    page.click("a[rel=next]")
    second = listed(page)
    assert len(second) == len(trail.readers) - queries.PAGE_SIZE and set(first).isdisjoint(second)
    assert set(first) | set(second) == set(trail.readers)
    assert page.locator(".pager .off", has_text="Older").count() == 1
    assert page.input_value("input[name=person]") == "carol"          # the filter travels with the pages
    page.click("a[rel=prev]")
    assert listed(page) == first


# -- one session ------------------------------------------------------------------------------------
def test_a_session_reads_like_the_console(page, trail):
    sign_in(page, trail, trail.auditor, f"/sessions?{urlencode({'person': 'alice', 'q': 'cleared'})}")
    assert listed(page) == [trail.alice]
    page.click("#sessions tbody a")
    assert page.url == f"{trail.url}/sessions/{trail.alice}"
    commands = page.locator("#timeline li.command")
    assert commands.count() == 3
    hostile = commands.nth(1).locator("pre.statement").inner_text()
    assert "<script>alert(1)</script>" in hostile and "\\u001b[2J" in hostile and "\\u202e" in hostile
    write = commands.nth(2)
    assert [write.locator(".badge").nth(i).inner_text() for i in range(3)] == ["write", "needs_approval", "ok"]
    assert "8 row(s)" in write.inner_text()
    votes = write.locator(".votes").inner_text()
    assert "bob approved via slack (Slack user UBOB)" in " ".join(votes.split())
    assert write.locator(".approval a").get_attribute("href").startswith("https://slack.com/archives/CAPPROVALS/p")
    assert "restored" in write.locator(".snapshot").inner_text()
    assert page.get_by_text("Its thread in Slack").get_attribute("href").startswith(
        "https://slack.com/archives/CAUDITLOG/p")
    write.locator(".snapshot a").click()
    assert page.url == f"{trail.url}/snapshots/{trail.snapshot}"
    assert "requested by alice, approved by carol via local" in page.inner_text("#restore-history")
    rejected = page.goto(f"{trail.url}/sessions/{trail.dave}")
    assert rejected.ok and "carol rejected via local" in " ".join(page.inner_text("#timeline").split())


def test_the_approvals_page_shows_each_decision_and_its_time(page, trail):
    sign_in(page, trail, trail.auditor, "/approvals?status=decided")
    row = page.locator(f"#request-{trail.rejected_request}")
    assert "rejected" in row.inner_text() and "carol" in row.inner_text()
    assert page.locator(f"#request-{trail.write_request} td").nth(9).inner_text().endswith(" s")
    page.click(".tabs a:has-text('pending')")
    assert "No pending requests." in page.inner_text("#approvals")


# -- a broken chain ---------------------------------------------------------------------------------
def test_a_broken_chain_is_shown_as_broken(page, small_trail):   # noqa: F811 - the fixture
    trail = small_trail
    sign_in(page, trail, trail.auditor, f"/sessions/{trail.alice}")
    assert "intact" in page.get_attribute("#chain-state", "class")
    intent = next(e for e in trail.store.events(session_id=trail.alice) if e.type == "intent")
    tamper(trail.store, intent.seq, "SELECT 42", "SELECT 41")

    def shows_broken():
        page.reload()
        return "broken" in page.get_attribute("#chain-state", "class")
    wait_until(shows_broken, timeout=20, interval=0.2)
    assert f"Audit chain BROKEN at event {intent.seq}" in page.inner_text("#chain-state")
    assert "tampered" in page.get_attribute(f"#event-{intent.seq}", "class")
    for path in ("/", "/sessions", "/approvals", "/snapshots", "/export"):
        page.goto(trail.url + path)
        assert f"BROKEN at event {intent.seq}" in page.inner_text("#chain-state"), path


# -- exports ----------------------------------------------------------------------------------------
def download(page, click) -> str:
    with page.expect_download() as pending:
        click()
    return Path(pending.value.path()).read_text(encoding="utf-8")


def test_exports_download_and_verify(page, trail):
    sign_in(page, trail, trail.auditor, f"/sessions/{trail.alice}")
    lines = [json.loads(line) for line in download(page, lambda: page.click("text=Events (JSON Lines")).splitlines()]
    assert lines and {e["session_id"] for e in lines} == {trail.alice}
    for event in lines:
        check_chain_lines([event])
    transcript = download(page, lambda: page.click("text=Transcript (text)"))
    assert f"Countersign session {trail.alice}" in transcript and "\x1b" not in transcript
    page.goto(trail.url + "/export")
    today = datetime.now(timezone.utc).date().isoformat()
    page.fill("input[name=from]", today)
    page.fill("input[name=to]", today)
    events = [json.loads(line) for line in download(page, lambda: page.click("text=Download JSON Lines")).splitlines()]
    check_chain_lines(events)
    assert events[0]["seq"] == 1 and events[-1]["payload"].get("path") == "/audit/export/trail.jsonl"
    key = load_key(trail.store.key_path())
    with trail.store.engine.connect() as conn:
        store_id = conn.execute(text("SELECT store_id FROM cs_audit_chain_head")).scalar_one()
    previous = events[0]["prev_hash"]
    for e in events:
        assert e["link"] == key.link(store_id=store_id, seq=e["seq"], prev_link=previous, digest=e["hash"])
        previous = e["link"]

"""The service trusts a token the store verified for at most VERIFIED_FOR_S (service/tokens.py). Each test
is a way an insider could hope to use that second: a token revoked elsewhere, revoked here while the
store was being asked, expired meanwhile, or a guessed secret next to a real one."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from audit.store import Store
from service import tokens as tokens_module
from service.tokens import Tokens
from tests.slack_harness import wait_until
from tests.store_helpers import migrated

REPO = Path(__file__).resolve().parents[1]
PROMISED_S = 1.0     # what service/tokens.py promises: a revocation elsewhere is honoured within a second


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store_url(tmp_path) -> str:
    return migrated(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def tokens(store_url, clock) -> Tokens:
    return Tokens(Store.open(store_url, clock=clock))


def test_a_token_revoked_by_another_process_is_refused_within_the_second(tokens, store_url):
    secret = tokens.issue("alice", label="t", lifetime=timedelta(hours=1), by="carol").secret
    token_id = tokens.authenticate(secret).id          # verified by the store: trusted for a moment now
    revoke = ("from audit.store import Store; from service.tokens import Tokens; import sys; "
              "Tokens(Store.open(sys.argv[1])).revoke(sys.argv[2], by='carol')")
    done = subprocess.run([sys.executable, "-c", revoke, store_url, token_id], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    revoked_at = time.monotonic()
    wait_until(lambda: tokens.authenticate(secret) is None, timeout=PROMISED_S + 5, interval=0.01)
    assert time.monotonic() - revoked_at <= PROMISED_S + 0.25
    assert tokens.authenticate(secret) is None          # and it stays refused


def test_a_token_revoked_in_this_process_is_refused_at_once_whichever_tokens_revoked_it(tokens, store_url):
    secret = tokens.issue("alice", label="t", lifetime=timedelta(hours=1), by="carol").secret
    record = tokens.authenticate(secret)
    assert tokens.authenticate(secret) == record        # the remembered verification
    Tokens(Store.open(store_url)).revoke(record.id, by="carol")     # another Tokens, another Store object
    assert tokens.authenticate(secret) is None


def test_a_revocation_while_the_store_is_being_asked_voids_its_answer(tokens, store_url, monkeypatch):
    """The store answers "usable", then the revocation commits before that answer is remembered: the
    remembered answer must not outlive the revocation."""
    secret = tokens.issue("alice", label="t", lifetime=timedelta(hours=1), by="carol").secret
    token_id = tokens.authenticate(secret).id
    monkeypatch.setattr(tokens_module, "VERIFIED_FOR_S", 0.0)      # this answer comes from the store
    asked, revoked = threading.Event(), threading.Event()
    remember = tokens._verified.put

    def put_after_the_revocation(key, verified):
        asked.set()
        assert revoked.wait(30)
        remember(key, verified)

    monkeypatch.setattr(tokens._verified, "put", put_after_the_revocation)
    answered = []
    reader = threading.Thread(target=lambda: answered.append(tokens.authenticate(secret)))
    reader.start()
    assert asked.wait(30)
    Tokens(Store.open(store_url)).revoke(token_id, by="carol")
    revoked.set()
    reader.join(30)
    assert answered[0] is not None                       # it was usable when the store was asked
    monkeypatch.setattr(tokens_module, "VERIFIED_FOR_S", 60.0)     # however long answers were trusted
    assert tokens.authenticate(secret) is None


def test_an_expired_token_is_refused_even_while_its_verification_is_remembered(tokens, clock):
    secret = tokens.issue("alice", label="t", lifetime=timedelta(minutes=10), by="carol").secret
    assert tokens.authenticate(secret) is not None
    clock.offset += timedelta(minutes=11)               # the service's clock, within the same second
    assert tokens.authenticate(secret) is None


def test_a_secret_next_to_a_remembered_one_is_not_accepted(tokens):
    secret = tokens.issue("alice", label="t", lifetime=timedelta(hours=1), by="carol").secret
    assert tokens.authenticate(secret) is not None
    for guess in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x", secret.upper(), secret[:-1]):
        assert tokens.authenticate(guess) is None, guess

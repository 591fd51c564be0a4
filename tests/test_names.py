"""One person is one name: canonical spellings, look-alikes refused in the configuration, and the
approval rules holding against a second spelling of the same person (on SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, update

from approvals import models
from approvals.models import ApprovalError, DuplicateVoteError, SelfApprovalError
from approvals.names import BadName, canonical, look_alikes, looks_like
from approvals.service import ApprovalService
from audit.schema import approval_requests, approval_votes
from audit.store import Store
from config.settings import ConfigError
from service.slack_settings import load
from tests.cli_helpers import cli_env, countersign

# Ways of typing "alice" again: another case, a zero-width space, a Cyrillic а, a digit one for the
# l, full-width letters. None may count as a person other than alice.
ALICE_AGAIN = ["Alice", "al\u200bice", "\u0430lice", "a1ice", "\uff41\uff4c\uff49\uff43\uff45", "ALICE "]


# -- the names themselves ----------------------------------------------------------------------------
def test_canonical_spelling():
    assert [canonical(n) for n in ("Alice", "\uff41\uff4c\uff49\uff43\uff45", " bob ", "Carol.Smith")] == \
        ["alice", "alice", "bob", "carol.smith"]


@pytest.mark.parametrize("name", ["al\u200bice", "\u0430lice", "alice\u202e", "", "ali ce", "-alice"])
def test_names_that_cannot_be_one_person_are_refused_not_cleaned(name):
    with pytest.raises(BadName, match="is not a person's name"):
        canonical(name)


def test_look_alikes():
    assert looks_like("a1ice", "alice") and looks_like("rnallory", "mallory") and looks_like("\u0430lice", "alice")
    assert looks_like("Alice", "alice") and looks_like("b0b", "bob")
    assert not looks_like("bob", "carol") and not looks_like("alice", "alice2") and not looks_like("dave", "david")
    assert look_alikes(["alice", "bob", "a1ice", "b0b", "carol"]) == [("alice", "a1ice"), ("bob", "b0b")]


def test_people_counts_look_alikes_once():
    assert models.people(["alice", "a1ice", "bob", "Bob", "carol"]) == ["alice", "bob", "carol"]


# -- the service's configuration ---------------------------------------------------------------------
GOOD = """
[slack]
channel = "C0APPROVALS"

[server]
admins = ["alice"]
auditors = ["carol"]

[people]
alice = "alice@example.com"
bob = "bob@example.com"
carol = "carol@example.com"

[targets.prod]
url = "sqlite:///prod.db"
policy = "prod"

[policies.prod]
approvers = ["bob", "carol"]
"""


def _load(tmp_path, text: str):
    path = tmp_path / "countersign.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, {})


def test_a_clean_configuration_loads(tmp_path):
    _, config = _load(tmp_path, GOOD)
    assert sorted(config.people) == ["alice", "bob", "carol"]


def test_every_name_problem_is_named_at_once(tmp_path):
    bad = GOOD.replace('bob = "bob@example.com"', 'Bob = "bob@example.com"\na1ice = "a1ice@example.com"\n'
                                                  '"al\\u200bice" = "zw@example.com"\nmallory = "Carol@Example.com"')
    bad = bad.replace('admins = ["alice"]', 'admins = ["alice", "root"]').replace('["bob", "carol"]',
                                                                                   '["Carol", "dave"]')
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, bad)
    assert str(err.value).splitlines() == [
        "[people] 'Bob': write it as 'bob' (names are compared in lower case, Unicode NFKC)",
        "[people] 'al\\u200bice' is not a person's name: use letters a-z, digits and . _ - @ only "
        "(it holds '\\u200b')",
        "[people] 'alice' and 'a1ice' look alike: one could pass for the other; rename one",
        "[people] 'mallory', 'carol' share the email 'carol@example.com': one Slack account cannot be two people",
        "[server] admins: 'root' is not in [people]; add them there (with their work email) or remove them here",
        "[policies.prod] approvers: write 'Carol' as 'carol', as in [people]",
        "[policies.prod] approvers: 'dave' is not in [people]; add them there (with their work email) or "
        "remove them here",
    ]


def test_roles_and_approvers_need_no_people_without_slack(tmp_path):
    """Without [people] (no Slack), the service does not know who exists; the spelling rules still hold
    where votes are cast."""
    text = GOOD.split("[people]")[0].replace('[slack]\nchannel = "C0APPROVALS"\n', "") + \
        '[targets.prod]\nurl = "sqlite:///prod.db"\n'
    settings, config = _load(tmp_path, text)
    assert config.people == {} and settings.server.admins == ("alice",)


# -- the approval rules, on a real store -------------------------------------------------------------
@pytest.fixture
def approvals(store_url):
    store = Store.open(store_url)
    yield ApprovalService.from_store(store)
    store.dispose()


def _request(approvals: ApprovalService, requester: str = "alice", required: int = 1, approvers=None):
    return approvals.request(
        requester=requester, target="prod", environment="production", statement="DELETE FROM t WHERE id = 1",
        kind="write", reason="a write", required_approvals=required, allowed_approvers=approvers,
        lifetime=timedelta(minutes=30))


@pytest.mark.parametrize("again", ALICE_AGAIN)
def test_alice_cannot_approve_her_own_request_under_another_spelling(approvals, again):
    request = _request(approvals)
    with pytest.raises(ApprovalError) as err:
        approvals.vote(request.id, again, "approve")
    assert isinstance(err.value, SelfApprovalError) or "is not a person's name" in str(err.value)
    assert "own request" in str(err.value) or "not a person's name" in str(err.value)
    after = approvals.get(request.id)
    assert (after.status, after.votes) == ("pending", ())


@pytest.mark.parametrize("again", ALICE_AGAIN)
def test_alice_counts_once_among_the_approvers(approvals, again):
    request = _request(approvals, requester="carol", required=2)
    approvals.vote(request.id, "alice", "approve")
    with pytest.raises(ApprovalError) as err:
        approvals.vote(request.id, again, "approve")
    assert isinstance(err.value, DuplicateVoteError) or "is not a person's name" in str(err.value)
    after = approvals.get(request.id)
    assert (after.status, after.approvals, [v.approver for v in after.votes]) == ("pending", 1, ["alice"])


def test_the_message_names_the_look_alike(approvals):
    request = _request(approvals, requester="carol", required=2)
    approvals.vote(request.id, "alice", "approve")
    with pytest.raises(DuplicateVoteError, match="'a1ice' looks like 'alice', who has already voted"):
        approvals.vote(request.id, "a1ice", "approve")
    with pytest.raises(SelfApprovalError, match="'caro1' looks like 'carol', who made request"):
        approvals.vote(request.id, "caro1", "approve")


def test_a_requester_spelled_otherwise_is_the_same_requester(approvals):
    """`Alice` asks, `alice` may not approve, and the approval still binds to the one person."""
    request = _request(approvals, requester="Alice")
    assert request.requester == "alice"
    with pytest.raises(SelfApprovalError):
        approvals.vote(request.id, "alice", "approve")
    approvals.vote(request.id, "Bob", "approve")
    used = approvals.consume(request.id, statement="DELETE FROM t WHERE id = 1", target="prod", requester="ALICE")
    assert used.status == "used" and [v.approver for v in used.votes] == ["bob"]


def test_look_alike_approvers_do_not_make_enough_approvers(approvals):
    with pytest.raises(models.InvalidRequestError, match="only 1 allowed approver"):
        _request(approvals, requester="alice", required=2, approvers=["a1ice", "Bob"])


def test_allowed_approvers_are_compared_canonically(approvals):
    request = _request(approvals, requester="alice", approvers=["Bob"])
    assert request.allowed_approvers == ("bob",)
    with pytest.raises(models.NotAnApproverError):
        approvals.vote(request.id, "b0b", "approve")      # looks like bob, is not bob
    assert approvals.vote(request.id, "BOB", "approve").status == "approved"


def test_a_look_alike_vote_written_into_the_store_never_counts(approvals):
    """A vote row added around the rules (a second spelling of the approver, or of the requester)
    still does not make a second person when the approval is used."""
    request = _request(approvals, requester="carol", required=2)
    approvals.vote(request.id, "alice", "approve")
    with approvals.engine.begin() as conn:
        for forged in ("a1ice", "caro1"):
            conn.execute(insert(approval_votes).values(request_id=request.id, approver=forged, verdict="approve",
                                                       binding=request.binding, ts=approvals.now(), source="local"))
        conn.execute(update(approval_requests).where(approval_requests.c.id == request.id).values(status="approved"))
    with pytest.raises(models.NotApprovedError, match="do not add up to 2"):
        approvals.consume(request.id, statement="DELETE FROM t WHERE id = 1", target="prod", requester="carol")


# -- embedded mode: the approvals command ------------------------------------------------------------
@pytest.mark.parametrize("again", ["Alice", "a1ice", "al\u200bice"])
def test_embedded_mode_refuses_countersign_user_spelled_otherwise(tmp_path, again):
    env = cli_env(tmp_path, user="alice")
    store = Store.open(env["COUNTERSIGN_STORE"])
    try:
        request = _request(ApprovalService.from_store(store))
    finally:
        store.dispose()
    done = countersign("approvals", "approve", request.id, env={**env, "COUNTERSIGN_USER": again})
    assert done.returncode == 2, done.stderr
    assert "own request" in done.stderr or "not a person's name" in done.stderr
    store = Store.open(env["COUNTERSIGN_STORE"])
    try:
        assert ApprovalService.from_store(store).get(request.id).votes == ()
    finally:
        store.dispose()

"""The Bolt app: thin listeners for the Approve and Reject buttons and the reject modal.

Each click: who is it (Slack user -> person) -> one call into the approvals core (service.decisions)
-> the message updated in place, or the clicker told why not. Every click, accepted or refused, is an
audit event with the Slack user id. The rules (never the requester, only the policy's approvers, one
vote per person, nothing on a closed request) are the core's; a replayed click is refused there as
a duplicate vote, so it never counts twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from approvals.models import ApprovalError, ApprovalRequest
from approvals.slack.blocks import APPROVE, REASON_BLOCK, REJECT, reject_modal, submitted_reason
from audit.events import SlackClickEvent
from audit.store import Store
from service.decisions import Decisions
from service.login import LOGIN_CONFIRM, LOGIN_DENY, LoginClicks
from service.outbox import Outbox
from service.people import Person, person_for
from service.render import approval_message
from service.slack_settings import SlackConfig

log = logging.getLogger("countersign.serve.slack")


@dataclass(frozen=True)
class Click:
    """What one click did, as recorded in the audit trail."""
    action: str                 # approve | open_reject | reject
    slack_user: str
    request_id: str
    person: str | None
    accepted: bool
    result: str                 # the request's status afterwards, or why it was refused
    refusal: str | None = None  # the refusal's kind (SelfApprovalError, unmapped, ...)


class Listeners:
    def __init__(self, store: Store, decisions: Decisions, outbox: Outbox, config: SlackConfig,
                 on_decision: Callable[[], None] = lambda: None) -> None:
        self.store, self.decisions, self.outbox, self.config = store, decisions, outbox, config
        self.on_decision = on_decision

    # -- the three listeners --------------------------------------------------------------------
    def approve(self, ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        click = self._decide("approve", body["user"]["id"], action.get("value", ""), client,
                             lambda person, rid: self.decisions.approve(rid, person))
        self._answer(click, body, client)

    def open_reject(self, ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        rid = action.get("value", "")
        click = self._decide("open_reject", body["user"]["id"], rid, client,
                             lambda person, r: self.decisions.check_vote(r, person))
        if click.accepted:
            client.views_open(trigger_id=body["trigger_id"], view=reject_modal(rid))
        else:
            self._tell(body, client, click.result)

    def submit_reject(self, ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        reason, rid = submitted_reason(view), view.get("private_metadata", "")
        if not reason:
            ack(response_action="errors", errors={REASON_BLOCK: "Say why: the requester sees this."})
            return
        click = self._decide("reject", body["user"]["id"], rid, client,
                             lambda person, r: self.decisions.reject(r, person, reason))
        if click.accepted:
            ack()
            self._refresh(rid, client)
        else:
            ack(response_action="errors", errors={REASON_BLOCK: click.result[:2000]})

    # -- the steps ------------------------------------------------------------------------------
    def _decide(self, action: str, slack_user: str, rid: str, client: WebClient,
                call: Callable[[str, str], ApprovalRequest]) -> Click:
        who = person_for(client, slack_user, self.config)
        if not isinstance(who, Person):
            click = Click(action, slack_user, rid, None, False, who.why, "unmapped")
        else:
            try:
                request = call(who.name, rid)
                click = Click(action, slack_user, rid, who.name, True, str(request.status))
            except ApprovalError as err:
                click = Click(action, slack_user, rid, who.name, False, str(err), type(err).__name__)
        self._audit(click)
        return click

    def _audit(self, click: Click) -> None:
        session = self._session_of(click.request_id)
        self.store.append(session, SlackClickEvent(
            action=click.action, slack_user=click.slack_user, request_id=click.request_id, person=click.person,
            accepted=click.accepted, result=click.result, refusal=click.refusal))

    def _session_of(self, rid: str) -> str | None:
        try:
            return self.decisions.get(rid).session_id
        except ApprovalError:
            return None

    def _answer(self, click: Click, body: dict, client: WebClient) -> None:
        if click.accepted:
            self._refresh(click.request_id, client)
        else:
            self._tell(body, client, click.result)

    def _refresh(self, rid: str, client: WebClient) -> None:
        """Update the message in place now; the poster's own update from the audit trail follows."""
        self.on_decision()
        posted = self.outbox.posted(f"approval:{rid}")
        if posted is None:
            return
        message = approval_message(self.decisions.get(rid), self.config)
        try:
            client.chat_update(channel=posted.channel, ts=posted.ts, text=message.text, blocks=message.blocks)
        except SlackApiError as err:  # the outbox update retries it
            log.warning("chat.update of request %s failed: %s", rid, err.response.get("error"))

    def _tell(self, body: dict, client: WebClient, text: str) -> None:
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        if channel:
            client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=f":no_entry: {text}")


def build_app(*, client: WebClient, signing_secret: str, listeners: Listeners,
              process_before_response: bool = False, logins: LoginClicks | None = None) -> App:
    """The Bolt app; `client` carries the token and the Web API base URL. Bolt's own auth.test is left to
    the first request, so the service starts (and queues posts) while Slack is unreachable."""
    app = App(client=client, signing_secret=signing_secret, process_before_response=process_before_response,
              token_verification_enabled=False)
    app.action(APPROVE)(listeners.approve)
    app.action(REJECT)(listeners.open_reject)
    app.view(REJECT)(listeners.submit_reject)
    if logins is not None:          # `countersign login`'s question: Yes / No in a direct message
        app.action(LOGIN_CONFIRM)(logins.confirm)
        app.action(LOGIN_DENY)(logins.deny)
    return app

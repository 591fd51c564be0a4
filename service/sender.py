"""Deliver one outbox row to Slack, and say what happened as a value: delivered, retry later, give up."""
from __future__ import annotations

import urllib.error
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from approvals.models import ApprovalError
from service.decisions import Decisions
from service.outbox import Outbox, Posted, Row
from service.render import approval_message
from service.slack_settings import SlackConfig

# Slack errors that say "try again later" rather than "this will never work".
RETRYABLE = frozenset({"ratelimited", "fatal_error", "internal_error", "service_unavailable",
                       "request_timeout", "team_added_to_org"})
BACKOFF_BASE, BACKOFF_CAP = 0.5, 60.0


@dataclass(frozen=True)
class Delivered:
    posted: Posted | None          # None: nothing needed posting (e.g. its parent never existed)


@dataclass(frozen=True)
class RetryLater:
    error: str
    after: float | None            # seconds Slack asked for (Retry-After); None: our own backoff


@dataclass(frozen=True)
class GiveUp:
    error: str


Result = Delivered | RetryLater | GiveUp


def backoff(attempts: int) -> float:
    """Seconds before retry number `attempts + 1`: doubling from BACKOFF_BASE, capped.

    >>> [backoff(n) for n in (0, 1, 2, 10)]
    [0.5, 1.0, 2.0, 60.0]
    """
    return min(BACKOFF_BASE * 2 ** attempts, BACKOFF_CAP)


def classify_error(status: int, error: str, retry_after: str | None) -> Result:
    """What to do about a failed call.

    >>> classify_error(429, "ratelimited", "3"), classify_error(503, "", None)
    (RetryLater(error='ratelimited (HTTP 429)', after=3.0), RetryLater(error=' (HTTP 503)', after=None))
    >>> classify_error(200, "channel_not_found", None)
    GiveUp(error='channel_not_found (HTTP 200)')
    """
    text = f"{error} (HTTP {status})"
    if status == 429:
        return RetryLater(text, float(retry_after) if retry_after and retry_after.isdigit() else None)
    if status >= 500 or error in RETRYABLE:
        return RetryLater(text, None)
    return GiveUp(text)


class Sender:
    def __init__(self, client: WebClient, outbox: Outbox, decisions: Decisions, config: SlackConfig) -> None:
        self.client = client
        self.outbox = outbox
        self.decisions = decisions
        self.config = config

    def deliver(self, row: Row) -> Result:
        try:
            return Delivered(KINDS[row.kind](self, row))
        except SlackApiError as err:
            response = err.response
            return classify_error(response.status_code, str(response.get("error", "")),
                                  response.headers.get("Retry-After") or response.headers.get("retry-after"))
        except (urllib.error.URLError, OSError) as err:   # Slack unreachable: same as a 5xx
            return RetryLater(f"Slack unreachable: {err}", None)
        except ApprovalError as err:                       # the request is gone: nothing to show
            return GiveUp(str(err))

    # -- one function per kind of post ----------------------------------------------------------
    def _message(self, row: Row) -> Posted:
        response = self.client.chat_postMessage(channel=row.channel, **_content(row.payload))
        return Posted(response["channel"], response["ts"])

    def _reply(self, row: Row) -> Posted | None:
        parent = self.outbox.posted(row.thread_key) if row.thread_key else None
        channel = parent.channel if parent else row.channel
        if channel is None:
            return None
        thread = {"thread_ts": parent.ts} if parent else {}
        response = self.client.chat_postMessage(channel=channel, **thread, **_content(row.payload))
        return Posted(response["channel"], response["ts"])

    def _approval(self, row: Row) -> Posted:
        message = approval_message(self.decisions.get(row.payload["request_id"]), self.config)
        response = self.client.chat_postMessage(channel=row.channel, text=message.text, blocks=message.blocks)
        return Posted(response["channel"], response["ts"])

    def _update(self, row: Row) -> Posted | None:
        parent = self.outbox.posted(row.thread_key)
        if parent is None:
            return None
        message = approval_message(self.decisions.get(row.payload["request_id"]), self.config)
        self.client.chat_update(channel=parent.channel, ts=parent.ts, text=message.text, blocks=message.blocks)
        return parent

    def _file(self, row: Row) -> Posted | None:
        parent = self.outbox.posted(row.thread_key)
        if parent is None:
            return None
        request = self.decisions.get(row.payload["request_id"])
        self.client.files_upload_v2(channel=parent.channel, thread_ts=parent.ts, content=self.config.shown(request.statement),
                                    filename=f"countersign-{request.id}.sql", title="The full statement",
                                    initial_comment="The full statement, exactly as it will run:")
        return None


def _content(payload: dict) -> dict:
    return {k: payload[k] for k in ("text", "blocks") if k in payload}


KINDS = {"session_start": Sender._message, "thread_reply": Sender._reply, "approval": Sender._approval,
         "approval_update": Sender._update, "approval_file": Sender._file}

"""Every call the service makes into approvals, in one place, and all of them through the gate: the
rules a Slack click meets are the ones a terminal vote meets (the same gate verbs)."""
from __future__ import annotations

from typing import Callable

from approvals.models import DECIDED, ApprovalRequest, UnknownRequestError

SOURCE = "slack"


class Decisions:
    def __init__(self, gate, on_decided: Callable[[ApprovalRequest], object] = lambda _request: None) -> None:
        self._gate = gate
        self._on_decided = on_decided      # told of each request a vote here decided (the metrics)

    def get(self, request_id: str) -> ApprovalRequest:
        """The request with exactly this id (a button's value is never taken as a prefix)."""
        request = self._gate.request(request_id)
        if request.id != request_id:
            raise UnknownRequestError(f"no approval request {request_id!r}", request_id)
        return request

    def check_vote(self, request_id: str, person: str) -> ApprovalRequest:
        """Raise the refusal `person` would get for voting now, without voting (before a modal opens)."""
        return self._gate.check_vote(self.get(request_id).id, person)

    def approve(self, request_id: str, person: str) -> ApprovalRequest:
        return self._voted(self._gate.vote(self.get(request_id).id, person, "approve", source=SOURCE))

    def reject(self, request_id: str, person: str, reason: str) -> ApprovalRequest:
        return self._voted(self._gate.vote(self.get(request_id).id, person, "reject", comment=reason, source=SOURCE))

    def _voted(self, request: ApprovalRequest) -> ApprovalRequest:
        # A vote on a decided request is refused, so a vote that returns one decided it.
        if request.status in DECIDED:
            self._on_decided(request)
        return request

    def expire_due(self) -> list[str]:
        """Persist the expiry of open requests whose time has passed, so their messages lose their
        buttons even when no console is waiting and nobody clicks; the ids expired."""
        return list(self._gate.expire_due())

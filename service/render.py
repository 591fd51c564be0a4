"""The approval message for a request as it now is: open (with buttons) or decided (without)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from approvals.models import ApprovalRequest
from approvals.slack.blocks import decided_blocks, fallback_text, request_blocks
from service.cards import card_for, decided_for
from service.slack_settings import SlackConfig


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list


def approval_message(request: ApprovalRequest, config: SlackConfig) -> Message:
    card = card_for(replace(request, statement=config.shown(request.statement)), config.policies.get(request.target))
    decided = decided_for(request)
    blocks = request_blocks(card) if decided is None else decided_blocks(card, decided)
    return Message(fallback_text(card), blocks)

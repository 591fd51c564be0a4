"""Who clicked: a Slack user id -> the Countersign person with that work email, or why not."""
from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from service.slack_settings import SlackConfig


@dataclass(frozen=True)
class Person:
    name: str
    slack_user: str


@dataclass(frozen=True)
class Unmapped:
    slack_user: str
    why: str


def person_for(client: WebClient, slack_user: str, config: SlackConfig) -> Person | Unmapped:
    """users.info's profile email, looked up in [people]; bots, deleted users and unknown emails are refused."""
    try:
        user = client.users_info(user=slack_user)["user"]
    except SlackApiError as err:
        return Unmapped(slack_user, f"Slack could not say who you are ({err.response.get('error', 'error')})")
    if user.get("deleted") or user.get("is_bot"):
        return Unmapped(slack_user, "deactivated users and bots cannot decide requests")
    email = user.get("profile", {}).get("email")
    if not email:
        return Unmapped(slack_user, "Slack did not share your email address (the app needs the "
                                    "users:read.email scope); ask an admin")
    name = config.person_for_email(email)
    if name is None:
        return Unmapped(slack_user, "your Slack email is not mapped to one Countersign person in [people]; "
                                    "ask an admin to add you")
    return Person(name, slack_user)

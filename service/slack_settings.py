"""What `countersign serve` needs to know: channels, people, each target's policy, and Slack secrets.

`[slack]` names the channels, `[people]` maps each Countersign user name to a work email (a Slack user
is the person whose email users.info returns), and a policy may send its requests to its own
`slack_channel`. Secrets come only from the environment.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from approvals.names import BadName, canonical, look_alikes
from config.settings import ConfigError, Policy, Settings, load_settings

SLACK_API = "https://slack.com/api/"
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
SLACK_KEYS = {"channel", "audit_channel"}


@dataclass(frozen=True)
class SlackConfig:
    channel: str | None                                  # approval requests
    audit_channel: str | None                            # session announcements and command threads
    people: dict[str, str] = field(default_factory=dict)  # person -> email
    policies: dict[str, Policy] = field(default_factory=dict)  # target name -> its policy
    secret_patterns: tuple[str, ...] = ()                # literals matching these never reach Slack

    def shown(self, statement: str) -> str:
        """A statement as Slack may see it: secret literals redacted (the trail keeps the real text).

        >>> SlackConfig(None, None).shown("ALTER USER bob PASSWORD 'hunter2'")
        "ALTER USER bob PASSWORD '<redacted>'"
        """
        from audit.redact import redact, secret_patterns
        return redact(statement, secret_patterns(self.secret_patterns))

    def approval_channel(self, target: str) -> str | None:
        """The policy's own channel for this target, else [slack] channel.

        >>> SlackConfig("C1", None, policies={"db": Policy(slack_channel="C2")}).approval_channel("db")
        'C2'
        >>> SlackConfig("C1", None).approval_channel("postgresql://h/db")
        'C1'
        """
        policy = self.policies.get(target)
        return (policy.slack_channel if policy and policy.slack_channel else None) or self.channel

    def person_for_email(self, email: str | None) -> str | None:
        """The one person with this email (case-insensitive); None when nobody or several have it.

        >>> SlackConfig(None, None, {"alice": "Alice@Example.com"}).person_for_email("alice@example.com")
        'alice'
        >>> SlackConfig(None, None, {"a": "x@y.z", "b": "x@y.z"}).person_for_email("x@y.z") is None
        True
        """
        if not email:
            return None
        found = [name for name, mail in self.people.items() if mail.lower() == email.strip().lower()]
        return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class SlackSecrets:
    bot_token: str
    signing_secret: str | None
    app_token: str | None
    api_url: str


def slack_config(data: dict, settings: Settings) -> SlackConfig:
    """[slack] and [people] from the parsed TOML; every problem at once in one ConfigError."""
    slack, people = data.get("slack", {}), data.get("people", {})
    errors = [f"[slack]: unknown setting {k!r}; known: {', '.join(sorted(SLACK_KEYS))}"
              for k in sorted(set(slack) - SLACK_KEYS)]
    errors += [f"[slack] {k}: {slack[k]!r} is not a Slack channel id (like C0123ABCD)"
               for k in sorted(SLACK_KEYS & set(slack)) if not CHANNEL_ID.fullmatch(str(slack[k]))]
    errors += [f"[people] {name}: {mail!r} is not an email address" for name, mail in people.items()
               if not isinstance(mail, str) or not EMAIL.fullmatch(mail)]
    errors += [f"[policies] of target {name}: slack_channel {t.policy.slack_channel!r} is not a Slack channel id"
               for name, t in settings.targets.items()
               if t.policy.slack_channel and not CHANNEL_ID.fullmatch(t.policy.slack_channel)]
    errors += people_problems(people, settings)
    if errors:
        raise ConfigError("\n".join(errors))
    return SlackConfig(slack.get("channel"), slack.get("audit_channel"), dict(people),
                       {name: t.policy for name, t in settings.targets.items()}, settings.secret_patterns)


def people_problems(people: dict, settings: Settings) -> list[str]:
    """One person is one name. Each [people] name is written the one way the rules compare it, no two
    look alike and no two share an email (one Slack account would be two people); and when [people] is
    set, every admin, auditor and policy approver is one of them, spelled the same.

    >>> for line in people_problems({"Alice": "a@x.io", "a1ice": "b@x.io", "bob": "A@x.io"}, Settings(None, {})):
    ...     print(line)
    [people] 'Alice': write it as 'alice' (names are compared in lower case, Unicode NFKC)
    [people] 'Alice' and 'a1ice' look alike: one could pass for the other; rename one
    [people] 'Alice', 'bob' share the email 'a@x.io': one Slack account cannot be two people
    """
    errors = []
    for name in people:
        spelled = _canonical(name)
        if isinstance(spelled, BadName):
            errors.append(f"[people] {spelled}")
        elif spelled != name:
            errors.append(f"[people] {name!r}: write it as {spelled!r} (names are compared in lower case, "
                          "Unicode NFKC)")
    spelled_right = [name for name in people if not isinstance(_canonical(name), BadName)]   # the rest are named above
    errors += [f"[people] {a!r} and {b!r} look alike: one could pass for the other; rename one"
               for a, b in look_alikes(spelled_right)]
    by_email: dict[str, list[str]] = {}
    for name, mail in people.items():
        if isinstance(mail, str):
            by_email.setdefault(mail.strip().lower(), []).append(name)
    errors += [f"[people] {', '.join(map(repr, names))} share the email {mail!r}: one Slack account cannot be "
               "two people" for mail, names in by_email.items() if len(names) > 1]
    if not people:
        return errors
    named = [("[server] admins", n) for n in settings.server.admins]
    named += [("[server] auditors", n) for n in settings.server.auditors]
    policies = {t.policy.name: t.policy for t in settings.targets.values()}
    named += [(f"[policies.{p.name}] approvers", n) for p in policies.values() for n in p.approvers]
    for where, name in named:
        spelled = _canonical(name)
        if isinstance(spelled, BadName):
            errors.append(f"{where}: {spelled}")
        elif spelled not in people:
            errors.append(f"{where}: {name!r} is not in [people]; add them there (with their work email) "
                          "or remove them here")
        elif spelled != name:
            errors.append(f"{where}: write {name!r} as {spelled!r}, as in [people]")
    return errors


def _canonical(name) -> str | BadName:
    try:
        return canonical(name)
    except BadName as err:
        return err


def load(path: Path | None, env: dict[str, str]) -> tuple[Settings, SlackConfig]:
    settings = load_settings(path, env)
    data = tomllib.loads(path.read_text()) if path is not None else {}
    return settings, slack_config(data, settings)


def secrets(env: dict[str, str], *, socket_mode: bool) -> SlackSecrets:
    """The Slack secrets from the environment; a missing one is named."""
    missing = [name for name in ("SLACK_BOT_TOKEN",) + (("SLACK_APP_TOKEN",) if socket_mode
                                                        else ("SLACK_SIGNING_SECRET",))
               if not env.get(name)]
    if missing:
        raise ConfigError(f"set {' and '.join(missing)} in the environment (secrets never live in the config file)")
    api = env.get("COUNTERSIGN_SLACK_API_URL") or SLACK_API
    return SlackSecrets(env["SLACK_BOT_TOKEN"], env.get("SLACK_SIGNING_SECRET"), env.get("SLACK_APP_TOKEN"),
                        api if api.endswith("/") else api + "/")

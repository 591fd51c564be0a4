"""Redaction of secret literals in SQL text, for everything that shows or keeps a statement for people:
the shell's history file, and the display of the trail, approvals and snapshots. PURE.

A literal is secret when its own text matches one of the patterns, or when it is assigned to or
compared with a name that matches (`password = '...'`, `token IN ('...', ...)`, `LIKE`). A literal
that is not tied to any name that way (`VALUES ('bob', 'hunter2')`, `crypt('hunter2', ...)`,
`PASSWORD '...'`) is secret when its statement names anything that matches: we cannot tell which
name it belongs to, so it is redacted — the view loses a little, the secret is never shown.

>>> redact("UPDATE users SET password = 'hunter2' WHERE name = 'bob'", ("password",))
"UPDATE users SET password = '<redacted>' WHERE name = 'bob'"
>>> redact("SELECT 'sk_live_abc'", (r"sk_live_\\w+",))
"SELECT '<redacted>'"
>>> redact("INSERT INTO users (name, password) VALUES ('bob', crypt('hunter2', 'bf')); SELECT 'ok'", ("password",))
"INSERT INTO users (name, password) VALUES ('<redacted>', crypt('<redacted>', '<redacted>')); SELECT 'ok'"
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Used when the configuration sets no [history] secret_patterns. Each is searched (ignoring case) in
# names and in literals: the first group names columns that hold secrets (`password`, `api_key`,
# `user_password_hash`, `reset_token`), the others are well-known credential formats.
DEFAULT_SECRET_PATTERNS = (
    r"(^|_)(password|passwd|pwd|passphrase|secret|token|api_?key|access_?key|private_?key|secret_?key|"
    r"credentials?)(_|$)",
    r"^(sk|pk|rk)_(live|test)_\w+",        # Stripe
    r"^gh[pousr]_\w{20,}",                 # GitHub
    r"^AKIA[0-9A-Z]{16}$",                 # AWS access key id
    r"^xox[abprs]-",                       # Slack
)

# The payload fields of audit events that hold statement text.
STATEMENT_FIELDS = ("text", "statement")


def secret_patterns(configured: tuple[str, ...]) -> tuple[str, ...]:
    """The configured patterns, or the defaults when the configuration sets none.

    >>> secret_patterns(("pin",)), secret_patterns(()) == DEFAULT_SECRET_PATTERNS
    (('pin',), True)
    >>> redact("UPDATE users SET api_key = 'k-123', name = 'bob' WHERE id = 7", secret_patterns(()))
    "UPDATE users SET api_key = '<redacted>', name = 'bob' WHERE id = 7"
    """
    return tuple(configured) or DEFAULT_SECRET_PATTERNS


def redact_payload(payload, patterns: tuple[str, ...] | tuple[re.Pattern, ...], dialect: str | None = None):
    """An audit event's payload with the statement text in it redacted; anything else unchanged.

    >>> redact_payload({"kind": "write", "text": "UPDATE u SET token = 'abc'"}, ("token",))
    {'kind': 'write', 'text': "UPDATE u SET token = '<redacted>'"}
    """
    if not isinstance(payload, dict):   # an edited trail can hold any JSON
        return payload
    return {key: redact(value, patterns, dialect) if key in STATEMENT_FIELDS and isinstance(value, str) else value
            for key, value in payload.items()}


REDACTED = "'<redacted>'"

# One alternative per token kind; the first that matches at a position wins. Unterminated quotes and
# comments run to the end of the text, so an unfinished literal is still treated as a literal.
_TOKEN = re.compile(r"""
    (?P<dollar>\$(?P<tag>[A-Za-z_]\w*|)\$.*?(?:\$(?P=tag)\$|\Z))
  | (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*.*?(?:\*/|\Z))
  | (?P<estring>[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z))
  | (?P<string>'(?:[^']|'')*(?:'|\Z))
  | (?P<dquote>"(?:[^"]|"")*(?:"|\Z))
  | (?P<backtick>`(?:[^`]|``)*(?:`|\Z))
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<semicolon>;)
  | (?P<compare>:=|<>|!=|<=|>=|=|<|>)
  | (?P<space>\s+)
  | (?P<other>.)
""", re.S | re.X)
_DOLLAR_BODY = re.compile(r"\$(\w*)\$(.*?)(?:\$\1\$)?\Z", re.S)

LITERALS = ("dollar", "estring", "string")
NAMES = ("word", "dquote", "backtick")
COMMENTS = ("line_comment", "block_comment")


class SecretPatternError(ValueError):
    """A configured secret pattern is not a valid regular expression."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def compile_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as err:
            raise SecretPatternError(f"[history] secret_patterns: {pattern!r} is not a valid regex ({err})") from None
    return tuple(compiled)


def tokenize(text: str, dialect: str | None = None) -> list[Token]:
    """The text as tokens; joined back together they give the text exactly.

    >>> [t.kind for t in tokenize("a = 'x'") if t.kind != "space"]
    ['word', 'compare', 'string']
    """
    from classify.complete import string_literal
    found, pos, strings = [], 0, string_literal(dialect)
    while pos < len(text):
        quoted = strings is not None and strings.match(text, pos)
        if quoted:
            found.append(Token("string", quoted.group(0)))
            pos = quoted.end()
            continue
        match = _TOKEN.match(text, pos)
        found.append(Token(match.lastgroup if match.lastgroup != "tag" else "dollar", match.group(0)))
        pos = match.end()
    return found


def redact(text: str, patterns: tuple[str, ...] | tuple[re.Pattern, ...], dialect: str | None = None) -> str:
    if not patterns:
        return text
    compiled = compile_patterns(patterns) if isinstance(patterns[0], str) else patterns
    pieces: list[str] = []
    for segment in _statements(tokenize(text, dialect)):
        pieces.extend(_redact_statement(segment, compiled))
    return "".join(pieces)


def _statements(tokens: list[Token]) -> list[list[Token]]:
    segments: list[list[Token]] = [[]]
    for token in tokens:
        segments[-1].append(token)
        if token.kind == "semicolon":
            segments.append([])
    return segments


def _redact_statement(tokens: list[Token], patterns: tuple[re.Pattern, ...]) -> list[str]:
    names_secret = any(t.kind in NAMES and _matches(patterns, _inner(t)) for t in tokens)
    out: list[str] = []
    seen: list[Token] = []   # significant tokens so far (no blanks or comments)
    for token in tokens:
        if token.kind in LITERALS + ("number",):
            out.append(REDACTED if _secret_value(token, seen, patterns, names_secret) else token.text)
        elif token.kind in COMMENTS and _matches(patterns, token.text):
            out.append("-- <redacted>" if token.kind == "line_comment" else "/* <redacted> */")
        else:
            out.append(token.text)
        if token.kind != "space" and token.kind not in COMMENTS:
            seen.append(token)
    return out


def _secret_value(token: Token, seen: list[Token], patterns: tuple[re.Pattern, ...], names_secret: bool) -> bool:
    if token.kind != "number" and _matches(patterns, _inner(token)):
        return True
    name = _associated_name(seen)
    if name is not None:
        return _matches(patterns, _inner(name))
    return names_secret and token.kind != "number"   # tied to no name: fail closed (strings only)


def _associated_name(seen: list[Token]) -> Token | None:
    """The name the next value is assigned to or compared with: `name =`, `name LIKE`, `name [NOT] IN (..., `."""
    last = len(seen) - 1
    if last >= 0 and (seen[last].kind == "compare" or _is_word(seen[last], "LIKE", "ILIKE")):
        return _name_before(seen, last)
    start = last
    while start >= 0 and (seen[start].kind in LITERALS + ("number",) or seen[start].text == ","):
        start -= 1   # back over the values already in an IN list
    if start >= 1 and seen[start].text == "(" and _is_word(seen[start - 1], "IN"):
        return _name_before(seen, start - 1)
    return None


def _name_before(seen: list[Token], index: int) -> Token | None:
    if index >= 1 and _is_word(seen[index - 1], "NOT"):
        index -= 1
    return seen[index - 1] if index >= 1 and seen[index - 1].kind in NAMES else None


def _is_word(token: Token, *words: str) -> bool:
    return token.kind == "word" and token.text.upper() in words


def _inner(token: Token) -> str:
    """What is between the quotes (an unterminated literal keeps all of its text)."""
    if token.kind == "dollar":
        match = _DOLLAR_BODY.match(token.text)
        return match.group(2) if match else token.text
    if token.kind in ("string", "estring", "dquote", "backtick"):
        body = token.text.lstrip("Ee")
        quote = body[0]
        return body[1:-1] if len(body) > 1 and body.endswith(quote) else body[1:]
    return token.text


def _matches(patterns: tuple[re.Pattern, ...], text: str) -> bool:
    return any(p.search(text) for p in patterns)

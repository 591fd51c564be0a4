"""People's names as the approval rules compare them: one person is one name, however it is typed.

Separation of duties compares names: the requester may not approve, N approvals need N people. A
name typed with another case, a compatibility form (a full-width letter), a zero-width space or a
letter from another script that looks the same would otherwise count as a second person. So every
name is canonicalised (Unicode NFKC, case-folded) and must then be a plain login name; and a name
that *looks like* another person's (``a1ice`` next to ``alice``, ``rnallory`` next to ``mallory``) is
refused where people are configured and where a vote is cast.

>>> canonical("Alice"), canonical("ａｌｉｃｅ")
('alice', 'alice')
>>> try:
...     canonical("al\\u200bice")
... except BadName as err:
...     print(err)
'al\\u200bice' is not a person's name: use letters a-z, digits and . _ - @ only (it holds '\\u200b')
>>> looks_like("a1ice", "alice"), looks_like("bob", "carol"), looks_like("al\\u200bice", "alice")
(True, False, True)
"""
from __future__ import annotations

import re
import unicodedata

NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,199}")


class BadName(ValueError):
    """A name that cannot stand for one person; the message says what to use instead."""


def canonical(name: str) -> str:
    """NFKC, case-folded, stripped; anything but a plain login name is refused, never cleaned up:
    silently dropping an invisible character would make two typed names one person without saying so."""
    folded = unicodedata.normalize("NFKC", str(name)).casefold().strip()
    if not NAME.fullmatch(folded):
        odd = next((c for c in folded if not re.fullmatch(r"[a-z0-9._@-]", c)), None)
        held = f" (it holds {odd!r})" if odd else ""
        raise BadName(f"{name!r} is not a person's name: use letters a-z, digits and . _ - @ only{held}")
    return folded


def looks_like(name: str, other: str) -> bool:
    """Whether two names could be mistaken for each other on a screen (Unicode's confusables data,
    which also knows the ASCII ones: 1/l/I, 0/O, rn/m)."""
    import confusables
    a, b = _folded(name), _folded(other)
    return a == b or bool(confusables.is_confusable(a, b))


def look_alikes(names: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """Every pair of distinct configured names that could be mistaken for each other.

    >>> look_alikes(["alice", "a1ice", "bob"])
    [('alice', 'a1ice')]
    """
    names = list(names)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if looks_like(a, b)]


def _folded(name: str) -> str:
    # Invisible format characters (zero-width space, joiners, bidi marks) change no glyph: drop them
    # before comparing, or "al<ZWSP>ice" would not look like "alice".
    text = unicodedata.normalize("NFKC", str(name)).casefold().strip()
    return "".join(c for c in text if unicodedata.category(c) != "Cf")

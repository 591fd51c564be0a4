"""Untrusted text made safe and honest for Slack. PURE.

Slack's mrkdwn treats `&`, `<` and `>` as control characters (`<@U123>` mentions, `<url|label>` links),
so names, reasons and targets are escaped. Control, format (bidi overrides, zero-width) and unusual
space characters are shown as `\\uXXXX`, because a reviewer must see exactly what will run: a U+202E
can make `DELETE ... WHERE id = 1` display as something else, and a non-ASCII space after `--` ends a
comment for one lexer and not for another.
"""
from __future__ import annotations

import unicodedata

# Categories shown as escapes: controls, format characters (bidi, zero-width), line/paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})


def visible(text: str, *, keep_newlines: bool = True) -> str:
    r"""Every character that would not print as itself, as a `\uXXXX` escape.

    >>> visible("id = 1\u202e -- x")
    'id = 1\\u202e -- x'
    >>> visible("a\u00a0b\tc\nd")
    'a\\u00a0b\tc\nd'
    >>> visible("a\nb", keep_newlines=False)
    'a\\u000ab'
    """
    return "".join(_visible_char(c, keep_newlines) for c in text)


def _visible_char(char: str, keep_newlines: bool) -> str:
    if char == "\n" and keep_newlines or char in (" ", "\t"):
        return char
    category = unicodedata.category(char)
    if category in _HIDDEN_CATEGORIES or (category == "Zs" and char != " "):
        code = ord(char)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char


def escape(text: str) -> str:
    r"""Text for a mrkdwn field: Slack's three control characters escaped, hidden characters shown.

    >>> escape("<!channel> & <@U1|x>")
    '&lt;!channel&gt; &amp; &lt;@U1|x&gt;'
    >>> escape("bob\u2066")
    'bob\\u2066'
    """
    safe = visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return safe


def one_line(text: str, width: int = 200) -> str:
    r"""A single escaped line, cut at `width` characters (for names, notification text).

    >>> one_line("UPDATE t\nSET a = 1")
    'UPDATE t\\u000aSET a = 1'
    >>> one_line("x" * 30, 10)
    'xxxxxxxxx…'
    """
    flat = escape(text.replace("\r", "")).replace("\n", "\\u000a")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def plain(text: str, width: int = 150) -> str:
    r"""Text for a plain_text field (headers, buttons, modal titles): no mrkdwn, hidden characters shown.

    >>> plain("Approve\u200b", 20)
    'Approve\\u200b'
    """
    flat = visible(text, keep_newlines=False)
    return flat if len(flat) <= width else flat[: width - 1] + "…"

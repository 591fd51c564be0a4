"""Statement text from a file, stdin or the command line, as UTF-8 or a clear error.

Every parser downstream (pglast, sqlglot, tree-sitter) and the audit trail need real text: bytes that
are not UTF-8 are refused at the edge with where they are, never passed on as lone surrogates.
"""
from __future__ import annotations

from console.errors import UsageError


def decoded(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text, or a UsageError naming the first bad byte.

    >>> decoded(b"SELECT 1", "x.sql")
    'SELECT 1'
    >>> decoded(b"SELECT \\xff", "x.sql")
    Traceback (most recent call last):
    ...
    console.errors.UsageError: x.sql is not UTF-8 text (byte 0xff at offset 7); convert it to UTF-8 (e.g. with iconv -t UTF-8)
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{source} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                         "convert it to UTF-8 (e.g. with iconv -t UTF-8)") from None


def checked(text: str, source: str) -> str:
    """``text`` unchanged when it is valid Unicode; bytes smuggled in as surrogates (a non-UTF-8
    command line) are refused like a non-UTF-8 file.

    >>> checked("SELECT \\udcff", "the command")
    Traceback (most recent call last):
    ...
    console.errors.UsageError: the command is not UTF-8 text (byte 0xff at offset 7); convert it to UTF-8 (e.g. with iconv -t UTF-8)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        try:
            return decoded(text.encode("utf-8", "surrogateescape"), source)
        except UnicodeEncodeError:   # a surrogate that stands for no byte (e.g. "\ud800" in JSON)
            raise UsageError(f"{source} is not valid Unicode (a lone surrogate at offset {err.start}); "
                             "send UTF-8 text") from None
    return text

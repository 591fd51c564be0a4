"""BSON values -> mongosh text that console/mongo_values.py reads back into the same BSON bytes.
PURE: no I/O. Restore statements embed snapshot documents this way, so every type a document can hold
round-trips exactly: int32 stays a bare number, int64 becomes NumberLong("..."), doubles keep a dot,
datetimes keep their milliseconds, binaries keep their subtype.

>>> to_shell({"_id": bson.ObjectId("5f1d7a2b9c8e4a0012345678"), "n": bson.Int64(5), "x": 1.0})
'{"_id": ObjectId("5f1d7a2b9c8e4a0012345678"), "n": NumberLong("5"), "x": 1.0}'
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import uuid
from typing import Any, Callable

import bson
from bson.datetime_ms import DatetimeMS

from classify.mongosh.values import INT32


def to_shell(value: Any) -> str:
    """mongosh text for a BSON value, read back by ``literal`` into the same BSON bytes.

    >>> to_shell([1, 2**40, "é\\n", None, True, float("-inf")])
    '[1, NumberLong("1099511627776"), "é\\\\n", null, true, -Infinity]'
    """
    writer = _WRITERS.get(type(value))
    if writer is not None:
        return writer(value)
    for cls, write in _WRITERS_BY_BASE:
        if isinstance(value, cls):
            return write(value)
    raise ValueError(f"a {type(value).__name__} value cannot be written as a mongosh literal")


def _write_str(text: str) -> str:
    # JSON escapes are JavaScript escapes; U+2028/2029 are escaped too so no line ever breaks.
    return json.dumps(text, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _write_int(number: int) -> str:
    if INT32[0] <= number <= INT32[1] and type(number) is int:
        return str(number)
    return f'NumberLong("{int(number)}")'


def _write_float(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    text = repr(number)
    return text if any(c in text for c in ".e") else text + ".0"


def _write_dict(doc: dict) -> str:
    return "{" + ", ".join(f"{_write_str(str(k))}: {to_shell(v)}" for k, v in doc.items()) + "}"


def _write_date(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    utc = value.astimezone(dt.timezone.utc)
    return (f'ISODate("{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:'
            f'{utc.second:02d}.{utc.microsecond // 1000:03d}Z")')


def _write_binary(value: bytes) -> str:
    subtype = value.subtype if isinstance(value, bson.Binary) else 0
    if subtype == 4 and len(value) == 16:
        return f'UUID("{uuid.UUID(bytes=bytes(value))}")'
    return f'BinData({subtype}, "{base64.b64encode(bytes(value)).decode()}")'


def _write_code(code: bson.Code) -> str:
    if code.scope is None:
        return f"Code({_write_str(str(code))})"
    return f"Code({_write_str(str(code))}, {_write_dict(code.scope)})"


_WRITERS: dict[type, Callable[[Any], str]] = {
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
    str: _write_str,
    int: _write_int,
    bson.Int64: lambda v: f'NumberLong("{int(v)}")',
    float: _write_float,
    dict: _write_dict,
    list: lambda v: "[" + ", ".join(to_shell(x) for x in v) + "]",
    tuple: lambda v: "[" + ", ".join(to_shell(x) for x in v) + "]",
    bson.ObjectId: lambda v: f'ObjectId("{v}")',
    dt.datetime: _write_date,
    DatetimeMS: lambda v: f"new Date({int(v)})",
    bson.Decimal128: lambda v: f'NumberDecimal("{v}")',
    uuid.UUID: lambda v: f'UUID("{v}")',
    bson.Timestamp: lambda v: f"Timestamp({v.time}, {v.inc})",
    bson.MinKey: lambda v: "MinKey()",
    bson.MaxKey: lambda v: "MaxKey()",
    bson.Regex: lambda v: f"RegExp({_write_str(v.pattern)}, {_write_str(_regex_flags(v.flags))})",
    bson.DBRef: lambda v: _write_dict(v.as_doc()),
    bson.Code: _write_code,
}
_WRITERS_BY_BASE: tuple[tuple[type, Callable[[Any], str]], ...] = (
    (bool, _WRITERS[bool]), (bson.Int64, _WRITERS[bson.Int64]), (int, _write_int), (float, _write_float),
    (str, _write_str),
    (bytes, _write_binary), (dict, _write_dict), (list, _WRITERS[list]), (dt.datetime, _write_date),
)


def _regex_flags(flags: int | str) -> str:
    if isinstance(flags, str):
        return flags
    letters = {re.IGNORECASE: "i", re.MULTILINE: "m", re.DOTALL: "s", re.UNICODE: "u", re.VERBOSE: "x"}
    return "".join(letter for bit, letter in letters.items() if flags & bit)

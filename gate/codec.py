"""Every value that crosses the gate, as JSON and back — exactly.

The gate's values are frozen dataclasses, enums, tuples and the database's own values (dates,
decimals, bytes, MongoDB's BSON types). ``encode`` turns them into plain JSON data with a small tag
where JSON has no type of its own; ``decode`` gives back an equal value of the same type. A service
speaks this format over HTTP; ``JsonRoundTrip`` puts it between a front end and an in-process gate,
so the tests prove no front end depends on sharing objects with the gate.

>>> from decimal import Decimal
>>> decode(json.loads(json.dumps(encode((1, Decimal("2.50"), b"x", [None]))))) == (1, Decimal("2.50"), b"x", [None])
True
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def registry() -> dict[str, type]:
    """The dataclasses and enums that may cross the gate, by name (decoding builds nothing else)."""
    from approvals import models
    from classify.statements import Kind, Statement
    from engines.base import Catalog, Column, ResultSet, Table
    from gate import api
    kinds = (api.Status, api.SessionInfo, api.Outcome, api.Awaiting, api.RequestState, api.RestorePlan,
             Kind, Statement, ResultSet, Catalog, Table, Column,
             models.ApprovalRequest, models.Vote, models.Status, models.Verdict)
    return {_name(kind): kind for kind in kinds}


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)) and not isinstance(value, Enum):
        return value
    if isinstance(value, Enum):
        return {"$enum": _name(type(value)), "value": value.value}
    if dataclasses.is_dataclass(value):
        return {"$type": _name(type(value)),
                "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}
    return _encode_scalar(value)


def _encode_scalar(value: Any) -> Any:
    for tag, kind, to_text, _ in SCALARS:
        if type(value) is kind:
            return {tag: to_text(value)}
    if type(value).__module__.startswith("bson"):
        from bson import json_util
        return {"$bson": json_util.dumps({"v": value}, json_options=json_util.CANONICAL_JSON_OPTIONS)}
    raise TypeError(f"{type(value).__name__} cannot cross the gate")


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$type" in data:
        return registry()[data["$type"]](**{k: decode(v) for k, v in data["fields"].items()})
    if "$enum" in data:
        return registry()[data["$enum"]](data["value"])
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$dict" in data:
        return {decode(k): decode(v) for k, v in data["$dict"]}
    if "$bson" in data:
        from bson import json_util
        return json_util.loads(data["$bson"])["v"]
    (tag, text), = data.items()
    return next(from_text for t, _, _, from_text in SCALARS if t == tag)(text)


SCALARS = (   # tag, exact type, to JSON text, back
    ("$datetime", dt.datetime, dt.datetime.isoformat, dt.datetime.fromisoformat),
    ("$date", dt.date, dt.date.isoformat, dt.date.fromisoformat),
    ("$time", dt.time, dt.time.isoformat, dt.time.fromisoformat),
    ("$timedelta", dt.timedelta, lambda v: [v.days, v.seconds, v.microseconds], lambda p: dt.timedelta(*p)),
    ("$decimal", Decimal, str, Decimal),
    ("$bytes", bytes, lambda v: base64.b64encode(v).decode(), base64.b64decode),
    ("$memoryview", memoryview, lambda v: base64.b64encode(bytes(v)).decode(), base64.b64decode),
    ("$uuid", uuid.UUID, str, uuid.UUID),
)


def round_trip(value: Any) -> Any:
    return decode(json.loads(json.dumps(encode(value))))


class JsonRoundTrip:
    """A gate whose every call and every returned value (and error) crosses JSON, as over a network."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, verb: str):
        method = getattr(self.inner, verb)
        if not callable(method):
            raise AttributeError(verb)

        def call(*args, **kwargs):
            args, kwargs = round_trip(args), round_trip(kwargs)
            try:
                result = method(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the error crosses too, by class and message only
                raise _copy(err) from None
            return round_trip(result)
        return call


def _copy(err: Exception) -> Exception:
    try:
        return type(err)(str(err))
    except Exception:  # noqa: BLE001 - an error class with another constructor: keep the original
        return err

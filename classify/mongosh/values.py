"""mongosh literals -> BSON-ready Python values. PURE: no I/O.

``literal(node, source)`` turns one tree-sitter-javascript node into the value pymongo would send
(console/mongo_to_shell.py is the way back). Only literals are accepted: anything whose
value depends on when or where it runs (``new Date()``, ``ObjectId()``, variables, functions,
arithmetic) raises MongoParseError, because Countersign approves, snapshots and audits the exact
values that will be sent.

Numbers stay exact: ``9007199254740993`` is that integer (a JavaScript double could not hold it);
integers that fit 32 bits are int32, larger ones int64, as pymongo stores them. (Real mongosh reads
every bare number as a double; here a bare ``1`` is an int32, a bare ``1.0`` a double.)
"""
from __future__ import annotations

import base64
import datetime as dt
import math
import re
import uuid
from typing import Any, Callable

import bson
from bson.datetime_ms import DatetimeMS

INT32 = (-2**31, 2**31 - 1)
INT64 = (-2**63, 2**63 - 1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_REGEX_FLAGS = set("imsux")
_SUPPORTED = ("objects, arrays, strings, numbers, true/false/null, regular expressions, ObjectId(\"...\"), "
              "ISODate(\"...\"), NumberLong/NumberInt/NumberDecimal(\"...\"), UUID(\"...\"), Timestamp(t, i), "
              "MinKey(), MaxKey()")


class MongoParseError(Exception):
    """The text is not a mongosh command Countersign understands. ``position`` is a character offset
    into the statement (None when the problem is the statement as a whole)."""

    def __init__(self, message: str, position: int | None = None, text: str = "") -> None:
        self.message = message
        self.position = position
        where = ""
        if position is not None:
            line = text.count("\n", 0, position) + 1
            column = position - (text.rfind("\n", 0, position) + 1) + 1
            where = f" (line {line}, column {column})"
        super().__init__(f"{message}{where}")


class Source:
    """The statement text with tree-sitter's byte offsets mapped back to characters, for errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8")

    def char_offset(self, byte_offset: int) -> int:
        return len(self.data[:byte_offset].decode("utf-8", errors="ignore"))

    def error(self, node, message: str) -> MongoParseError:
        return MongoParseError(message, self.char_offset(node.start_byte), self.text)

    def raw(self, node) -> str:
        return self.data[node.start_byte:node.end_byte].decode("utf-8")


# ---------------------------------------------------------------- text -> values

def literal(node, src: Source) -> Any:
    """The BSON-ready value of one literal node; MongoParseError for anything that is not a literal."""
    kind = node.type
    if kind == "parenthesized_expression":
        return literal(_only_child(node, src), src)
    handler = _LITERALS.get(kind)
    if handler is not None:
        return handler(node, src)
    raise src.error(node, _not_literal(node, src))


def elements(node, src: Source) -> list:
    """The named children of an array or an argument list, refusing holes (``[1,,2]``) and spreads."""
    items, expect_value = [], True
    for child in node.children:
        if child.type in ("comment", "[", "]", "(", ")"):
            continue
        if child.type == ",":
            if expect_value:
                raise src.error(child, "an empty element (two commas in a row) is not supported")
            expect_value = True
            continue
        if child.type == "spread_element":
            raise src.error(child, "spread (...) is not supported: write the values themselves")
        if not expect_value:
            raise src.error(child, "a comma is missing between two values")
        items.append(child)
        expect_value = False
    return items


def _only_child(node, src: Source):
    children = [c for c in node.named_children if c.type != "comment"]
    if len(children) != 1:
        raise src.error(node, "expected exactly one value in parentheses")
    return children[0]


def _not_literal(node, src: Source) -> str:
    kind = node.type
    if kind in ("arrow_function", "function_expression", "function", "generator_function"):
        return "a function is not supported: Countersign sends only literal values, never code"
    if kind in ("identifier", "shorthand_property_identifier"):
        return f"variable {src.raw(node)!r} is not supported: write the value itself"
    if kind == "template_string":
        return "a template string with ${...} is not supported: write the string itself"
    if kind in ("binary_expression", "unary_expression", "update_expression", "ternary_expression",
                "assignment_expression", "augmented_assignment_expression"):
        return f"an expression ({src.raw(node)[:40]}) is not supported: write the resulting value"
    if kind == "undefined":
        return "undefined is not supported: use null, or leave the field out"
    return f"{kind.replace('_', ' ')} is not supported here; only literal values are ({_SUPPORTED})"


def _object(node, src: Source) -> dict:
    out: dict[str, Any] = {}
    for child in node.named_children:
        if child.type == "comment":
            continue
        if child.type != "pair":
            raise src.error(child, _not_literal(child, src) if child.type != "spread_element"
                            else "spread (...) is not supported: write the fields themselves")
        key_node = child.child_by_field_name("key")
        key = _key(key_node, src)
        if key in out:
            raise src.error(key_node, f"the field {key!r} appears twice in one object; keep one")
        out[key] = literal(child.child_by_field_name("value"), src)
    return out


def _key(node, src: Source) -> str:
    if node.type == "property_identifier":
        return src.raw(node)
    if node.type == "string":
        return _string(node, src)
    if node.type == "number":
        value = _number_text(src.raw(node), node, src)
        if isinstance(value, int):
            return str(value)
    raise src.error(node, "a computed or non-literal field name is not supported: write the name as a string")


def _array(node, src: Source) -> list:
    return [literal(item, src) for item in elements(node, src)]


def _string(node, src: Source) -> str:
    raw = src.raw(node)
    return unescape(raw[1:-1], node, src)


def _template(node, src: Source) -> str:
    if any(c.type == "template_substitution" for c in node.children):
        raise src.error(node, _not_literal(node, src))
    return unescape(src.raw(node)[1:-1], node, src)


_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|0(?![0-9])|[\s\S])")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0",
                   "\n": "", "\r": "", "\r\n": "", "\u2028": "", "\u2029": ""}


def unescape(body: str, node, src: Source) -> str:
    """JavaScript string escapes, including surrogate pairs written as two ``\\uXXXX``."""
    def replace(match: re.Match) -> str:
        esc = match.group(1)
        if esc in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc]
        if esc[0] == "u" and len(esc) > 1:
            code = int(esc[2:-1] if esc[1] == "{" else esc[1:], 16)
            if code > 0x10FFFF:
                raise src.error(node, f"\\{esc} is not a Unicode code point")
            return chr(code)
        if esc[0] == "x" and len(esc) == 3:
            return chr(int(esc[1:], 16))
        if esc in ("u", "x") or esc.isdigit():
            raise src.error(node, f"the escape \\{esc} is not supported (octal or malformed); use \\uXXXX")
        return esc
    return _pair_surrogates(_ESCAPE.sub(replace, body), node, src)


def _pair_surrogates(text: str, node, src: Source) -> str:
    if not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return text
    out, i = [], 0
    while i < len(text):
        code = ord(text[i])
        if 0xD800 <= code <= 0xDBFF and i + 1 < len(text) and 0xDC00 <= ord(text[i + 1]) <= 0xDFFF:
            out.append(chr(0x10000 + ((code - 0xD800) << 10) + (ord(text[i + 1]) - 0xDC00)))
            i += 2
            continue
        if 0xD800 <= code <= 0xDFFF:
            raise src.error(node, "the string holds a lone UTF-16 surrogate, which BSON cannot store")
        out.append(text[i])
        i += 1
    return "".join(out)


def _number(node, src: Source) -> int | float:
    return _int_or_float(_number_text(src.raw(node), node, src), node, src)


def _number_text(raw: str, node, src: Source) -> int | float:
    text = raw.replace("_", "")
    lowered = text.lower()
    if lowered.endswith("n"):
        raise src.error(node, "BigInt literals are not supported: use NumberLong(\"...\")")
    try:
        for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
            if lowered.startswith(prefix):
                return int(text[2:], base)
        if re.fullmatch(r"0[0-9]+", text):
            raise src.error(node, "legacy octal numbers (leading 0) are not supported; write it in decimal")
        return int(text) if re.fullmatch(r"[0-9]+", text) else float(text)
    except ValueError:
        raise src.error(node, f"{raw!r} is not a number Countersign can read") from None


def _int_or_float(value: int | float, node, src: Source) -> int | float:
    if isinstance(value, float):
        return value
    if INT32[0] <= value <= INT32[1]:
        return value
    if INT64[0] <= value <= INT64[1]:
        return bson.Int64(value)
    raise src.error(node, f"{value} does not fit in 64 bits; use NumberDecimal(\"{value}\") or a double")


def _unary(node, src: Source) -> int | float:
    operator = src.raw(node.child_by_field_name("operator"))
    argument = node.child_by_field_name("argument")
    if operator not in ("-", "+"):
        raise src.error(node, _not_literal(node, src))
    if argument.type == "number":
        value = _number_text(src.raw(argument), argument, src)
    elif argument.type == "identifier" and src.raw(argument) in ("Infinity", "NaN"):
        value = float(src.raw(argument).replace("Infinity", "inf"))
    else:
        raise src.error(node, _not_literal(node, src))
    return _int_or_float(-value if operator == "-" else value, node, src)


def _identifier(node, src: Source) -> float:
    name = src.raw(node)
    if name == "Infinity":
        return math.inf
    if name == "NaN":
        return math.nan
    raise src.error(node, _not_literal(node, src))


def _regex(node, src: Source) -> bson.Regex:
    pattern = src.raw(node.child_by_field_name("pattern"))
    flags_node = node.child_by_field_name("flags")
    return _make_regex(pattern, src.raw(flags_node) if flags_node else "", node, src)


def _make_regex(pattern: str, flags: str, node, src: Source) -> bson.Regex:
    # g, y and d only steer JavaScript's own matching loop; mongosh drops them too.
    flags = "".join(f for f in flags if f not in "gyd")
    unknown = set(flags) - _REGEX_FLAGS
    if unknown:
        raise src.error(node, f"regular expression flag(s) {''.join(sorted(unknown))} are not supported "
                        "by MongoDB; use i, m, s, u or x")
    return bson.Regex(pattern, "".join(sorted(set(flags))))


# ---------------------------------------------------------------- constructors

def _call(node, src: Source) -> Any:
    function = node.child_by_field_name("function")
    args_node = node.child_by_field_name("arguments")
    if function.type != "identifier" or args_node is None or args_node.type != "arguments":
        raise src.error(node, "a function call is not supported here; only literal values are")
    name = src.raw(function)
    if name == "Date":
        raise src.error(node, "Date(...) without new returns the current time as a string; "
                        "write ISODate(\"...\")")
    return _construct(name, node, args_node, src)


def _new(node, src: Source) -> Any:
    constructor = node.child_by_field_name("constructor")
    args_node = node.child_by_field_name("arguments")
    if constructor.type != "identifier" or args_node is None:
        raise src.error(node, "new ... is supported only for the BSON types (new Date(\"...\"), ...)")
    return _construct(src.raw(constructor), node, args_node, src)


def _construct(name: str, node, args_node, src: Source) -> Any:
    build = _CONSTRUCTORS.get(name)
    if build is None:
        raise src.error(node, f"{name}(...) is not supported; only the BSON type constructors are "
                        f"({_SUPPORTED})")
    args = [literal(a, src) for a in elements(args_node, src)]
    try:
        return build(args)
    except (ValueError, TypeError, OverflowError, bson.errors.BSONError) as err:
        raise src.error(node, f"{name}(...): {err}") from None


def _arity(args: list, low: int, high: int, usage: str) -> None:
    if not low <= len(args) <= high:
        raise ValueError(f"expected {usage}")


def _one_string(args: list, usage: str, why_required: str = "") -> str:
    if not args:
        raise ValueError(why_required or f"expected {usage}")
    _arity(args, 1, 1, usage)
    if not isinstance(args[0], str):
        raise ValueError(f"expected {usage}")
    return args[0]


def _object_id(args: list) -> bson.ObjectId:
    return bson.ObjectId(_one_string(args, 'ObjectId("<24 hex digits>")', "ObjectId() without a value "
                                     "makes a new id each time it runs; write the id"))


def _date(args: list) -> dt.datetime | DatetimeMS:
    if not args:
        raise ValueError("a date without a value is the current time, which differs between approval "
                         "and execution; write the time, e.g. ISODate(\"2024-05-01T00:00:00Z\")")
    _arity(args, 1, 1, 'a date string, e.g. ISODate("2024-05-01T00:00:00Z")')
    value = args[0]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("expected an ISO-8601 string or milliseconds since 1970")
    if isinstance(value, str):
        return parse_iso_date(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("milliseconds must be a whole number")
    return from_millis(int(value))


def parse_iso_date(text: str) -> dt.datetime:
    """ISO-8601, as mongosh's ISODate accepts it; no zone means UTC. Milliseconds are what BSON keeps."""
    candidate = text.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?", candidate):
        raise ValueError(f"{text!r} is not an ISO-8601 date, e.g. 2024-05-01T00:00:00Z")
    parsed = dt.datetime.fromisoformat(candidate.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    parsed = parsed.astimezone(dt.timezone.utc)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def from_millis(millis: int) -> dt.datetime | DatetimeMS:
    try:
        return _EPOCH + dt.timedelta(milliseconds=millis)
    except OverflowError:
        if not INT64[0] <= millis <= INT64[1]:
            raise ValueError("the date is outside the range BSON can store") from None
        return DatetimeMS(millis)


def _integer(args: list, bounds: tuple[int, int], usage: str) -> int:
    _arity(args, 1, 1, usage)
    value = args[0]
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected {usage}")
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{value} is out of range for {usage.split('(')[0]}")
    return int(value)


def _decimal(args: list) -> bson.Decimal128:
    _arity(args, 1, 1, 'NumberDecimal("<number>")')
    value = args[0]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError('write the value as a string, e.g. NumberDecimal("0.1"), so it stays exact')
    return bson.Decimal128(str(value))


def _uuid(args: list) -> bson.Binary:
    text = _one_string(args, 'UUID("<hex>")', "UUID() without a value makes a new one each time it runs")
    return bson.Binary.from_uuid(uuid.UUID(text))


def _timestamp(args: list) -> bson.Timestamp:
    if len(args) == 1 and isinstance(args[0], dict) and set(args[0]) == {"t", "i"}:
        args = [args[0]["t"], args[0]["i"]]
    if len(args) != 2 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise ValueError("expected Timestamp(<seconds>, <increment>)")
    return bson.Timestamp(int(args[0]), int(args[1]))


def _bindata(args: list) -> bson.Binary:
    if len(args) != 2 or not isinstance(args[0], int) or not isinstance(args[1], str):
        raise ValueError('expected BinData(<subtype>, "<base64>")')
    return bson.Binary(base64.b64decode(args[1], validate=True), int(args[0]))


def _hexdata(args: list) -> bson.Binary:
    if len(args) != 2 or not isinstance(args[0], int) or not isinstance(args[1], str):
        raise ValueError('expected HexData(<subtype>, "<hex>")')
    return bson.Binary(bytes.fromhex(args[1]), int(args[0]))


def _regexp(args: list) -> bson.Regex:
    if not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
        raise ValueError('expected RegExp("<pattern>", "<flags>")')
    flags = args[1] if len(args) == 2 else ""
    if set(flags) - _REGEX_FLAGS:
        raise ValueError(f"flags {flags!r}: MongoDB supports i, m, s, u and x")
    return bson.Regex(args[0], "".join(sorted(set(flags))))


def _key_type(cls) -> Callable[[list], Any]:
    def build(args: list):
        _arity(args, 0, 0, f"{cls.__name__}() with no arguments")
        return cls()
    return build


def _code(args: list) -> bson.Code:
    _arity(args, 1, 2, 'Code("<source>")')
    if not isinstance(args[0], str) or (len(args) == 2 and not isinstance(args[1], dict)):
        raise ValueError('expected Code("<source>")')
    return bson.Code(args[0], args[1] if len(args) == 2 else None)


def _dbref(args: list) -> bson.DBRef:
    _arity(args, 2, 3, 'DBRef("<collection>", <id>, "<database>")')
    if not isinstance(args[0], str) or (len(args) == 3 and not isinstance(args[2], str)):
        raise ValueError('expected DBRef("<collection>", <id>, "<database>")')
    return bson.DBRef(args[0], args[1], args[2] if len(args) == 3 else None)


def _double(args: list) -> float:
    _arity(args, 1, 1, "Double(<number>)")
    if isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
        raise ValueError("expected Double(<number>)")
    return float(args[0])


_NUMBER_INT = 'NumberInt(<32-bit integer>)'
_NUMBER_LONG = 'NumberLong("<64-bit integer>")'
_CONSTRUCTORS: dict[str, Callable[[list], Any]] = {
    "ObjectId": _object_id,
    "ISODate": _date,
    "Date": _date,                    # only reached through `new Date(...)`
    "NumberLong": lambda a: bson.Int64(_integer(a, INT64, _NUMBER_LONG)),
    "NumberInt": lambda a: _integer(a, INT32, _NUMBER_INT),
    "Int32": lambda a: _integer(a, INT32, _NUMBER_INT),
    "NumberDecimal": _decimal,
    "Decimal128": _decimal,
    "Double": _double,
    "UUID": _uuid,
    "Timestamp": _timestamp,
    "MinKey": _key_type(bson.MinKey),
    "MaxKey": _key_type(bson.MaxKey),
    "BinData": _bindata,
    "HexData": _hexdata,
    "RegExp": _regexp,
    "Code": _code,
    "DBRef": _dbref,
}

_LITERALS: dict[str, Callable] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "template_string": _template,
    "number": _number,
    "true": lambda n, s: True,
    "false": lambda n, s: False,
    "null": lambda n, s: None,
    "identifier": _identifier,
    "unary_expression": _unary,
    "regex": _regex,
    "call_expression": _call,
    "new_expression": _new,
}

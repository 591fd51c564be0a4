"""mongosh text -> typed commands, and whether each may run without approval. PURE: no I/O.

Parsing uses tree-sitter-javascript (it keeps number text exact and reports syntax errors) and
converts only literals (see console/mongo_values.py). Reads are a whitelist, decided from the whole
value tree: an ``aggregate`` with ``$merge`` hidden in a ``$lookup`` sub-pipeline is a write, and
``$where`` anywhere means server-side JavaScript, which is not a plain read.

>>> parse('db.deploys.find({site: 1}).limit(5)')
MongoCommand(text='db.deploys.find({site: 1}).limit(5)', database=None, collection='deploys', method='find', args=({'site': 1},), modifiers=(('limit', (5,)),))
>>> classify_one('db.deploys.updateMany({}, {$set: {ok: true}})').reason
'updateMany on deploys WITHOUT a filter: every document'
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

from classify.verdict import Verdict, needs, passes
from classify.mongosh.to_shell import to_shell
from classify.mongosh.values import MongoParseError, Source, elements, literal
from classify.kinds import Kind

__all__ = ["MongoCommand", "MongoParseError", "split_script", "parse", "classify_one", "keys_anywhere",
           "to_shell", "read_command", "READ_METHODS", "WRITE_METHODS", "JAVASCRIPT_OPERATORS", "WRITING_STAGES"]


@dataclass(frozen=True)
class MongoCommand:
    text: str
    database: str | None                              # from db.getSiblingDB("x"); None: the current one
    collection: str | None                            # None for database-level methods and shell helpers
    method: str                                       # "find", "updateMany", ... or "use" / "show"
    args: tuple = ()                                  # BSON-ready values
    modifiers: tuple[tuple[str, tuple], ...] = ()     # chained cursor methods, in order

    @property
    def namespace(self) -> str | None:
        """``database.collection`` as written (the bare collection when no database was named)."""
        if self.collection is None:
            return None
        return f"{self.database}.{self.collection}" if self.database else self.collection

    def arg(self, index: int, default: Any = None) -> Any:
        return self.args[index] if index < len(self.args) else default


# -- what each method is ------------------------------------------------------------------------
READ_METHODS = frozenset({"find", "findOne", "countDocuments", "estimatedDocumentCount", "distinct",
                          "aggregate", "getIndexes", "stats", "getCollectionNames", "show"})
# Cursor methods that only shape or count what a read returns.
READ_MODIFIERS = frozenset({"sort", "limit", "skip", "projection", "hint", "collation", "comment",
                            "batchSize", "maxTimeMS", "toArray", "count", "size", "itcount", "pretty",
                            "allowDiskUse", "min", "max", "returnKey", "showRecordId"})
SHOW_TARGETS = frozenset({"dbs", "databases", "collections", "tables"})
WRITE_METHODS = frozenset({"insertOne", "insertMany", "updateOne", "updateMany", "replaceOne",
                           "deleteOne", "deleteMany", "bulkWrite", "findOneAndUpdate", "findOneAndReplace",
                           "findOneAndDelete", "insert", "update", "remove", "save", "findAndModify"})
DDL_METHODS = frozenset({"drop", "createIndex", "createIndexes", "ensureIndex", "dropIndex", "dropIndexes",
                         "renameCollection", "createCollection", "dropDatabase", "createView", "hideIndex",
                         "unhideIndex", "reIndex", "convertToCapped"})
ADMIN_METHODS = frozenset({"runCommand", "adminCommand", "killOp", "shutdownServer", "fsyncLock",
                           "fsyncUnlock", "setProfilingLevel", "currentOp", "setLogLevel", "repairDatabase",
                           "cloneDatabase", "copyDatabase", "compact", "validate", "mapReduce",
                           "serverStatus", "hostInfo", "getProfilingStatus", "setFeatureCompatibilityVersion"})
PRIVILEGE_METHODS = frozenset({"createUser", "dropUser", "updateUser", "dropAllUsers", "changeUserPassword",
                               "grantRolesToUser", "revokeRolesFromUser", "createRole", "dropRole",
                               "updateRole", "grantPrivilegesToRole", "revokePrivilegesFromRole",
                               "grantRolesToRole", "revokeRolesFromRole"})
JAVASCRIPT_OPERATORS = frozenset({"$where", "$function", "$accumulator", "mapReduce"})
# Cursor methods of find/aggregate that change how, not what, they read: explain() plans (and with
# "executionStats" runs) the same read and returns the plan; readPref() picks the member to read from.
CURSOR_READ_MODIFIERS = frozenset({"explain", "readPref"})
EXPLAIN_VERBOSITIES = frozenset({"queryPlanner", "executionStats", "allPlansExecution"})
# Methods that only report: on the database (no collection) or on a collection.
DATABASE_DIAGNOSTICS = frozenset({"serverStatus", "currentOp", "version", "getName"})
COLLECTION_DIAGNOSTICS = frozenset({"dataSize", "totalIndexSize", "latencyStats"})
# db.runCommand({name: ..., option: ...}) of a command that only reads: name -> the options it may carry.
READ_COMMANDS: dict[str, frozenset[str]] = {
    "ping": frozenset(), "buildInfo": frozenset(), "serverStatus": frozenset(), "dbStats": frozenset({"scale"}),
    "collStats": frozenset({"scale"}),
    "count": frozenset({"query", "limit", "skip", "hint", "collation", "maxTimeMS", "comment", "readConcern"}),
    "find": frozenset({"filter", "projection", "sort", "limit", "skip", "batchSize", "singleBatch", "hint",
                       "collation", "maxTimeMS", "comment", "readConcern", "allowDiskUse", "min", "max",
                       "returnKey", "showRecordId", "let"}),
}
WRITING_STAGES = frozenset({"$out", "$merge"})
_DATABASE_LEVEL_READS = frozenset({"getCollectionNames", "stats", "aggregate", "show"})
_NAME = re.compile(r"^[^\x00/\\. \"$*<>:|?]{1,63}$")


# -- splitting ------------------------------------------------------------------------------------
_HELPER = re.compile(r"[ \t]*(?P<command>(?:use|show)[ \t]+[^\s;]+)[ \t]*;?[ \t]*(?:\r?\n|$)")
_BLANK_OR_SEMI = " \t\r\n\f;"


def split_script(text: str) -> list[str]:
    """Top-level statements as written, comments kept with the statement they precede or share a
    line with. A syntax error makes the rest of the text one statement, which then classifies as
    unknown. Shell helpers (``use x``, ``show dbs``) are statements of their own line.

    >>> split_script('db.a.find(); db.b.find()\\nuse shop\\ndb.c.find()')
    ['db.a.find()', 'db.b.find()', 'use shop', 'db.c.find()']
    """
    pieces: list[str] = []
    rest = text
    while rest.strip():
        stripped = rest.lstrip(" \t\r\n\f")
        helper = _HELPER.match(stripped)
        if helper:
            pieces.append(helper.group("command"))
            rest = stripped[helper.end():]
            continue
        found, after = _split_javascript(stripped)
        pieces.extend(found)
        if after == rest:          # no progress (cannot happen, but never loop): keep it as one piece
            pieces.append(after)
            break
        rest = after
    return [piece for piece in (_trim(p) for p in pieces) if piece and not _only_comments(piece)]


def _split_javascript(text: str) -> tuple[list[str], str]:
    """Statements up to the first line the JavaScript grammar rejects; what follows it, if that
    line is a shell helper (else the rest is one broken statement and nothing follows)."""
    src = Source(text)
    root = _parse_tree(src.data).root_node
    pieces, start = [], 0
    children = root.children
    for index, child in enumerate(children):
        if child.type == "comment" or child.type == "empty_statement":
            continue
        if child.has_error or child.is_missing or child.type == "ERROR":
            line_start = src.data.rfind(b"\n", 0, child.start_byte) + 1
            head = src.data[line_start:]
            if line_start >= start and _HELPER.match(head.decode("utf-8", errors="replace")):
                pieces.append(src.data[start:line_start].decode("utf-8"))
                return pieces, head.decode("utf-8")
            pieces.append(src.data[start:].decode("utf-8"))
            return pieces, ""
        end = _end_with_line_comments(child, children[index + 1:])
        pieces.append(src.data[start:end].decode("utf-8"))
        start = end
    if pieces and start < len(src.data):
        pieces[-1] += src.data[start:].decode("utf-8")     # trailing comments stay with the last one
    elif not pieces:
        pieces.append(text)
    return pieces, ""


def _end_with_line_comments(node, following) -> int:
    end = node.end_byte
    for sibling in following:
        if sibling.type == "empty_statement" and sibling.start_point.row == node.end_point.row:
            end = sibling.end_byte
        elif sibling.type == "comment" and sibling.start_point.row == node.end_point.row:
            end = sibling.end_byte
        else:
            break
    return end


def _trim(piece: str) -> str:
    stripped = piece.strip()
    while stripped.endswith(";"):
        stripped = stripped[:-1].rstrip()
    return stripped


def _only_comments(piece: str) -> bool:
    root = _parse_tree(piece.encode("utf-8")).root_node
    return not root.has_error and all(c.type in ("comment", "empty_statement") for c in root.children)


# -- parsing --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _language():
    import tree_sitter_javascript
    from tree_sitter import Language
    return Language(tree_sitter_javascript.language())


_PARSERS = threading.local()


def _parse_tree(data: bytes):
    # One parser per thread: a tree-sitter Parser keeps state between calls.
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        from tree_sitter import Parser
        parser = _PARSERS.parser = Parser(_language())
    return parser.parse(data)


def is_complete(text: str) -> bool:
    """Would mongosh run this on Enter? A shell helper line, JavaScript that parses cleanly, or
    JavaScript with a syntax error that more lines cannot fix. Like mongosh (Node's REPL), only an
    error at the very end of the input (an open bracket, string or comment) means the statement goes
    on on the next line; any other error is reported at once, with its line and column.

    >>> is_complete('db.deploys.find({site: "a"})'), is_complete('db.deploys.updateMany({site: "a"},')
    (True, False)
    >>> is_complete('db.c.find({a: 1 b: 2})'), is_complete('db.c.find({a:'), is_complete('db.c.find({a: 1 b')
    (True, False, True)
    """
    stripped = text.strip()
    if _HELPER.fullmatch(stripped + "\n"):
        return True
    if not stripped or not _parse_tree(stripped.encode("utf-8")).root_node.has_error:
        return bool(stripped)
    return not _unfinished(stripped)


def _unfinished(text: str) -> bool:
    """Could more input finish it? Yes when a string, template or comment is still open, or when
    closing the open brackets leaves no error before the end of what was typed."""
    closers = _closers(text)
    if closers is None:
        return True
    if not closers:
        return False
    error = _first_error(_parse_tree((text + closers).encode("utf-8")).root_node)
    return error is None or error.start_byte >= len(text.encode("utf-8"))


_PAIRS = {"(": ")", "[": "]", "{": "}"}
_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^")     # after these, "/" starts a regular expression


def _closers(text: str) -> str | None:
    """The brackets that would close what is open, innermost first; None when the text ends inside
    a string, template or comment; "" when nothing is open or a bracket is closed wrongly (an error).

    >>> _closers('db.c.find({a: "}", b: /[)]/'), _closers('db.c.find({a: `x'), _closers('db.c.find())')
    ('})', None, '')
    """
    stack: list[str] = []
    last, i, n = "", 0, len(text)
    while i < n:
        char = text[i]
        if char in "'\"`":
            end = _string_end(text, i)
            if end is None:
                return None if char == "`" else ""   # '...' and "..." end on their line: an error
            i, last = end + 1, char
            continue
        if text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0:
                return None
            i = close + 2
            continue
        if char == "/" and (last == "" or last in _BEFORE_REGEX):
            end = _regex_end(text, i)
            if end is None:
                return ""      # a regular expression cannot go on to the next line: an error
            i, last = end + 1, "/"
            continue
        if char in _PAIRS:
            stack.append(_PAIRS[char])
        elif char in ")]}":
            if not stack or stack.pop() != char:
                return ""
        if not char.isspace():
            last = char
        i += 1
    return "".join(reversed(stack))


def _string_end(text: str, start: int) -> int | None:
    """Where the quote opened at ``start`` closes; None when it does not (on its line, for '...' and
    "...", which cannot span lines)."""
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        if text[i] == "\n" and quote != "`":
            return None
        i += 1
    return None


def _regex_end(text: str, start: int) -> int | None:
    in_class, i = False, start + 1
    while i < len(text) and text[i] != "\n":
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "[":
            in_class = True
        elif text[i] == "]":
            in_class = False
        elif text[i] == "/" and not in_class:
            return i
        i += 1
    return None


def parse(text: str) -> MongoCommand:
    """One mongosh statement -> MongoCommand; MongoParseError (with the position) for anything else."""
    helper = _HELPER.fullmatch(text.strip())
    if helper:
        return _helper(text, helper.group("command").split())
    src = Source(text)
    root = _parse_tree(src.data).root_node
    if root.has_error:
        raise _syntax_error(root, src)
    statements = [c for c in root.children if c.type not in ("comment", "empty_statement")]
    if len(statements) != 1:
        raise MongoParseError(f"expected one command, found {len(statements)}; run them one at a time"
                              if statements else "there is no command here")
    statement = statements[0]
    if statement.type != "expression_statement":
        raise src.error(statement, f"a {statement.type.replace('_', ' ')} is not a database command")
    expression = next(c for c in statement.named_children if c.type != "comment")
    try:
        return _command(expression, src)
    except RecursionError:
        raise MongoParseError("the command is nested too deeply to analyse") from None


def _helper(text: str, words: list[str]) -> MongoCommand:
    verb, argument = words
    if verb == "use" and not _NAME.match(argument):
        raise MongoParseError(f"{argument!r} is not a valid database name")
    return MongoCommand(text, None, None, verb, (argument,))


def _syntax_error(root, src: Source) -> MongoParseError:
    node = _first_error(root) or root
    if node.is_missing:
        return src.error(node, f"syntax error: {node.type!r} is missing")
    return src.error(node, "syntax error: this is not valid mongosh (JavaScript) syntax")


def _first_error(node):
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing:
            return _first_error(child)
    return None


def _links(node, src: Source) -> tuple[str, list]:
    """Flatten ``db.a.find(x).sort(y)`` into its root name and [("member", name) | ("call", args)]."""
    links = []
    while True:
        if node.type == "call_expression":
            arguments = node.child_by_field_name("arguments")
            if arguments.type != "arguments" or any(c.type == "optional_chain" for c in node.children):
                raise src.error(node, "tagged templates and optional calls (?.) are not supported")
            links.append(("call", arguments))
            node = node.child_by_field_name("function")
        elif node.type == "member_expression":
            prop = node.child_by_field_name("property")
            if prop.type != "property_identifier" or any(c.type == "optional_chain" for c in node.children):
                raise src.error(node, "only plain property names (no ?. or #private) are supported")
            links.append(("member", src.raw(prop)))
            node = node.child_by_field_name("object")
        elif node.type == "subscript_expression":
            index = literal(node.child_by_field_name("index"), src)
            if not isinstance(index, str):
                raise src.error(node, "a collection name in [...] must be a string")
            links.append(("member", index))
            node = node.child_by_field_name("object")
        elif node.type == "parenthesized_expression":
            node = next(c for c in node.named_children if c.type != "comment")
        elif node.type == "identifier":
            links.reverse()
            return src.raw(node), links
        else:
            raise src.error(node, "not a database command: commands start with db. (or are show/use)")


def _command(expression, src: Source) -> MongoCommand:
    root, links = _links(expression, src)
    if root != "db":
        raise src.error(expression, f"commands on {root!r} are not supported; only db.<collection>.<method>"
                        "(...), db.<method>(...) and the show/use helpers are")
    database, path, method, args, i = None, [], None, (), 0
    while i < len(links):
        kind, value = links[i]
        if kind == "call":
            raise src.error(expression, "a call on something that is not a method is not supported")
        called = i + 1 < len(links) and links[i + 1][0] == "call"
        if not called:
            path.append(value)
            i += 1
            continue
        call_args = _arguments(links[i + 1][1], src)
        i += 2
        if value == "getSiblingDB" and not path and database is None:
            database = _name_argument(call_args, "getSiblingDB", expression, src)
        elif value == "getCollection" and not path:
            path.append(_name_argument(call_args, "getCollection", expression, src))
        else:
            method, args = value, call_args
            break
    if method is None:
        raise src.error(expression, "this names a collection or database but calls no method on it")
    return MongoCommand(src.text, database, ".".join(path) or None, method, args,
                        _modifiers(links[i:], expression, src))


def _arguments(arguments, src: Source) -> tuple:
    return tuple(literal(item, src) for item in elements(arguments, src))


def _name_argument(args: tuple, method: str, node, src: Source) -> str:
    if len(args) != 1 or not isinstance(args[0], str) or not args[0] or "\x00" in args[0]:
        raise src.error(node, f"{method}(...) takes one name, as a string")
    if method == "getSiblingDB" and not _NAME.match(args[0]):
        raise src.error(node, f"{args[0]!r} is not a valid database name")
    return args[0]


def _modifiers(links: list, node, src: Source) -> tuple[tuple[str, tuple], ...]:
    modifiers = []
    for index in range(0, len(links), 2):
        pair = links[index:index + 2]
        if len(pair) != 2 or pair[0][0] != "member" or pair[1][0] != "call":
            raise src.error(node, "only method calls may follow a command (e.g. .sort({...}).limit(5))")
        modifiers.append((pair[0][1], _arguments(pair[1][1], src)))
    return tuple(modifiers)


# -- classification -------------------------------------------------------------------------------
def keys_anywhere(value: Any) -> Iterator[str]:
    """Every field name in a value tree (sub-documents and arrays at any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield from item.keys()
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def classify_one(text: str) -> Verdict:
    """Never raises: what cannot be parsed is UNKNOWN and needs approval."""
    try:
        command = parse(text)
    except MongoParseError as err:
        return needs(Kind.UNKNOWN, f"not understood as a mongosh command: {err}")
    except RecursionError:
        return needs(Kind.UNKNOWN, "too deeply nested to analyse")
    try:
        return _classify(command)
    except Exception as err:  # noqa: BLE001 - fail closed on anything unexpected
        return needs(Kind.UNKNOWN, f"could not be analysed ({type(err).__name__}: {err})")


def _classify(command: MongoCommand) -> Verdict:
    method = command.method
    tables = (command.namespace,) if command.namespace else ()
    if method == "use":
        return passes(Kind.SESSION, f"switches the session to database {command.args[0]}")
    if method in DATABASE_DIAGNOSTICS | COLLECTION_DIAGNOSTICS:
        return _diagnostic(command, tables)
    if method == "runCommand" and read_command(command) is not None:
        return _run_read_command(command)
    if method in READ_METHODS:
        return _read(command, tables)
    if method in WRITE_METHODS and command.collection:
        return _write(command, tables)
    if method in DDL_METHODS:
        return needs(Kind.DDL, _ddl_reason(command), tables or _named_collection(command))
    if method in ADMIN_METHODS:
        return needs(Kind.ADMIN, f"{method} is an administrative command", tables)
    if method in PRIVILEGE_METHODS:
        return needs(Kind.PRIVILEGE, f"{method} changes who can do what", tables)
    return needs(Kind.UNKNOWN, f"{method} is not a method Countersign knows, so it needs approval", tables)


def _read(command: MongoCommand, tables: tuple[str, ...]) -> Verdict:
    method, where = command.method, command.namespace or "the database"
    if command.method == "show" and command.args[0] not in SHOW_TARGETS:
        return needs(Kind.UNKNOWN, f"show {command.args[0]} is not a helper Countersign knows")
    if command.collection is None and method not in _DATABASE_LEVEL_READS:
        return needs(Kind.UNKNOWN, f"db.{method}() is not a database-level method Countersign knows")
    extra = [name for name, _ in command.modifiers if name not in READ_MODIFIERS
             and not (name in CURSOR_READ_MODIFIERS and method in ("find", "aggregate"))]
    if extra:
        return needs(Kind.UNKNOWN, f"{method} on {where} is followed by .{extra[0]}(), which is not on "
                     "the read whitelist", tables)
    keys = set(keys_anywhere([command.args, [args for _, args in command.modifiers]]))
    writing = keys & WRITING_STAGES
    if writing:
        stage = sorted(writing)[0]
        return needs(Kind.WRITE, f"{method} on {where} writes documents with {stage}{_into(command, stage)}",
                     tables + _output_tables(command), None)
    javascript = keys & JAVASCRIPT_OPERATORS
    if javascript:
        return needs(Kind.UNKNOWN, f"{method} on {where} runs server-side JavaScript "
                     f"({', '.join(sorted(javascript))}), which is not a plain read", tables)
    return passes(Kind.READ, f"{method} only reads", tables)


def _diagnostic(command: MongoCommand, tables: tuple[str, ...]) -> Verdict:
    """serverStatus, currentOp, version, getName on the database; dataSize, totalIndexSize,
    latencyStats on a collection: each only reports, when called plainly."""
    method, on_collection = command.method, command.method in COLLECTION_DIAGNOSTICS
    if (command.collection is not None) != on_collection:
        where = "a collection" if on_collection else "the database (db.{method}())"
        return needs(Kind.UNKNOWN, f"{method} is a diagnostic of {where.format(method=method)}, not called "
                     "that way here", tables)
    if command.modifiers:
        return needs(Kind.UNKNOWN, f"{method} followed by .{command.modifiers[0][0]}() is not understood", tables)
    if set(keys_anywhere(command.args)) & JAVASCRIPT_OPERATORS:
        return needs(Kind.UNKNOWN, f"{method} is given server-side JavaScript", tables)
    return passes(Kind.READ, f"{method} only reports on the {'collection' if on_collection else 'server'}", tables)


def read_command(command: MongoCommand) -> str | None:
    """The name of the read-only command that ``db.runCommand({...})`` runs, or None when it is any
    other command, carries an option not known to be read-only, or runs JavaScript.

    >>> read_command(parse('db.runCommand({count: "deploys", query: {site: 1}})'))
    'count'
    >>> read_command(parse('db.runCommand({drop: "deploys"})')) is None
    True
    """
    spec = command.arg(0)
    if command.collection is not None or len(command.args) != 1 or not isinstance(spec, dict) or not spec:
        return None
    name, *options = spec
    allowed = READ_COMMANDS.get(name)
    if allowed is None or not allowed.issuperset(options) or set(keys_anywhere(spec)) & JAVASCRIPT_OPERATORS:
        return None
    return name


def _run_read_command(command: MongoCommand) -> Verdict:
    if command.modifiers:
        return needs(Kind.UNKNOWN, f"runCommand followed by .{command.modifiers[0][0]}() is not understood")
    name = read_command(command)
    target = command.arg(0)[name]
    tables = ((f"{command.database}.{target}" if command.database else target),) \
        if name in ("count", "find", "collStats") and isinstance(target, str) else ()
    return passes(Kind.READ, f"runCommand {name} only reads", tables)


def _into(command: MongoCommand, stage: str) -> str:
    names = _output_tables(command)
    return f" into {', '.join(names)}" if names else ""


def _output_tables(command: MongoCommand) -> tuple[str, ...]:
    """Where a pipeline's $out / $merge stages write, as far as the stage names it."""
    found: list[str] = []
    stack = [command.args]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in WRITING_STAGES:
                    found.append(_stage_target(value, command.database))
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return tuple(dict.fromkeys(name for name in found if name))


def _stage_target(value: Any, database: str | None) -> str:
    if isinstance(value, str):
        return f"{database}.{value}" if database else value
    if isinstance(value, dict):
        target = value.get("into", value)
        if isinstance(target, str):
            return f"{database}.{target}" if database else target
        if isinstance(target, dict):
            coll = target.get("coll")
            return f"{target['db']}.{coll}" if target.get("db") else str(coll or "")
    return ""


def _write(command: MongoCommand, tables: tuple[str, ...]) -> Verdict:
    method, where = command.method, command.collection
    if command.modifiers:
        return needs(Kind.UNKNOWN, f"{method} followed by .{command.modifiers[0][0]}() is not understood", tables)
    if method in ("insertOne", "insert", "save"):
        return needs(Kind.WRITE, f"{method} into {where}", tables, None)
    if method == "insertMany":
        documents = command.arg(0)
        count = f" ({len(documents)} documents)" if isinstance(documents, list) else ""
        return needs(Kind.WRITE, f"insertMany into {where}{count}", tables, None)
    if method == "bulkWrite":
        return _bulk(command, tables)
    first = command.arg(0, {})
    has_filter = _non_empty(first.get("query") if method == "findAndModify" and isinstance(first, dict) else first)
    one = method in ("updateOne", "deleteOne", "replaceOne") or method.startswith("findOneAnd")
    scope = " (at most one document)" if one else ""
    javascript = set(keys_anywhere(command.args)) & JAVASCRIPT_OPERATORS
    runs_js = f"; the filter runs server-side JavaScript ({', '.join(sorted(javascript))})" if javascript else ""
    if has_filter:
        return needs(Kind.WRITE, f"{method} on {where} with a filter{scope}{runs_js}", tables, True)
    if one:
        return needs(Kind.WRITE, f"{method} on {where} WITHOUT a filter: any one document", tables, False)
    return needs(Kind.WRITE, f"{method} on {where} WITHOUT a filter: every document", tables, False)


def _non_empty(filter_: Any) -> bool:
    return not (filter_ is None or filter_ == {})


def _bulk(command: MongoCommand, tables: tuple[str, ...]) -> Verdict:
    operations = command.arg(0)
    if not isinstance(operations, list) or not all(isinstance(op, dict) and len(op) == 1 for op in operations):
        return needs(Kind.WRITE, f"bulkWrite on {command.collection} with operations that are not understood",
                     tables, None)
    filters = [body.get("filter") if isinstance(body, dict) else None
               for op in operations for name, body in op.items() if name != "insertOne"]
    has_where = None if not filters else all(_non_empty(f) for f in filters)
    unfiltered = "" if has_where is not False else ", some WITHOUT a filter"
    return needs(Kind.WRITE, f"bulkWrite on {command.collection} ({len(operations)} operations{unfiltered})",
                 tables, has_where)


def _ddl_reason(command: MongoCommand) -> str:
    where = command.namespace or "the database"
    reasons = {
        "drop": f"drop removes collection {where} and all its documents",
        "dropDatabase": f"dropDatabase removes {command.database or 'the current database'} and every collection in it",
        "renameCollection": f"renameCollection renames {where}",
        "createCollection": "createCollection changes the schema",
    }
    return reasons.get(command.method, f"{command.method} on {where} changes the schema")


def _named_collection(command: MongoCommand) -> tuple[str, ...]:
    name = command.arg(0)
    if command.method in ("createCollection", "createView") and isinstance(name, str):
        return (f"{command.database}.{name}" if command.database else name,)
    return ()

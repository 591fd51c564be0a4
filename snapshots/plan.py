"""Plan the before-image of ONE write: which table, which rows, and the SQL that selects them. PURE.

The snapshot must hold exactly the rows the write changes, so the planner reuses the write's own
predicate (its WHERE, its joins, its ORDER BY ... LIMIT) instead of guessing. Anything it cannot express
that way raises SnapshotUnsupported with the reason; the pipeline then refuses the write unless policy
allows unsnapshotted writes.

>>> tables = {"t": TableInfo("t", None, ("id", "a"), ("id",))}
>>> plan_snapshot("DELETE FROM t WHERE a > 1", "sqlite", tables).before_sql
'SELECT t.* FROM t WHERE a > 1'
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Iterable, Literal

import sqlglot
from sqlglot import exp

from engines.base import Catalog

# sqlglot logs a warning for every statement it falls back on; the planner reports those itself.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

Operation = Literal["update", "delete", "insert", "table"]

SQLGLOT_DIALECT = {"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite"}

# Nodes that must not appear inside the parts of a write we copy into a SELECT: they would write.
_WRITING = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
            exp.TruncateTable, exp.Command, exp.Into, exp.Copy)
# Functions whose value differs between the snapshot's SELECT and the write: different rows.
_VOLATILE = {"random", "rand", "uuid", "gen_random_uuid", "uuid_generate_v4", "nextval", "setval",
             "clock_timestamp", "sys_guid", "randomblob"}


class SnapshotUnsupported(Exception):
    """This write cannot be snapshotted; the message says why, for the person who wrote it."""


@dataclass(frozen=True)
class TableInfo:
    name: str
    schema: str | None
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]          # the primary key; empty when the table has none

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class SnapshotPlan:
    table: str
    schema: str | None
    operation: Operation
    key_columns: tuple[str, ...]
    columns: tuple[str, ...]
    before_sql: str | None                # rows as they are before the write (whole rows)
    count_sql: str | None                 # one row, one integer: rows the write will touch
    after_sql: str | None                 # inserts: key columns of the rows the write inserted
    dialect: str
    count_is_table_size: bool = False     # count_sql counts the whole table, not the write's rows
    pre_keys_sql: str | None = None       # inserts on MySQL/SQLite without literal keys: keys before
    upsert: bool = False                  # the insert may also change rows that already exist

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def counts_twice(self) -> bool:
        """MySQL reports 2 affected rows for each row an upsert updates (REPLACE: deleted and
        inserted), so the rows it touched are only known from its snapshot."""
        return self.dialect == "mysql" and self.upsert


def table_infos(catalog: Catalog) -> dict[str, TableInfo]:
    """Catalog tables by lower-cased ``name`` and ``schema.name``. A bare name found in two schemas is
    left out: which one the server would pick depends on its search path, so we do not guess."""
    infos: dict[str, TableInfo] = {}
    ambiguous: set[str] = set()
    for table in catalog.tables:
        info = TableInfo(table.name, table.schema, tuple(c.name for c in table.columns),
                         tuple(table.primary_key))
        if table.schema:
            infos[f"{table.schema}.{table.name}".lower()] = info
        bare = table.name.lower()
        if bare in infos and infos[bare] is not info and bare not in ambiguous:
            ambiguous.add(bare)
        infos.setdefault(bare, info)
    for bare in ambiguous:
        infos.pop(bare, None)
    return infos


def plan_snapshot(text: str, dialect: str, tables: dict[str, TableInfo]) -> SnapshotPlan:
    if dialect not in SQLGLOT_DIALECT:
        raise SnapshotUnsupported(f"snapshots are not available for {dialect!r}")
    tree, replace = _parse(text, dialect)
    if isinstance(tree, (exp.Update, exp.Delete)):
        return _plan_update_delete(tree, dialect, tables)
    if isinstance(tree, exp.Insert):
        return _plan_insert(tree, dialect, tables, replace)
    if isinstance(tree, (exp.TruncateTable, exp.Drop, exp.Merge)):
        return _plan_whole_table(tree, dialect, tables)
    raise SnapshotUnsupported(f"{_describe(tree)} is not a write Countersign knows how to snapshot")


def is_upsert(text: str, dialect: str) -> bool:
    """Does this INSERT also change rows that already exist (ON CONFLICT / ON DUPLICATE KEY / REPLACE)?"""
    try:
        tree, replace = _parse(text, dialect)
    except SnapshotUnsupported:
        return False
    return isinstance(tree, exp.Insert) and _upsert_kind(tree, replace) is not None


# ---------------------------------------------------------------- parsing

_REPLACE = re.compile(r"^\s*replace\b", re.IGNORECASE)


def _parse(text: str, dialect: str) -> tuple[exp.Expression, bool]:
    # sqlglot turns MySQL's REPLACE INTO into an opaque Command; it has INSERT's grammar otherwise.
    replace = dialect == "mysql" and bool(_REPLACE.match(text))
    source = _REPLACE.sub("INSERT", text, count=1) if replace else text
    try:
        trees = [t for t in sqlglot.parse(source, read=SQLGLOT_DIALECT[dialect]) if t is not None]
    except sqlglot.errors.SqlglotError as err:
        raise SnapshotUnsupported(f"the statement could not be parsed ({err})") from err
    if len(trees) != 1:
        raise SnapshotUnsupported("a snapshot is planned for exactly one statement")
    return trees[0], replace


def _describe(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Command):
        return f"{str(tree.this).upper()} (not understood in detail)"
    return type(tree).__name__.upper()


def _render(node: exp.Expression, dialect: str) -> str:
    return node.sql(dialect=SQLGLOT_DIALECT[dialect])


def _check_readable(node: exp.Expression | None, what: str) -> None:
    """The part we copy into the snapshot SELECT must be a pure, repeatable read."""
    if node is None:
        return
    for sub in node.walk():
        if isinstance(sub, _WRITING):
            raise SnapshotUnsupported(f"the {what} contains a data-changing statement")
        if isinstance(sub, exp.Rand) or (isinstance(sub, exp.Func) and sub.name.lower() in _VOLATILE):
            raise SnapshotUnsupported(f"the {what} calls a volatile function ({sub.sql()}), so a "
                                      "snapshot query would not select the same rows as the write")


def _lookup(table: exp.Table, tables: dict[str, TableInfo]) -> TableInfo:
    if not isinstance(table, exp.Table) or not table.name:
        raise SnapshotUnsupported("the written table is not a plain table name")
    if table.args.get("catalog"):
        raise SnapshotUnsupported(f"{table.sql()} names another catalog")
    key = f"{table.db}.{table.name}" if table.db else table.name
    info = tables.get(key.lower())
    if info is None:
        raise SnapshotUnsupported(f"table {key} is not in the catalog (unknown, or ambiguous between "
                                  "schemas; qualify it with its schema)")
    return info


def _ref(table: exp.Table) -> str:
    """How the write refers to its target in predicates: its alias, else its name."""
    return table.alias_or_name


def _bare(table: exp.Table) -> exp.Table:
    copy = table.copy()
    copy.set("joins", None)
    return copy


def _star_select(target: exp.Table, where: exp.Expression | None) -> exp.Select:
    star = exp.Column(this=exp.Star(), table=exp.to_identifier(_ref(target)))
    select = exp.select(star).from_(_bare(target), copy=False)
    if where is not None:
        select = select.where(where, copy=False)
    return select


def _count_sql(before: exp.Select, dialect: str) -> str:
    count = exp.select(exp.Count(this=exp.Star())).from_(exp.Subquery(this=before.copy(),
                                                                      alias=exp.TableAlias(this=exp.to_identifier("s"))))
    return _render(count, dialect)


def _and(conditions: Iterable[exp.Expression]) -> exp.Expression | None:
    conditions = [c.copy() for c in conditions if c is not None]
    if not conditions:
        return None
    return exp.and_(*conditions) if len(conditions) > 1 else conditions[0]


# ---------------------------------------------------------------- UPDATE / DELETE

def _plan_update_delete(tree: exp.Update | exp.Delete, dialect: str,
                        tables: dict[str, TableInfo]) -> SnapshotPlan:
    operation: Operation = "update" if isinstance(tree, exp.Update) else "delete"
    where = tree.args.get("where")
    predicate = where.this if where is not None else None
    _check_readable(predicate, "WHERE clause")
    with_ = tree.args.get("with_")
    _check_readable(with_, "WITH clause")

    base = tree.this
    if not isinstance(base, exp.Table):
        raise SnapshotUnsupported(f"the {operation.upper()} target is not a plain table")
    from_ = tree.args.get("from_")
    using = tree.args.get("using")
    if dialect == "mysql" and (base.args.get("joins") or tree.args.get("tables") or using):
        target, others, conditions = _mysql_multi_table(tree, operation)
    elif base.args.get("joins"):
        raise SnapshotUnsupported(f"joins in the {operation.upper()} target are not understood here")
    else:
        target, others, conditions = base, [], []
        if from_ is not None:               # UPDATE ... FROM (PostgreSQL, SQLite)
            others = [from_]
        elif using:                         # DELETE ... USING (PostgreSQL)
            others = list(using)
    for source in others:
        _check_readable(source, "FROM / USING / JOIN clause")

    info = _lookup(target, tables)
    if others:
        inner = exp.select(exp.Literal.number(1))
        if isinstance(others[0], exp.From):
            inner.set("from_", others[0].copy())
        else:
            inner = inner.from_(others[0].copy(), copy=False)
            for extra in others[1:]:
                inner = inner.join(exp.Join(this=extra.copy()), copy=False)
        inner_where = _and([*conditions, predicate])
        if inner_where is not None:
            inner = inner.where(inner_where, copy=False)
        before = _star_select(target, exp.Exists(this=inner))
    else:
        before = _star_select(target, predicate.copy() if predicate is not None else None)
        _order_and_limit(tree, before, info, dialect)
    if with_ is not None:
        before.set("with_", with_.copy())
    return SnapshotPlan(table=info.name, schema=info.schema, operation=operation,
                        key_columns=info.key_columns, columns=info.columns,
                        before_sql=_render(before, dialect), count_sql=_count_sql(before, dialect),
                        after_sql=None, dialect=dialect)


def _order_and_limit(tree: exp.Expression, before: exp.Select, info: TableInfo, dialect: str) -> None:
    """MySQL/SQLite UPDATE/DELETE ... ORDER BY ... LIMIT: the SELECT picks the same rows only when the
    order is total, i.e. it ends up ordering by the whole primary key."""
    order, limit = tree.args.get("order"), tree.args.get("limit")
    if order is None and limit is None:
        return
    if limit is not None:
        ordered = {o.this.name.lower() for o in (order.expressions if order else [])
                   if isinstance(o.this, exp.Column)}
        keys = {k.lower() for k in info.key_columns}
        if not keys or not keys <= ordered:
            raise SnapshotUnsupported("LIMIT without an ORDER BY that includes the whole primary key "
                                      "picks rows the snapshot cannot be sure to pick too; add the "
                                      "key to the ORDER BY")
    if order is not None:
        before.set("order", order.copy())
    if limit is not None:
        before.set("limit", limit.copy())


def _mysql_multi_table(tree: exp.Update | exp.Delete, operation: str
                       ) -> tuple[exp.Table, list[exp.Expression], list[exp.Expression]]:
    """MySQL's multi-table forms: ``UPDATE a JOIN b ON .. SET``, ``UPDATE a, b SET``, ``DELETE a FROM
    a JOIN b``, ``DELETE FROM a USING a JOIN b``. Inner joins only: then the ON conditions can move
    into the EXISTS subquery's WHERE and each target row is selected once."""
    using = tree.args.get("using")
    if using:
        if len(using) != 1:
            raise SnapshotUnsupported("DELETE ... USING with several source lists is not understood")
        base = using[0]
        named = [tree.this]
    else:
        base = tree.this
        named = list(tree.args.get("tables") or [])
    sources = [_bare(base)]
    conditions = []
    for join in base.args.get("joins") or []:
        if join.side or (join.kind and join.kind.upper() not in ("INNER", "CROSS")):
            raise SnapshotUnsupported(f"{join.side or join.kind} JOIN in a multi-table {operation.upper()} "
                                      "is not supported (only inner joins keep each target row once)")
        if join.args.get("using"):
            raise SnapshotUnsupported("JOIN ... USING (...) in a multi-table write is not supported; "
                                      "write the join with ON")
        if not isinstance(join.this, exp.Table):
            raise SnapshotUnsupported("a joined subquery in a multi-table write is not supported")
        sources.append(_bare(join.this))
        if join.args.get("on") is not None:
            conditions.append(join.args["on"])

    if isinstance(tree, exp.Update):
        targets = {c.table.lower() for e in tree.expressions for c in [e.this]
                   if isinstance(c, exp.Column)}
        if "" in targets or not targets:
            raise SnapshotUnsupported("a multi-table UPDATE must qualify every SET column with its table")
    else:
        targets = {_ref(t).lower() for t in named}
    if len(targets) != 1:
        raise SnapshotUnsupported(f"this {operation.upper()} changes several tables ({', '.join(sorted(targets))}); "
                                  "one snapshot covers one table: split it into one statement per table")
    wanted = targets.pop()
    matches = [s for s in sources if _ref(s).lower() == wanted]
    if len(matches) != 1:
        raise SnapshotUnsupported(f"the written table {wanted} is not one of the joined tables")
    target = matches[0]
    others = [s for s in sources if s is not target]
    return target, others, conditions


# ---------------------------------------------------------------- INSERT / upserts

def _upsert_kind(tree: exp.Insert, replace: bool) -> str | None:
    if replace or str(tree.args.get("alternative") or "").upper() == "REPLACE":
        return "replace"
    conflict = tree.args.get("conflict")
    if conflict is None:
        return None
    action = str(conflict.args.get("action") or "").upper()
    if conflict.args.get("duplicate"):
        return "duplicate"
    if "NOTHING" in action:
        return None                       # no existing row changes
    return "conflict"


def _plan_insert(tree: exp.Insert, dialect: str, tables: dict[str, TableInfo],
                 replace: bool) -> SnapshotPlan:
    schema = tree.this
    target = schema.this if isinstance(schema, exp.Schema) else schema
    info = _lookup(target, tables)
    if not info.key_columns:
        raise SnapshotUnsupported(f"{info.qualified} has no primary key, so the inserted rows could not "
                                  "be told apart later to remove them")
    if tree.args.get("overwrite"):
        raise SnapshotUnsupported("INSERT OVERWRITE is not supported")
    columns = ([c.name for c in schema.expressions] if isinstance(schema, exp.Schema)
               else list(info.columns))
    source = tree.expression
    with_ = tree.args.get("with_")
    _check_readable(with_, "WITH clause")
    upsert = _upsert_kind(tree, replace)

    rows: list[list[exp.Expression]] | None = None
    if tree.args.get("default"):
        count_sql = "SELECT 1"
    elif isinstance(source, exp.Values):
        rows = [list(t.expressions) if isinstance(t, exp.Tuple) else [t] for t in source.expressions]
        for row in rows:
            for value in row:
                _check_readable(value, "VALUES list")
        count_sql = f"SELECT {len(rows)}"
    elif isinstance(source, (exp.Select, exp.SetOperation, exp.Subquery)):
        _check_readable(source, "SELECT that feeds the INSERT")
        select = source.copy()
        if with_ is not None:
            select.set("with_", with_.copy())
        count = exp.select(exp.Count(this=exp.Star())).from_(
            exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier("s"))))
        count_sql = _render(count, dialect)
    else:
        raise SnapshotUnsupported("the rows this INSERT adds come from a form that is not understood")

    match_columns = _match_columns(tree, info, upsert)
    literal = _literal_values(rows, columns, match_columns)
    if upsert and literal is None:
        raise SnapshotUnsupported(f"this upsert's {', '.join(match_columns)} values are not literals, so "
                                  "the rows it may overwrite cannot be selected beforehand")
    table_node = _bare(target)
    table_node.set("alias", None)
    ref = table_node.name
    if upsert:
        before = _star_select(table_node, _in_literals(ref, match_columns, literal))
    else:
        # Nothing that exists is changed; an empty image keeps restore uniform (it reverts nothing).
        before = _star_select(table_node, exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0)))
    keys = [exp.column(k, table=ref, quoted=True) for k in info.key_columns]

    pre_keys_sql = None
    if literal is not None:
        # The rows with these values after the write are the ones it inserted or overwrote.
        after = exp.select(*keys).from_(table_node.copy()).where(_in_literals(ref, match_columns, literal))
    elif dialect == "postgres":
        # Rows whose current version this transaction wrote (a sequential scan of the table).
        after = exp.select(*keys).from_(table_node.copy()).where(
            "xmin = pg_current_xact_id()::xid", dialect="postgres")
    else:
        # No row-version column: list every key before and diff after (costs a scan of the table's
        # keys twice; acceptable for the table sizes a console writes to, measured by count_sql first).
        after = exp.select(*keys).from_(table_node.copy())
        pre_keys_sql = _render(after, dialect)
    return SnapshotPlan(table=info.name, schema=info.schema, operation="insert",
                        key_columns=info.key_columns, columns=info.columns,
                        before_sql=_render(before, dialect), count_sql=count_sql,
                        after_sql=_render(after, dialect), dialect=dialect,
                        pre_keys_sql=pre_keys_sql, upsert=upsert is not None)


def _match_columns(tree: exp.Insert, info: TableInfo, upsert: str | None) -> tuple[str, ...]:
    """The columns an upsert matches existing rows on: its conflict target, else the primary key.
    (MySQL's ON DUPLICATE KEY and REPLACE also match other unique keys; the catalog does not list
    them, so those are assumed absent.)"""
    conflict = tree.args.get("conflict")
    if upsert == "conflict" and conflict is not None:
        if conflict.args.get("constraint") is not None:
            raise SnapshotUnsupported("ON CONFLICT ON CONSTRAINT is not supported; name the columns")
        keys = conflict.args.get("conflict_keys") or []
        names = tuple(k.this.name if isinstance(k, exp.Ordered) else k.name for k in keys)
        if names:
            return names
    return info.key_columns


def _literal_values(rows: list[list[exp.Expression]] | None, columns: list[str],
                    match: tuple[str, ...]) -> list[tuple[exp.Expression, ...]] | None:
    if rows is None:
        return None
    lowered = [c.lower() for c in columns]
    try:
        positions = [lowered.index(m.lower()) for m in match]
    except ValueError:
        return None                      # a key column is not given: its value is generated
    values = []
    for row in rows:
        if len(row) != len(columns):
            return None
        picked = tuple(row[p] for p in positions)
        if not all(_is_literal(v) for v in picked):
            return None
        values.append(picked)
    return values


def _is_literal(value: exp.Expression) -> bool:
    if isinstance(value, exp.Neg):
        value = value.this
    return isinstance(value, exp.Literal)


def _in_literals(ref: str, columns: tuple[str, ...], values: list[tuple[exp.Expression, ...]]
                 ) -> exp.Expression:
    cols = [exp.column(c, table=ref, quoted=True) for c in columns]
    if len(cols) == 1:
        return exp.In(this=cols[0], expressions=[v[0].copy() for v in values])
    return exp.In(this=exp.Tuple(expressions=cols),
                  expressions=[exp.Tuple(expressions=[x.copy() for x in v]) for v in values])


# ---------------------------------------------------------------- TRUNCATE / DROP / MERGE

def _plan_whole_table(tree: exp.Expression, dialect: str, tables: dict[str, TableInfo]) -> SnapshotPlan:
    if isinstance(tree, exp.TruncateTable):
        targets = list(tree.expressions)
        if str(tree.args.get("option") or "").upper() == "CASCADE":
            raise SnapshotUnsupported("TRUNCATE ... CASCADE also empties the tables that reference this "
                                      "one; truncate them one by one")
        if tree.args.get("is_database"):
            raise SnapshotUnsupported("TRUNCATE DATABASE is not supported")
    elif isinstance(tree, exp.Drop):
        if str(tree.args.get("kind") or "").upper() != "TABLE":
            raise SnapshotUnsupported(f"DROP {tree.args.get('kind') or ''} removes no table rows")
        targets = list(tree.args.get("tables") or ([tree.this] if tree.this else []))
    else:
        targets = [tree.this]
        _check_readable(tree.args.get("using"), "MERGE source")
    if len(targets) != 1:
        raise SnapshotUnsupported("one snapshot covers one table: name one table per statement")
    info = _lookup(targets[0], tables)
    table_node = _bare(targets[0])
    table_node.set("alias", None)
    before = exp.select(exp.Star()).from_(table_node)
    count = exp.select(exp.Count(this=exp.Star())).from_(table_node.copy())
    return SnapshotPlan(table=info.name, schema=info.schema, operation="table",
                        key_columns=info.key_columns, columns=info.columns,
                        before_sql=_render(before, dialect), count_sql=_render(count, dialect),
                        after_sql=None, dialect=dialect, count_is_table_size=True)


# ---------------------------------------------------------------- identifiers (shared with capture/restore)

def quote_ident(name: str, dialect: str) -> str:
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def quote_table(qualified: str, dialect: str) -> str:
    """``schema.name`` or ``name`` -> quoted. Splits on the first dot only: schemas hold no dots."""
    return ".".join(quote_ident(part, dialect) for part in qualified.split(".", 1))


def whole_table_kind(text: str, dialect: str) -> str:
    """For an operation "table" snapshot: "truncate", "drop" or "merge" (what restore must undo)."""
    tree, _ = _parse(text, dialect)
    if isinstance(tree, exp.TruncateTable):
        return "truncate"
    if isinstance(tree, exp.Drop):
        return "drop"
    if isinstance(tree, exp.Merge):
        return "merge"
    raise SnapshotUnsupported(f"{_describe(tree)} does not take a whole-table snapshot")

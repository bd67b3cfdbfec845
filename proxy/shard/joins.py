"""Whether a SELECT joining tables of a sharded database stays within each partition's data.

``check_colocated(sql, layout)`` reads a SELECT that names a sharded table together with other
tables (joins, subqueries) and returns when every partition can run it on its own data with
the physical names substituted, the results then concatenated or merged -- exactly what one
MariaDB holding every row would answer. Otherwise it raises 1235 naming why. The rule
(``sharding.md``): every sharded table is joined on its shard key with a table of equal
partitioning, or only with broadcast tables (a full copy in every partition). Conservative:
what is not understood is refused.

Co-location is decided from equalities ``a.k = b.k`` between shard key columns:

* in a join's ``ON`` (top-level conjuncts) or ``USING``; in the ``WHERE`` only when no outer
  join is in the same SELECT;
* equal partitioning: the same function (``HASH`` / ``UNI_HASH``), the same T, a table split by
  TBPARTITION BY only by its database key's column and function, integer keys (string keys
  compare case- and trailing-space-insensitively but are placed by their exact text: ``'a' =
  'A '`` may join rows of different partitions);
* outer joins: a sharded table on the null-supplying side must be joined in that join's ``ON``
  to a sharded table of the preserved side; a broadcast table cannot be the preserved side of a
  sharded one (each partition would add its own null-extended row);
* subqueries on sharded tables: correlated by ``inner.k = outer.k`` (a top-level conjunct of
  their WHERE) to a sharded table of the enclosing SELECT -- then they see exactly the rows one
  server would -- or ``outer.k IN (SELECT inner.k ...)`` as a top-level conjunct of a WHERE
  (no grouping, aggregates or LIMIT inside); UNION and WITH on sharded tables are refused.
  Subqueries on broadcast tables only are always exact;
* a derived table on sharded tables: exact when it is the outer SELECT's only table and each
  of its rows comes from one row of its own co-located FROM (no grouping, aggregates,
  DISTINCT, LIMIT or window functions in it) -- each partition's derived table then holds
  exactly that partition's share, and the outer SELECT is merged as over a sharded table.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from auth.errors import not_supported
from auth.model import LogicalTable, TableRule

__all__ = ["check_colocated"]


@dataclass(eq=False)
class _Instance:
    """One table reference of a SELECT."""

    name: str  # alias or table name, lower-case
    table: LogicalTable | None  # None: not a table of the logical database
    columns: frozenset[str] | None  # lower-case; None when unknown
    derived: bool = False  # a derived table over sharded tables, each partition's own rows

    @property
    def kind(self) -> str:
        if self.derived:
            return "derived"
        return "other" if self.table is None else self.table.rule.kind

    @property
    def label(self) -> str:
        return self.table.name if self.table is not None else self.name

    def key(self) -> str | None:
        if self.table is None or self.table.rule.db_key is None:
            return None
        return self.table.rule.db_key.column.lower()


@dataclass
class _Scope:
    instances: list[_Instance]
    outer: list[_Instance]  # every instance of the enclosing SELECTs, innermost first
    parent: dict[int, int] = field(default_factory=dict)  # union-find over id(instance)

    def find(self, item: _Instance) -> int:
        at = id(item)
        while self.parent.get(at, at) != at:
            at = self.parent[at]
        return at

    def union(self, a: _Instance, b: _Instance) -> None:
        self.parent[self.find(a)] = self.find(b)


def _refuse(why: str) -> _Refused:
    return _Refused(why)


def check_colocated(
    sql: str,
    tables: Mapping[str, LogicalTable],
    database: str,
    columns_of: Mapping[str, frozenset[str]],
) -> None:
    """Raises 1235 unless ``sql`` (a SELECT naming sharded tables) runs exactly per partition.
    ``tables``: the logical tables by lower-case name; ``database``: the logical database's
    name; ``columns_of``: each logical table's lower-case column names. The verdict is cached
    per statement text and tables (one parse per shape)."""
    why = _verdict(sql, database, tuple(sorted(tables.items())), tuple(sorted(columns_of.items())))
    if why is not None:
        raise not_supported(why)


@functools.lru_cache(maxsize=1024)
def _verdict(
    sql: str,
    database: str,
    tables: tuple[tuple[str, LogicalTable], ...],
    columns_of: tuple[tuple[str, frozenset[str]], ...],
) -> str | None:
    try:
        _check(sql, dict(tables), database, dict(columns_of))
    except _Refused as refused:
        return refused.reason
    return None


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check(
    sql: str,
    tables: Mapping[str, LogicalTable],
    database: str,
    columns_of: Mapping[str, frozenset[str]],
) -> None:
    try:
        trees = [t for t in sqlglot.parse(sql, dialect="mysql") if t is not None]
    except (ParseError, TokenError):
        raise _refuse("a join or subquery on sharded tables the proxy cannot parse") from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Select):
        raise _refuse("UNION, WITH or this statement on several tables of a sharded database")
    top = trees[0]
    if top.args.get("with") is not None:
        raise _refuse("WITH on sharded tables")
    reader = _Reader(tables, database.lower(), columns_of)
    instances = reader.select(top, [], None)
    if not any(i.kind in ("sharded", "derived") for i in instances):
        raise _refuse("a subquery on a sharded table under a SELECT from no sharded table")


class _Reader:
    def __init__(
        self,
        tables: Mapping[str, LogicalTable],
        database: str,
        columns_of: Mapping[str, frozenset[str]],
    ) -> None:
        self.tables = tables
        self.database = database
        self.columns_of = columns_of
        self.broadcast = frozenset(k for k, t in tables.items() if t.rule.kind == "broadcast")

    # -- one SELECT -------------------------------------------------------------------------

    def select(
        self, node: exp.Select, outer: list[_Instance], link: exp.In | None
    ) -> list[_Instance]:
        """Check one SELECT (and its subqueries); its instances. ``link``: the ``IN`` whose
        subquery it is, when that is a top-level conjunct of the enclosing WHERE."""
        if node.args.get("with") is not None:
            raise _refuse("WITH on sharded tables")
        source = node.args.get("from_") or node.args.get("from")
        joins: Sequence[exp.Join] = node.args.get("joins") or []
        instances: list[_Instance] = []
        if source is not None:
            instances.append(self.instance(source.this))
        for join in joins:
            instances.append(self.instance(join.this))
        scope = _Scope(instances, outer)
        if any(i.kind == "derived" for i in instances):
            if len(instances) > 1:
                raise _refuse("a derived table on sharded tables joined with other tables")
            if outer:
                # Its rows cannot be tied to the enclosing SELECT's partition by key.
                raise _refuse("a derived table on sharded tables in a subquery")
        sharded = [i for i in instances if i.kind == "sharded"]
        where = node.args.get("where")
        outer_join = any(j.args.get("side") for j in joins)
        anchor = sharded or [i for i in outer if i.kind == "sharded"]
        for i in instances if anchor else ():
            if i.kind in ("single", "other"):
                # Single tables live in physical database 0 only.
                raise _refuse(
                    f"a statement on sharded table {anchor[0].label} and"
                    f" {'single table' if i.kind == 'single' else 'table'} {i.label}"
                )
        # Joins, in order: edges from ON / USING, outer-join rules.
        for number, join in enumerate(joins, start=1):
            self.join(scope, join, instances[:number], instances[number])
        if where is not None and not outer_join:
            for conjunct in _conjuncts(where.this):
                self.edge(scope, conjunct, instances)
        _equal_partitioning(sharded)
        if len(sharded) > 1:
            first = scope.find(sharded[0])
            for other in sharded[1:]:
                if scope.find(other) != first:
                    raise _refuse(
                        f"join of sharded tables {sharded[0].label} and {other.label} not on"
                        " their shard keys"
                    )
        if outer and sharded:
            self.correlated(scope, node, sharded, link)
        # Subqueries (not derived tables: instance() refused those on sharded tables).
        inner_outer = instances + outer
        top_in = _top_level_ins(where.this) if where is not None and not outer_join else set()
        for sub in _subqueries(node, self.broadcast):
            parent = sub.parent
            in_link = None
            if isinstance(parent, exp.Subquery) and isinstance(parent.parent, exp.In):
                if id(parent.parent) in top_in:
                    in_link = parent.parent
            elif isinstance(parent, exp.In) and id(parent) in top_in:
                in_link = parent
            self.select(sub, inner_outer, in_link)
        return instances

    def logical(self, table: exp.Table) -> LogicalTable | None:
        if table.db and table.db.lower() != self.database:
            return None
        return self.tables.get(table.name.lower())

    def instance(self, node: exp.Expression) -> _Instance:
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            if node.args.get("joins"):
                raise _refuse("nested joins on sharded tables")
            table = self.logical(node)
            columns = self.columns_of.get(table.key) if table is not None else None
            return _Instance(node.alias_or_name.lower(), table, columns)
        if isinstance(node, exp.Subquery):
            named = [self.logical(t) for t in node.find_all(exp.Table)]
            if all(found is not None and found.rule.kind == "broadcast" for found in named):
                # Only broadcast tables: every partition has all its rows.
                return _Instance(node.alias_or_name.lower(), _BROADCAST_LIKE, None)
            inner = node.this
            if not isinstance(inner, exp.Select) or node.args.get("joins"):
                raise _refuse("a derived table or parenthesized join on sharded or single tables")
            if not _row_local(inner):
                raise _refuse(
                    "a derived table on sharded tables with GROUP BY, aggregates, DISTINCT,"
                    " LIMIT or window functions (each partition would compute its own)"
                )
            # Each of its rows comes from one partition's rows (a co-located SELECT, nothing
            # that combines rows): the partitions' derived tables together are the table's.
            inside = self.select(inner, [], None)
            if not any(i.kind in ("sharded", "derived") for i in inside):
                raise _refuse("a derived table on single tables under a sharded table")
            return _Instance(node.alias_or_name.lower(), None, None, derived=True)
        raise _refuse("this table reference in a join on sharded tables")

    # -- joins ------------------------------------------------------------------------------

    def join(
        self, scope: _Scope, join: exp.Join, before: list[_Instance], joined: _Instance
    ) -> None:
        if join.args.get("method"):
            raise _refuse(f"{join.args['method'].upper()} JOIN on sharded tables")
        side = (join.args.get("side") or "").upper()
        if side not in ("", "LEFT", "RIGHT"):
            raise _refuse(f"{side} JOIN on sharded tables")
        visible = [*before, joined]
        direct: list[_Instance] = []  # sharded tables of ``before`` joined to ``joined`` by key
        on = join.args.get("on")
        if on is not None:
            for conjunct in _conjuncts(on):
                pair = self.edge(scope, conjunct, visible)
                if pair is not None and joined in pair:
                    direct.extend(p for p in pair if p in before)
        for name in join.args.get("using") or []:
            column = name.name.lower()
            having = [i for i in before if i.columns is None or column in i.columns]
            if (
                len(having) == 1
                and having[0].kind == "sharded"
                and joined.kind == "sharded"
                and having[0].key() == column
                and joined.key() == column
            ):
                scope.union(having[0], joined)
                direct.append(having[0])
        sharded_before = [i for i in before if i.kind == "sharded"]
        if side == "LEFT" and joined.kind == "sharded" and not sharded_before:
            raise _refuse(
                f"LEFT JOIN of sharded table {joined.label} to tables that are not sharded"
            )
        if side == "LEFT" and joined.kind == "sharded" and not direct:
            raise _refuse(
                f"LEFT JOIN of sharded table {joined.label} not on the shard key of a sharded"
                " table it is joined to (in its ON)"
            )
        if side == "RIGHT" and sharded_before and (joined.kind != "sharded" or not direct):
            raise _refuse(
                f"RIGHT JOIN of {joined.label} to sharded table {sharded_before[0].label}"
                " not on their shard keys (in its ON)"
            )

    def edge(
        self, scope: _Scope, node: exp.Expression, visible: list[_Instance]
    ) -> tuple[_Instance, _Instance] | None:
        """An equality of two shard key columns of sharded tables: joined in ``scope``."""
        if not isinstance(node, exp.EQ):
            return None
        left, right = node.this, node.expression
        if not isinstance(left, exp.Column) or not isinstance(right, exp.Column):
            return None
        a = self.resolve(left, visible, scope.outer)
        b = self.resolve(right, visible, scope.outer)
        if a is None or b is None or a is b:
            return None
        if a.kind != "sharded" or b.kind != "sharded":
            return None
        if left.name.lower() != a.key() or right.name.lower() != b.key():
            return None
        if a in scope.instances and b in scope.instances:
            scope.union(a, b)
        return (a, b)

    def resolve(
        self, column: exp.Column, visible: list[_Instance], outer: list[_Instance]
    ) -> _Instance | None:
        """The instance a column reference names (None: not known for sure)."""
        qualifier = column.table.lower() if column.table else ""
        if column.args.get("db") is not None and column.db.lower() != self.database:
            return None
        name = column.name.lower()
        for group in (visible, outer):
            if qualifier:
                found = [i for i in group if i.name == qualifier]
                if len(found) > 1:
                    return None
                if found:
                    return found[0]
                continue
            if any(i.columns is None for i in group):
                return None
            found = [i for i in group if i.columns is not None and name in i.columns]
            if len(found) == 1:
                return found[0]
            if found:
                return None
        return None

    # -- subqueries -------------------------------------------------------------------------

    def correlated(
        self, scope: _Scope, node: exp.Select, sharded: list[_Instance], link: exp.In | None
    ) -> None:
        """A subquery on sharded tables: tied by shard key to a sharded table outside it."""
        outer_sharded = [i for i in scope.outer if i.kind == "sharded"]
        if not outer_sharded:
            raise _refuse("a subquery on a sharded table under a SELECT from no sharded table")
        _equal_partitioning(sharded + outer_sharded)
        where = node.args.get("where")
        outer_join = any(j.args.get("side") for j in node.args.get("joins") or [])
        if where is not None and not outer_join:
            for conjunct in _conjuncts(where.this):
                pair = self.edge(scope, conjunct, scope.instances)
                if pair is None:
                    continue
                inside = [p for p in pair if p in scope.instances]
                if len(inside) == 1 and any(p in outer_sharded for p in pair):
                    return
        if link is not None and self.in_link(scope, node, link, outer_sharded):
            return
        raise _refuse(
            f"a subquery on sharded table {sharded[0].label} not tied to the shard key of the"
            " enclosing SELECT's sharded table (inner.key = outer.key in its WHERE)"
        )

    def in_link(
        self, scope: _Scope, node: exp.Select, link: exp.In, outer_sharded: list[_Instance]
    ) -> bool:
        """``outer.k IN (SELECT inner.k FROM ...)``, nothing in it that sees other rows."""
        for clause in ("group", "having", "limit", "offset", "order"):
            if node.args.get(clause) is not None:
                return False
        if any(True for _ in node.find_all(exp.AggFunc, exp.Window)):
            return False
        if len(node.expressions) != 1 or not isinstance(link.this, exp.Column):
            return False
        selected = node.expressions[0]
        if isinstance(selected, exp.Alias):
            selected = selected.this
        if not isinstance(selected, exp.Column):
            return False
        inner = self.resolve(selected, scope.instances, [])
        outer = self.resolve(link.this, scope.outer, [])
        return (
            inner is not None
            and outer is not None
            and inner.kind == "sharded"
            and outer in outer_sharded
            and selected.name.lower() == inner.key()
            and link.this.name.lower() == outer.key()
        )


_BROADCAST_LIKE = LogicalTable(name="(derived)", rule=TableRule("broadcast"), definition="")


def _row_local(node: exp.Select) -> bool:
    """Whether each row of the SELECT comes from one row of its FROM (joined): no grouping,
    aggregate, DISTINCT, LIMIT or window function anywhere in it."""
    for clause in ("group", "having", "limit", "offset", "distinct"):
        if node.args.get(clause) is not None:
            return False
    return not any(True for _ in node.find_all(exp.AggFunc, exp.Window))


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _top_level_ins(node: exp.Expression) -> set[int]:
    return {id(c) for c in _conjuncts(node) if isinstance(c, exp.In)}


def _subqueries(node: exp.Select, broadcast: frozenset[str]) -> list[exp.Select]:
    """The SELECTs directly nested in ``node`` (not in its derived tables, which
    ``_Reader.instance`` handled), outermost first."""
    found: list[exp.Select] = []
    derived = set()
    source = node.args.get("from_") or node.args.get("from")
    sources = [source.this] if source is not None else []
    sources += [j.this for j in node.args.get("joins") or []]
    for item in sources:
        if isinstance(item, exp.Subquery):
            derived.add(id(item))
    stack: list[exp.Expression] = []
    for key, value in node.args.items():
        if key not in ("from_", "from", "joins"):
            stack.extend(_children(value))
    for join in node.args.get("joins") or []:
        stack.extend(_children(join.args.get("on")))
    while stack:
        item = stack.pop()
        if id(item) in derived:
            continue
        if isinstance(item, exp.Select):
            found.append(item)
            continue
        if isinstance(item, (exp.Union, exp.Except, exp.Intersect)):
            # Exact only on broadcast tables (every partition has all their rows).
            for table in item.find_all(exp.Table):
                if table.name.lower() not in broadcast:
                    raise _refuse("UNION in a subquery on a sharded database's tables")
            continue
        for value in item.args.values():
            stack.extend(_children(value))
    return found


def _children(value: object) -> list[exp.Expression]:
    if isinstance(value, exp.Expression):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, exp.Expression)]
    return []


def _equal_partitioning(sharded: list[_Instance]) -> None:
    """Every sharded table of a join placed alike: a key value lands in the same physical
    table index of each."""
    if not sharded:
        return
    first = sharded[0]
    for item in sharded:
        why = _placement_difference(first, item)
        if why is not None:
            raise _refuse(
                f"join of sharded tables {first.label} and {item.label} with different"
                f" partitioning ({why})"
            )


def _placement_difference(a: _Instance, b: _Instance) -> str | None:
    assert a.table is not None and b.table is not None
    ra, rb = a.table.rule, b.table.rule
    for item, rule in ((a, ra), (b, rb)):
        assert rule.db_key is not None
        if rule.db_key.type.family != "integer":
            return (
                f"{item.label} has a string shard key: strings compare case- and"
                " trailing-space-insensitively but are placed by their exact text"
            )
        if rule.tb_key is not None and not rule.tb_key.same_as(rule.db_key):
            return f"{item.label} is split by TBPARTITION BY on another column or function"
    assert ra.db_key is not None and rb.db_key is not None
    if ra.db_key.function != rb.db_key.function:
        return f"{ra.db_key.function} and {rb.db_key.function}"
    if ra.tables_per_db != rb.tables_per_db or (ra.tb_key is None) != (rb.tb_key is None):
        return f"TBPARTITIONS {ra.tables_per_db} and {rb.tables_per_db}"
    return None

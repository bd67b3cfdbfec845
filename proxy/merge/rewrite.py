"""Per-partition rewriting of a scatter SELECT, and the merge it needs (a pure plan).

``plan_select(sql, limits)`` reads a SELECT that goes to every partition and answers either a
:class:`MergePlan` (the statement each partition runs, and what the proxy does with their
results so the client receives what one MariaDB holding all rows would send) or a
:class:`Refusal` (error 1235 and why). Plans are cached by statement text: one parse per shape.

The per-partition statement is the client's text spliced, not regenerated, so every visible
column keeps its name and type exactly: hidden columns (sort keys, group keys, the SUM and COUNT
behind an AVG, aggregates HAVING needs) are appended after the select list; HAVING is removed
(it is evaluated after the merge); ORDER BY is replaced by positions (matching GROUP BY, so
groups arrive sorted and merge as streams); ``LIMIT m, n`` becomes ``LIMIT m + n`` where that is
exact, and is dropped where it is not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType  # type: ignore[attr-defined]

ER_NOT_SUPPORTED_YET = 1235
SQLSTATE_NOT_SUPPORTED = "42000"


@dataclass(frozen=True)
class MergeLimits:
    """Configurable caps: ``max_window`` on m + n of ``LIMIT m, n`` (rows the proxy would read
    past), ``max_groups`` on groups held in memory when they cannot be merged as a stream."""

    max_window: int = 100_000
    max_groups: int = 100_000


DEFAULT_LIMITS = MergeLimits()


@dataclass(frozen=True)
class Refusal:
    """The statement cannot be answered exactly by merging: refuse with 1235 and ``reason``."""

    reason: str
    errno: int = ER_NOT_SUPPORTED_YET
    sqlstate: str = SQLSTATE_NOT_SUPPORTED

    @property
    def message(self) -> str:
        return f"This version of shardgate doesn't yet support '{self.reason}'"


class Op(Enum):
    """How one column of the partitions' rows is merged into a group's row."""

    KEY = "key"  # a group key (equal within a group)
    FIRST = "first"  # any value of the group (MariaDB's own choice is arbitrary too)
    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    AVG = "avg"  # computed from the hidden SUM and COUNT columns named in ``Column``


@dataclass(frozen=True)
class Column:
    op: Op
    sum_column: int = -1  # Op.AVG: the hidden SUM(x) column
    count_column: int = -1  # Op.AVG: the hidden COUNT(x) column


@dataclass(frozen=True)
class SortKey:
    column: int  # position in the partitions' rows (0-based)
    descending: bool = False


# HAVING, compiled to a small tree evaluated on merged rows.
@dataclass(frozen=True)
class Ref:
    column: int


@dataclass(frozen=True)
class Lit:
    value: Decimal | str | None


@dataclass(frozen=True)
class Unary:
    op: str  # "not" "neg" "isnull" "notnull"
    arg: Expr


@dataclass(frozen=True)
class Binary:
    op: str  # "and" "or" "xor" "=" "<=>" "<>" "<" "<=" ">" ">=" "+" "-" "*" "/"
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InList:
    arg: Expr
    items: tuple[Expr, ...]
    negated: bool = False


Expr = Ref | Lit | Unary | Binary | InList


@dataclass(frozen=True)
class MergePlan:
    """What each partition runs and how the proxy merges their results.

    ``columns`` describes every column of the partitions' rows: the first ``visible`` are the
    client's, the ``hidden`` others are removed before rows reach the client.
    ``partition_order``: the order each partition sends its rows in (the k-way merge's keys);
    ``order``: the client's order of the final rows (equal to ``partition_order``'s prefix unless
    ``sort_after_merge``). ``aggregate``: rows are combined into groups keyed on the KEY columns
    (no key column: one group, an aggregate without GROUP BY). ``distinct``: the groups are the
    distinct rows. ``offset``/``limit`` apply at the proxy after HAVING and ordering.
    """

    sql: str
    visible: int
    hidden: int
    columns: tuple[Column, ...]
    order: tuple[SortKey, ...]
    partition_order: tuple[SortKey, ...]
    aggregate: bool
    distinct: bool
    having: Expr | None
    sort_after_merge: bool
    offset: int
    limit: int | None
    star: bool = False  # ``*`` in the select list: ``visible`` is known from the results

    def bound(self, total_columns: int) -> MergePlan:
        """The plan for results of ``total_columns`` columns: with ``*`` in the select list,
        the client's columns are all but the hidden ones at the end."""
        if not self.star:
            return self
        visible = total_columns - self.hidden
        shift = visible - self.visible

        def move(k: SortKey) -> SortKey:
            return SortKey(k.column + shift if k.column >= self.visible else k.column, k.descending)

        return replace(
            self,
            visible=visible,
            columns=(Column(Op.FIRST),) * visible + self.columns[self.visible :],
            order=tuple(move(k) for k in self.order),
            partition_order=tuple(move(k) for k in self.partition_order),
            star=False,
        )

    @property
    def group_columns(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c.op is Op.KEY)

    @property
    def streamed(self) -> bool:
        """Whether the merge holds a bounded number of rows (no buffering of every group)."""
        return not self.sort_after_merge


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_SUPPORTED_AGGREGATES: dict[type[exp.Expression], Op] = {
    exp.Count: Op.COUNT,
    exp.Sum: Op.SUM,
    exp.Min: Op.MIN,
    exp.Max: Op.MAX,
    exp.Avg: Op.AVG,
}

# Clause keywords of the outermost SELECT, at parenthesis depth 0.
_CLAUSES = {
    TokenType.FROM,
    TokenType.WHERE,
    TokenType.GROUP_BY,
    TokenType.HAVING,
    TokenType.WINDOW,
    TokenType.ORDER_BY,
    TokenType.LIMIT,
    TokenType.FOR,
    TokenType.LOCK,
    TokenType.INTO,
    TokenType.SEMICOLON,
}


def _key(node: exp.Expression) -> str:
    """A comparison key for two expressions written alike (names are case-insensitive)."""
    return node.sql(dialect="mysql", comments=False).lower()


def _walk_outer(node: exp.Expression) -> list[exp.Expression]:
    """``node`` and its descendants, not entering subqueries (their aggregates are theirs)."""
    out: list[exp.Expression] = []
    todo = [node]
    while todo:
        n = todo.pop()
        out.append(n)
        for child in n.iter_expressions():
            if isinstance(child, exp.Subquery | exp.Select | exp.Query):
                continue
            todo.append(child)
    return out


# MariaDB's aggregate functions sqlglot reads as a call of an unknown function (not an
# AggFunc): each partition would answer its own aggregate, concatenated as rows. Only as an
# unquoted name: a quoted one (the lexer quotes ``json_arrayagg (x)`` too) calls a stored
# function for MariaDB.
_ANONYMOUS_AGGREGATES = frozenset({"JSON_ARRAYAGG"})


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, exp.AggFunc) or (
        isinstance(node, exp.Anonymous)
        and isinstance(node.this, str)
        and node.this.upper() in _ANONYMOUS_AGGREGATES
    )


def _contains_aggregate(node: exp.Expression) -> bool:
    return any(_is_aggregate(n) for n in _walk_outer(node))


def _check_aggregate(node: exp.Expression) -> Op:
    op = _SUPPORTED_AGGREGATES.get(type(node))
    if op is None:
        if isinstance(node, exp.Anonymous):
            raise _Refused(f"{str(node.name).upper()} across partitions")
        name = node.sql_name() if hasattr(node, "sql_name") else type(node).__name__
        raise _Refused(f"{name} across partitions")
    arg = node.this
    if isinstance(arg, exp.Distinct):
        raise _Refused(f"{op.value.upper()}(DISTINCT ...) across partitions")
    if arg is not None and _contains_aggregate(arg):
        raise _Refused("nested aggregate functions")
    return op


def _is_star(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) or (
        isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
    )


def _int_literal(node: exp.Expression | None) -> int | None:
    if node is None:
        return None
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    raise _Refused("LIMIT with a parameter or an expression across partitions")


@dataclass
class _Builder:
    items: list[exp.Expression]  # the select list (without aliases)
    aliases: list[str | None]
    hidden: list[str]  # SQL text of hidden columns
    columns: list[Column]
    # The client's own text of expressions (by id of their node), so that a hidden column is
    # what the client wrote rather than sqlglot's rendering of it.
    texts: dict[int, str] = field(default_factory=dict)

    def text(self, node: exp.Expression) -> str:
        return self.texts.get(id(node)) or node.sql(dialect="mysql", comments=False)

    def position(self, node: exp.Expression) -> int | None:
        key = _key(node)
        for i, item in enumerate(self.items):
            if _key(item) == key:
                return i
        return None

    def add_hidden(
        self, node: exp.Expression, column: Column, *, force: bool = False, text: str = ""
    ) -> int:
        found = self.position(node)
        if (
            found is not None
            and self.columns[found] == column
            and (not force or found >= len(self.items) - len(self.hidden))
        ):
            return found
        if any(True for _ in node.find_all(exp.Placeholder)):
            raise _Refused("a parameter (?) in an expression the proxy adds to each partition")
        self.items.append(node)
        self.aliases.append(None)
        self.hidden.append(text or self.text(node))
        self.columns.append(column)
        return len(self.items) - 1


def _alias_of(name: str, b: _Builder) -> int | None:
    for i, alias in enumerate(b.aliases):
        if alias is not None and alias.lower() == name.lower():
            return i
    return None


def _resolve(node: exp.Expression, b: _Builder, *, alias_first: bool, grouped: bool) -> int:
    """The column of the partitions' rows holding ``node`` (a position, an alias, an
    expression of the select list, or else a hidden column)."""
    if isinstance(node, exp.Literal) and not node.is_string:
        n = int(node.this) if node.this.isdigit() else 0
        if not 1 <= n <= b_visible(b):
            raise _Refused("an ORDER BY or GROUP BY position outside the select list")
        return n - 1
    if isinstance(node, exp.Column) and not node.table:
        alias = _alias_of(node.name, b)
        found = b.position(node)
        if alias_first and alias is not None:
            return alias
        if found is not None:
            return found
        if alias is not None:
            return alias
    found = b.position(node)
    if found is not None:
        return found
    if _is_aggregate(node):
        op = _check_aggregate(node)
        return _add_aggregate(node, op, b)
    if _contains_aggregate(node):
        raise _Refused("expressions over aggregate functions")
    return b.add_hidden(node, Column(Op.FIRST if grouped else Op.KEY))


def _star_order_key(node: exp.Expression, b: _Builder) -> int:
    """With ``*`` in the select list the client's column count is known only from the
    results: sort keys are always hidden columns, found at the end of the rows."""
    if isinstance(node, exp.Literal):
        raise _Refused("ORDER BY a position with * in the select list, across partitions")
    if isinstance(node, exp.Column) and not node.table:
        alias = _alias_of(node.name, b)
        if alias is not None:
            node = b.items[alias]
    if _contains_aggregate(node):
        raise _Refused("aggregate functions with * in the select list")
    return b.add_hidden(node.copy(), Column(Op.FIRST), force=True, text=b.text(node))


def b_visible(b: _Builder) -> int:
    return len(b.items) - len(b.hidden)


def _add_aggregate(node: exp.Expression, op: Op, b: _Builder) -> int:
    if op is Op.AVG:
        pos = b.add_hidden(node, Column(Op.FIRST))  # its column definition is AVG's
        sum_col, count_col = _avg_parts(node, b)
        b.columns[pos] = Column(Op.AVG, sum_col, count_col)
        return pos
    return b.add_hidden(node, Column(op))


def _avg_parts(node: exp.Expression, b: _Builder) -> tuple[int, int]:
    arg = node.this
    text = b.text(arg)
    sum_col = b.add_hidden(exp.Sum(this=arg.copy()), Column(Op.SUM), text=f"SUM({text})")
    count_col = b.add_hidden(exp.Count(this=arg.copy()), Column(Op.COUNT), text=f"COUNT({text})")
    return sum_col, count_col


def _outer_tokens(sql: str) -> list[Token]:
    return list(MySQL().tokenize(sql))


def _clause_items(tokens: list[Token], clause: TokenType) -> list[list[Token]]:
    """The outermost SELECT's ``clause`` (select list: SELECT) split at its depth-0 commas,
    as token lists (an ORDER BY item's ASC/DESC removed)."""
    depth = 0
    inside = False
    items: list[list[Token]] = [[]]
    for tok in tokens:
        kind = tok.token_type
        if depth == 0 and kind == clause and not inside:
            inside = True
            continue
        if not inside:
            if kind == TokenType.L_PAREN:
                depth += 1
            elif kind == TokenType.R_PAREN:
                depth -= 1
            continue
        if depth == 0 and (kind in _CLAUSES or kind == TokenType.WITH):
            break
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
        if depth == 0 and kind == TokenType.COMMA:
            items.append([])
        else:
            items[-1].append(tok)
    if not inside:
        return []
    if clause == TokenType.ORDER_BY:
        for item in items:
            if item and item[-1].token_type in (TokenType.ASC, TokenType.DESC):
                item.pop()
    return items


def _span(sql: str, tokens: list[Token]) -> str:
    return sql[tokens[0].start : tokens[-1].end + 1] if tokens else ""


def _call_argument(sql: str, tokens: list[Token]) -> str:
    """The text inside the first parentheses of an item (an aggregate's argument)."""
    depth = 0
    start = -1
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
            if depth == 1 and start < 0:
                start = tok.end + 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0 and start >= 0:
                return sql[start : tok.start].strip()
    return ""


_AGGREGATE_NAMES = frozenset({"COUNT", "SUM", "MIN", "MAX", "AVG"})


def _aggregate_calls(items: list[list[Token]]) -> list[list[Token]]:
    """The tokens of each aggregate call (``SUM(...)``) in a clause, left to right."""
    flat = [tok for item in items for tok in item]
    calls: list[list[Token]] = []
    i = 0
    while i < len(flat):
        tok = flat[i]
        if (
            tok.text.upper() in _AGGREGATE_NAMES
            and i + 1 < len(flat)
            and flat[i + 1].token_type == TokenType.L_PAREN
        ):
            depth = 0
            for j in range(i + 1, len(flat)):
                kind = flat[j].token_type
                depth += (kind == TokenType.L_PAREN) - (kind == TokenType.R_PAREN)
                if depth == 0:
                    calls.append(flat[i : j + 1])
                    i = j
                    break
        i += 1
    return calls


def _record_texts(sql: str, tokens: list[Token], tree: exp.Select, b: _Builder) -> None:
    """The client's text of ORDER BY and GROUP BY items and of aggregates' arguments."""
    order = tree.args.get("order")
    group = tree.args.get("group")
    pairs: list[tuple[list[exp.Expression], list[list[Token]]]] = [
        (list(b.items), _clause_items(tokens, TokenType.SELECT)),
    ]
    if order is not None:
        pairs.append(
            ([o.this for o in order.expressions], _clause_items(tokens, TokenType.ORDER_BY))
        )
    if group is not None:
        pairs.append((list(group.expressions), _clause_items(tokens, TokenType.GROUP_BY)))
    having = tree.args.get("having")
    if having is not None:
        calls = _aggregate_calls(_clause_items(tokens, TokenType.HAVING))
        found = [n for n in having.walk(bfs=False) if _is_aggregate(n)]
        if len(found) == len(calls):
            pairs.append((found, calls))
    for nodes, items in pairs:
        if len(nodes) != len(items):
            continue  # the text cannot be matched: sqlglot's rendering is used
        for node, item in zip(nodes, items, strict=True):
            if nodes is not pairs[0][0]:
                b.texts[id(node)] = _span(sql, item)
            if isinstance(node, exp.AggFunc) and node.this is not None:
                argument = _call_argument(sql, item)
                if argument:
                    b.texts[id(node.this)] = argument


def _clause_starts(tokens: list[Token]) -> dict[TokenType, int]:
    """Offsets of the outermost SELECT's clause keywords (first occurrence at depth 0)."""
    depth = 0
    found: dict[TokenType, int] = {}
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.token_type in _CLAUSES and tok.token_type not in found:
            found[tok.token_type] = tok.start
    return found


def _compile_having(node: exp.Expression, b: _Builder) -> Expr:
    if isinstance(node, exp.Paren):
        return _compile_having(node.this, b)
    if isinstance(node, exp.And | exp.Or | exp.Xor):
        op = {exp.And: "and", exp.Or: "or", exp.Xor: "xor"}[type(node)]
        return Binary(op, _compile_having(node.this, b), _compile_having(node.expression, b))
    comparisons: dict[type[exp.Expression], str] = {
        exp.EQ: "=",
        exp.NullSafeEQ: "<=>",
        exp.NEQ: "<>",
        exp.LT: "<",
        exp.LTE: "<=",
        exp.GT: ">",
        exp.GTE: ">=",
        exp.Add: "+",
        exp.Sub: "-",
        exp.Mul: "*",
        exp.Div: "/",
    }
    if type(node) in comparisons:
        return Binary(
            comparisons[type(node)],
            _compile_having(node.this, b),
            _compile_having(node.expression, b),
        )
    if isinstance(node, exp.Not):
        inner = node.this
        if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null):
            return Unary("notnull", _compile_having(inner.this, b))
        if isinstance(inner, exp.In):
            c = _compile_having(inner, b)
            assert isinstance(c, InList)
            return InList(c.arg, c.items, negated=True)
        return Unary("not", _compile_having(inner, b))
    if isinstance(node, exp.Neg):
        return Unary("neg", _compile_having(node.this, b))
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return Unary("isnull", _compile_having(node.this, b))
    if isinstance(node, exp.Between):
        arg = _compile_having(node.this, b)
        return Binary(
            "and",
            Binary(">=", arg, _compile_having(node.args["low"], b)),
            Binary("<=", arg, _compile_having(node.args["high"], b)),
        )
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            raise _Refused("a subquery in HAVING across partitions")
        return InList(
            _compile_having(node.this, b),
            tuple(_compile_having(e, b) for e in node.expressions),
        )
    if isinstance(node, exp.Null):
        return Lit(None)
    if isinstance(node, exp.Boolean):
        return Lit(Decimal(1 if node.this else 0))
    if isinstance(node, exp.Literal):
        return Lit(node.this if node.is_string else Decimal(node.this))
    if isinstance(node, exp.Column | exp.AggFunc):
        return Ref(_resolve(node, b, alias_first=True, grouped=True))
    raise _Refused(f"this HAVING expression across partitions ({node.sql(dialect='mysql')})")


def _plan(sql: str, limits: MergeLimits) -> MergePlan:
    try:
        trees = [t for t in sqlglot.parse(sql, dialect="mysql") if t is not None]
        tokens = _outer_tokens(sql)
    except (ParseError, TokenError) as exc:
        raise _Refused(f"a statement the proxy cannot parse ({str(exc).splitlines()[0]})") from None
    if len(trees) != 1:
        raise _Refused("several statements in one across partitions")
    tree = trees[0]
    if not isinstance(tree, exp.Select):
        raise _Refused("UNION or a non-SELECT statement across partitions")
    if not tokens or tokens[0].token_type != TokenType.SELECT:
        raise _Refused("a SELECT that does not start with SELECT (WITH, parentheses)")
    if tree.args.get("operation_modifiers"):
        words = " ".join(m.sql(dialect="mysql") for m in tree.args["operation_modifiers"])
        if "SQL_CALC_FOUND_ROWS" in words.upper():
            raise _Refused("SQL_CALC_FOUND_ROWS across partitions")
    if tree.args.get("into") is not None:
        raise _Refused("SELECT ... INTO across partitions")
    if tree.args.get("windows"):
        raise _Refused("window functions across partitions")
    for node in tree.find_all(exp.Window, exp.GroupConcat):
        raise _Refused(
            "window functions across partitions"
            if isinstance(node, exp.Window)
            else "GROUP_CONCAT across partitions"
        )
    if tree.args.get("having") is not None and any(t.token_type == TokenType.DPIPE for t in tokens):
        # sqlglot reads || as OR; under PIPES_AS_CONCAT (and ANSI) MariaDB concatenates.
        raise _Refused("|| in a statement with HAVING across partitions (OR or concatenation)")
    group = tree.args.get("group")
    for clause in ("group", "having", "order"):
        part = tree.args.get(clause)
        if part is not None and any(True for _ in part.find_all(exp.Placeholder)):
            raise _Refused(f"a parameter (?) in {clause.upper()} across partitions")
    if group is not None and (group.args.get("rollup") or group.args.get("cube")):
        raise _Refused("GROUP BY ... WITH ROLLUP across partitions")
    if group is not None and group.args.get("grouping_sets"):
        raise _Refused("GROUPING SETS across partitions")

    items: list[exp.Expression] = []
    aliases: list[str | None] = []
    columns: list[Column] = []
    for item in tree.expressions:
        alias: str | None = None
        if isinstance(item, exp.Alias):
            item, alias = item.this, item.alias
        items.append(item)
        aliases.append(alias)
        columns.append(Column(Op.FIRST))
    b = _Builder(items, aliases, [], columns)
    _record_texts(sql, tokens, tree, b)
    visible = len(items)

    aggregated = group is not None
    for i, item in enumerate(list(b.items)):
        if _is_aggregate(item):
            aggregated = True
            op = _check_aggregate(item)
            if op is Op.AVG:
                s, c = _avg_parts(item, b)
                b.columns[i] = Column(Op.AVG, s, c)
            else:
                b.columns[i] = Column(op)
        elif _contains_aggregate(item):
            raise _Refused("expressions over aggregate functions")
    having_node = tree.args.get("having")
    if having_node is not None:
        aggregated = True
    has_star = any(_is_star(n) for n in items[:visible])
    distinct = tree.args.get("distinct") is not None
    if distinct and tree.args["distinct"].args.get("on"):
        raise _Refused("DISTINCT ON")
    if distinct and aggregated:
        if group is not None:
            raise _Refused("DISTINCT with GROUP BY across partitions")
        distinct = False  # one row: nothing to make distinct
    if (aggregated or distinct) and has_star:
        raise _Refused("SELECT * with grouping or DISTINCT across partitions")

    # GROUP BY keys.
    if group is not None:
        for key_node in group.expressions:
            if isinstance(key_node, exp.Ordered):
                raise _Refused("GROUP BY ... ASC/DESC across partitions")
            pos = _resolve(key_node, b, alias_first=False, grouped=False)
            if b.columns[pos].op not in (Op.FIRST, Op.KEY):
                raise _Refused("GROUP BY an aggregate")
            b.columns[pos] = Column(Op.KEY)
    if distinct:
        for i in range(visible):
            b.columns[i] = Column(Op.KEY)

    # ORDER BY.
    order: list[SortKey] = []
    order_node = tree.args.get("order")
    if order_node is not None:
        for ordered in order_node.expressions:
            key_node = ordered.this
            if isinstance(key_node, exp.Null) or (
                isinstance(key_node, exp.Literal) and key_node.is_string
            ):
                continue  # a constant: orders nothing
            before = len(b.items)
            if has_star:
                pos = _star_order_key(key_node, b)
            else:
                pos = _resolve(key_node, b, alias_first=True, grouped=aggregated)
            if distinct and len(b.items) != before:
                raise _Refused("DISTINCT with ORDER BY a column not selected, across partitions")
            if not aggregated and b.columns[pos].op is Op.KEY and pos >= visible:
                b.columns[pos] = Column(Op.FIRST)
            order.append(SortKey(pos, bool(ordered.args.get("desc"))))

    # HAVING.
    having: Expr | None = None
    if having_node is not None:
        having = _compile_having(having_node.this, b)

    keys = [i for i, c in enumerate(b.columns) if c.op is Op.KEY]
    grouped = aggregated or distinct
    sort_after_merge = False
    if grouped and keys:
        key_set = set(keys)
        if all(k.column in key_set for k in order):
            seen = {k.column for k in order}
            partition_order = [*order, *(SortKey(k) for k in keys if k not in seen)]
            # Deduplicate (a key ordered twice).
            uniq: dict[int, SortKey] = {}
            for k in partition_order:
                uniq.setdefault(k.column, k)
            partition_order = list(uniq.values())
            if not order:
                order = list(partition_order)  # MariaDB sorts GROUP BY's groups by their keys
        else:
            partition_order = [SortKey(k) for k in keys]
            sort_after_merge = True
    elif grouped:
        partition_order = []
    else:
        partition_order = list(order)

    # LIMIT.
    limit = _int_literal(tree.args["limit"].expression) if tree.args.get("limit") else None
    offset = _int_literal(tree.args["offset"].expression) if tree.args.get("offset") else 0
    offset = offset or 0
    if limit is not None and offset + limit > limits.max_window:
        raise _Refused(
            f"LIMIT {offset}, {limit} across partitions: offset + row count above the proxy's "
            f"cap of {limits.max_window} rows"
        )
    push_limit = limit is not None and (
        not grouped or (keys and not sort_after_merge and having is None)
    )

    # Splice the text.
    starts = _clause_starts(tokens)
    select_end = min(starts.values(), default=len(sql))
    cut_types = (
        TokenType.HAVING,
        TokenType.WINDOW,
        TokenType.ORDER_BY,
        TokenType.LIMIT,
        TokenType.FOR,
        TokenType.LOCK,
        TokenType.SEMICOLON,
    )
    middle_end = min((starts[t] for t in cut_types if t in starts), default=len(sql))
    if select_end > middle_end:
        select_end = middle_end
    tail_start = min(
        (starts[t] for t in (TokenType.FOR, TokenType.LOCK) if t in starts), default=None
    )
    tail_end = starts.get(TokenType.SEMICOLON, len(sql))
    tail = sql[tail_start:tail_end].strip() if tail_start is not None else ""
    if (
        starts.get(TokenType.SEMICOLON, len(sql)) < len(sql)
        and sql[starts[TokenType.SEMICOLON] + 1 :].strip()
    ):
        raise _Refused("several statements in one across partitions")
    head = sql[:select_end].rstrip()
    middle = sql[select_end:middle_end].strip()
    if has_star:
        hidden_sql = [f"{h} AS `__sg_{j}`" for j, h in enumerate(b.hidden)]
        names = {visible + j: f"`__sg_{j}`" for j in range(len(b.hidden))}
    else:
        hidden_sql = list(b.hidden)
        names = {}
    parts = [head + "".join(f", {h}" for h in hidden_sql)]
    if middle:
        parts.append(middle)
    if partition_order:
        parts.append(
            "ORDER BY "
            + ", ".join(
                f"{names.get(k.column, k.column + 1)}{' DESC' if k.descending else ''}"
                for k in partition_order
            )
        )
    if limit == 0:
        parts.append("LIMIT 0")  # no rows; and the server describes the columns as for LIMIT 0
    elif push_limit and limit is not None:
        parts.append(f"LIMIT {offset + limit}")
    if tail:
        parts.append(tail)
    return MergePlan(
        sql=" ".join(parts),
        visible=visible,
        hidden=len(b.hidden),
        columns=tuple(b.columns),
        order=tuple(order),
        partition_order=tuple(partition_order),
        aggregate=aggregated,
        distinct=distinct,
        having=having,
        sort_after_merge=sort_after_merge,
        offset=offset,
        limit=limit,
        star=has_star,
    )


@functools.lru_cache(maxsize=4096)
def plan_select(sql: str, limits: MergeLimits = DEFAULT_LIMITS) -> MergePlan | Refusal:
    """The merge plan of a scatter SELECT, or why it is refused (cached by text and limits)."""
    try:
        return _plan(sql, limits)
    except _Refused as refused:
        return Refusal(refused.reason)


def explain_merge(plan: MergePlan) -> list[str]:
    """What the proxy does with a scatter SELECT, one line per step (for EXPLAIN)."""

    def keys(order: tuple[SortKey, ...]) -> str:
        return ", ".join(f"#{k.column + 1}{' DESC' if k.descending else ''}" for k in order)

    lines = [f"each partition: {plan.sql}"]
    if plan.partition_order:
        lines.append(f"merge: k-way on {keys(plan.partition_order)}")
    else:
        lines.append("merge: concatenation")
    if plan.aggregate or plan.distinct:
        grouped = [f"#{i + 1}" for i in plan.group_columns]
        ops = [f"{c.op.value}(#{i + 1})" for i, c in enumerate(plan.columns) if c.op is not Op.KEY]
        what = "distinct rows" if plan.distinct else "groups"
        lines.append(
            f"combine {what}"
            + (f" on {', '.join(grouped)}" if grouped else " (one group)")
            + (f": {', '.join(ops)}" if ops else "")
        )
    if plan.having is not None:
        lines.append("HAVING after the merge")
    if plan.sort_after_merge:
        lines.append(f"sort the groups on {keys(plan.order)} (held in memory, capped)")
    if plan.limit is not None or plan.offset:
        lines.append(
            f"skip {plan.offset} rows, send {plan.limit if plan.limit is not None else 'all'}"
        )
    if plan.hidden:
        lines.append(f"drop the last {plan.hidden} (hidden) columns")
    return lines

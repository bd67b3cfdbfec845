"""Where a row of a sharded table lives: PolarDB-X 1.0 (DRDS)'s placement, bit for bit.

Pure arithmetic over ``auth.model.TableRule``; the value given is the shard key as DRDS hashes
it (``proxy.shard.values`` converts SQL values into it): a Python ``int`` for an integer
column, a ``str`` for a string column, ``None`` for NULL.

The hash ``h`` of a value, as DRDS's rules compute it (``polardbx-optimizer/.../newrule/
IntegerRuleGen.java``, ``StringRuleGen.java``; ``polardbx-rule/.../GroovyStaticMethod.java``)::

    HASH, integer v      h = Math.abs(v.longValue())           a Java long: Long.MIN_VALUE stays
                                                               negative; values beyond the long
                                                               range (BIGINT UNSIGNED) wrap as
                                                               longValue() does
    HASH, string s       h = Math.abs(s.hashCode())            a Java int: Integer.MIN_VALUE
                                                               stays negative
    UNI_HASH, integer v  h = Math.abs((long) v.hashCode())     Long.hashCode: (int)(v ^ v>>>32);
                                                               beyond the long range,
                                                               BigInteger.hashCode
    UNI_HASH, string s   h = Math.abs((long) s.hashCode())     never negative (abs of a long)

``String.hashCode`` runs over UTF-16 code units (a character beyond the BMP counts as its two
surrogates) in 32-bit signed arithmetic. The string is hashed exactly as given: DRDS routes
string keys case-sensitively (its "HASH" documentation), whatever the column's collation, so
``'ABC'`` and ``'abc'`` may live in different partitions even where MariaDB compares them equal
(the same holds for trailing spaces under PAD SPACE collations).

With D physical databases and T tables in each (``sharding.md``):

* database-only (``DBPARTITION BY f(c)``): ``db = h mod D``; the physical table is ``t``.
* the same function of the same column at both levels, HASH: the global table index
  ``g = h mod (D*T)``, ``db = g div T``.
* UNI_HASH at the table level (same column or not): ``db`` from the database level,
  ``g = db*T + (h div D) mod T`` (``hashPartitionIndex``: the database does not depend on T).
* otherwise (different columns or functions, HASH at the table level): ``db`` from the
  database key (``h1 mod D``), ``g = db*T + h2 mod T``.

``mod`` and ``div`` are Java's ``%`` and integer division (truncating): with a negative ``h``
(only ``Long.MIN_VALUE`` and ``Integer.MIN_VALUE`` hashes under HASH) an index comes out
negative unless the divisor is a power of two; DRDS then computes a partition that does not
exist, and :class:`PlacementError` says so (the statement is refused). A NULL key goes to
index 0 of its level.
"""

from __future__ import annotations

from typing import NamedTuple

from auth.model import LogicalTable, ShardKey, TableRule

__all__ = [
    "IntegerHash",
    "KeyValue",
    "Placement",
    "PlacementError",
    "database_of",
    "integer_hash",
    "java_biginteger_hash",
    "java_long_hash",
    "java_string_hash",
    "key_hash",
    "physical_table",
    "place",
    "tables_in",
]

KeyValue = int | str | None  # a shard key as DRDS hashes it (``proxy.shard.values``)

_INT_MASK = (1 << 32) - 1
_LONG_MASK = (1 << 64) - 1
_LONG_MIN = -(1 << 63)
_LONG_MAX = (1 << 63) - 1


class PlacementError(ValueError):
    """A key DRDS would place in a partition that does not exist (a negative index)."""


class Placement(NamedTuple):
    """A row's physical database and physical table: ``table`` indexes
    ``LogicalTable.physical_tables(D)`` (for a table split by TBPARTITION BY, the global
    table index ``g``; otherwise the database's index, its table being ``t``)."""

    database: int
    table: int


def _signed32(value: int) -> int:
    value &= _INT_MASK
    return value - (1 << 32) if value >> 31 else value


def _signed64(value: int) -> int:
    value &= _LONG_MASK
    return value - (1 << 64) if value >> 63 else value


def java_string_hash(text: str) -> int:
    """``String.hashCode()``: ``s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16 code units, in
    32-bit signed arithmetic. ValueError for a lone surrogate (no Java string of the column's
    character set holds one)."""
    units = text.encode("utf-16-be")  # strict: a lone surrogate raises UnicodeEncodeError
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & _INT_MASK
    return _signed32(h)


def java_long_hash(value: int) -> int:
    """``Long.hashCode(v)``: ``(int)(v ^ (v >>> 32))`` of a signed 64-bit ``v``."""
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise ValueError(f"not a Java long: {value}")
    bits = value & _LONG_MASK
    return _signed32(bits ^ (bits >> 32))


def java_biginteger_hash(value: int) -> int:
    """``BigInteger.hashCode()``: ``31*h + word`` over the magnitude's 32-bit words, most
    significant first, then times the sign (32-bit signed arithmetic)."""
    magnitude = abs(value)
    words = []
    while magnitude:
        words.append(magnitude & _INT_MASK)
        magnitude >>= 32
    h = 0
    for word in reversed(words):
        h = (31 * h + word) & _INT_MASK
    return _signed32(h * (1 if value >= 0 else -1))


def _java_abs_int(value: int) -> int:
    """``Math.abs(int)``: Integer.MIN_VALUE is its own absolute value."""
    return value if value == -(1 << 31) else abs(value)


def _java_abs_long(value: int) -> int:
    """``Math.abs(long)``: Long.MIN_VALUE is its own absolute value."""
    return value if value == _LONG_MIN else abs(value)


def _rem(a: int, n: int) -> int:
    """Java's ``a % n`` (the sign of ``a``)."""
    r = abs(a) % n
    return -r if a < 0 else r


def _div(a: int, n: int) -> int:
    """Java's ``a / n`` on integers (towards zero)."""
    q = abs(a) // n
    return -q if a < 0 else q


def key_hash(key: ShardKey, value: int | str) -> int:
    """``h``, the hash DRDS takes the modulo of (see the module docstring). TypeError for a
    value of the wrong family for the key's column (``proxy.shard.values`` converts first)."""
    if key.type.family == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"an integer key, not {value!r}")
        if key.function == "HASH":
            return _java_abs_long(_signed64(value))  # longValue(), then Math.abs(long)
        if _LONG_MIN <= value <= _LONG_MAX:
            return abs(java_long_hash(value))  # the int hash widened to long: never negative
        return abs(java_biginteger_hash(value))
    if not isinstance(value, str):
        raise TypeError(f"a string key, not {value!r}")
    hashed = java_string_hash(value)
    if key.function == "HASH":
        return _java_abs_int(hashed)  # Math.abs(int), then longValue()
    return abs(hashed)


def _index(h: int, divisor: int, what: str) -> int:
    found = _rem(h, divisor)
    if found < 0:
        raise PlacementError(
            f"the shard key hashes to {h}: DRDS places it in {what} {found}, which does not exist"
        )
    return found


def database_of(rule: TableRule, databases: int, value: KeyValue) -> int:
    """The physical database holding the rows whose database shard key is ``value``."""
    key = rule.db_key
    if key is None:
        raise ValueError(f"a {rule.kind} table has no shard key")
    if value is None:
        return 0
    h = key_hash(key, value)
    tb = rule.tb_key
    if tb is not None and key.function == "HASH" and tb.same_as(key):
        total = databases * rule.tables_per_db
        return _div(_index(h, total, "table"), rule.tables_per_db)
    return _index(h, databases, "database")


def place(
    rule: TableRule, databases: int, db_value: KeyValue, tb_value: KeyValue = None
) -> Placement:
    """The physical database and table of a row of a single or sharded table whose shard
    keys are ``db_value`` and ``tb_value`` (the table key, when TBPARTITION BY names another
    column or function; for the same column pass the same value). A broadcast table's rows are
    in every physical database: ValueError."""
    if rule.kind == "single":
        return Placement(0, 0)
    if rule.kind == "broadcast":
        raise ValueError("a broadcast table's rows are in every physical database")
    db_key, tb_key = rule.db_key, rule.tb_key
    assert db_key is not None
    db = database_of(rule, databases, db_value)
    if tb_key is None:
        return Placement(db, db)
    per_db = rule.tables_per_db
    if tb_key.same_as(db_key) and tb_key.function == "HASH":
        if db_value is None:
            return Placement(0, 0)
        return Placement(db, _index(key_hash(db_key, db_value), databases * per_db, "table"))
    if tb_value is None:
        return Placement(db, db * per_db)
    h = key_hash(tb_key, tb_value)
    if tb_key.function == "UNI_HASH":
        within = _div(h, databases) % per_db  # h >= 0 here: Java's % and Python's agree
    else:
        within = _index(h, per_db, "table")
    return Placement(db, db * per_db + within)


def tables_in(rule: TableRule, databases: int, database: int) -> range:
    """The indexes into ``LogicalTable.physical_tables(D)`` of the tables in physical database
    ``database`` (for a table split by TBPARTITION BY: its T global table indexes)."""
    if rule.kind == "single":
        return range(0, 1 if database == 0 else 0)
    if rule.tb_key is None:
        return range(database, database + 1)
    per_db = rule.tables_per_db
    return range(database * per_db, (database + 1) * per_db)


def physical_table(table: LogicalTable, databases: int, placement: Placement) -> str:
    """The physical table's name (the database is ``placement.database``)."""
    index, name = table.physical_tables(databases)[placement.table]
    assert index == placement.database
    return name


class IntegerHash(NamedTuple):
    """``place`` for a table sharded by HASH of an integer column, at the database level only
    or with the same HASH at the table level, as arithmetic: a key ``v`` in ``low .. high``
    (the column type's range, within a Java long but for Long.MIN_VALUE) is in global table
    ``g = |v| mod modulus``, database ``g div per_db`` (the fast path's; a unit test keeps it
    equal to ``place``)."""

    low: int
    high: int
    modulus: int
    per_db: int

    def place(self, value: int) -> Placement | None:
        """The placement of ``value``; None when it is not one this covers."""
        g = self.table(value)
        return None if g is None else Placement(g // self.per_db, g)

    def table(self, value: int) -> int | None:
        """The global table ``g`` of ``value`` (its placement: ``Placement(g // per_db,
        g)``); None when it is not one this covers."""
        if not self.low <= value <= self.high:
            return None
        return abs(value) % self.modulus


def integer_hash(rule: TableRule, databases: int) -> IntegerHash | None:
    """The :class:`IntegerHash` of ``rule`` (None: another rule)."""
    key = rule.db_key
    if rule.kind != "sharded" or key is None or key.function != "HASH":
        return None
    if key.type.family != "integer":
        return None
    low, high = key.type.bounds
    low, high = max(low, _LONG_MIN + 1), min(high, _LONG_MAX)
    tb = rule.tb_key
    if tb is None:
        return IntegerHash(low, high, databases, 1)
    if tb.same_as(key):
        return IntegerHash(low, high, databases * rule.tables_per_db, rule.tables_per_db)
    return None

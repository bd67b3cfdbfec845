"""Placement, bit-exact with PolarDB-X 1.0 (DRDS): golden values (proxy/shard/placement.py).

``GOLDEN`` is the output of ``tests/unit/golden/DrdsPlacement.java``: DRDS's rule expressions
(``IntegerRuleGen.java``, ``StringRuleGen.java``, ``GroovyStaticMethod.uni_hash`` /
``hashPartitionIndex`` of polardbx-sql) written out in Java and run on the JVM, so the expected
values come from Java's own ``String.hashCode``, ``Long.hashCode``, ``BigInteger``, ``%``,
``/`` and ``Math.abs`` -- not from the code under test. ``test_the_golden_table_is_javas``
runs the program again where a JDK is installed and checks the table is what it prints.

Lines::

    hash str "<s>" <String.hashCode>
    hash int <v> <Long.hashCode or - beyond the long range> <BigInteger.hashCode> <longValue>
    rule <db function>/<table function or ->/<D>/<T>       (the same column at both levels)
    place int|str <value> <db>.<global table index> ...      (one per rule; ERR: no partition)
    pair <db function>/<table function>/<D>/<T> <db key> <table key> <db>.<global table index>

Strings are JSON-quoted (``\\ud83d\\ude00`` is one astral character: two UTF-16 units).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from auth.model import HashFunction, KeyType, LogicalTable, ShardKey, TableRule
from proxy.shard.placement import (
    KeyValue,
    Placement,
    PlacementError,
    database_of,
    java_biginteger_hash,
    java_long_hash,
    java_string_hash,
    key_hash,
    physical_table,
    place,
    tables_in,
)

GOLDEN = r"""hash str "" 0
hash str "a" 97
hash str "abc" 96354
hash str "ABC" 64578
hash str "Abc" 65602
hash str "abc " 2987006
hash str "hello world" 1794106052
hash str "polygenelubricants" -2147483648
hash str "GydZG_" -2147483648
hash str "DESIGNING WORKHOUSES" -2147483648
hash str "Aa" 2112
hash str "BB" 2112
hash str "15" 1572
hash str "1234567890" -2054162789
hash str "\u4e2d\u6587" 646394
hash str "\u00e9" 233
hash str "e\u0301" 3900
hash str "\ud83d\ude00" 1772899
hash str "a\ud83d\ude00b" 57849694
hash str "\ud834\udd1e" 1772394
hash int 0 0 0 0
hash int 1 1 1 1
hash int 7 7 7 7
hash int 15 15 15 15
hash int -1 0 -1 -1
hash int -5 4 -5 -5
hash int -15 14 -15 -15
hash int 123456789 123456789 123456789 123456789
hash int 2147483647 2147483647 2147483647 2147483647
hash int -2147483648 2147483647 -2147483648 -2147483648
hash int 2147483648 -2147483648 -2147483648 2147483648
hash int 4294967295 -1 -1 4294967295
hash int 4294967296 1 31 4294967296
hash int -4294967296 -1 -31 -4294967296
hash int 9223372036854775807 -2147483648 2147483616 9223372036854775807
hash int -9223372036854775808 -2147483648 -2147483648 -9223372036854775808
hash int -9223372036854775807 -2147483647 -2147483616 -9223372036854775807
hash int 9223372036854775808 - -2147483648 -9223372036854775808
hash int 18446744073709551615 - -32 -1
rule HASH/-/8/1
rule HASH/-/6/1
rule HASH/HASH/4/4
rule HASH/HASH/4/3
rule UNI_HASH/-/8/1
rule UNI_HASH/UNI_HASH/4/4
rule UNI_HASH/UNI_HASH/6/3
rule HASH/UNI_HASH/4/4
rule UNI_HASH/HASH/4/3
place int 0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0
place int 1 1.1 1.1 0.1 0.1 1.1 1.4 1.3 1.4 1.4
place int 7 7.7 1.1 1.7 2.7 7.7 3.13 1.4 3.13 3.10
place int 15 7.7 3.3 3.15 1.3 7.7 3.15 3.11 3.15 3.9
place int -1 1.1 1.1 0.1 0.1 0.0 0.0 0.0 1.4 0.1
place int -5 5.5 5.5 1.5 1.5 4.4 0.1 4.12 1.5 0.2
place int -15 7.7 3.3 3.15 1.3 6.6 2.11 2.8 3.15 2.6
place int 123456789 5.5 3.3 1.5 3.9 5.5 1.5 3.10 1.5 1.3
place int 2147483647 7.7 1.1 3.15 2.7 7.7 3.15 1.3 3.15 3.10
place int -2147483648 0.0 2.2 0.0 2.8 7.7 3.15 1.3 0.3 3.11
place int 2147483648 0.0 2.2 0.0 2.8 0.0 0.0 2.6 0.0 0.2
place int 4294967295 7.7 3.3 3.15 1.3 1.1 1.4 1.3 3.12 1.3
place int 4294967296 0.0 4.4 0.0 1.4 1.1 1.4 1.3 0.0 1.4
place int -4294967296 0.0 4.4 0.0 1.4 1.1 1.4 1.3 0.0 1.4
place int 9223372036854775807 7.7 1.1 3.15 2.7 0.0 0.0 2.6 3.12 0.1
place int -9223372036854775808 0.0 ERR 0.0 ERR 0.0 0.0 2.6 0.0 ERR
place int -9223372036854775807 7.7 1.1 3.15 2.7 7.7 3.15 1.3 3.15 3.10
place int 9223372036854775808 0.0 ERR 0.0 ERR 0.0 0.0 2.6 0.0 ERR
place int 18446744073709551615 1.1 1.1 0.1 0.1 0.0 0.0 2.8 1.4 0.1
place str "" 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0
place str "a" 1.1 1.1 0.1 0.1 1.1 1.4 1.4 1.4 1.4
place str "abc" 2.2 0.0 0.2 2.6 2.2 2.8 0.0 2.8 2.6
place str "ABC" 2.2 0.0 0.2 2.6 2.2 2.8 0.2 2.8 2.6
place str "Abc" 2.2 4.4 0.2 3.10 2.2 2.8 4.13 2.8 2.7
place str "abc " 6.6 2.2 3.14 0.2 6.6 2.11 2.8 2.11 2.8
place str "hello world" 4.4 2.2 1.4 2.8 4.4 0.1 2.7 0.1 0.2
place str "polygenelubricants" 0.0 ERR 0.0 ERR 0.0 0.0 2.6 0.0 ERR
place str "GydZG_" 0.0 ERR 0.0 ERR 0.0 0.0 2.6 0.0 ERR
place str "DESIGNING WORKHOUSES" 0.0 ERR 0.0 ERR 0.0 0.0 2.6 0.0 ERR
place str "Aa" 0.0 0.0 0.0 0.0 0.0 0.0 0.1 0.0 0.0
place str "BB" 0.0 0.0 0.0 0.0 0.0 0.0 0.1 0.0 0.0
place str "15" 4.4 0.0 1.4 0.0 4.4 0.1 0.1 0.1 0.0
place str "1234567890" 5.5 5.5 1.5 1.5 5.5 1.5 5.17 1.5 1.5
place str "\u4e2d\u6587" 2.2 2.2 2.10 0.2 2.2 2.10 2.8 2.10 2.8
place str "\u00e9" 1.1 5.5 2.9 1.5 1.1 1.6 5.17 1.6 1.5
place str "e\u0301" 4.4 0.0 3.12 0.0 4.4 0.3 0.2 0.3 0.0
place str "\ud83d\ude00" 3.3 1.1 0.3 2.7 3.3 3.12 1.4 3.12 3.10
place str "a\ud83d\ude00b" 6.6 4.4 3.14 3.10 6.6 2.11 4.14 2.11 2.7
place str "\ud834\udd1e" 2.2 0.0 2.10 2.6 2.2 2.10 0.1 2.10 2.6
pair HASH/HASH/4/4 15 6 3.14
pair HASH/HASH/4/4 -7 9 3.13
pair HASH/HASH/4/4 123456789 987654321 1.5
pair HASH/HASH/4/4 0 -1 0.1
pair HASH/HASH/4/4 5 2147483648 1.4
pair UNI_HASH/UNI_HASH/4/3 15 6 3.10
pair UNI_HASH/UNI_HASH/4/3 -7 9 2.8
pair UNI_HASH/UNI_HASH/4/3 123456789 987654321 1.5
pair UNI_HASH/UNI_HASH/4/3 0 -1 0.0
pair UNI_HASH/UNI_HASH/4/3 5 2147483648 1.5
"""

JAVA_SOURCE = Path(__file__).parent / "golden" / "DrdsPlacement.java"
INT = KeyType("bigint")
STR = KeyType("varchar")


def _string(text: str) -> tuple[str, str]:
    """The JSON string at the start of ``text``, and the rest after one space."""
    value, end = json.JSONDecoder().raw_decode(text)
    assert isinstance(value, str)
    return value, text[end + 1 :]


def _lines(kind: str) -> list[str]:
    prefix = kind + " "
    return [line[len(prefix) :] for line in GOLDEN.splitlines() if line.startswith(prefix)]


def _rule(spec: str, key_type: KeyType, same_column: bool = True) -> tuple[TableRule, int]:
    db_function, tb_function, databases, per_db = spec.split("/")
    db_key = ShardKey(_function(db_function), "k", key_type)
    tb_key = None
    if tb_function != "-":
        tb_key = ShardKey(_function(tb_function), "k" if same_column else "k2", key_type)
    return TableRule("sharded", db_key, tb_key, int(per_db)), int(databases)


def _function(name: str) -> HashFunction:
    assert name in ("HASH", "UNI_HASH")
    return "HASH" if name == "HASH" else "UNI_HASH"


def _expect(cell: str) -> Placement | None:
    if cell == "ERR":
        return None
    db, table = cell.split(".")
    return Placement(int(db), int(table))


def _placed(
    rule: TableRule, databases: int, db_value: KeyValue, tb_value: KeyValue
) -> Placement | None:
    try:
        return place(rule, databases, db_value, tb_value)
    except PlacementError:
        return None


def test_java_string_hash_code() -> None:
    lines = _lines("hash str")
    assert len(lines) == 20
    for line in lines:
        value, rest = _string(line)
        assert java_string_hash(value) == int(rest), value


def test_java_long_and_biginteger_hash_codes() -> None:
    lines = _lines("hash int")
    assert len(lines) == 19
    for line in lines:
        value, long_hash, big_hash, long_value = line.split()
        number = int(value)
        if long_hash == "-":
            with pytest.raises(ValueError):
                java_long_hash(number)
        else:
            assert java_long_hash(number) == int(long_hash), value
        assert java_biginteger_hash(number) == int(big_hash), value
        # HASH hashes Math.abs(v.longValue()): Long.MIN_VALUE is its own absolute value.
        wrapped = int(long_value)
        expected = wrapped if wrapped == -(2**63) else abs(wrapped)
        assert key_hash(ShardKey("HASH", "k", INT), number) == expected, value


def test_golden_placements() -> None:
    specs = _lines("rule")
    rows = _lines("place")
    assert len(specs) == 9 and len(rows) == 39
    checked = 0
    for row in rows:
        kind, rest = row.split(" ", 1)
        value: KeyValue
        if kind == "str":
            value, rest = _string(rest)
            key_type = STR
        else:
            text, rest = rest.split(" ", 1)
            value, key_type = int(text), INT
        cells = rest.split()
        assert len(cells) == len(specs)
        for spec, cell in zip(specs, cells, strict=True):
            rule, databases = _rule(spec, key_type)
            assert _placed(rule, databases, value, value) == _expect(cell), (spec, kind, value)
            checked += 1
    assert checked == 351


def test_golden_placements_with_two_shard_keys() -> None:
    rows = _lines("pair")
    assert len(rows) == 10
    for row in rows:
        spec, db_value, tb_value, cell = row.split()
        rule, databases = _rule(spec, INT, same_column=False)
        assert _placed(rule, databases, int(db_value), int(tb_value)) == _expect(cell), row


def test_the_golden_table_is_javas(tmp_path: Path) -> None:
    """The table above is what the Java program prints (where a JDK is installed)."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("no JDK here")
    subprocess.run([javac, "-d", str(tmp_path), str(JAVA_SOURCE)], check=True, timeout=120)
    printed = subprocess.run(
        [java, "-cp", str(tmp_path), "DrdsPlacement"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert printed == GOLDEN


# --- DRDS's own documentation ---------------------------------------------------------------


def test_the_examples_of_drds_hash_documentation() -> None:
    """PolarDB-X 1.0 "HASH": with two database shards of four table shards each, "key value
    15: 15 % (2 x 4) = 7 routes the row to table shard 7 in database shard 1"; a string key
    routes by ``hashcode("ABC").abs() % D``, case-sensitively."""
    key = ShardKey("HASH", "id", INT)
    assert place(TableRule("sharded", key, key, 4), 2, 15, 15) == Placement(1, 7)
    by_name = TableRule("sharded", ShardKey("HASH", "name", STR))
    assert place(by_name, 4, "ABC") == Placement(64578 % 4, 64578 % 4)
    assert java_string_hash("ABC") == 64578 and java_string_hash("abc") == 96354


def test_uni_hash_puts_a_key_in_the_same_database_whatever_t() -> None:
    """PolarDB-X 1.0 "UNI_HASH": the database shard does not change with the number of table
    shards (so tables with different TBPARTITIONS join within a database)."""
    for value in (0, 1, 15, -7, 123456789, 2**40 + 3, "abc", "\u4e2d\u6587"):
        key = ShardKey("UNI_HASH", "k", STR if isinstance(value, str) else INT)
        found = {
            place(TableRule("sharded", key, key, per_db), 8, value, value).database
            for per_db in (1, 2, 3, 4, 7, 16)
        }
        found.add(database_of(TableRule("sharded", key), 8, value))
        assert len(found) == 1, value


# --- NULL, names, and what is in a database --------------------------------------------------


def test_null_keys_go_to_partition_zero_of_their_level() -> None:
    key = ShardKey("HASH", "a", INT)
    other = ShardKey("UNI_HASH", "b", INT)
    for rule in (
        TableRule("sharded", key),
        TableRule("sharded", key, key, 4),
        TableRule("sharded", other, other, 4),
    ):
        assert place(rule, 4, None, None) == Placement(0, 0)
    two_keys = TableRule("sharded", key, other, 4)
    assert place(two_keys, 4, None, None) == Placement(0, 0)
    assert place(two_keys, 4, 6, None) == Placement(2, 8)  # the database's first table
    assert place(two_keys, 4, None, 9) == Placement(0, (9 // 4) % 4)


def test_single_and_broadcast_tables() -> None:
    single = LogicalTable("s", TableRule("single"), "")
    assert place(single.rule, 8, None) == Placement(0, 0)
    assert physical_table(single, 8, Placement(0, 0)) == "s"
    assert list(tables_in(single.rule, 8, 0)) == [0] and list(tables_in(single.rule, 8, 3)) == []
    broadcast = LogicalTable("b", TableRule("broadcast"), "")
    with pytest.raises(ValueError):
        place(broadcast.rule, 8, 1)
    assert broadcast.physical_tables(3) == ((0, "b"), (1, "b"), (2, "b"))
    assert list(tables_in(broadcast.rule, 8, 5)) == [5]


def test_physical_table_names() -> None:
    key = ShardKey("HASH", "id", INT)
    split = LogicalTable("t", TableRule("sharded", key, key, 4), "")
    assert [n for _, n in split.physical_tables(4)] == [f"t_{g:02d}" for g in range(16)]
    assert split.physical_names_in(3, 4) == ("t_12", "t_13", "t_14", "t_15")
    assert list(tables_in(split.rule, 4, 3)) == [12, 13, 14, 15]
    assert physical_table(split, 4, place(split.rule, 4, 15, 15)) == "t_15"
    wide = LogicalTable("w", TableRule("sharded", key, key, 16), "")
    assert [n for _, n in wide.physical_tables(8)][::127] == ["w_000", "w_127"]
    one_each = LogicalTable("o", TableRule("sharded", key), "")
    assert one_each.physical_tables(2) == ((0, "o"), (1, "o"))
    assert physical_table(one_each, 2, place(one_each.rule, 2, 7)) == "o"


def test_wrong_values_for_a_key() -> None:
    with pytest.raises(TypeError):
        key_hash(ShardKey("HASH", "k", INT), "15")
    with pytest.raises(TypeError):
        key_hash(ShardKey("HASH", "k", STR), 15)
    with pytest.raises(ValueError):
        java_string_hash("\ud800")  # a lone surrogate is no Java string of a column

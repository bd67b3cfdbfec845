"""INSERT ... RETURNING on sharded and broadcast tables compared with one MariaDB (the plain
twin): an ON DUPLICATE KEY UPDATE assigning the AUTO_INCREMENT column returns the row's new
value there (refused here: not known from the statement), and ROW_COUNT() after any INSERT ...
RETURNING is -1 as after a statement answering rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import plain_twin, sharded_database

DB = "retadv"
PLAIN = "retadv_plain"
PASSWORD = "Ret#adv1"
NOT_YET = "This version of shardgate doesn't yet support"
REG = "CREATE TABLE reg (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL)"
LINE = (
    "CREATE TABLE line (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL,"
    " note VARCHAR(20) NOT NULL)"
)
ORD = "CREATE TABLE ord (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(20) NOT NULL)"
SHARDED_DDL = [
    REG + " BROADCAST",
    LINE + " DBPARTITION BY HASH(order_id)",
    ORD + " DBPARTITION BY HASH(id)",
]
WIDTHS = {
    "zf": "INT(5) ZEROFILL AUTO_INCREMENT PRIMARY KEY",
    "zu": "INT UNSIGNED ZEROFILL AUTO_INCREMENT PRIMARY KEY",
    "bw": "BIGINT(3) AUTO_INCREMENT PRIMARY KEY",
    "se": "SERIAL",
}
TYPED = [f"CREATE TABLE {t} (id {c}, note VARCHAR(20))" for t, c in WIDTHS.items()]
SHARDED_DDL += [ddl + " DBPARTITION BY HASH(id)" for ddl in TYPED]
PLAIN_DDL = [REG, LINE, ORD, *TYPED]
ROWS = [
    "INSERT INTO reg (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "INSERT INTO line (id, order_id, note) VALUES (1, 1, 'a'), (2, 2, 'b')",
    "INSERT INTO ord (id, note) VALUES (10, 'a'), (11, 'b')",
]


@pytest.fixture(scope="module")
def databases(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with (
        sharded_database(proxy, DB, PASSWORD, setup=SHARDED_DDL + ROWS),
        plain_twin(proxy, PLAIN, PLAIN_DDL + ROWS),
    ):
        yield proxy


def _run(conn: Any, sql: str) -> Any:
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
        except pymysql.err.MySQLError as exc:
            return ("error", exc.args[0], str(exc.args[1]))
        return [tuple(r) for r in cur.fetchall()] if cur.description else ("ok", cur.rowcount)


@pytest.fixture
def both(databases: ProxyEnv) -> Iterator[tuple[Any, Any]]:
    proxy = databases.connect(DB, PASSWORD, database=DB)
    plain = connect_admin(databases.shards[0], database=PLAIN)
    try:
        yield plain, proxy
    finally:
        proxy.close()
        plain.close()


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        (
            "INSERT INTO reg (id, name) VALUES (1, 'x') ON DUPLICATE KEY UPDATE id = id + 100"
            " RETURNING id",
            "reg",
        ),
        (
            "INSERT INTO reg (id, name) VALUES (2, 'y'), (50, 'z')"
            " ON DUPLICATE KEY UPDATE name = 'w', `reg`.`ID` = VALUES(id) + 200 RETURNING id",
            "reg",
        ),
        (
            "INSERT INTO line (id, order_id, note) VALUES (1, 1, 'x')"
            " ON DUPLICATE KEY UPDATE id = 77 RETURNING id",
            "line",
        ),
    ],
)
def test_an_upsert_assigning_the_auto_increment_column_returning_it_is_refused(
    both: tuple[Any, Any], sql: str, table: str
) -> None:
    # One MariaDB answers the updated row's new id (101, 202, 77); the proxy answered the
    # given one (1, 2, 1): a wrong id, silently. Refused now, and nothing written.
    plain, proxy = both
    assert _run(plain, sql) != _run(plain, f"SELECT id FROM {table} WHERE 0")  # (it runs there)
    before = _run(proxy, f"SELECT * FROM {table} ORDER BY id")
    assert _run(proxy, sql) == (
        "error",
        1235,
        f"{NOT_YET} 'INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING into"
        f" {'broadcast' if table == 'reg' else 'sharded'} table {table} assigning its id'",
    )
    assert _run(proxy, f"SELECT * FROM {table} ORDER BY id") == before


def test_an_upsert_leaving_the_id_returning_it_is_answered_as_mariadb(
    both: tuple[Any, Any],
) -> None:
    plain, proxy = both
    for sql in [
        "INSERT INTO line (id, order_id, note) VALUES (2, 2, 'q') ON DUPLICATE KEY UPDATE"
        " note = 'upd' RETURNING id",
        "INSERT INTO ord (id, note) VALUES (10, 'c'), (30, 'n') ON DUPLICATE KEY UPDATE"
        " note = 'u' RETURNING id",
        "INSERT INTO reg (id, name) VALUES (3, 'q') ON DUPLICATE KEY UPDATE name = 'u'"
        " RETURNING id",
    ]:
        assert _run(proxy, sql) == _run(plain, sql), sql


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO ord (id, note) VALUES (40, 'r') RETURNING id",  # (one partition)
        "INSERT INTO ord (id, note) VALUES (41, 'r'), (42, 's'), (43, 't') RETURNING id",
        "INSERT INTO ord (id, note) VALUES (11, 'b') ON DUPLICATE KEY UPDATE note = 'z'"
        " RETURNING id",
        "INSERT INTO reg (id, name) VALUES (60, 'r') RETURNING id",
    ],
)
def test_row_count_after_insert_returning_is_minus_one(both: tuple[Any, Any], sql: str) -> None:
    # (the statement before leaves a count MariaDB's -1 must not show through)
    plain, proxy = both
    for conn in (plain, proxy):
        _run(conn, "DELETE FROM ord WHERE id >= 100 AND id < 103")
        _run(conn, "INSERT INTO ord (id, note) VALUES (100, 'c'), (101, 'c'), (102, 'c')")
    want, got = _run(plain, sql), _run(proxy, sql)
    assert got == want
    assert _run(plain, "SELECT ROW_COUNT()") == [(-1,)]
    assert _run(proxy, "SELECT ROW_COUNT()") == [(-1,)], sql


LIMITED = ("retlim", "Ret#lim12")
WRITES_READING = [
    "UPDATE ord SET note = 'p' WHERE ord.id IN (SELECT U0.id FROM ord U0"
    " INNER JOIN reg U1 ON U1.id = U0.id WHERE U1.name = 'a')",
    "DELETE FROM ord WHERE ord.id IN (SELECT U0.id FROM ord U0"
    " INNER JOIN reg U1 ON U1.id = U0.id WHERE U1.name = 'zz')",
    "UPDATE ord SET note = 'p' WHERE ord.id IN (SELECT U0.id FROM ord U0 WHERE U0.note = 'zz')",
    "DELETE FROM ord WHERE ord.id IN (SELECT U0.id FROM ord U0 WHERE U0.note = 'zz')",
]


@pytest.mark.parametrize("grants", ["UPDATE, DELETE", "SELECT, UPDATE, DELETE"])
def test_a_write_reading_tables_in_a_subquery_needs_select_on_them(
    databases: ProxyEnv, grants: str
) -> None:
    """An account that may write ord but not read reg (or not ord itself) gets MariaDB's
    error for the subquery, through the proxy as from one MariaDB holding the same grants."""
    owner = databases.connect(DB, PASSWORD, database=DB)
    admin = connect_admin(databases.shards[0])
    user, password = LIMITED
    try:
        for conn, db in ((owner, DB), (admin, PLAIN)):
            with conn.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
                cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
                cur.execute(f"GRANT {grants} ON {db}.ord TO '{user}'@'%'")
        limited = databases.connect(user, password, database=DB)
        shard = databases.shards[0]
        plain = pymysql.connect(
            host=shard.host,
            port=shard.port,
            user=user,
            password=password,
            database=PLAIN,
            autocommit=True,
        )
        try:
            for sql in WRITES_READING:
                want, got = _run(plain, sql), _run(limited, sql)
                if "reg" in sql or "SELECT" not in grants:
                    assert want[:2] in (("error", 1142), ("error", 1143)), (sql, want)
                assert got[:2] == want[:2], (sql, want, got)
                if want[0] == "error":
                    assert want[2].rsplit("`", 2)[-2] in got[2], (want, got)
        finally:
            limited.close()
            plain.close()
    finally:
        for conn in (owner, admin):
            with conn.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        owner.close()
        admin.close()


def test_delete_returning_from_several_physical_tables_is_refused(
    both: tuple[Any, Any],
) -> None:
    """DELETE ... RETURNING on several partitions (or a broadcast table's copies): the proxy
    read their result sets as OKs, answered 2013 and left the session's XA branches active
    (every later write 1399 XAER_RMFAIL). Refused before it runs now; on one partition it is
    relayed as before, and the session goes on."""
    plain, proxy = both
    for conn in (plain, proxy):
        _run(conn, "INSERT INTO ord (id, note) VALUES (200, 'd'), (201, 'd'), (202, 'd')")
        _run(conn, "INSERT INTO line (id, order_id, note) VALUES (200, 200, 'd')")
        _run(conn, "INSERT INTO reg (id, name) VALUES (200, 'd')")
    refused = [
        ("DELETE FROM ord WHERE id IN (200, 201) RETURNING id, note", "across the partitions"),
        ("DELETE FROM ord WHERE note = 'none' RETURNING id", "across the partitions"),
        ("DELETE FROM line WHERE id = 200 RETURNING id", "across the partitions"),
        ("DELETE FROM reg WHERE id = 200 RETURNING id, name", "on broadcast table reg"),
    ]
    for sql, why in refused:
        got = _run(proxy, sql)
        assert got[:2] == ("error", 1235), (sql, got)
        assert why in got[2], (sql, got)
        # (the session goes on: a write after it)
        assert _run(proxy, "UPDATE ord SET note = 'e' WHERE id = 202") == ("ok", 1)
        assert _run(proxy, "UPDATE ord SET note = 'd' WHERE id = 202") == ("ok", 1)
    for sql in [
        "DELETE FROM ord WHERE id = 200 RETURNING id, note",
        "DELETE FROM line WHERE order_id = 200 RETURNING id",
        "SELECT id, note FROM ord WHERE id >= 200 ORDER BY id",
    ]:
        assert _run(proxy, sql) == _run(plain, sql), sql


@pytest.mark.parametrize("table", list(WIDTHS))
def test_returning_answers_the_columns_display_width_zerofill_and_key_as_mariadb(
    databases: ProxyEnv, table: str
) -> None:
    """The proxy's answer to INSERT ... RETURNING id: the text of each value (ZEROFILL pads it
    to the display width: '00007') and the column definition (length: the display width;
    flags: ZEROFILL, PRI for a SERIAL's UNIQUE NOT NULL key on a table without a primary key)
    as one MariaDB's. It sent '7', length 11 or 20, and no ZEROFILL / UNIQUE for PRI."""
    proxy = databases.connect(DB, PASSWORD, database=DB, conv={})
    plain = connect_admin(databases.shards[0], database=PLAIN, conv={})
    try:
        for sql in [
            f"INSERT INTO {table} (id, note) VALUES (7, 'a'), (12, 'b') RETURNING id",
            f"INSERT INTO {table} (id, note) VALUES (13, 'a') RETURNING id AS x, {table}.id",
        ]:
            answers = []
            for conn in (plain, proxy):
                with conn.cursor() as cur:
                    cur.execute(sql)
                    fields = [
                        (f.name, f.org_name, f.type_code, f.flags, f.length, f.charsetnr)
                        for f in cur._result.fields
                    ]
                    answers.append((cur.fetchall(), fields))
            assert answers[1] == answers[0], sql
    finally:
        proxy.close()
        plain.close()


def test_a_given_id_out_of_the_columns_range_is_answered_as_stored(
    both: tuple[Any, Any],
) -> None:
    """Outside strict mode MariaDB stores an out-of-range id as the end of the column's range
    and RETURNING answers that (2147483647 for an INT); the proxy answered the value as
    written (3000000000). In strict mode both refuse the row (1264)."""
    plain, proxy = both
    sql = "INSERT INTO reg (id, name) VALUES (3000000000, 'big') RETURNING id"
    for mode in ("STRICT_ALL_TABLES", ""):
        for conn in (plain, proxy):
            _run(conn, "DELETE FROM reg WHERE name = 'big'")
            _run(conn, f"SET SESSION sql_mode = '{mode}'")
        want, got = _run(plain, sql), _run(proxy, sql)
        assert got[:2] == want[:2], (mode, want, got)
        assert want == ([(2147483647,)] if not mode else want)
    for conn in (plain, proxy):
        _run(conn, "SET SESSION sql_mode = DEFAULT")
    got = _run(proxy, "INSERT INTO se (id, note) VALUES (-5, 'neg') RETURNING id")
    assert got[:2] == ("error", 1235), got


def test_delete_returning_in_a_multi_statement_packet(databases: ProxyEnv) -> None:
    """DELETE ... RETURNING on one partition in a packet of several statements: the proxy
    runs such statements itself (no relay) and read its result set as an OK: 2013 and the
    session's XA branch left active (every later write 1399). Refused (1235) now, and the
    session goes on."""
    proxy = databases.connect(
        DB, PASSWORD, database=DB, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS
    )
    try:
        _run(proxy, "INSERT INTO ord (id, note) VALUES (400, 'm'), (401, 'm')")
        for number, sql in enumerate(
            (
                "SELECT 1; DELETE FROM ord WHERE id = 400 RETURNING id",
                "DELETE FROM ord WHERE id = 401 RETURNING id; SELECT 2",
            ),
        ):
            with proxy.cursor() as cur:
                try:
                    cur.execute(sql)
                    while cur.nextset():
                        pass
                except pymysql.err.MySQLError as exc:
                    got = exc.args[0]
                else:
                    got = 0
            assert got == 1235, sql
            update = f"UPDATE ord SET note = 'n{number}' WHERE id = 400"
            assert _run(proxy, update) == ("ok", 1)
        assert _run(proxy, "SELECT id FROM ord WHERE id IN (400, 401) ORDER BY id") == [
            (400,),
            (401,),
        ]
    finally:
        proxy.close()


@pytest.mark.parametrize("grants", ["INSERT", "INSERT, DELETE"])
def test_insert_returning_needs_select_on_the_column(databases: ProxyEnv, grants: str) -> None:
    """MariaDB checks SELECT on the columns RETURNING reads: an account holding INSERT alone
    gets 1142/1143 and nothing is inserted; through the proxy as from one MariaDB."""
    owner = databases.connect(DB, PASSWORD, database=DB)
    admin = connect_admin(databases.shards[0])
    user, password = LIMITED
    try:
        for conn, db in ((owner, DB), (admin, PLAIN)):
            with conn.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
                cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
                cur.execute(f"GRANT {grants} ON {db}.ord TO '{user}'@'%'")
                cur.execute(f"GRANT {grants} ON {db}.reg TO '{user}'@'%'")
        limited = databases.connect(user, password, database=DB)
        shard = databases.shards[0]
        plain = pymysql.connect(
            host=shard.host,
            port=shard.port,
            user=user,
            password=password,
            database=PLAIN,
            autocommit=True,
        )
        try:
            for sql in [
                "INSERT INTO ord (id, note) VALUES (500, 'p') RETURNING id",
                "INSERT INTO ord (note) VALUES ('p'), ('q') RETURNING id",
                "INSERT INTO reg (id, name) VALUES (500, 'p') RETURNING id",
                "INSERT INTO ord (id, note) VALUES (501, 'p') ON DUPLICATE KEY UPDATE"
                " note = 'u' RETURNING id",
            ]:
                want, got = _run(plain, sql), _run(limited, sql)
                assert want[:2] in (("error", 1142), ("error", 1143)), (sql, want)
                assert got[:2] == want[:2], (sql, want, got)
        finally:
            limited.close()
            plain.close()
        for table in ("ord", "reg"):
            assert _run(owner, f"SELECT id FROM {table} WHERE id IN (500, 501)") == []
            assert (
                _run(
                    owner,
                    f"SELECT id FROM {table} WHERE note = 'p'".replace(
                        "note", "note" if table == "ord" else "name"
                    ),
                )
                == []
            )
    finally:
        for conn in (owner, admin):
            with conn.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        owner.close()
        admin.close()


def test_found_rows_after_insert_returning_is_the_statement_befores(
    both: tuple[Any, Any],
) -> None:
    """INSERT ... RETURNING leaves FOUND_ROWS() as the SELECT before it left it (the rows read
    on every partition, then the INSERT on one or two): as one MariaDB; it was 1235 since
    ROW_COUNT() after it is the proxy's."""
    plain, proxy = both
    for sql in (
        "INSERT INTO ord (id, note) VALUES (600, 'f') RETURNING id",
        "INSERT INTO ord (id, note) VALUES (601, 'f'), (602, 'g') RETURNING id",
    ):
        for conn in (plain, proxy):
            _run(conn, "SELECT id FROM ord WHERE id < 100")
        assert _run(proxy, sql) == _run(plain, sql)
        check = "SELECT FOUND_ROWS(), ROW_COUNT()"
        assert _run(proxy, check) == _run(plain, check), sql


def _host_free(answer: Any) -> Any:
    """``answer`` with the account's host left out of an error's text (the twin sees the
    client as 'localhost', the proxy by its address)."""
    if isinstance(answer, tuple) and answer[0] == "error":
        text = answer[2].replace("'@'localhost'", "'@'H'").replace("'@'127.0.0.1'", "'@'H'")
        return (answer[0], answer[1], text)
    return answer


@pytest.mark.parametrize(
    ("grants", "sql", "column"),
    [
        ("INSERT", "INSERT INTO ord (id, note) VALUES (700, 'p') RETURNING id", "id"),
        ("INSERT", "INSERT INTO ord (note) VALUES ('p'), ('q') RETURNING `ID` AS x", "ID"),
        ("INSERT", "INSERT INTO ord (id, note) VALUES (700, 'p') RETURNING note, id", "note"),
        ("INSERT", "INSERT INTO ord (id, note) VALUES (700, 'p') RETURNING id + 1, ord.id", "id"),
        ("INSERT", "INSERT INTO ord (note, id) VALUES ('p', 700) RETURNING *", "id"),
        ("INSERT", "INSERT INTO ord (note) VALUES ('p') RETURNING ord.*", "id"),
        ("INSERT", "INSERT INTO ord (NOTE) VALUES ('p') RETURNING 1", "NOTE"),
        ("INSERT", "INSERT INTO ord SET note = 'p', id = 700 RETURNING LAST_INSERT_ID()", "note"),
        ("INSERT", "INSERT INTO reg (name) VALUES ('p') RETURNING id", "id"),
        ("INSERT", "INSERT INTO reg (name, id) VALUES ('p', 700) RETURNING *", "id"),
        ("INSERT", "INSERT INTO line (order_id, note) VALUES (7, 'p') RETURNING `line`.`Id`", "Id"),
        (
            "INSERT, UPDATE",
            "INSERT INTO ord (id, note) VALUES (10, 'p') ON DUPLICATE KEY UPDATE note = 'u'"
            " RETURNING id",
            "id",
        ),
        (
            "INSERT, UPDATE",
            "INSERT INTO ord (note, id) VALUES ('p', 10) ON DUPLICATE KEY UPDATE note = 'u'"
            " RETURNING 1",
            "note",
        ),
    ],
)
def test_insert_returning_without_select_names_the_column_as_mariadb(
    databases: ProxyEnv, grants: str, sql: str, column: str
) -> None:
    """MariaDB checks SELECT per column for INSERT ... RETURNING: 1143 naming the first
    column RETURNING reads (RETURNING *: the table's first), else the first of the INSERT's
    column list. The proxy answered its table-level 1142. Now MariaDB's error exactly, and
    nothing inserted."""
    owner = databases.connect(DB, PASSWORD, database=DB)
    admin = connect_admin(databases.shards[0])
    user, password = LIMITED
    try:
        for conn, db in ((owner, DB), (admin, PLAIN)):
            with conn.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
                cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
                for table in ("ord", "reg", "line"):
                    cur.execute(f"GRANT {grants} ON {db}.{table} TO '{user}'@'%'")
        limited = databases.connect(user, password, database=DB)
        shard = databases.shards[0]
        plain = pymysql.connect(
            host=shard.host,
            port=shard.port,
            user=user,
            password=password,
            database=PLAIN,
            autocommit=True,
        )
        try:
            table = sql.split()[2]
            want, got = _host_free(_run(plain, sql)), _host_free(_run(limited, sql))
            assert want == (
                "error",
                1143,
                f"SELECT command denied to user '{user}'@'H' for column '{column}'"
                f" in table '{table}'",
            )
            assert got == want, sql
        finally:
            limited.close()
            plain.close()
        assert _run(owner, "SELECT id FROM ord WHERE id = 700 OR note = 'p'") == []
        assert _run(owner, "SELECT id FROM reg WHERE id = 700 OR name = 'p'") == []
        assert _run(owner, "SELECT id FROM line WHERE order_id = 7") == []
    finally:
        for conn in (owner, admin):
            with conn.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        owner.close()
        admin.close()


@pytest.mark.parametrize(
    "before",
    [
        "SELECT id FROM ord WHERE id = 10",  # (one partition: physical database 2)
        "SELECT id FROM ord WHERE id = 11",  # (physical database 3)
        "SELECT id FROM ord WHERE id = 12",  # (physical database 0, the session's own)
        "SELECT id FROM ord WHERE id IN (10, 11)",  # (two: the proxy counts them)
        "SELECT 1 FROM DUAL WHERE 0",  # (physical database 0, no row)
    ],
)
def test_found_rows_after_insert_returning_after_a_one_partition_select(
    both: tuple[Any, Any], before: str
) -> None:
    """INSERT ... RETURNING (answered by the proxy) after a SELECT on one partition: that
    partition's connection still knows FOUND_ROWS() (an INSERT leaves it); it was 1235."""
    plain, proxy = both
    for conn in (plain, proxy):
        _run(conn, "DELETE FROM ord WHERE id IN (12, 700, 701)")
        _run(conn, "INSERT INTO ord (id, note) VALUES (12, 'c')")
    for sql in (
        "INSERT INTO ord (id, note) VALUES (700, 'f') RETURNING id",
        "INSERT INTO ord (id, note) VALUES (701, 'f'), (702, 'g') RETURNING id",
    ):
        for conn in (plain, proxy):
            _run(conn, "DELETE FROM ord WHERE id IN (700, 701, 702)")
            _run(conn, before)
        assert _run(proxy, sql) == _run(plain, sql)
        check = "SELECT FOUND_ROWS(), ROW_COUNT()"
        assert _run(proxy, check) == _run(plain, check), (before, sql)

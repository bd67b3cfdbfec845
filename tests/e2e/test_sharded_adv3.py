"""Open defects of sharded databases found by review, on two real MariaDB shards: what the
client sees of a sharded database must be the logical database's, as an unsharded one shows
it -- locks kept across USE, SHOW CREATE TABLE without a physical table's counter, a DDL's
partial failure named in the client's terms, the client's own account in a shard's refusal.

The layout: ``adv3db`` over s0 and s1 with 4 physical databases (``adv3db_0000``,
``adv3db_0001`` on s0; ``adv3db_0002``, ``adv3db_0003`` on s1); ``DBPARTITION BY HASH(id)``:
db = |id| mod 4.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.e2e.binclient import BinaryClient, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, sharded_database
from tests.e2e.tools import error_of

PASSWORD = "Adversary#pass3"
DB = "adv3db"
TWO = ("adv3two", "Two#pass1234")  # an account holding privileges on adv3db and easydb


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE ja (id int NOT NULL PRIMARY KEY, x int) DBPARTITION BY HASH(id)",
        "INSERT INTO ja VALUES (0, 7), (1, 7), (2, 7), (3, 7)",
        "CREATE TABLE sp (id int NOT NULL PRIMARY KEY, v varchar(20))"
        " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
        "CREATE TABLE single_t (id int PRIMARY KEY)",
        f"CREATE USER '{TWO[0]}'@'%' IDENTIFIED BY '{TWO[1]}'",
        f"GRANT ALL ON {DB}.* TO '{TWO[0]}'@'%'",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        easy = env.connect()
        try:
            with easy.cursor() as cur:
                cur.execute(f"GRANT SELECT ON easydb.* TO '{TWO[0]}'@'%'")
        finally:
            easy.close()
        yield env


def _client(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB, **kwargs)


# ------------------------------------------------------------------------ USE under LOCK TABLES


def _write_waits(env: ProxyEnv, sql: str) -> int | None:
    """Another session's ``sql`` through the proxy, waiting at most a second for a table
    lock: its error number (1205: it waited for a lock), None when it ran."""
    other = env.connect(TWO[0], TWO[1], database=DB)
    try:
        with other.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1")
            try:
                cur.execute(sql)
            except pymysql.err.OperationalError as exc:
                return int(exc.args[0])
            return None
    finally:
        other.close()


def test_use_under_lock_tables_keeps_every_partitions_locks(sharded: ProxyEnv) -> None:
    """MariaDB keeps a session's table locks across USE. USE of the same database (statement
    or COM_INIT_DB, in any spelling) keeps them on every partition; USE of another one (each
    database is reached through its own backend login, so the partitions' connections would
    go) is refused with a clear 1235 rather than losing them silently. Another session still
    waits for the lock on every partition afterwards."""
    conn = sharded.connect(TWO[0], TWO[1], database=DB)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLES ja WRITE, sp READ")
            for sql in (f"USE {DB}", f"USE `{DB.upper()}`", f"USE /* x */ {DB}"):
                cur.execute(sql)
            conn.select_db(DB)  # COM_INIT_DB
            for sql in ("USE easydb", "/*!USE easydb*/", "USE easydb;"):
                errno, message = error_of(cur, sql)
                assert errno == 1235 and "locks" in message, sql
            with pytest.raises(pymysql.err.MySQLError) as refused:
                conn.select_db("easydb")
            assert refused.value.args[0] == 1235
            cur.execute("SELECT DATABASE(), COUNT(*) FROM ja")
            assert cur.fetchall() == ((DB, 4),)
            for key in range(4):  # each partition's lock is still held
                assert _write_waits(sharded, f"INSERT INTO ja VALUES ({10 + key}, 1)") == 1205
                assert _write_waits(sharded, f"DELETE FROM sp WHERE id = {key}") == 1205
            cur.execute("INSERT INTO ja VALUES (20, 1)")  # (ours: locked for writing)
            assert error_of(cur, "INSERT INTO sp VALUES (1, 'x')")[0] == 1099  # READ lock
            cur.execute("UNLOCK TABLES")
        assert _write_waits(sharded, "DELETE FROM ja WHERE id = 20") is None
    finally:
        conn.close()


# ------------------------------------------------------------------- SHOW CREATE after ALTER


def test_show_create_after_alter_shows_no_partitions_counter(sharded: ProxyEnv) -> None:
    """The definition SHOW CREATE TABLE shows is read again from physical database 0 after an
    ALTER TABLE: it carried that physical table's AUTO_INCREMENT counter (its own rows'
    highest id + 1), which means nothing for the logical table, whose values come from the
    GROUP sequence. Before and after an ALTER its counter is where the sequence stands: the
    CREATE's ``AUTO_INCREMENT = n`` (or DRDS's 100001) until values are taken, then past
    them."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for name, option, start in (("ai", "", 100001), ("ai2", " AUTO_INCREMENT=500", 500)):
                cur.execute(
                    f"CREATE TABLE {name} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, v int)"
                    f"{option} DBPARTITION BY HASH(id)"
                )
                cur.execute(f"SHOW CREATE TABLE {name}")
                created = cur.fetchall()[0][1]
                assert re.findall(r"AUTO_INCREMENT=\d+", created) == [f"AUTO_INCREMENT={start}"]
                cur.execute(f"INSERT INTO {name} (v) VALUES (1), (2), (3), (4), (5), (6)")
                cur.execute(f"ALTER TABLE {name} ADD COLUMN w int")
                cur.execute(f"SHOW CREATE TABLE {name}")
                altered = cur.fetchall()[0][1]
                assert "`w` int(11) DEFAULT NULL" in altered
                (counter,) = re.findall(r"AUTO_INCREMENT=(\d+)", altered)
                cur.execute(f"SELECT MAX(id) FROM {name}")
                assert int(counter) > cur.fetchall()[0][0]
                assert altered.replace("  `w` int(11) DEFAULT NULL,\n", "") == created.replace(
                    f"AUTO_INCREMENT={start}", f"AUTO_INCREMENT={counter}"
                )
                # (the physical table's own counter is past its rows, not the sequence's)
                shown = physical(sharded, DB, 0, f"SHOW CREATE TABLE {name}")[0][1]
                assert re.findall(r"AUTO_INCREMENT=(\d+)", shown) not in ([], [counter])
                cur.execute(f"INSERT INTO {name} (v) VALUES (7)")  # the sequence goes on
                cur.execute(f"SELECT id FROM {name}")
                assert len({row[0] for row in cur.fetchall()}) == 7
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS ai, ai2")
        conn.close()


# ---------------------------------------------------------------- DDL failing on some partitions


def test_ddl_failing_on_some_partitions_names_them_in_logical_terms(sharded: ProxyEnv) -> None:
    """A DDL statement that failed on some physical tables listed each failure under its
    physical database's name (``adv3db_0002: 1060 ...``). It names the partition (SHOW NODE's
    ID) and its shard, and for a split table the physical table's number (SHOW TOPOLOGY's ID),
    with the underlying error's number, and no physical database or table name."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE fo (id int NOT NULL PRIMARY KEY, v int) DBPARTITION BY HASH(id)"
            )
            cur.execute(
                "CREATE TABLE fs (id int NOT NULL PRIMARY KEY, v int)"
                " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2"
            )
            physical(sharded, DB, 2, "ALTER TABLE fo ADD COLUMN z int")
            physical(sharded, DB, 3, "ALTER TABLE fs_06 ADD COLUMN z int")
            assert error_of(cur, "ALTER TABLE fo ADD COLUMN z int") == (
                1060,
                "ALTER TABLE fo failed on 1 of 4 physical tables (partition 2 on shard s1:"
                " 1060 Duplicate column name 'z'); applied on the other 3",
            )
            assert error_of(cur, "ALTER TABLE fs ADD COLUMN z int") == (
                1060,
                "ALTER TABLE fs failed on 1 of 8 physical tables (fs #6 in partition 3 on shard"
                " s1: 1060 Duplicate column name 'z'); applied on the other 7",
            )
            cur.execute("SHOW TOPOLOGY FROM fs")
            assert cur.fetchall()[6] == (6, f"{DB}_0003", "fs_06")  # (what the ids mean)
            # An error naming the physical table: named logically too.
            physical(sharded, DB, 1, "DROP INDEX `PRIMARY` ON fs_03")
            errno, message = error_of(cur, "ALTER TABLE fs DROP PRIMARY KEY")
            assert errno == 1091 and "fs #3 in partition 1 on shard s0: 1091" in message
            assert f"{DB}_" not in message and "fs_0" not in message, message
            # The same failure everywhere: the shard's error for the logical table.
            assert error_of(cur, "ALTER TABLE fo ADD COLUMN v int") == (
                1060,
                "Duplicate column name 'v'",
            )
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS fo, fs")
        conn.close()


# -------------------------------------------------------- a shard's refusal names the client


def test_stored_function_refusals_name_the_clients_account(sharded: ProxyEnv) -> None:
    """A statement calling a stored function (here one made on the physical databases behind
    the proxy's back, or none at all) is refused by the shard with 1370, whose text named the
    backend account -- the partition's mirror, ``'sgm_5_6e1abf3a'@'%'``, one name per
    physical database -- and, on some paths (a write to several partitions, a transaction's
    statement), the physical database. The client sees its own account and the logical
    database, on every path: routed, scatter, merged, XA write, transaction, prepared."""
    for index in range(4):
        physical(sharded, DB, index, "DROP FUNCTION IF EXISTS f3")
        physical(
            sharded, DB, index, "CREATE FUNCTION f3(x int) RETURNS int DETERMINISTIC RETURN x + 1"
        )
    conn = sharded.connect(TWO[0], TWO[1], database=DB)
    mine = f"'{TWO[0]}'@'127.0.0.1'"
    try:
        with conn.cursor() as cur:
            for sql in (
                "SELECT f3(id) FROM ja WHERE id = 2",  # routed
                "SELECT f3(id) FROM ja",  # scatter
                "SELECT f3(1) FROM ja ORDER BY id",  # merged
                "SELECT COUNT(*), f3(1) FROM ja",  # merged aggregate
                "SELECT f3(id) FROM single_t",  # physical database 0
                "UPDATE ja SET x = f3(x)",  # XA write
                "INSERT INTO ja VALUES (10, f3(1)), (11, 1)",  # XA write, split rows
                "SELECT nofunc(id) FROM ja WHERE id = 3",
            ):
                routine = "nofunc" if "nofunc" in sql else "f3"
                assert error_of(cur, sql) == (
                    1370,
                    f"execute command denied to user {mine} for routine '{DB}.{routine}'",
                ), sql
            cur.execute("BEGIN")
            assert error_of(cur, "UPDATE ja SET x = f3(x)") == (
                1370,
                f"execute command denied to user {mine} for routine '{DB}.f3'",
            )
            cur.execute("ROLLBACK")
        client = BinaryClient(sharded.port, TWO[0], TWO[1], DB)
        try:
            for sql in ("SELECT f3(id) FROM ja WHERE id = ?", "SELECT f3(?) FROM ja"):
                with pytest.raises(ServerError) as refused:
                    client.prepare(sql)  # (physical database 0 prepares it)
                assert str(refused.value) == (
                    f"(1370) execute command denied to user {mine} for routine '{DB}.f3'"
                )
        finally:
            client.close()
    finally:
        conn.close()
        for index in range(4):
            physical(sharded, DB, index, "DROP FUNCTION IF EXISTS f3")


# ------------------------------------------------------------------------- adversarial pass


def test_json_arrayagg_is_not_concatenated_per_partition(sharded: ProxyEnv) -> None:
    """sqlglot reads MariaDB's JSON_ARRAYAGG as a call of an unknown function, not an
    aggregate: the merge engine passed each partition's own aggregate through as a row
    (``[0]``, ``[1]``, ... where MariaDB answers one row ``[0,1,2,3]``). Refused as
    GROUP_CONCAT is (1235); a statement routed to one partition still runs."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                "SELECT JSON_ARRAYAGG(id) FROM ja",
                "select json_arrayagg(id ORDER BY id) FROM ja",
                "SELECT x, JSON_ARRAYAGG(id) FROM ja GROUP BY x",
                "SELECT x FROM ja GROUP BY x HAVING JSON_LENGTH(JSON_ARRAYAGG(id)) > 1",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235 and "across partitions" in message, (sql, message)
            cur.execute("SELECT JSON_ARRAYAGG(id) FROM ja WHERE id = 2")
            assert cur.fetchall() == (("[2]",),)
    finally:
        conn.close()


def test_show_create_and_check_of_physical_or_other_databases_tables(sharded: ProxyEnv) -> None:
    """SHOW CREATE TABLE and CHECK TABLE read a name without its qualifier: ``SHOW CREATE
    TABLE easydb.ja`` answered the sharded database's own ``ja`` (another table than the one
    asked for; MariaDB's answer is easydb's), and ``CHECK TABLE easydb.ja`` checked it. A
    split table's physical table (``sp_00``, 1146 in every other statement) was shown by SHOW
    CREATE TABLE and checked by CHECK TABLE under its physical database's name; SHOW CREATE
    VIEW answered 1347 for it, CREATE TABLE ... LIKE copied it, and a session statement's
    subquery (``SET @n = (SELECT ... FROM sp_01)``) read it."""
    conn = sharded.connect(TWO[0], TWO[1], database=DB)
    try:
        with conn.cursor() as cur:
            for sql in (
                "SHOW CREATE TABLE easydb.ja",
                "SHOW CREATE TABLE `easydb` . `JA`",
                "CHECK TABLE easydb.ja",
                "CHECK TABLE single_t, easydb.ja",
            ):
                assert error_of(cur, sql) == (
                    1235,
                    "Cross-database queries are not supported; USE easydb first",
                ), sql
            for sql, name in (
                ("SHOW CREATE TABLE sp_00", "sp_00"),
                (f"SHOW CREATE TABLE {DB}.`SP_01`", "SP_01"),
                ("CHECK TABLE sp_00", "sp_00"),
                ("CHECK TABLE ja, sp_01", "sp_01"),
                ("SHOW CREATE VIEW sp_00", "sp_00"),
                ("CREATE TABLE copied LIKE sp_00", "sp_00"),
                ("SET @n = (SELECT COUNT(*) FROM sp_01)", "sp_01"),  # (read physical sp_01)
            ):
                assert error_of(cur, sql) == (1146, f"Table '{DB}.{name}' doesn't exist"), sql
            cur.execute(f"SHOW CREATE TABLE {DB}.sp")
            assert cur.fetchall()[0][0] == "sp"
            cur.execute(f"CHECK TABLE {DB}.sp, ja")
            assert cur.fetchall() == (
                (f"{DB}.sp", "check", "status", "OK"),
                (f"{DB}.ja", "check", "status", "OK"),
            )
    finally:
        conn.close()


def test_show_warnings_name_the_logical_database(sharded: ProxyEnv) -> None:
    """A statement on physical database 0 (an unknown or single table) answered its error
    in logical names (``Table 'adv3db.nothere' doesn't exist``), but SHOW WARNINGS / SHOW
    ERRORS were relayed from the shard as they were: ``Unknown table 'adv3db_0000.nothere'``,
    the physical database the error itself hid. They name the logical database too."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS nothere, nor_this")
            cur.execute("SHOW WARNINGS")
            assert cur.fetchall() == (
                ("Note", 1051, f"Unknown table '{DB}.nothere,{DB}.nor_this'"),
            )
            cur.execute("DROP VIEW IF EXISTS nov")
            cur.execute("SHOW WARNINGS LIMIT 1")
            assert cur.fetchall() == (("Note", 4092, f"Unknown VIEW: '{DB}.nov'"),)
            assert error_of(cur, "SELECT * FROM nothere") == (
                1146,
                f"Table '{DB}.nothere' doesn't exist",
            )
            for sql in ("SHOW WARNINGS", "SHOW ERRORS"):
                cur.execute(sql)
                assert cur.fetchall() == (("Error", 1146, f"Table '{DB}.nothere' doesn't exist"),)
            cur.execute("SHOW COUNT(*) ERRORS")
            assert cur.fetchall() == ((1,),)
            cur.execute("SELECT COUNT(*) FROM single_t")
            cur.execute("SHOW WARNINGS")
            assert cur.fetchall() == ()
    finally:
        conn.close()


def test_table_maintenance_rows_name_the_logical_database(sharded: ProxyEnv) -> None:
    """ANALYZE, CHECK, CHECKSUM, OPTIMIZE and REPAIR TABLE of a single table (or a name the
    catalog does not know) run on physical database 0, whose rows named each table by its
    physical database (``adv3db_0000.single_t``, and ``Table 'adv3db_0000.nothere' doesn't
    exist``). They name the logical database, as MariaDB names the database the client
    uses."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE TABLE single_t")
            assert cur.fetchall() == ((f"{DB}.single_t", "analyze", "status", "OK"),)
            cur.execute("CHECKSUM TABLE single_t")
            assert cur.fetchall() == ((f"{DB}.single_t", 0),)
            cur.execute("CHECK TABLE nothere")
            assert cur.fetchall() == (
                (f"{DB}.nothere", "check", "Error", f"Table '{DB}.nothere' doesn't exist"),
                (f"{DB}.nothere", "check", "status", "Operation failed"),
            )
            for sql in (
                "OPTIMIZE LOCAL TABLE single_t",
                "REPAIR NO_WRITE_TO_BINLOG TABLE single_t",
                "analyze table `single_t`",
            ):
                cur.execute(sql)
                rows = cur.fetchall()
                assert rows and {row[0] for row in rows} == {f"{DB}.single_t"}, (sql, rows)
            cur.execute("CHECKSUM TABLE ja")  # (a sharded table's: every partition's, summed)
            assert cur.fetchall()[0][0] == f"{DB}.ja"
    finally:
        conn.close()


def test_char_keys_are_placed_without_their_trailing_spaces(sharded: ProxyEnv) -> None:
    """A CHAR column reads its values back without trailing spaces: MariaDB's row for
    ``INSERT ... ('xyz ')`` is ``'xyz'``. It was placed by ``'xyz '`` (another partition than
    ``'xyz'``'s), so ``WHERE k = 'xyz'`` found nothing and a second INSERT of ``'xyz'`` -- a
    duplicate primary key on one server -- was stored too, in another partition. Placed as
    stored, on every INSERT path (a short one, a long one split without lexing its rows, a
    prepared one)."""
    conn = _client(sharded)
    client = BinaryClient(sharded.port, DB, PASSWORD, DB)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE ck (k char(10) NOT NULL PRIMARY KEY, v int)"
                " DEFAULT CHARSET utf8mb4 DBPARTITION BY HASH(k)"
            )
            cur.execute("INSERT INTO ck VALUES ('xyz ', 1), ('a  ', 2)")
            long_rows = ", ".join(f"('r{n}{' ' * (n % 3)}', {n})" for n in range(100))
            assert len(long_rows) > 512
            cur.execute(f"INSERT INTO ck VALUES {long_rows}")
            statement = client.prepare("INSERT INTO ck VALUES (?, ?)")
            client.execute(statement, ["p ", 7])
            for key, value in (("xyz", 1), ("a", 2), ("p", 7), *((f"r{n}", n) for n in range(100))):
                cur.execute(f"SELECT v FROM ck WHERE k = '{key}'")
                assert cur.fetchall() == ((value,),), key
            for key in ("xyz", "a", "r1", "p"):
                assert error_of(cur, f"INSERT INTO ck VALUES ('{key}', 0)")[0] == 1062, key
            # Compared as MariaDB compares a CHAR column (PAD SPACE): by the value without
            # trailing spaces, on the partition holding it (text, fast path, prepared).
            for _ in range(3):
                cur.execute("SELECT v FROM ck WHERE k = 'xyz  '")
                assert cur.fetchall() == ((1,),)
            cur.execute("SELECT v FROM ck WHERE k IN ('a ', 'zz') ORDER BY v")
            assert cur.fetchall() == ((2,),)
            lookup = client.prepare("SELECT CAST(v AS SIGNED) FROM ck WHERE k = ?")
            for _ in range(3):
                assert client.execute(lookup, ["p   "]) == [(7,)]
            cur.execute("DELETE FROM ck WHERE k = 'r1 '")
            assert cur.rowcount == 1
            cur.execute("INSERT INTO ck VALUES ('r1', 1)")
            cur.execute("SELECT COUNT(*) FROM ck")
            assert cur.fetchall() == ((103,),)
    finally:
        client.close()
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS ck")
        conn.close()

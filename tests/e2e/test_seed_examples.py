"""Every example statement of the PolarDB-X 1.0 seed (``003_76a951cf1275fb2f.txt``), run in
order through a real client (PyMySQL) against the real proxy, with the outcome of each checked.

The account names are the seed's own (lily, david, hanson, actro, and newuser for the seed's
``new_user``, which the PolarDB-X name rule refuses). No other test file uses them: the
session-scoped proxy is shared.

The order is the seed's, with the few extra statements each example needs to be exercised
meaningfully (marked ``setup`` / ``check``): re-creating lily after the seed drops her so that
``SET PASSWORD FOR lily`` is seen both failing (1133) and succeeding, creating the tables the
table-level grants need, and SHOW GRANTS after every change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv

OK = "OK"


@dataclass(frozen=True)
class Rows:
    """A result set of one column: its header and its rows."""

    header: str
    rows: tuple[str, ...]


@dataclass(frozen=True)
class Err:
    errno: int
    message: str


@dataclass(frozen=True)
class Step:
    sql: str
    expect: object  # OK | Rows | Err
    why: str = "seed"  # "seed": the seed's own example; else why the step is there


def grants(account: str, *rows: str) -> Rows:
    """SHOW GRANTS output for ``'u'@'h'``: the USAGE row first, then ``rows``."""
    user, host = (part.strip("'") for part in account.split("@"))
    return Rows(f"Grants for {user}@{host}", (f"GRANT USAGE ON *.* TO {account}", *rows))


def no_such_grant(user: str, host: str) -> Err:
    return Err(1141, f"There is no such grant defined for user '{user}' on host '{host}'")


LILY = "'lily'@'30.9.73.96'"
DAVID = "'david'@'%'"
HANSON = "'hanson'@'%'"
HANSON_10 = "'hanson'@'192.168.3.10'"
ACTRO = "'actro'@'%'"

SEED_STEPS: tuple[Step, ...] = (
    # --- Create an account ---
    Step("CREATE USER lily@30.9.73.96 IDENTIFIED BY '123456';", OK),
    Step("SHOW GRANTS FOR lily@30.9.73.96", grants(LILY), "check"),
    Step("CREATE USER david@'%';", OK),
    Step("SHOW GRANTS FOR david@'%'", grants(DAVID), "check"),
    # --- Delete an account ---
    Step("DROP USER lily@30.9.73.96;", OK),
    Step("SHOW GRANTS FOR lily@30.9.73.96", no_such_grant("lily", "30.9.73.96"), "check"),
    # --- Change an account password: lily is gone, so first it fails ---
    Step(
        "SET PASSWORD FOR lily@30.9.73.96 = PASSWORD('123456');",
        Err(1133, "Can't find any matching row in the user table"),
    ),
    Step("CREATE USER lily@30.9.73.96 IDENTIFIED BY 'Lily#first1';", OK, "setup: re-create"),
    Step("SET PASSWORD FOR lily@30.9.73.96 = PASSWORD('123456');", OK),
    # --- Grant: two-step (david@'%' already exists, from CREATE USER david@'%' above) ---
    Step(
        "CREATE USER david@'%' IDENTIFIED BY 'your#password';",
        Err(1396, "Operation CREATE USER failed for 'david'@'%'"),
    ),
    Step("GRANT ALL PRIVILEGES ON easydb.* TO david@'%';", OK),
    Step(
        "SHOW GRANTS FOR david@'%'",
        grants(DAVID, "GRANT ALL PRIVILEGES ON `easydb`.* TO 'david'@'%'"),
        "check",
    ),
    # --- Grant: one-step (an existing account: IDENTIFIED BY sets its password) ---
    Step("GRANT ALL PRIVILEGES ON easydb.* TO david@'%' IDENTIFIED BY 'your#password';", OK),
    Step(
        "SHOW GRANTS FOR david@'%'",
        grants(DAVID, "GRANT ALL PRIVILEGES ON `easydb`.* TO 'david'@'%'"),
        "check: granting what is held changes nothing",
    ),
    # --- Table-level grant: the table must exist; nothing is half-applied when it does not ---
    Step("DROP TABLE IF EXISTS employees", OK, "setup"),
    Step(
        "GRANT ALL PRIVILEGES ON easydb.employees TO hanson@'%'\nIDENTIFIED BY 'your#password';",
        Err(1146, "Table 'easydb.employees' doesn't exist"),
    ),
    Step("SHOW GRANTS FOR hanson@'%'", no_such_grant("hanson", "%"), "check: not created"),
    Step(
        "CREATE TABLE employees (id INT PRIMARY KEY, name VARCHAR(40))",
        OK,
        "setup: the table",
    ),
    Step(
        "GRANT ALL PRIVILEGES ON easydb.employees TO hanson@'%'\nIDENTIFIED BY 'your#password';",
        OK,
    ),
    Step(
        "SHOW GRANTS FOR hanson@'%'",
        grants(HANSON, "GRANT ALL PRIVILEGES ON `easydb`.`employees` TO 'hanson'@'%'"),
        "check",
    ),
    Step("DROP TABLE IF EXISTS emp", OK, "setup"),
    Step("CREATE TABLE emp (id INT PRIMARY KEY, name VARCHAR(40))", OK, "setup: the table"),
    Step(
        "GRANT INSERT, SELECT ON easydb.emp TO hanson@'192.168.3.10'\n"
        "IDENTIFIED BY 'your#password';",
        OK,
    ),
    Step(
        "SHOW GRANTS FOR hanson@'192.168.3.10'",
        grants(HANSON_10, "GRANT SELECT, INSERT ON `easydb`.`emp` TO 'hanson'@'192.168.3.10'"),
        "check",
    ),
    # --- A read-only account ---
    Step("GRANT SELECT ON easydb.* TO actro@'%' IDENTIFIED BY 'your#password';", OK),
    # --- Revoke: hanson@'%' holds nothing on emp (only hanson@'192.168.3.10' does) ---
    Step(
        "REVOKE CREATE, DROP, INDEX ON easydb.emp FROM hanson@'%';",
        Err(1147, "There is no such grant defined for user 'hanson' on host '%' on table 'emp'"),
    ),
    Step("GRANT ALL PRIVILEGES ON easydb.emp TO hanson@'%';", OK, "setup: something to revoke"),
    Step("REVOKE CREATE, DROP, INDEX ON easydb.emp FROM hanson@'%';", OK),
    Step(
        "SHOW GRANTS FOR hanson@'%'",
        grants(
            HANSON,
            "GRANT SELECT, INSERT, UPDATE, DELETE, ALTER ON `easydb`.`emp` TO 'hanson'@'%'",
            "GRANT ALL PRIVILEGES ON `easydb`.`employees` TO 'hanson'@'%'",
        ),
        "check",
    ),
    Step(
        "SHOW GRANTS FOR hanson@'192.168.3.10'",
        grants(HANSON_10, "GRANT SELECT, INSERT ON `easydb`.`emp` TO 'hanson'@'192.168.3.10'"),
        "check: privileges are bound to user@host",
    ),
    # --- Revoke everything from lily ---
    Step("GRANT SELECT, UPDATE ON easydb.* TO lily@30.9.73.96", OK, "setup: something to revoke"),
    Step("GRANT DELETE ON easydb.emp TO lily@30.9.73.96", OK, "setup"),
    Step(
        "SHOW GRANTS FOR lily@30.9.73.96",
        grants(
            LILY,
            "GRANT SELECT, UPDATE ON `easydb`.* TO 'lily'@'30.9.73.96'",
            "GRANT DELETE ON `easydb`.`emp` TO 'lily'@'30.9.73.96'",
        ),
        "check",
    ),
    Step("REVOKE ALL PRIVILEGES, GRANT OPTION\nFROM lily@30.9.73.96;", OK),
    Step("SHOW GRANTS FOR lily@30.9.73.96", grants(LILY), "check"),
    # --- View granted permissions ---
    Step(
        "SHOW GRANTS FOR actro@'%';",
        grants(ACTRO, "GRANT SELECT ON `easydb`.* TO 'actro'@'%'"),
    ),
    Step(
        "SHOW GRANTS;",
        grants("'easydb'@'%'", "GRANT ALL PRIVILEGES ON `easydb`.* TO 'easydb'@'%'"),
    ),
)


def _outcome(conn: pymysql.connections.Connection, sql: str) -> object:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            if cur.description is None:
                return OK
            header = cur.description[0][0]
            return Rows(header, tuple(str(row[0]) for row in cur.fetchall()))
    except pymysql.err.MySQLError as exc:
        errno, message = exc.args
        return Err(errno, message)


def _login_error(proxy: ProxyEnv, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(pymysql.err.OperationalError) as info:
        proxy.connect(**kwargs).close()  # type: ignore[arg-type]
    return info.value.args  # type: ignore[no-any-return]


def test_every_seed_example_in_order(proxy: ProxyEnv) -> None:
    mismatches = []
    with proxy.connect(user="easydb", database="easydb") as admin:
        for index, step in enumerate(SEED_STEPS):
            got = _outcome(admin, step.sql)
            if got != step.expect:
                mismatches.append(
                    f"#{index} [{step.why}] {step.sql!r}\n"
                    f"  expected {step.expect}\n  got      {got}"
                )
    assert not mismatches, "\n".join(mismatches)

    # What the accounts the examples made can actually do.
    # david@'%': the password of the one-step GRANT, ALL on easydb.
    with proxy.connect(user="david", password="your#password") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO employees VALUES (1, 'Ada')")
        cur.execute("SELECT name FROM employees")
        assert cur.fetchall() == (("Ada",),)
        cur.execute("DELETE FROM employees")
    # The empty password it was created with no longer works.
    assert _login_error(proxy, user="david", password="")[0] == 1045
    # hanson@'%': everything on employees, what is left on emp, nothing else.
    with proxy.connect(user="hanson", password="your#password") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO employees VALUES (2, 'Grace')")
        cur.execute("UPDATE emp SET name = 'x' WHERE id = 0")
        with pytest.raises(pymysql.err.OperationalError) as info:
            cur.execute("DROP TABLE emp")
        assert info.value.args == (
            1142,
            "DROP command denied to user 'hanson'@'127.0.0.1' for table 'emp'",
        )
        cur.execute("DELETE FROM employees")
    # actro@'%': read-only on easydb.
    with proxy.connect(user="actro", password="your#password") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM employees")
        assert cur.fetchone() == (0,)
        with pytest.raises(pymysql.err.OperationalError) as info:
            cur.execute("INSERT INTO employees VALUES (3, 'x')")
        assert info.value.args == (
            1142,
            "INSERT command denied to user 'actro'@'127.0.0.1' for table 'employees'",
        )
    # lily@30.9.73.96 matches only that address.
    assert _login_error(proxy, user="lily", password="123456", database=None) == (
        1045,
        "Access denied for user 'lily'@'127.0.0.1' (using password: YES)",
    )


def test_multi_database_account_and_use(proxy: ProxyEnv) -> None:
    """The seed's "Grant permissions on multiple databases": each administrator grants on its
    own database, then the account switches with USE; cross-database statements are refused."""
    with (
        proxy.connect(user="easydb", database="easydb") as easy,
        proxy.connect(user="otherdb", database="otherdb") as other,
    ):
        # The seed's name new_user breaks the PolarDB-X name rule (no underscore).
        assert _outcome(
            easy, "GRANT SELECT, INSERT ON easydb.* TO new_user@'%' IDENTIFIED BY 'your#password'"
        ) == Err(
            5202,
            "ERR-CODE: [TDDL-5202][ERR_INVALID_USERNAME] Invalid username. Username "
            "requirements: 1. Must be 4-20 characters; 2. Must start with an alphabetic letter; "
            "3. Characters are limited to uppercase and lowercase letters, and numerical digits.",
        )
        assert (
            _outcome(
                easy,
                "GRANT SELECT, INSERT ON easydb.* TO newuser@'%' IDENTIFIED BY 'your#password'",
            )
            == OK
        )
        # easydb's administrator cannot grant on otherdb ...
        assert _outcome(easy, "GRANT SELECT, INSERT ON otherdb.* TO newuser@'%'") == Err(
            5106,
            "ERR-CODE: [TDDL-5106][ERR_NO_ACCESS_TO_DATABASE] Granting privileges to database "
            "'otherdb' is not allowed. User easydb@'%' can only access database 'easydb'.",
        )
        # ... otherdb's administrator does (the account exists: no IDENTIFIED BY needed).
        assert _outcome(other, "GRANT SELECT, INSERT ON otherdb.* TO newuser@'%'") == OK
        for conn, setup in (
            (easy, "CREATE TABLE seed_t (id INT)"),
            (other, "CREATE TABLE table_in_B (v VARCHAR(20))"),
        ):
            assert _outcome(conn, f"DROP TABLE IF EXISTS {setup.split()[2]}") == OK
            assert _outcome(conn, setup) == OK
        assert _outcome(easy, "INSERT INTO seed_t VALUES (7)") == OK
        # Each administrator sees the grants on its own database only.
        assert _outcome(easy, "SHOW GRANTS FOR newuser@'%'") == grants(
            "'newuser'@'%'", "GRANT SELECT, INSERT ON `easydb`.* TO 'newuser'@'%'"
        )
        assert _outcome(other, "SHOW GRANTS FOR newuser") == grants(
            "'newuser'@'%'", "GRANT SELECT, INSERT ON `otherdb`.* TO 'newuser'@'%'"
        )

    with proxy.connect(user="newuser", password="your#password", database="easydb") as conn:
        assert _outcome(conn, "SHOW GRANTS") == grants(
            "'newuser'@'%'",
            "GRANT SELECT, INSERT ON `easydb`.* TO 'newuser'@'%'",
            "GRANT SELECT, INSERT ON `otherdb`.* TO 'newuser'@'%'",
        )
        assert _outcome(conn, "SELECT id FROM seed_t") == Rows("id", ("7",))
        # Logged in to A: B's table is reached only after USE B.
        cross_b = Err(1235, "Cross-database queries are not supported; USE otherdb first")
        assert _outcome(conn, "SELECT * FROM otherdb.table_in_B") == cross_b
        assert _outcome(conn, "INSERT INTO otherdb.table_in_B VALUES('value')") == cross_b
        # The seed's placeholder B itself is a database this account may not use.
        assert _outcome(conn, "USE B;") == Err(
            1044, "Access denied for user 'newuser'@'127.0.0.1' to database 'B'"
        )
        # -- Insert data into Database B / -- Query data in Database B
        assert _outcome(conn, "USE otherdb;") == OK
        assert _outcome(conn, "INSERT INTO table_in_B VALUES('value');") == OK
        assert _outcome(conn, "SELECT * FROM table_in_B;") == Rows("v", ("value",))
        # Now in B, A is the other database.
        cross_a = Err(1235, "Cross-database queries are not supported; USE easydb first")
        assert _outcome(conn, "SELECT * FROM easydb.t") == cross_a
        assert _outcome(conn, "SELECT * FROM easydb.seed_t") == cross_a
        assert _outcome(conn, "INSERT INTO easydb.seed_t VALUES (8)") == cross_a
        assert _outcome(conn, "SELECT COUNT(*) FROM table_in_B JOIN easydb.seed_t") == cross_a
        assert _outcome(conn, "SELECT DATABASE()") == Rows("DATABASE()", ("otherdb",))
        assert _outcome(conn, "USE easydb") == OK
        assert _outcome(conn, "SELECT COUNT(*) FROM seed_t") == Rows("COUNT(*)", ("1",))

        # easydb's administrator takes back what it granted; otherdb's grant stays.
        with proxy.connect(user="easydb", database="easydb") as easy:
            assert _outcome(easy, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM newuser") == OK
        assert _outcome(conn, "SELECT COUNT(*) FROM seed_t") == Err(
            1142, "SELECT command denied to user 'newuser'@'127.0.0.1' for table 'seed_t'"
        )
        assert _outcome(conn, "SHOW GRANTS FOR CURRENT_USER()") == grants(
            "'newuser'@'%'", "GRANT SELECT, INSERT ON `otherdb`.* TO 'newuser'@'%'"
        )
        assert _outcome(conn, "USE otherdb") == OK
        assert _outcome(conn, "SELECT * FROM table_in_B") == Rows("v", ("value",))

"""Dual passwords through real clients: SET PASSWORD ... RETAIN CURRENT PASSWORD keeps the old
password valid (mysql_native_password and caching_sha2_password) until ALTER USER ... DISCARD
OLD PASSWORD."""

from __future__ import annotations

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv


def _login(proxy: ProxyEnv, user: str, password: str, **kwargs: object) -> bool:
    try:
        proxy.connect(user, password, "easydb", **kwargs).close()
    except pymysql.err.OperationalError as error:
        assert error.args[0] == 1045
        return False
    return True


def _login_sha2(proxy: ProxyEnv, user: str, password: str) -> bool:
    import mysql.connector

    try:
        proxy.connector(user, password, "easydb", auth_plugin="caching_sha2_password").close()
    except mysql.connector.Error as error:
        assert error.errno == 1045
        return False
    return True


def test_retain_then_discard(proxy: ProxyEnv, admin: pymysql.connections.Connection) -> None:
    with admin.cursor() as cur:
        cur.execute("DROP USER IF EXISTS dualuser1")
        cur.execute("CREATE USER dualuser1 IDENTIFIED BY 'Old#pass1'")
        # Logins name a database: other tests' provisioning may reset the shard's shared
        # usage account, which a login without one would run on.
        cur.execute("GRANT SELECT ON easydb.* TO dualuser1")
        cur.execute("SET PASSWORD FOR dualuser1 = 'New#pass2' RETAIN CURRENT PASSWORD")
    for check in (_login, _login_sha2):
        assert check(proxy, "dualuser1", "New#pass2")
        assert check(proxy, "dualuser1", "Old#pass1")  # still valid: rotation in progress
        assert not check(proxy, "dualuser1", "Wrong#pass3")
    # The user finishes the rotation itself, logged in with the new password.
    user = proxy.connect("dualuser1", "New#pass2", "easydb")
    with user.cursor() as cur:
        cur.execute("ALTER USER CURRENT_USER() DISCARD OLD PASSWORD")
    user.close()
    for check in (_login, _login_sha2):
        assert check(proxy, "dualuser1", "New#pass2")
        assert not check(proxy, "dualuser1", "Old#pass1")
    # A plain change keeps no old password; the administrator may discard for its accounts.
    with admin.cursor() as cur:
        cur.execute("SET PASSWORD FOR dualuser1 = 'Third#pass3' RETAIN CURRENT PASSWORD")
        cur.execute("ALTER USER dualuser1@'%' DISCARD OLD PASSWORD")
    assert not _login(proxy, "dualuser1", "New#pass2")
    assert _login(proxy, "dualuser1", "Third#pass3")


def test_an_empty_password_cannot_be_retained(
    proxy: ProxyEnv, admin: pymysql.connections.Connection
) -> None:
    with admin.cursor() as cur:
        cur.execute("DROP USER IF EXISTS dualuser2")
        cur.execute("CREATE USER dualuser2")
        cur.execute("GRANT SELECT ON easydb.* TO dualuser2")
        with pytest.raises(pymysql.err.OperationalError) as caught:
            cur.execute("SET PASSWORD FOR dualuser2 = 'New#pass2' RETAIN CURRENT PASSWORD")
    assert caught.value.args == (
        3878,
        "Empty password can not be retained as second password for user 'dualuser2'@'%'.",
    )
    assert _login(proxy, "dualuser2", "")
    assert not _login(proxy, "dualuser2", "New#pass2")


def test_discard_is_refused_for_other_databases_accounts(proxy: ProxyEnv) -> None:
    other = proxy.connect("otherdb", None, "otherdb")
    with other.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as caught:
        cur.execute("ALTER USER easydb_RO DISCARD OLD PASSWORD")
    other.close()
    assert caught.value.args[0] == 5107  # a protected account: no password changes by SQL

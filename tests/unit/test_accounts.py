"""Account operations (auth.accounts) against a real catalog: every rule of
README.md's "Account semantics" with its exact errno, SQLSTATE and message. Each test runs on
the SQLite store and on the MySQL/MariaDB store (a throwaway server, one database per test)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import auth.catalog as catalog_module
from auth.accounts import (
    MAX_ATTEMPTS,
    AccountManager,
    AccountName,
    Actor,
    Outcome,
    UserInfo,
)
from auth.catalog import Catalog
from auth.errors import SqlError
from auth.hosts import normalize_host_pattern
from auth.model import Account
from auth.passwords import hash_password, verify_password
from auth.policy import MANAGED, POLARDBX, PolicyProfile
from auth.privileges import ALL_PRIVILEGES, Priv

URL = "sqlite:///catalog.db"
SEL, INS, UPD, DEL = Priv.SELECT, Priv.INSERT, Priv.UPDATE, Priv.DELETE
CRE, DRP, IDX, ALT = Priv.CREATE, Priv.DROP, Priv.INDEX, Priv.ALTER
PW = "Secret#123"
PW2 = "Other#4567"
MANAGED_PW = "m" * 12 + "M" * 6 + "0123456789"  # 28 characters


def tddl(code: int, key: str, text: str) -> tuple[int, str, str]:
    return (code, "HY000", f"ERR-CODE: [TDDL-{code}][{key}] {text}")


RESTRICTED = tddl(
    5107,
    "ERR_OPERATION_NOT_ALLOWED",
    "The authorization operations is restricted to administrator only.",
)
GLOBAL = tddl(5107, "ERR_OPERATION_NOT_ALLOWED", "Global authorization is not allowed.")
GRANT_OPTION = tddl(5107, "ERR_OPERATION_NOT_ALLOWED", "Authorizing 'GRANT OPTION' is not allowed.")
INVALID_HOST = tddl(5109, "ERR_INVALID_HOST", "Invalid host. Please use IP address instead.")
INVALID_USERNAME = tddl(
    5202,
    "ERR_INVALID_USERNAME",
    "Invalid username. Username requirements: 1. Must be 4-20 characters; 2. Must start with an "
    "alphabetic letter; 3. Characters are limited to uppercase and lowercase letters, and "
    "numerical digits.",
)
INVALID_PASSWORD = tddl(
    5203,
    "ERR_INVALID_PASSWORD",
    "Invalid password. Password requirements: 1. Must be 6-20 characters; 2. Characters are "
    "limited to uppercase and lowercase alphabetic letters, numerical digits, and special "
    "characters(@#$%^&+=).",
)
MANAGED_INVALID_USERNAME = tddl(
    5202,
    "ERR_INVALID_USERNAME",
    "Invalid username. Username requirements: 1. Must be 6-32 characters; 2. Must start with an "
    "alphabetic letter; 3. Characters are limited to uppercase and lowercase letters, numerical "
    "digits, and underscores(_).",
)
MANAGED_INVALID_PASSWORD = tddl(
    5203,
    "ERR_INVALID_PASSWORD",
    "Invalid password. Password requirements: 1. Must be 24-64 characters; 2. Must not contain "
    "the characters \" or '.",
)
PASSWORD_NO_MATCH = (1133, "42000", "Can't find any matching row in the user table")
NO_DB = (1046, "3D000", "No database selected")


def create_drop_system(user: str) -> tuple[int, str, str]:
    return tddl(
        5107,
        "ERR_OPERATION_NOT_ALLOWED",
        f"Creating or dropping system account {user} is not allowed.",
    )


def change_system(user: str) -> tuple[int, str, str]:
    return tddl(
        5107,
        "ERR_OPERATION_NOT_ALLOWED",
        f"Changes to system account {user} privileges are not allowed.",
    )


def unsupported(priv: str) -> tuple[int, str, str]:
    return tddl(5101, "ERR_UNSUPPORTED_PRIVILEGE", f"Unsupported privilege '{priv}'.")


def other_db(target: str, admin: str, own: str) -> tuple[int, str, str]:
    return tddl(
        5106,
        "ERR_NO_ACCESS_TO_DATABASE",
        f"Granting privileges to database '{target}' is not allowed. "
        f"User {admin}@'%' can only access database '{own}'.",
    )


def user_not_exists(user: str) -> tuple[int, str, str]:
    return tddl(
        5104, "ERR_USER_NOT_EXISTS", f"User '{user}' does not exist. Please create user first."
    )


def cannot(operation: str, *names: str) -> tuple[int, str, str]:
    return (1396, "HY000", f"Operation {operation} failed for {','.join(names)}")


def no_grant(user: str, host: str = "%") -> tuple[int, str, str]:
    return (1141, "42000", f"There is no such grant defined for user '{user}' on host '{host}'")


def no_table_grant(user: str, table: str, host: str = "%") -> tuple[int, str, str]:
    return (
        1147,
        "42000",
        f"There is no such grant defined for user '{user}' on host '{host}' on table '{table}'",
    )


def raised(call: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(SqlError) as info:
        call()
    return (info.value.errno, info.value.sqlstate, info.value.message)


# --- fixture ---


@dataclass
class Env:
    catalog: Catalog
    mgr: AccountManager
    easy: Actor  # administrator of easydb
    other: Actor  # administrator of otherdb
    ro: Actor  # easydb_RO
    op: Actor  # the operator

    def find(self, user: str, host: str = "%") -> Account | None:
        self.catalog.refresh()
        return self.catalog.snapshot().find_account(user, host)

    def account(self, user: str, host: str = "%") -> Account:
        account = self.find(user, host)
        assert account is not None, f"{user}@{host} missing"
        return account

    def actor(self, user: str, host: str = "%", db: str | None = "easydb") -> Actor:
        return Actor(self.account(user, host), "10.1.2.3", db)

    def db_privs(self, user: str, host: str = "%") -> dict[str, Priv]:
        return dict(self.catalog.snapshot().grants_of(self.account(user, host).id).db_privs)

    def table_privs(self, user: str, host: str = "%") -> dict[tuple[str, str], Priv]:
        return dict(self.catalog.snapshot().grants_of(self.account(user, host).id).table_privs)

    @property
    def version(self) -> int:
        self.catalog.refresh()
        return self.catalog.snapshot().version

    def using(self, policy: PolicyProfile) -> Env:
        return Env(
            self.catalog,
            AccountManager(self.catalog, policy),
            self.easy,
            self.other,
            self.ro,
            self.op,
        )

    # Shorthands for the common statements.
    def create(self, actor: Actor, *users: str | tuple[str, str | None], **kw: Any) -> Outcome:
        specs = [
            (AccountName(u), None) if isinstance(u, str) else (AccountName(u[0]), u[1])
            for u in users
        ]
        return self.mgr.create_users(actor, specs, kw.get("if_not_exists", False))

    def grant(
        self,
        actor: Actor,
        privs: str,
        level: str,
        *users: AccountName | tuple[AccountName, str | None],
        table_exists: bool | None = None,
        with_grant_option: bool = False,
    ) -> Outcome:
        db, table, is_global = parse_level(level)
        specs = [u if isinstance(u, tuple) else (u, None) for u in users]
        if table is not None and table_exists is None:
            table_exists = not table.lower().startswith("nosuch")  # tables named nosuch*: none
        return self.mgr.grant(
            actor,
            parse_privs(privs),
            db,
            table,
            is_global,
            False,
            specs,
            with_grant_option,
            table_exists,
        )

    def revoke(self, actor: Actor, privs: str, level: str, *users: AccountName) -> Outcome:
        db, table, is_global = parse_level(level)
        return self.mgr.revoke(actor, parse_privs(privs), db, table, is_global, False, users)


def parse_privs(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """``"SELECT, INSERT"`` -> [("SELECT", ()), ("INSERT", ())]; ``"SELECT(a|b)"`` columns."""
    result: list[tuple[str, tuple[str, ...]]] = []
    for item in text.split(","):
        name, _, cols = item.strip().partition("(")
        columns = tuple(cols.rstrip(")").split("|")) if cols else ()
        result.append((name.strip().upper(), columns))
    return result


def parse_level(text: str) -> tuple[str | None, str | None, bool]:
    if text == "*.*":
        return None, None, True
    if text == "*":
        return None, None, False
    if "." not in text:
        return None, text, False
    db, table = text.split(".")
    return db, (None if table == "*" else table), False


def A(user: str, host: str = "%") -> AccountName:
    return AccountName(user, host)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        catalog_module, "hash_password", functools.partial(hash_password, iterations=1)
    )


@pytest.fixture(params=["sqlite", "mysql"])
def catalog_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return URL
    factory: Callable[..., str] = request.getfixturevalue("mysql_catalog_url")
    return factory()


@pytest.fixture
def env(tmp_path: Path, catalog_url: str) -> Iterator[Env]:
    catalog = Catalog.open(catalog_url, tmp_path)
    catalog.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "Ro#pw12")
    catalog.create_database("otherdb", "s1", "otherdb", "sg_otherdb", "Admin#pw2", "Ro#pw34")
    snapshot = catalog.snapshot()

    def builtin(user: str, db: str) -> Actor:
        account = snapshot.find_account(user, "%")
        assert account is not None
        return Actor(account, "10.0.0.9", db)

    yield Env(
        catalog,
        AccountManager(catalog, POLARDBX),
        builtin("easydb", "easydb"),
        builtin("otherdb", "otherdb"),
        builtin("easydb_RO", "easydb"),
        Actor.operator(),
    )
    catalog.close()


@pytest.fixture
def hanson(env: Env) -> Env:
    """hanson@'%' (owned by easydb, password PW) with SELECT, INSERT on easydb.emp."""
    env.create(env.easy, ("hanson", PW))
    env.grant(env.easy, "SELECT, INSERT", "easydb.emp", A("hanson"))
    return env


# --- who ---


def _non_admin_calls(env: Env, actor: Actor) -> list[Callable[[], object]]:
    m = env.mgr
    return [
        lambda: m.create_users(actor, [(A("newuser"), PW)], False),
        lambda: m.drop_users(actor, [A("hanson")], False),
        lambda: m.set_password(actor, A("easydb"), PW),
        lambda: m.set_password(actor, A("hanson"), PW),
        lambda: env.grant(actor, "SELECT", "easydb.*", A("lily1")),
        lambda: env.grant(actor, "SELECT", "*.*", A("lily1")),  # who is checked first
        lambda: env.revoke(actor, "SELECT", "easydb.*", A("lily1")),
        lambda: m.revoke_all(actor, [A("lily1")]),
        lambda: m.show_grants(actor, A("hanson")),
        lambda: m.list_users(actor, "easydb"),
        lambda: m.create_user_for_database(actor, "easydb", "newuser", "%", PW),
        lambda: m.update_password(actor, "easydb", "lily1", "%", PW),
        lambda: m.delete_user(actor, "easydb", "lily1"),
    ]


@pytest.mark.parametrize("who", ["ro", "plain"])
@pytest.mark.parametrize("index", range(13))
def test_only_administrators_manage_accounts(hanson: Env, who: str, index: int) -> None:
    env = hanson
    env.create(env.easy, ("lily1", PW))
    env.grant(env.easy, "ALL", "easydb.*", A("lily1"))
    actor = env.ro if who == "ro" else env.actor("lily1")
    version = env.version
    assert raised(_non_admin_calls(env, actor)[index]) == RESTRICTED
    assert env.version == version


# --- CREATE USER ---


def test_create_user_without_password_is_empty_and_owned(env: Env) -> None:
    outcome = env.create(env.easy, "david")
    assert outcome == Outcome(catalog_version=outcome.catalog_version)
    david = env.account("david")
    assert not david.has_password and david.owner_db == "easydb" and david.builtin is None
    assert env.db_privs("david") == {}


def test_create_user_with_password(env: Env) -> None:
    env.mgr.create_users(env.easy, [(A("lily", "30.9.73.96"), "123456")], False)
    lily = env.account("lily", "30.9.73.96")
    assert verify_password(lily.password_hash, "123456")
    assert lily.owner_db == "easydb"


def test_create_several_users_in_one_statement(env: Env) -> None:
    before = env.version
    outcome = env.create(env.easy, ("lily", PW), "david")
    assert env.find("lily") and env.find("david")
    assert outcome.catalog_version == before + 1 == env.version  # one change for both


def test_create_user_exists_is_1396_for_every_failing_account_and_changes_nothing(
    env: Env,
) -> None:
    env.create(env.easy, "david", "lily")
    version = env.version
    assert raised(lambda: env.create(env.easy, "david", "newone", "lily")) == cannot(
        "CREATE USER", "'david'@'%'", "'lily'@'%'"
    )
    assert env.find("newone") is None and env.version == version


def test_create_user_twice_in_one_statement_is_1396(env: Env) -> None:
    assert raised(lambda: env.create(env.easy, "david", "david")) == cannot(
        "CREATE USER", "'david'@'%'"
    )
    assert env.find("david") is None


def test_create_user_if_not_exists_notes_3163(env: Env) -> None:
    env.create(env.easy, "david")
    outcome = env.create(env.easy, "david", "lily", if_not_exists=True)
    assert outcome.notes == ((3163, "Authorization ID 'david'@'%' already exists."),)
    assert env.find("lily") is not None


def test_create_user_if_not_exists_all_present_changes_nothing(env: Env) -> None:
    env.create(env.easy, "david")
    version = env.version
    outcome = env.create(env.easy, "david", if_not_exists=True)
    assert outcome.catalog_version is None and env.version == version


@pytest.mark.parametrize(
    ("user", "host", "password", "expected"),
    [
        # Built-in names, whatever the host and even the other database's.
        ("easydb", "%", None, create_drop_system("easydb")),
        ("easydb_RO", "%", None, create_drop_system("easydb_RO")),
        ("otherdb", "10.%", None, create_drop_system("otherdb")),
        ("otherdb_RO", "%", PW, create_drop_system("otherdb_RO")),
        # Names.
        ("abc", "%", None, INVALID_USERNAME),
        ("a" * 21, "%", None, INVALID_USERNAME),
        ("1abc", "%", None, INVALID_USERNAME),
        ("new_user", "%", None, INVALID_USERNAME),
        ("ab-cd", "%", None, INVALID_USERNAME),
        # Hosts.
        ("david", "localhost", None, INVALID_HOST),
        ("david", "a.com", None, INVALID_HOST),
        ("david", "10.0.0.0/8", None, INVALID_HOST),
        ("david", "", None, INVALID_HOST),
        # Passwords.
        ("david", "%", "12345", INVALID_PASSWORD),
        ("david", "%", "a" * 21, INVALID_PASSWORD),
        ("david", "%", "pass word1", INVALID_PASSWORD),
        ("david", "%", "pass!word1", INVALID_PASSWORD),
        ("david", "%", "", INVALID_PASSWORD),
        # Order: name before host before password.
        ("abc", "localhost", "x", INVALID_USERNAME),
        ("david", "localhost", "x", INVALID_HOST),
    ],
)
def test_create_user_rules(
    env: Env, user: str, host: str, password: str | None, expected: tuple[int, str, str]
) -> None:
    version = env.version
    error = raised(lambda: env.mgr.create_users(env.easy, [(A(user, host), password)], False))
    assert error == expected
    if password:
        assert password not in error[2]
    assert env.version == version


def test_create_user_validates_the_whole_statement_first(env: Env) -> None:
    version = env.version
    specs = [(A("david"), PW), (A("lily"), PW), (A("bad"), PW)]
    assert raised(lambda: env.mgr.create_users(env.easy, specs, False)) == INVALID_USERNAME
    assert env.find("david") is None and env.version == version


def test_create_user_host_is_stored_normalized(env: Env) -> None:
    env.mgr.create_users(env.easy, [(A("david", "FE80:0::1"), None)], False)
    assert env.find("david", "fe80::1") is not None
    assert raised(
        lambda: env.mgr.create_users(env.easy, [(A("david", "fe80::0:1"), None)], False)
    ) == cannot("CREATE USER", "'david'@'fe80::1'")


def test_same_user_different_hosts_are_different_accounts(env: Env) -> None:
    env.mgr.create_users(
        env.easy, [(A("lily", "30.9.73.96"), PW), (A("lily", "30.9.73.100"), PW2)], False
    )
    first, second = env.account("lily", "30.9.73.96"), env.account("lily", "30.9.73.100")
    assert first.id != second.id
    assert verify_password(second.password_hash, PW2)


def test_user_names_are_case_sensitive(env: Env) -> None:
    env.create(env.easy, "david", "David")
    assert env.account("david").id != env.account("David").id


def test_operator_creates_users_owned_by_its_current_database(env: Env) -> None:
    env.create(Actor.operator(current_db="OTHERDB"), "david")
    env.create(env.op, "lily")
    assert env.account("david").owner_db == "otherdb"
    assert env.account("lily").owner_db is None
    assert raised(lambda: env.create(Actor.operator(current_db="nodb"), "nobody")) == (
        1049,
        "42000",
        "Unknown database 'nodb'",
    )


# --- a user name belongs to one database ---


# Host patterns another database's administrator might try, to capture bobby@'%''s logins by
# host precedence: every one is more specific than '%'.
CAPTURING_HOSTS = ["127.0.0.1", "127.0.0.%", "127.%", "0%", "9%", "1%", "::ffff:127.0.0.2", "_%"]


@pytest.mark.parametrize("host", CAPTURING_HOSTS)
def test_another_databases_user_name_cannot_be_created_at_any_host(env: Env, host: str) -> None:
    env.mgr.create_users(env.other, [(A("bobby"), PW)], False)
    stored = env.account("bobby").host
    version = env.version
    name = f"'bobby'@'{normalize_host_pattern(host)}'"
    assert raised(lambda: env.mgr.create_users(env.easy, [(A("bobby", host), PW)], False)) == (
        cannot("CREATE USER", name)
    )
    # As for an existing account: IF NOT EXISTS notes 3163 and creates nothing.
    outcome = env.mgr.create_users(env.easy, [(A("bobby", host), PW)], True)
    assert outcome.notes == ((3163, f"Authorization ID {name} already exists."),)
    # GRANT ... IDENTIFIED BY that would create it: 1133, as for another database's account.
    assert raised(lambda: env.grant(env.easy, "SELECT", "easydb.*", (A("bobby", host), PW))) == (
        PASSWORD_NO_MATCH
    )
    # The CLI / dashboard path, even for the operator working on easydb.
    for actor in (env.easy, env.op):
        create = functools.partial(env.mgr.create_user_for_database, actor, "easydb", "bobby", host)
        assert raised(create) == cannot("CREATE USER", name)
    assert env.version == version
    assert [a.host for a in env.catalog.snapshot().accounts_named("bobby")] == [stored]


def test_the_owning_database_adds_hosts_to_its_user_name(env: Env) -> None:
    env.mgr.create_users(env.other, [(A("bobby"), PW)], False)
    env.mgr.create_users(env.other, [(A("bobby", "127.0.0.1"), PW2)], False)
    env.grant(env.other, "SELECT", "otherdb.*", (A("bobby", "10.%"), PW))
    env.mgr.create_user_for_database(env.op, "otherdb", "bobby", "10.1.%")
    assert {a.host: a.owner_db for a in env.catalog.snapshot().accounts_named("bobby")} == {
        "%": "otherdb",
        "127.0.0.1": "otherdb",
        "10.%": "otherdb",
        "10.1.%": "otherdb",
    }


def test_a_taken_user_name_fails_the_whole_statement(env: Env) -> None:
    env.mgr.create_users(env.other, [(A("bobby"), PW)], False)
    env.create(env.easy, "david")
    version = env.version
    assert raised(
        lambda: env.mgr.create_users(
            env.easy,
            [(A("lily"), PW), (A("bobby", "127.0.0.1"), PW), (A("david"), PW)],
            False,
        )
    ) == cannot("CREATE USER", "'bobby'@'127.0.0.1'", "'david'@'%'")
    assert env.version == version and env.find("lily") is None
    # IF NOT EXISTS: the others are created, each taken one is a note.
    outcome = env.mgr.create_users(env.easy, [(A("lily"), PW), (A("bobby", "127.0.0.1"), PW)], True)
    assert outcome.notes == ((3163, "Authorization ID 'bobby'@'127.0.0.1' already exists."),)
    assert env.account("lily").owner_db == "easydb"
    assert env.find("bobby", "127.0.0.1") is None
    # GRANT ... IDENTIFIED BY to several accounts: all or nothing too.
    version = env.version
    assert (
        raised(
            lambda: env.grant(
                env.easy, "SELECT", "easydb.*", (A("newbie"), PW), (A("bobby", "127.0.0.%"), PW)
            )
        )
        == PASSWORD_NO_MATCH
    )
    assert env.version == version and env.find("newbie") is None


def test_another_database_still_grants_to_an_existing_account(env: Env) -> None:
    # The seed's multi-database accounts: a GRANT (without IDENTIFIED BY) on one's own database
    # to another database's account is allowed; it does not move the name.
    env.mgr.create_users(env.other, [(A("bobby"), PW)], False)
    env.grant(env.easy, "SELECT", "easydb.*", A("bobby"))
    assert env.db_privs("bobby") == {"easydb": SEL}
    assert env.account("bobby").owner_db == "otherdb"
    assert raised(lambda: env.mgr.create_users(env.easy, [(A("bobby", "1%"), PW)], False)) == (
        cannot("CREATE USER", "'bobby'@'1%'")
    )


def test_a_user_name_is_free_again_once_its_accounts_are_dropped(env: Env) -> None:
    env.mgr.create_users(env.other, [(A("bobby"), PW), (A("bobby", "10.%"), PW)], False)
    env.mgr.drop_users(env.other, [A("bobby")], False)
    assert raised(lambda: env.create(env.easy, ("bobby", PW))) == cannot(
        "CREATE USER", "'bobby'@'%'"
    )
    env.mgr.drop_users(env.other, [A("bobby", "10.%")], False)
    env.create(env.easy, ("bobby", PW))
    assert env.account("bobby").owner_db == "easydb"


def test_user_names_of_the_rule_are_case_sensitive(env: Env) -> None:
    env.mgr.create_users(env.other, [(A("bobby"), PW)], False)
    env.create(env.easy, ("Bobby", PW))
    assert env.account("Bobby").owner_db == "easydb"


def test_a_name_held_by_an_account_of_no_database_is_taken(env: Env) -> None:
    env.create(env.op, ("lonely", PW))
    assert env.account("lonely").owner_db is None
    assert raised(lambda: env.create(env.easy, ("lonely", PW))) == cannot(
        "CREATE USER", "'lonely'@'%'"
    )
    env.mgr.create_users(env.op, [(A("lonely", "10.%"), PW)], False)
    assert env.account("lonely", "10.%").owner_db is None


# --- the managed profile ---


def test_managed_create_user_without_password_generates_one(env: Env) -> None:
    managed = env.using(MANAGED)
    outcome = managed.create(env.easy, "new_user1")
    ((name, password),) = outcome.generated_passwords
    assert name == A("new_user1") and len(password) == 64
    assert password not in repr(outcome)
    assert verify_password(env.account("new_user1").password_hash, password)


@pytest.mark.parametrize(
    ("user", "password", "expected"),
    [
        ("abcde", MANAGED_PW, MANAGED_INVALID_USERNAME),  # 5 characters
        ("a" * 33, MANAGED_PW, MANAGED_INVALID_USERNAME),
        ("_abcdef", MANAGED_PW, MANAGED_INVALID_USERNAME),
        ("new_user1", PW, MANAGED_INVALID_PASSWORD),  # 10 characters: polardbx-valid only
        ("new_user1", MANAGED_PW + "'", MANAGED_INVALID_PASSWORD),
        ("new_user1", 'x"' + MANAGED_PW, MANAGED_INVALID_PASSWORD),
        ("new_user1", "p" * 65, MANAGED_INVALID_PASSWORD),
        ("easydb_RO", MANAGED_PW, create_drop_system("easydb_RO")),
    ],
)
def test_managed_rules(env: Env, user: str, password: str, expected: tuple[int, str, str]) -> None:
    managed = env.using(MANAGED)
    assert raised(lambda: managed.create(env.easy, (user, password))) == expected


def test_managed_accepts_its_own_names_and_passwords(env: Env) -> None:
    managed = env.using(MANAGED)
    managed.create(env.easy, ("my_app_4553_rw", MANAGED_PW))
    assert verify_password(env.account("my_app_4553_rw").password_hash, MANAGED_PW)
    managed.grant(env.easy, "SELECT", "easydb.*", (A("my_app_ro"), "p" * 24))
    assert env.db_privs("my_app_ro") == {"easydb": SEL}


# --- DROP USER ---


def test_drop_user_removes_account_and_grants(hanson: Env) -> None:
    env = hanson
    hanson_id = env.account("hanson").id
    env.mgr.drop_users(env.easy, [A("hanson")], False)
    assert env.find("hanson") is None
    assert env.catalog.snapshot().grants_of(hanson_id).empty


def test_drop_user_missing_is_1396_and_drops_nothing(hanson: Env) -> None:
    env = hanson
    version = env.version
    users = [A("hanson"), A("nobody"), A("ghost", "10.%")]
    assert raised(lambda: env.mgr.drop_users(env.easy, users, False)) == cannot(
        "DROP USER", "'nobody'@'%'", "'ghost'@'10.%'"
    )
    assert env.find("hanson") is not None and env.version == version


def test_drop_user_if_exists_notes_3162(hanson: Env) -> None:
    env = hanson
    outcome = env.mgr.drop_users(env.easy, [A("nobody"), A("hanson")], True)
    assert outcome.notes == ((3162, "Authorization ID 'nobody'@'%' does not exist."),)
    assert env.find("hanson") is None


def test_drop_user_twice_in_one_statement(hanson: Env) -> None:
    env = hanson
    assert raised(lambda: env.mgr.drop_users(env.easy, [A("hanson"), A("hanson")], False)) == (
        cannot("DROP USER", "'hanson'@'%'")
    )
    assert env.find("hanson") is not None


@pytest.mark.parametrize("user", ["easydb", "easydb_RO", "otherdb", "otherdb_RO"])
@pytest.mark.parametrize("if_exists", [False, True])
def test_drop_builtin_is_refused(env: Env, user: str, if_exists: bool) -> None:
    assert raised(lambda: env.mgr.drop_users(env.easy, [A(user)], if_exists)) == (
        create_drop_system(user)
    )
    assert raised(lambda: env.mgr.drop_users(env.op, [A(user)], if_exists)) == (
        create_drop_system(user)
    )


@pytest.mark.parametrize("if_exists", [False, True])
def test_drop_user_owned_by_another_database_is_1396(hanson: Env, if_exists: bool) -> None:
    # Decision: an existing account the administrator's database does not own cannot be
    # dropped by it; the error is MySQL's 1396, with or without IF EXISTS.
    env = hanson
    env.grant(env.other, "SELECT", "otherdb.*", A("hanson"))  # even holding privileges there
    assert raised(lambda: env.mgr.drop_users(env.other, [A("hanson")], if_exists)) == cannot(
        "DROP USER", "'hanson'@'%'"
    )
    assert env.find("hanson") is not None


def test_drop_user_invalid_host_is_5109(env: Env) -> None:
    assert raised(lambda: env.mgr.drop_users(env.easy, [A("david", "localhost")], True)) == (
        INVALID_HOST
    )


def test_operator_drops_any_non_protected_account(hanson: Env) -> None:
    env = hanson
    env.mgr.drop_users(env.op, [A("hanson")], False)
    assert env.find("hanson") is None


# --- SET PASSWORD ---


def test_set_own_password(hanson: Env) -> None:
    env = hanson
    me = env.actor("hanson")
    env.mgr.set_password(me, None, PW2)
    assert verify_password(env.account("hanson").password_hash, PW2)
    # FOR one's own account (same user and host pattern) is one's own too.
    env.mgr.set_password(me, A("hanson"), PW)
    assert verify_password(env.account("hanson").password_hash, PW)


def test_set_own_password_rules(hanson: Env) -> None:
    env = hanson
    assert raised(lambda: env.mgr.set_password(env.actor("hanson"), None, "short")) == (
        INVALID_PASSWORD
    )


@pytest.mark.parametrize("who", ["easy", "ro", "other"])
def test_protected_accounts_cannot_change_their_password(env: Env, who: str) -> None:
    actor: Actor = getattr(env, who)
    assert actor.account is not None
    version = env.version
    assert raised(lambda: env.mgr.set_password(actor, None, PW)) == change_system(
        actor.account.user
    )
    assert env.version == version


def test_set_password_for_owned_account(hanson: Env) -> None:
    env = hanson
    env.mgr.set_password(env.easy, A("hanson"), PW2)
    assert verify_password(env.account("hanson").password_hash, PW2)


@pytest.mark.parametrize(
    ("actor", "target", "password", "expected"),
    [
        ("easy", A("nobody"), PW, PASSWORD_NO_MATCH),
        ("other", A("hanson"), PW, PASSWORD_NO_MATCH),  # decision: not owned → as missing
        ("easy", A("easydb_RO"), PW, change_system("easydb_RO")),
        ("easy", A("otherdb"), PW, change_system("otherdb")),
        ("op", A("otherdb_RO"), PW, change_system("otherdb_RO")),
        ("easy", A("hanson", "localhost"), PW, INVALID_HOST),
        ("easy", A("hanson"), "bad", INVALID_PASSWORD),
        ("easy", A("nobody"), "bad", INVALID_PASSWORD),  # password before existence
        ("op", A("nobody"), PW, PASSWORD_NO_MATCH),
    ],
)
def test_set_password_for_errors(
    hanson: Env, actor: str, target: AccountName, password: str, expected: tuple[int, str, str]
) -> None:
    env = hanson
    assert raised(lambda: env.mgr.set_password(getattr(env, actor), target, password)) == expected


def test_operator_sets_any_non_protected_password(hanson: Env) -> None:
    env = hanson
    env.mgr.set_password(env.op, A("hanson"), PW2)
    assert verify_password(env.account("hanson").password_hash, PW2)


# --- GRANT ---


def test_grant_creates_account_with_identified_by(env: Env) -> None:
    env.grant(env.easy, "ALL PRIVILEGES", "easydb.*", (A("david"), "your#password"))
    david = env.account("david")
    assert david.owner_db == "easydb"
    assert verify_password(david.password_hash, "your#password")
    assert env.db_privs("david") == {"easydb": ALL_PRIVILEGES}


def test_grant_seed_examples(env: Env) -> None:
    env.grant(env.easy, "ALL PRIVILEGES", "easydb.employees", (A("hanson"), "your#password"))
    env.grant(env.easy, "INSERT, SELECT", "easydb.emp", (A("hanson", "192.168.3.10"), PW))
    env.grant(env.easy, "SELECT", "easydb.*", (A("actro"), "your#password"))
    assert env.table_privs("hanson") == {("easydb", "employees"): ALL_PRIVILEGES}
    assert env.table_privs("hanson", "192.168.3.10") == {("easydb", "emp"): SEL | INS}
    assert env.db_privs("actro") == {"easydb": SEL}


def test_grant_with_identified_by_on_existing_owned_account_changes_password(
    hanson: Env,
) -> None:
    env = hanson
    env.grant(env.easy, "SELECT", "easydb.*", (A("hanson"), PW2))
    assert verify_password(env.account("hanson").password_hash, PW2)
    assert env.db_privs("hanson") == {"easydb": SEL}


def test_grant_identified_by_on_account_owned_elsewhere_is_1133(hanson: Env) -> None:
    env = hanson
    version = env.version
    assert raised(lambda: env.grant(env.other, "SELECT", "otherdb.*", (A("hanson"), PW2))) == (
        PASSWORD_NO_MATCH
    )
    assert env.version == version
    # Without IDENTIFIED BY an administrator grants on its database to any account.
    env.grant(env.other, "SELECT", "otherdb.*", A("hanson"))
    assert env.db_privs("hanson") == {"otherdb": SEL}


def test_grant_to_missing_account_without_identified_by_is_5104(env: Env) -> None:
    assert raised(lambda: env.grant(env.easy, "SELECT", "easydb.*", A("nobody"))) == (
        user_not_exists("nobody")
    )


@pytest.mark.parametrize(
    ("privs", "level", "users", "expected"),
    [
        # Level.
        ("SELECT", "*.*", [A("hanson")], GLOBAL),
        ("SELECT", "otherdb.*", [A("hanson")], other_db("otherdb", "easydb", "easydb")),
        ("SELECT", "OtherDB.emp", [A("hanson")], other_db("OtherDB", "easydb", "easydb")),
        ("SELECT", "nodb.*", [A("hanson")], other_db("nodb", "easydb", "easydb")),
        # Privileges.
        ("USAGE", "easydb.*", [A("hanson")], unsupported("USAGE")),
        ("SELECT, CREATE VIEW", "easydb.*", [A("hanson")], unsupported("CREATE VIEW")),
        ("EXECUTE", "easydb.*", [A("hanson")], unsupported("EXECUTE")),
        ("FILE", "easydb.*", [A("hanson")], unsupported("FILE")),
        ("SELECT(a|b)", "easydb.emp", [A("hanson")], unsupported("SELECT (a, b)")),
        ("SELECT, GRANT OPTION", "easydb.*", [A("hanson")], GRANT_OPTION),
        # Accounts.
        ("SELECT", "easydb.*", [A("easydb")], change_system("easydb")),
        ("SELECT", "easydb.*", [A("easydb_RO")], change_system("easydb_RO")),
        ("SELECT", "easydb.*", [A("otherdb")], change_system("otherdb")),
        ("SELECT", "easydb.*", [A("hanson", "localhost")], INVALID_HOST),
        ("SELECT", "easydb.*", [(A("newuser"), "no")], INVALID_PASSWORD),
        ("SELECT", "easydb.*", [(A("new_user"), PW)], INVALID_USERNAME),
        ("SELECT", "easydb.*", [(A("hanson"), "no")], INVALID_PASSWORD),
        # Order: level, then privileges, then accounts, then the table.
        ("USAGE", "*.*", [A("nobody")], GLOBAL),
        ("USAGE", "otherdb.*", [A("nobody")], other_db("otherdb", "easydb", "easydb")),
        ("USAGE", "easydb.*", [A("easydb_RO")], unsupported("USAGE")),
        ("SELECT", "easydb.*", [A("nobody"), A("easydb_RO")], change_system("easydb_RO")),
        ("SELECT", "easydb.*", [A("nobody"), (A("x"), "no")], INVALID_PASSWORD),
        ("SELECT", "easydb.nosuch", [A("nobody")], user_not_exists("nobody")),
        (
            "SELECT",
            "easydb.nosuch",
            [A("hanson")],
            (1146, "42S02", "Table 'easydb.nosuch' doesn't exist"),
        ),
    ],
)
def test_grant_errors(
    hanson: Env,
    privs: str,
    level: str,
    users: list[AccountName | tuple[AccountName, str | None]],
    expected: tuple[int, str, str],
) -> None:
    env = hanson
    version = env.version
    assert raised(lambda: env.grant(env.easy, privs, level, *users)) == expected
    assert env.version == version


def test_grant_with_grant_option_is_5107(hanson: Env) -> None:
    env = hanson
    assert (
        raised(
            lambda: env.grant(env.easy, "SELECT", "easydb.*", A("hanson"), with_grant_option=True)
        )
        == GRANT_OPTION
    )
    # Unsupported privileges are reported before GRANT OPTION.
    assert raised(
        lambda: env.grant(env.easy, "USAGE", "easydb.*", A("hanson"), with_grant_option=True)
    ) == unsupported("USAGE")


def test_grant_on_routine_is_5101(hanson: Env) -> None:
    env = hanson
    call = functools.partial(
        env.mgr.grant, env.easy, [("EXECUTE", ())], "easydb", "proc1", False, True
    )
    assert raised(lambda: call([(A("hanson"), None)], False, None)) == unsupported("EXECUTE")
    call = functools.partial(
        env.mgr.grant, env.easy, [("SELECT", ())], "easydb", "proc1", False, True
    )
    assert raised(lambda: call([(A("hanson"), None)], False, None)) == unsupported("SELECT")


def test_grant_table_level_needs_the_table(hanson: Env) -> None:
    env = hanson
    assert raised(
        lambda: env.grant(env.easy, "SELECT", "easydb.nosuch", A("hanson"), table_exists=False)
    ) == (1146, "42S02", "Table 'easydb.nosuch' doesn't exist")
    # ``t`` is a table of the current database.
    assert raised(
        lambda: env.grant(env.easy, "SELECT", "NoSuch", A("hanson"), table_exists=False)
    ) == (1146, "42S02", "Table 'easydb.NoSuch' doesn't exist")


def test_grant_table_in_current_database_and_star(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "UPDATE", "Emp", A("hanson"))
    assert env.table_privs("hanson") == {("easydb", "emp"): SEL | INS | UPD}
    env.grant(env.easy, "DELETE", "*", A("hanson"))
    assert env.db_privs("hanson") == {"easydb": DEL}


def test_grant_without_current_database_is_1046(hanson: Env) -> None:
    env = hanson
    admin = Actor(env.easy.account, "10.0.0.9", None)
    assert raised(lambda: env.grant(admin, "SELECT", "emp", A("hanson"))) == NO_DB
    assert raised(lambda: env.grant(admin, "SELECT", "*", A("hanson"))) == NO_DB


def test_grant_database_names_are_case_insensitive(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "SELECT", "EASYDB.*", A("hanson"))
    env.grant(env.easy, "DROP", "EasyDb.EMP", A("hanson"))
    assert env.db_privs("hanson") == {"easydb": SEL}
    assert env.table_privs("hanson") == {("easydb", "emp"): INS | DRP}


def test_grant_all_is_the_eight(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "ALL", "easydb.dept", A("hanson"))
    assert (
        env.table_privs("hanson")[("easydb", "dept")]
        == SEL | INS | UPD | DEL | CRE | DRP | IDX | ALT
    )


# --- higher level wins, idempotence ---


def test_grant_on_database_removes_those_privileges_from_table_grants(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "SELECT", "easydb.dept", A("hanson"))
    env.grant(env.easy, "SELECT", "easydb.*", A("hanson"))
    assert env.db_privs("hanson") == {"easydb": SEL}
    # emp kept INSERT; dept held only SELECT, so its grant is gone.
    assert env.table_privs("hanson") == {("easydb", "emp"): INS}
    env.grant(env.easy, "ALL", "easydb.*", A("hanson"))
    assert env.table_privs("hanson") == {}


def test_grant_on_database_leaves_other_databases_table_grants(hanson: Env) -> None:
    env = hanson
    env.grant(env.other, "SELECT", "otherdb.emp", A("hanson"))
    env.grant(env.easy, "ALL", "easydb.*", A("hanson"))
    assert env.table_privs("hanson") == {("otherdb", "emp"): SEL}


def test_table_grant_of_privileges_held_on_the_database_adds_nothing(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "SELECT, UPDATE", "easydb.*", A("hanson"))
    version = env.version
    outcome = env.grant(env.easy, "SELECT", "easydb.dept", A("hanson"))
    assert outcome.catalog_version is None and env.version == version
    env.grant(env.easy, "UPDATE, DELETE", "easydb.dept", A("hanson"))
    assert env.table_privs("hanson") == {("easydb", "emp"): INS, ("easydb", "dept"): DEL}


def test_granting_what_is_held_succeeds_and_changes_nothing(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "SELECT", "easydb.*", A("hanson"))
    version, audit = env.version, len(env.catalog.audit())
    for privs, level in [("SELECT", "easydb.*"), ("INSERT", "easydb.emp"), ("SELECT", "emp")]:
        outcome = env.grant(env.easy, privs, level, A("hanson"))
        assert outcome == Outcome()
    assert env.version == version and len(env.catalog.audit()) == audit


def test_grant_to_several_accounts_is_all_or_nothing(hanson: Env) -> None:
    env = hanson
    version = env.version
    users: list[AccountName | tuple[AccountName, str | None]] = [
        A("hanson"),
        (A("david"), PW),
        A("nobody"),
    ]
    assert raised(lambda: env.grant(env.easy, "SELECT", "easydb.*", *users)) == (
        user_not_exists("nobody")
    )
    assert env.find("david") is None and env.db_privs("hanson") == {}
    assert env.version == version
    env.grant(env.easy, "SELECT", "easydb.*", A("hanson"), (A("david"), PW))
    assert env.db_privs("hanson") == env.db_privs("david") == {"easydb": SEL}
    assert env.version == version + 1


def test_grant_twice_to_a_new_account_in_one_statement(env: Env) -> None:
    env.grant(env.easy, "SELECT", "easydb.*", (A("david"), PW), (A("david"), PW2))
    assert verify_password(env.account("david").password_hash, PW2)


def test_account_holds_privileges_on_several_databases(hanson: Env) -> None:
    env = hanson
    env.grant(env.other, "SELECT", "otherdb.*", A("hanson"))
    env.grant(env.other, "CREATE", "*", A("hanson"))  # current database of the admin
    assert env.db_privs("hanson") == {"otherdb": SEL | CRE}
    assert env.account("hanson").owner_db == "easydb"  # ownership does not move


def test_operator_grants_on_any_existing_database(hanson: Env) -> None:
    env = hanson
    env.grant(env.op, "SELECT", "otherdb.*", A("hanson"), (A("newuser"), PW))
    assert env.db_privs("hanson") == {"otherdb": SEL}
    assert env.account("newuser").owner_db == "otherdb"
    assert raised(lambda: env.grant(env.op, "SELECT", "nodb.*", A("hanson"))) == (
        1049,
        "42000",
        "Unknown database 'nodb'",
    )


# --- REVOKE ---


def test_revoke_table_level(hanson: Env) -> None:
    env = hanson
    env.revoke(env.easy, "INSERT", "easydb.emp", A("hanson"))
    assert env.table_privs("hanson") == {("easydb", "emp"): SEL}
    env.revoke(env.easy, "SELECT, CREATE, DROP, INDEX", "emp", A("hanson"))
    assert env.table_privs("hanson") == {}  # left empty: deleted


def test_revoke_on_database_removes_from_table_grants_too(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "UPDATE, DELETE", "easydb.*", A("hanson"))
    env.grant(env.easy, "ALTER", "easydb.dept", A("hanson"))
    env.grant(env.other, "SELECT", "otherdb.emp", A("hanson"))
    env.revoke(env.easy, "UPDATE, SELECT, ALTER", "easydb.*", A("hanson"))
    assert env.db_privs("hanson") == {"easydb": DEL}
    assert env.table_privs("hanson") == {("easydb", "emp"): INS, ("otherdb", "emp"): SEL}


def test_revoke_on_database_with_only_table_grants_there(hanson: Env) -> None:
    # Decision: 1141 only when nothing at all is held in the database.
    env = hanson
    env.revoke(env.easy, "ALL PRIVILEGES", "easydb.*", A("hanson"))
    assert env.table_privs("hanson") == {}
    assert raised(lambda: env.revoke(env.easy, "SELECT", "easydb.*", A("hanson"))) == (
        no_grant("hanson")
    )


def test_revoke_grant_option_is_accepted(hanson: Env) -> None:
    env = hanson
    env.revoke(env.easy, "INSERT, GRANT OPTION", "easydb.emp", A("hanson"))
    assert env.table_privs("hanson") == {("easydb", "emp"): SEL}


@pytest.mark.parametrize(
    ("privs", "level", "users", "expected"),
    [
        ("SELECT", "easydb.*", [A("nobody")], no_grant("nobody")),
        ("SELECT", "easydb.*", [A("nobody", "10.0.0.%")], no_grant("nobody", "10.0.0.%")),
        ("SELECT", "easydb.emp", [A("nobody")], no_grant("nobody")),
        ("SELECT", "easydb.*", [A("lily")], no_grant("lily")),
        ("SELECT", "easydb.dept", [A("hanson")], no_table_grant("hanson", "dept")),
        ("SELECT", "easydb.Dept", [A("hanson")], no_table_grant("hanson", "Dept")),
        ("SELECT", "dept", [A("hanson")], no_table_grant("hanson", "dept")),
        ("SELECT", "easydb.*", [A("hanson"), A("lily")], no_grant("lily")),
        ("SELECT", "easydb.*", [A("easydb_RO")], change_system("easydb_RO")),
        ("SELECT", "easydb.*", [A("easydb")], change_system("easydb")),
        ("SELECT", "easydb.*", [A("hanson", "a.com")], INVALID_HOST),
        ("SELECT", "otherdb.*", [A("hanson")], other_db("otherdb", "easydb", "easydb")),
        ("SELECT", "*.*", [A("hanson")], GLOBAL),
        ("USAGE", "easydb.*", [A("hanson")], unsupported("USAGE")),
        ("SELECT(a)", "easydb.emp", [A("hanson")], unsupported("SELECT (a)")),
        ("USAGE", "easydb.*", [A("nobody")], unsupported("USAGE")),
    ],
)
def test_revoke_errors(
    hanson: Env, privs: str, level: str, users: list[AccountName], expected: tuple[int, str, str]
) -> None:
    env = hanson
    env.create(env.easy, "lily")
    version = env.version
    assert raised(lambda: env.revoke(env.easy, privs, level, *users)) == expected
    assert env.version == version
    assert env.table_privs("hanson") == {("easydb", "emp"): SEL | INS}


def test_revoke_all_removes_everything_on_the_admins_database_only(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "UPDATE", "easydb.*", A("hanson"))
    env.grant(env.other, "SELECT", "otherdb.*", A("hanson"))
    env.grant(env.other, "INSERT", "otherdb.t1", A("hanson"))
    env.mgr.revoke_all(env.easy, [A("hanson")])
    assert env.db_privs("hanson") == {"otherdb": SEL}
    assert env.table_privs("hanson") == {("otherdb", "t1"): INS}
    assert env.find("hanson") is not None  # the account stays


def test_revoke_all_errors(hanson: Env) -> None:
    env = hanson
    assert raised(lambda: env.mgr.revoke_all(env.easy, [A("hanson"), A("nobody")])) == no_grant(
        "nobody"
    )
    assert env.table_privs("hanson") == {("easydb", "emp"): SEL | INS}
    assert raised(lambda: env.mgr.revoke_all(env.easy, [A("easydb_RO")])) == change_system(
        "easydb_RO"
    )
    # An account holding nothing there: succeeds, changes nothing.
    assert env.mgr.revoke_all(env.other, [A("hanson")]) == Outcome()


def test_operator_revoke_all(hanson: Env) -> None:
    env = hanson
    env.grant(env.other, "SELECT", "otherdb.*", A("hanson"))
    env.mgr.revoke_all(Actor.operator(current_db="otherdb"), [A("hanson")])
    assert env.db_privs("hanson") == {} and env.table_privs("hanson") != {}
    env.grant(env.other, "SELECT", "otherdb.*", A("hanson"))
    env.mgr.revoke_all(env.op, [A("hanson")])
    assert env.db_privs("hanson") == {} and env.table_privs("hanson") == {}


# --- SHOW GRANTS ---


def test_show_grants_format(hanson: Env) -> None:
    env = hanson
    env.grant(env.easy, "ALTER, SELECT, DELETE, INDEX", "easydb.*", A("hanson"))
    env.grant(env.easy, "UPDATE, CREATE", "easydb.emp", A("hanson"))
    env.grant(env.easy, "SELECT", "easydb.aaa", A("hanson"))  # held on the database: no row
    env.grant(env.easy, "DROP", "easydb.aaa", A("hanson"))
    env.grant(env.other, "ALL", "otherdb.*", A("hanson"))
    env.grant(env.other, "INSERT", "otherdb.b", A("hanson"))
    expected = [
        "GRANT USAGE ON *.* TO 'hanson'@'%'",
        "GRANT SELECT, DELETE, INDEX, ALTER ON `easydb`.* TO 'hanson'@'%'",
        "GRANT ALL PRIVILEGES ON `otherdb`.* TO 'hanson'@'%'",
        "GRANT DROP ON `easydb`.`aaa` TO 'hanson'@'%'",
        "GRANT INSERT, UPDATE, CREATE ON `easydb`.`emp` TO 'hanson'@'%'",
    ]
    me = env.actor("hanson")
    assert env.mgr.show_grants(me, None) == ("Grants for hanson@%", expected)
    assert env.mgr.show_grants(me, A("hanson")) == ("Grants for hanson@%", expected)
    assert env.mgr.show_grants(env.op, A("hanson")) == ("Grants for hanson@%", expected)
    # An administrator sees the grants on its own database only.
    assert env.mgr.show_grants(env.easy, A("hanson")) == (
        "Grants for hanson@%",
        [expected[0], expected[1], expected[3], expected[4]],
    )
    assert env.mgr.show_grants(env.other, A("hanson")) == (
        "Grants for hanson@%",
        [expected[0], expected[2]],
    )


def test_show_grants_seed_example(env: Env) -> None:
    env.grant(env.easy, "INSERT, SELECT", "easydb.emp", (A("hanson", "192.168.3.10"), PW))
    assert env.mgr.show_grants(env.easy, A("hanson", "192.168.3.10")) == (
        "Grants for hanson@192.168.3.10",
        [
            "GRANT USAGE ON *.* TO 'hanson'@'192.168.3.10'",
            "GRANT SELECT, INSERT ON `easydb`.`emp` TO 'hanson'@'192.168.3.10'",
        ],
    )


def test_show_grants_of_builtins(env: Env) -> None:
    assert env.mgr.show_grants(env.easy, None) == (
        "Grants for easydb@%",
        [
            "GRANT USAGE ON *.* TO 'easydb'@'%'",
            "GRANT ALL PRIVILEGES ON `easydb`.* TO 'easydb'@'%'",
        ],
    )
    assert env.mgr.show_grants(env.ro, None) == (
        "Grants for easydb_RO@%",
        ["GRANT USAGE ON *.* TO 'easydb_RO'@'%'", "GRANT SELECT ON `easydb`.* TO 'easydb_RO'@'%'"],
    )
    assert env.mgr.show_grants(env.easy, A("easydb_RO"))[1][1] == (
        "GRANT SELECT ON `easydb`.* TO 'easydb_RO'@'%'"
    )
    # Another database's administrator, seen from easydb: nothing on easydb.
    assert env.mgr.show_grants(env.easy, A("otherdb"))[1] == ["GRANT USAGE ON *.* TO 'otherdb'@'%'"]


def test_show_grants_of_account_without_grants(env: Env) -> None:
    env.create(env.easy, "david")
    rows = ["GRANT USAGE ON *.* TO 'david'@'%'"]
    assert env.mgr.show_grants(env.actor("david"), None) == ("Grants for david@%", rows)
    assert env.mgr.show_grants(env.easy, A("david")) == ("Grants for david@%", rows)


def test_show_grants_keeps_the_database_spelling(env: Env) -> None:
    env.catalog.create_database("MixedDb", "s0", "mixeddb", "sg_mixeddb", "Admin#pw3", "Ro#pw56")
    env.create(env.easy, "david")
    env.grant(env.op, "SELECT", "mixeddb.*", A("david"))
    env.grant(env.op, "INSERT", "MIXEDDB.Tbl", A("david"))
    assert env.mgr.show_grants(env.actor("david"), None)[1][1:] == [
        "GRANT SELECT ON `MixedDb`.* TO 'david'@'%'",
        "GRANT INSERT ON `MixedDb`.`tbl` TO 'david'@'%'",
    ]


def test_show_grants_errors(hanson: Env) -> None:
    env = hanson
    assert raised(lambda: env.mgr.show_grants(env.easy, A("nobody"))) == no_grant("nobody")
    assert raised(lambda: env.mgr.show_grants(env.easy, A("nobody", "10.%"))) == (
        no_grant("nobody", "10.%")
    )
    assert raised(lambda: env.mgr.show_grants(env.easy, A("hanson", "localhost"))) == (INVALID_HOST)
    assert raised(lambda: env.mgr.show_grants(env.actor("hanson"), A("easydb"))) == RESTRICTED
    assert raised(lambda: env.mgr.show_grants(env.ro, A("hanson"))) == RESTRICTED
    assert raised(lambda: env.mgr.show_grants(env.ro, A("nobody"))) == RESTRICTED


# --- CLI ---


def test_list_users(hanson: Env) -> None:
    env = hanson
    env.create(env.easy, "david")  # owned, no privileges
    env.grant(env.other, "SELECT", "otherdb.*", (A("reader"), PW))
    env.grant(env.easy, "SELECT", "easydb.t1", A("reader"))  # owned by otherdb, reads easydb
    env.grant(env.other, "ALL", "otherdb.*", (A("writer"), PW))  # nothing on easydb
    expected = [
        UserInfo("easydb", "%", False, True, "easydb"),
        UserInfo("easydb_RO", "%", True, True, "easydb"),
        UserInfo("hanson", "%", False, False, "easydb"),
        UserInfo("david", "%", False, False, "easydb"),
        UserInfo("reader", "%", True, False, "otherdb"),
    ]
    assert env.mgr.list_users(env.op, "easydb") == expected
    assert env.mgr.list_users(env.easy, "EASYDB") == expected
    assert [u.user for u in env.mgr.list_users(env.op, "otherdb")] == [
        "otherdb",
        "otherdb_RO",
        "reader",
        "writer",
    ]
    assert raised(lambda: env.mgr.list_users(env.easy, "otherdb")) == other_db(
        "otherdb", "easydb", "easydb"
    )
    assert raised(lambda: env.mgr.list_users(env.op, "nodb")) == (
        1049,
        "42000",
        "Unknown database 'nodb'",
    )


@pytest.mark.parametrize(("policy", "length"), [(POLARDBX, 20), (MANAGED, 64)])
def test_create_user_for_database_generates_a_password(
    env: Env, policy: PolicyProfile, length: int
) -> None:
    mgr = AccountManager(env.catalog, policy)
    account, password = mgr.create_user_for_database(env.op, "easydb", "myuserrw")
    assert password is not None and len(password) == length
    policy.validate_password(password)
    assert verify_password(account.password_hash, password)
    assert account.owner_db == "easydb" and env.db_privs("myuserrw") == {"easydb": ALL_PRIVILEGES}


def test_create_user_for_database(env: Env) -> None:
    account, password = env.mgr.create_user_for_database(
        env.easy, "easydb", "reader", "10.%", PW, read_only=True
    )
    assert password is None and verify_password(account.password_hash, PW)
    assert (account.user, account.host, account.owner_db) == ("reader", "10.%", "easydb")
    assert env.db_privs("reader", "10.%") == {"easydb": SEL}
    assert env.mgr.list_users(env.op, "easydb")[-1] == UserInfo(
        "reader", "10.%", True, False, "easydb"
    )


@pytest.mark.parametrize(
    ("actor", "database", "user", "host", "password", "expected"),
    [
        ("easy", "easydb", "hanson", "%", None, cannot("CREATE USER", "'hanson'@'%'")),
        ("easy", "easydb", "easydb_RO", "%", None, create_drop_system("easydb_RO")),
        ("op", "easydb", "otherdb", "%", None, create_drop_system("otherdb")),
        ("easy", "easydb", "abc", "%", None, INVALID_USERNAME),
        ("easy", "easydb", "david", "localhost", None, INVALID_HOST),
        ("easy", "easydb", "david", "%", "bad", INVALID_PASSWORD),
        ("easy", "otherdb", "david", "%", None, other_db("otherdb", "easydb", "easydb")),
        ("easy", "nodb", "david", "%", None, other_db("nodb", "easydb", "easydb")),
        ("op", "nodb", "david", "%", None, (1049, "42000", "Unknown database 'nodb'")),
        ("ro", "easydb", "david", "%", None, RESTRICTED),
    ],
)
def test_create_user_for_database_errors(
    hanson: Env,
    actor: str,
    database: str,
    user: str,
    host: str,
    password: str | None,
    expected: tuple[int, str, str],
) -> None:
    env = hanson
    version = env.version
    assert (
        raised(
            lambda: env.mgr.create_user_for_database(
                getattr(env, actor), database, user, host, password
            )
        )
        == expected
    )
    assert env.version == version


def test_update_password(hanson: Env) -> None:
    env = hanson
    assert env.mgr.update_password(env.op, "easydb", "hanson", "%", PW2) is None
    assert verify_password(env.account("hanson").password_hash, PW2)
    generated = env.mgr.update_password(env.easy, "easydb", "hanson")
    assert generated is not None and len(generated) == 20
    assert verify_password(env.account("hanson").password_hash, generated)


@pytest.mark.parametrize(
    ("actor", "database", "user", "password", "expected"),
    [
        ("easy", "easydb", "nobody", PW, PASSWORD_NO_MATCH),
        ("op", "otherdb", "hanson", PW, PASSWORD_NO_MATCH),  # owned by easydb
        ("op", "easydb", "easydb", PW, change_system("easydb")),
        ("op", "easydb", "easydb_RO", None, change_system("easydb_RO")),
        ("easy", "easydb", "hanson", "bad", INVALID_PASSWORD),
        ("other", "easydb", "hanson", PW, other_db("easydb", "otherdb", "otherdb")),
        ("ro", "easydb", "hanson", PW, RESTRICTED),
    ],
)
def test_update_password_errors(
    hanson: Env,
    actor: str,
    database: str,
    user: str,
    password: str | None,
    expected: tuple[int, str, str],
) -> None:
    env = hanson
    call = env.mgr.update_password
    assert raised(lambda: call(getattr(env, actor), database, user, "%", password)) == expected
    assert verify_password(env.account("hanson").password_hash, PW)


def test_delete_user(hanson: Env) -> None:
    env = hanson
    env.mgr.delete_user(env.easy, "easydb", "hanson")
    assert env.find("hanson") is None


@pytest.mark.parametrize(
    ("actor", "database", "user", "expected"),
    [
        ("easy", "easydb", "nobody", cannot("DROP USER", "'nobody'@'%'")),
        ("op", "otherdb", "hanson", cannot("DROP USER", "'hanson'@'%'")),
        ("op", "easydb", "easydb_RO", create_drop_system("easydb_RO")),
        ("other", "easydb", "hanson", other_db("easydb", "otherdb", "otherdb")),
        ("ro", "easydb", "hanson", RESTRICTED),
    ],
)
def test_delete_user_errors(
    hanson: Env, actor: str, database: str, user: str, expected: tuple[int, str, str]
) -> None:
    env = hanson
    assert raised(lambda: env.mgr.delete_user(getattr(env, actor), database, user)) == expected
    assert env.find("hanson") is not None


# --- audit ---


def test_audit_records_actor_client_and_no_password(env: Env) -> None:
    secrets = ["Secret#123", "Pw#98765", "Other#4567", "Gr#anted99"]
    env.create(env.easy, ("lily", secrets[0]))
    env.mgr.set_password(env.easy, A("lily"), secrets[1])
    env.mgr.set_password(env.actor("lily"), None, secrets[2])
    env.grant(env.easy, "SELECT", "easydb.*", (A("david"), secrets[3]), (A("lily"), secrets[0]))
    _, generated = env.mgr.create_user_for_database(env.op, "easydb", "carol1")
    assert generated is not None
    secrets.append(generated)
    regenerated = env.mgr.update_password(env.op, "easydb", "carol1", "%", None)
    assert regenerated is not None
    secrets.append(regenerated)
    records = env.catalog.audit()[-6:]
    for record in records:
        for secret in secrets:
            assert secret not in record.action and secret not in record.details
    assert [(r.actor, r.client, r.action) for r in records] == [
        ("'easydb'@'%'", "10.0.0.9", "CREATE USER 'lily'@'%'"),
        ("'easydb'@'%'", "10.0.0.9", "SET PASSWORD FOR 'lily'@'%'"),
        ("'lily'@'%'", "10.1.2.3", "SET PASSWORD"),
        ("'easydb'@'%'", "10.0.0.9", "GRANT SELECT ON `easydb`.* TO 'david'@'%', 'lily'@'%'"),
        ("operator", "", "CREATE USER 'carol1'@'%' ON `easydb`"),
        ("operator", "", "SET PASSWORD FOR 'carol1'@'%'"),
    ]


def test_audit_of_revoke_and_drop(hanson: Env) -> None:
    env = hanson
    env.revoke(env.easy, "INSERT", "easydb.emp", A("hanson"))
    env.mgr.revoke_all(env.easy, [A("hanson")])
    env.mgr.drop_users(env.easy, [A("hanson")], True)
    assert [r.action for r in env.catalog.audit()[-3:]] == [
        "REVOKE INSERT ON `easydb`.`emp` FROM 'hanson'@'%'",
        "REVOKE ALL PRIVILEGES, GRANT OPTION ON `easydb`.* FROM 'hanson'@'%'",
        "DROP USER IF EXISTS 'hanson'@'%'",
    ]


# --- concurrency ---


def test_conflict_is_retried_against_the_new_catalog(
    env: Env, tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process changes the catalog between validation and apply: the operation is
    validated again against the new state."""
    other = Catalog.open(catalog_url, tmp_path)
    real_apply = env.catalog.apply
    calls = 0

    def racing_apply(*args: Any, **kwargs: Any) -> tuple[int, ...]:
        nonlocal calls
        calls += 1
        if calls == 1:
            other.create_account("lily", "%", "", "easydb", "operator", "")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(env.catalog, "apply", racing_apply)
    # First attempt conflicts; the retry sees 'lily' and fails validation as a whole.
    assert raised(lambda: env.create(env.easy, "david", "lily")) == cannot(
        "CREATE USER", "'lily'@'%'"
    )
    assert calls == 1 and env.find("david") is None
    calls = 1  # no more racing
    env.create(env.easy, "david")
    assert calls == 2 and env.find("david") is not None
    other.close()


def test_persistent_conflict_is_1213(
    env: Env, tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Catalog.open(catalog_url, tmp_path)
    real_apply = env.catalog.apply
    calls = 0

    def racing_apply(*args: Any, **kwargs: Any) -> tuple[int, ...]:
        nonlocal calls
        calls += 1
        other.create_account(f"user{calls}", "%", "", "easydb", "operator", "")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(env.catalog, "apply", racing_apply)
    assert raised(lambda: env.create(env.easy, "david")) == (
        1213,
        "40001",
        "Deadlock found when trying to get lock; try restarting transaction",
    )
    assert calls == MAX_ATTEMPTS and env.find("david") is None
    other.close()


def test_stale_actor_account_is_reread(hanson: Env) -> None:
    env = hanson
    me = env.actor("hanson")
    env.mgr.drop_users(env.easy, [A("hanson")], False)
    assert raised(lambda: env.mgr.set_password(me, None, PW2)) == PASSWORD_NO_MATCH
    assert raised(lambda: env.mgr.show_grants(me, None)) == no_grant("hanson")


# --- issue #7: ALTER USER ... WITH MAX_USER_CONNECTIONS / ACCOUNT UNLOCK ---


def test_alter_user_limits_and_unlocks_only_owned_accounts(env: Env) -> None:
    env.create(env.easy, ("lily", "Lily#pw1"))
    env.create(env.other, ("otto", "Otto#pw1"))
    lily = env.account("lily")
    assert env.catalog.record_login_failure(lily.id, 1, 600.0, "10.0.0.1") is not None
    version = env.version
    outcome = env.mgr.alter_users(env.easy, [A("lily")], 5, unlock=True)
    assert outcome.catalog_version == version + 1
    lily = env.account("lily")
    assert (lily.max_user_connections, lily.locked_until, lily.failed_logins) == (5, None, 0)
    # Someone else's account, or a missing one: 1396, all named, nothing changed.
    assert raised(lambda: env.mgr.alter_users(env.easy, [A("otto"), A("nobody1")], 3)) == cannot(
        "ALTER USER", "'otto'@'%'", "'nobody1'@'%'"
    )
    assert raised(lambda: env.mgr.alter_users(env.easy, [A("lily"), A("otto")], 3)) == cannot(
        "ALTER USER", "'otto'@'%'"
    )
    assert env.account("lily").max_user_connections == 5
    # Built-ins: TDDL-5107; non-administrators: restricted.
    assert raised(lambda: env.mgr.alter_users(env.easy, [A("easydb_RO")], None, True)) == (
        change_system("easydb_RO")
    )
    assert raised(lambda: env.mgr.alter_users(env.ro, [A("lily")], None, True)) == RESTRICTED
    audit = env.catalog.audit(limit=1)[0]
    assert audit.action == "ALTER USER 'lily'@'%' WITH MAX_USER_CONNECTIONS 5 ACCOUNT UNLOCK"


def test_create_and_grant_with_max_user_connections(env: Env) -> None:
    env.mgr.create_users(env.easy, [(A("lily"), "Lily#pw1")], max_user_connections=3)
    assert env.account("lily").max_user_connections == 3
    env.mgr.grant(
        env.easy,
        parse_privs("SELECT"),
        "easydb",
        None,
        False,
        False,
        [(A("lily"), None)],
        max_user_connections=8,
    )
    assert env.account("lily").max_user_connections == 8
    _header, rows = env.mgr.show_grants(env.easy, A("lily"))
    assert rows[0] == "GRANT USAGE ON *.* TO 'lily'@'%' WITH MAX_USER_CONNECTIONS 8"
    # otherdb's administrator may grant on otherdb to lily, but not change her limit.
    assert (
        raised(
            lambda: env.mgr.grant(
                env.other,
                parse_privs("SELECT"),
                "otherdb",
                None,
                False,
                False,
                [(A("lily"), None)],
                max_user_connections=1,
            )
        )
        == PASSWORD_NO_MATCH
    )
    assert env.account("lily").max_user_connections == 8

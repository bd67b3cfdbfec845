"""The pure parts of mirrored backend accounts (proxy/backend/mirror.py): names, passwords,
the desired grants of a mirror, the shard's grant tables read as values, and the statements
that turn one into the other."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from auth.catalog import Catalog
from auth.model import (
    AccountGrants,
    Database,
    KeyType,
    LogicalTable,
    ShardKey,
    TableRule,
    partition_layout,
)
from auth.privileges import ALL_PRIVILEGES, Priv
from proxy.backend.connection import QueryResult
from proxy.backend.grants import MirrorGrants
from proxy.backend.mirror import (
    CreateUser,
    DropUser,
    Grant,
    Revoke,
    SetPassword,
    ShardAccount,
    desired_on_shard,
    mirror_account_id,
    mirror_grants,
    mirror_password,
    mirror_suffix,
    mirror_user,
    native_password_hash,
    physical_table_privileges,
    plan,
    shard_accounts,
)

SECRET = b"unit-test-secret"
EASYDB = Database("easydb", "s0", "easydb", "sg_easydb")
S, INS, U, D = Priv.SELECT, Priv.INSERT, Priv.UPDATE, Priv.DELETE
C, DR, IX, AL = Priv.CREATE, Priv.DROP, Priv.INDEX, Priv.ALTER
SELECTING = {"SELECT", "SHOW VIEW", "REFERENCES"}


# --- names and passwords ---------------------------------------------------------------------


def test_mirror_names_are_short_deterministic_and_per_cluster() -> None:
    name = mirror_user(SECRET, 42, "easydb")
    assert name == mirror_user(SECRET, 42, "easydb") == mirror_user(SECRET, 42, "EasyDB")
    assert name.startswith("sgm_42_") and len(name) == len("sgm_42_") + 8
    assert name != mirror_user(SECRET, 43, "easydb")
    assert name != mirror_user(SECRET, 42, "otherdb")
    assert name != mirror_user(b"another cluster", 42, "easydb")
    assert len(mirror_user(SECRET, 2**63 - 1, "x" * 48)) <= 32  # MySQL 8's limit
    assert name.endswith(mirror_suffix(SECRET, "easydb"))


def test_mirror_account_id() -> None:
    assert mirror_account_id(mirror_user(SECRET, 42, "easydb")) == 42
    for other in ("sg_easydb", "sg_usage", "sgm_x_12345678", "sgm_4_123", "sgm_12345678", "root"):
        assert mirror_account_id(other) is None, other


def test_mirror_passwords_are_derived_and_distinct() -> None:
    password = mirror_password(SECRET, "s0", "sgm_1_abcdef12")
    assert password == mirror_password(SECRET, "s0", "sgm_1_abcdef12")
    assert len(password) == 32 and all(c in "0123456789abcdef" for c in password)
    assert password != mirror_password(SECRET, "s1", "sgm_1_abcdef12")
    assert password != mirror_password(SECRET, "s0", "sgm_2_abcdef12")
    assert password != mirror_password(b"other", "s0", "sgm_1_abcdef12")


def test_native_password_hash_is_mariadbs_password_function() -> None:
    # SELECT PASSWORD('abc123') on MariaDB 10.11
    assert native_password_hash("abc123") == "*6691484EA6B50DDDE1926A220DA01FA9E575C18A"


# --- desired grants --------------------------------------------------------------------------


def _grants(
    db: dict[str, Priv] | None = None, tables: dict[tuple[str, str], Priv] | None = None
) -> AccountGrants:
    return AccountGrants.of(7, dict(db or {}), dict(tables or {}))


CASES: list[tuple[str, AccountGrants, set[str] | None, dict[str, set[str]]]] = [
    # id, grants, db-level privileges (None: no mirror), table-level privileges
    (
        "administrator",
        _grants({"easydb": ALL_PRIVILEGES}),
        {
            *("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER"),
            *("SHOW VIEW", "REFERENCES", "LOCK TABLES", "CREATE TEMPORARY TABLES"),
            "CREATE VIEW",
        },
        {},
    ),
    ("read_only", _grants({"easydb": S}), {*SELECTING, "LOCK TABLES"}, {}),
    ("db_writes_only", _grants({"easydb": INS | U | D}), {"INSERT", "UPDATE", "DELETE"}, {}),
    ("db_ddl", _grants({"easydb": DR | IX | AL}), {"DROP", "INDEX", "ALTER"}, {}),
    (
        "db_create",
        _grants({"easydb": C}),
        {"CREATE", "CREATE VIEW", "CREATE TEMPORARY TABLES"},
        {},
    ),
    (
        "table_select",
        _grants(tables={("easydb", "t"): S}),
        {"LOCK TABLES"},
        {"t": SELECTING},
    ),
    ("table_insert_only", _grants(tables={("easydb", "t"): INS}), set(), {"t": {"INSERT"}}),
    (
        "table_create",
        _grants(tables={("easydb", "n"): C | INS}),
        {"CREATE TEMPORARY TABLES"},
        {"n": {"CREATE", "CREATE VIEW", "INSERT"}},
    ),
    (
        "both_levels",
        _grants({"easydb": INS}, {("easydb", "a"): S | U, ("easydb", "b"): D}),
        {"INSERT", "LOCK TABLES"},
        {"a": {*SELECTING, "UPDATE"}, "b": {"DELETE"}},
    ),
    (
        "other_database_only",
        _grants({"otherdb": ALL_PRIVILEGES}, {("otherdb", "t"): S}),
        None,
        {},
    ),
    (
        "this_and_other_database",
        _grants({"otherdb": ALL_PRIVILEGES}, {("easydb", "t"): U, ("otherdb", "t"): S}),
        set(),
        {"t": {"UPDATE"}},
    ),
    ("nothing", _grants(), None, {}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_mirror_grants(
    case: tuple[str, AccountGrants, set[str] | None, dict[str, set[str]]],
) -> None:
    _, grants, db_level, tables = case
    found = mirror_grants(7, "sgm_7_x", EASYDB, grants)
    if db_level is None:
        assert found is None
        return
    assert found == MirrorGrants(
        7,
        "sgm_7_x",
        "easydb",
        frozenset(db_level),
        tuple((t, frozenset(p)) for t, p in sorted(tables.items())),
    )


def test_mirror_grants_never_hold_what_no_session_needs() -> None:
    found = mirror_grants(7, "u", EASYDB, _grants({"easydb": ALL_PRIVILEGES}))
    assert found is not None
    # CREATE VIEW it holds (with CREATE): the proxy makes the mirror each view's definer.
    forbidden = {
        "GRANT OPTION",
        "CREATE ROUTINE",
        "ALTER ROUTINE",
        "EXECUTE",
        "EVENT",
        "TRIGGER",
        "DELETE HISTORY",
    }
    assert not found.db_privs & forbidden


def test_physical_name_on_the_shard() -> None:
    database = Database("MixedDb", "s0", "MixedDb_0001", "sg_mixeddb")
    found = mirror_grants(7, "u", database, AccountGrants.of(7, {"mixeddb": S}, {}))
    assert found is not None and found.database == "mixeddb_0001"


def test_desired_on_shard_from_a_catalog(tmp_path: Path) -> None:
    catalog = Catalog.open("sqlite:///c.db", tmp_path)
    try:
        catalog.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "Ro#pw12")
        catalog.create_database("otherdb", "s1", "otherdb", "sg_otherdb", "Admin#pw2", "Ro#pw34")
        snapshot = catalog.snapshot()
        ids = [account.id for account in snapshot.accounts()]
        on_s0 = desired_on_shard(snapshot, SECRET, "s0", ids)
        admin = snapshot.find_account("easydb", "%")
        ro = snapshot.find_account("easydb_RO", "%")
        assert admin is not None and ro is not None
        assert set(on_s0) == {
            mirror_user(SECRET, admin.id, "easydb"),
            mirror_user(SECRET, ro.id, "easydb"),
        }
        assert on_s0[mirror_user(SECRET, ro.id, "easydb")].db_privs == {*SELECTING, "LOCK TABLES"}
        assert len(desired_on_shard(snapshot, SECRET, "s1", ids)) == 2
        assert desired_on_shard(snapshot, SECRET, "s2", ids) == {}
    finally:
        catalog.close()


# --- the shard's grant tables ----------------------------------------------------------------


def _result(columns: list[str], rows: list[list[str]]) -> QueryResult:
    return QueryResult(columns, [[v.encode() for v in row] for row in rows])


USER_COLUMNS = ["Host", "User", "Select_priv", "Process_priv", "plugin", "authentication_string"]
DB_COLUMNS = [
    "Host",
    "Db",
    "User",
    "Select_priv",
    "Grant_priv",
    "Lock_tables_priv",
    "Show_view_priv",
]
TABLE_COLUMNS = ["Db", "User", "Host", "Table_name", "Table_priv", "Column_priv"]


def test_shard_accounts() -> None:
    users = _result(
        USER_COLUMNS,
        [
            ["%", "sgm_1_aaaaaaaa", "N", "N", "mysql_native_password", "*AB"],
            ["%", "sgm_2_aaaaaaaa", "N", "Y", "mysql_native_password", "*CD"],
            ["10.%", "sgm_3_aaaaaaaa", "N", "N", "ed25519", "xyz"],
        ],
    )
    dbs = _result(
        DB_COLUMNS,
        [
            ["%", "EasyDB", "sgm_1_aaaaaaaa", "Y", "N", "Y", "N"],
            ["%", "easydb", "sgm_2_aaaaaaaa", "N", "Y", "N", "N"],
            ["%", "nothing", "sgm_1_aaaaaaaa", "N", "N", "N", "N"],
        ],
    )
    tables = _result(
        TABLE_COLUMNS,
        [
            ["easydb", "sgm_1_aaaaaaaa", "%", "T1", "Select,Insert,Show view", ""],
            ["easydb", "sgm_1_aaaaaaaa", "%", "t2", "Grant,Delete versioning rows", ""],
            ["easydb", "sgm_3_aaaaaaaa", "10.%", "t1", "Select", "Select"],
        ],
    )
    others = QueryResult(["User", "Host", "what"], [[b"sgm_1_aaaaaaaa", b"%", b"roles"]])
    found = shard_accounts(users, dbs, tables, others)
    assert found == {
        ("sgm_1_aaaaaaaa", "%"): ShardAccount(
            "sgm_1_aaaaaaaa",
            "%",
            "mysql_native_password",
            "*AB",
            {"easydb": frozenset({"SELECT", "LOCK TABLES"})},
            {
                ("easydb", "t1"): frozenset({"SELECT", "INSERT", "SHOW VIEW"}),
                ("easydb", "t2"): frozenset({"GRANT OPTION", "DELETE HISTORY"}),
            },
            frozenset({"roles"}),
        ),
        ("sgm_2_aaaaaaaa", "%"): ShardAccount(
            "sgm_2_aaaaaaaa",
            "%",
            "mysql_native_password",
            "*CD",
            {"easydb": frozenset({"GRANT OPTION"})},
            {},
            frozenset({"global PROCESS"}),
        ),
        ("sgm_3_aaaaaaaa", "10.%"): ShardAccount(
            "sgm_3_aaaaaaaa",
            "10.%",
            "ed25519",
            "xyz",
            {},
            {("easydb", "t1"): frozenset({"SELECT"})},
            frozenset({"column privileges"}),
        ),
    }


def test_a_database_grant_names_its_database_literally() -> None:
    """MariaDB reads ``_`` and ``%`` in a database-level grant's name as wildcards: the mirror
    of ``wc_a1`` held its privileges on another tenant's ``wcxa1`` too."""
    assert (
        Grant("u", "wc_a1", None, frozenset({"SELECT"})).sql
        == "GRANT SELECT ON `wc\\_a1`.* TO 'u'@'%'"
    )
    assert (
        Revoke("u", "wc_a1", None, frozenset({"SELECT"})).sql
        == "REVOKE SELECT ON `wc\\_a1`.* FROM 'u'@'%'"
    )
    # (a table-level grant's database is literal: MariaDB matches it exactly)
    assert (
        Grant("u", "wc_a1", "t", frozenset({"SELECT"})).sql
        == "GRANT SELECT ON `wc_a1`.`t` TO 'u'@'%'"
    )
    users = _result(USER_COLUMNS, [["%", "u", "N", "N", "mysql_native_password", "*AB"]])
    escaped = _result(DB_COLUMNS, [["%", "wc\\_a1", "u", "Y", "N", "N", "N"]])
    found = shard_accounts(users, escaped, _result(TABLE_COLUMNS, []), QueryResult([], []))
    assert found[("u", "%")].db_privs == {"wc_a1": frozenset({"SELECT"})}
    assert not found[("u", "%")].anomalies
    # An older version's grant, a pattern: the mirror is made again (its grants escaped).
    pattern = _result(DB_COLUMNS, [["%", "wc_a1", "u", "Y", "N", "N", "N"]])
    found = shard_accounts(users, pattern, _result(TABLE_COLUMNS, []), QueryResult([], []))
    assert found[("u", "%")].anomalies == {"database pattern wc_a1"}


def test_unknown_database_privilege_is_an_anomaly() -> None:
    users = _result(USER_COLUMNS, [["%", "u", "N", "N", "mysql_native_password", "*AB"]])
    dbs = _result(["Host", "Db", "User", "Teleport_priv"], [["%", "easydb", "u", "Y"]])
    found = shard_accounts(users, dbs, _result(TABLE_COLUMNS, []), QueryResult([], []))
    assert found[("u", "%")].anomalies == {"database TELEPORT"}


# --- the plan --------------------------------------------------------------------------------

HASH = "*HASH"
WANT = MirrorGrants(
    7,
    "sgm_7_x",
    "easydb",
    frozenset({"INSERT", "LOCK TABLES"}),
    (("a", frozenset({"SELECT", "SHOW VIEW", "REFERENCES"})), ("b", frozenset({"DELETE"}))),
)


def _have(**changes: Any) -> ShardAccount:
    base = ShardAccount(
        "sgm_7_x",
        "%",
        "mysql_native_password",
        HASH,
        {"easydb": WANT.db_privs},
        {("easydb", t): p for t, p in WANT.table_privs},
    )
    return replace(base, **changes)


def _plan(actual: dict[tuple[str, str], ShardAccount], desired: list[MirrorGrants]) -> list[object]:
    return list(plan({w.user: w for w in desired}, actual, lambda user: HASH))


def test_plan_creates_a_missing_mirror() -> None:
    assert _plan({}, [WANT]) == [
        CreateUser("sgm_7_x", HASH),
        Grant("sgm_7_x", "easydb", None, WANT.db_privs),
        Grant("sgm_7_x", "easydb", "a", WANT.table_privs[0][1]),
        Grant("sgm_7_x", "easydb", "b", frozenset({"DELETE"})),
    ]


def test_plan_leaves_a_matching_mirror_alone() -> None:
    assert _plan({("sgm_7_x", "%"): _have()}, [WANT]) == []


def test_plan_revokes_extras_before_granting_what_is_missing() -> None:
    have = _have(
        db_privs={
            "easydb": frozenset({"SELECT", "LOCK TABLES", "GRANT OPTION"}),
            "mysql": frozenset({"SELECT"}),
        },
        table_privs={
            ("easydb", "a"): frozenset({"SELECT"}),
            ("easydb", "b"): frozenset({"DELETE", "DROP"}),
            ("easydb", "c"): frozenset({"UPDATE"}),
        },
    )
    assert _plan({("sgm_7_x", "%"): have}, [WANT]) == [
        Revoke("sgm_7_x", "easydb", None, frozenset({"SELECT", "GRANT OPTION"})),
        Revoke("sgm_7_x", "mysql", None, frozenset({"SELECT"})),
        Revoke("sgm_7_x", "easydb", "b", frozenset({"DROP"})),
        Revoke("sgm_7_x", "easydb", "c", frozenset({"UPDATE"})),
        Grant("sgm_7_x", "easydb", None, frozenset({"INSERT"})),
        Grant("sgm_7_x", "easydb", "a", frozenset({"SHOW VIEW", "REFERENCES"})),
    ]


def test_plan_makes_an_anomalous_mirror_again() -> None:
    have = _have(anomalies=frozenset({"global PROCESS"}))
    steps = _plan({("sgm_7_x", "%"): have}, [WANT])
    assert steps[:2] == [DropUser("sgm_7_x"), CreateUser("sgm_7_x", HASH)]
    assert len(steps) == 5


def test_plan_resets_a_wrong_password() -> None:
    for have in (_have(authentication="*OTHER"), _have(plugin="ed25519")):
        assert _plan({("sgm_7_x", "%"): have}, [WANT]) == [SetPassword("sgm_7_x", HASH)]


def test_plan_drops_what_nothing_desires() -> None:
    actual = {
        ("sgm_7_x", "%"): _have(),
        ("sgm_7_x", "127.0.0.1"): _have(host="127.0.0.1"),
        ("sgm_8_x", "%"): _have(user="sgm_8_x"),
    }
    assert _plan(actual, [WANT]) == [DropUser("sgm_7_x", "127.0.0.1"), DropUser("sgm_8_x")]


def test_statements() -> None:
    assert (
        Grant("sgm_7_x", "easydb", None, frozenset({"LOCK TABLES", "INSERT", "SELECT"})).sql
        == "GRANT SELECT, INSERT, LOCK TABLES ON `easydb`.* TO 'sgm_7_x'@'%'"
    )
    assert (
        Revoke("sgm_7_x", "easydb", "we`ird", frozenset({"GRANT OPTION", "DELETE"})).sql
        == "REVOKE DELETE, GRANT OPTION ON `easydb`.`we``ird` FROM 'sgm_7_x'@'%'"
    )
    assert (
        CreateUser("sgm_7_x", HASH).sql
        == "CREATE USER 'sgm_7_x'@'%' IDENTIFIED WITH mysql_native_password AS '*HASH'"
    )
    assert DropUser("sgm_7_x", "10.%").sql == "DROP USER IF EXISTS 'sgm_7_x'@'10.%'"
    assert HASH not in repr(CreateUser("sgm_7_x", HASH))


# --- sharded databases: every physical database is the database ------------------------------

SDB = Database("sdb", "s0", "sdb_0000", "sg_sdb", partition_layout("sdb", ["s0", "s1"], 4))
_KEY = ShardKey("HASH", "id", KeyType("int"))
SDB_TABLES = {
    "split": LogicalTable("split", TableRule("sharded", _KEY, _KEY, 2), ""),
    "spread": LogicalTable("spread", TableRule("sharded", _KEY), ""),
    "copies": LogicalTable("copies", TableRule("broadcast"), ""),
    "one": LogicalTable("one", TableRule("single"), ""),
}


def _on(index: int, grants: AccountGrants) -> MirrorGrants | None:
    physical = SDB.physical_databases[index]
    return mirror_grants(7, f"u{index}", SDB, grants, physical, SDB_TABLES)


def test_a_database_grant_holds_on_every_physical_database() -> None:
    grants = _grants({"sdb": S | INS})
    for index in range(4):
        found = _on(index, grants)
        assert found is not None and found.database == f"sdb_000{index}"
        assert found.db_privs == {*SELECTING, "INSERT", "LOCK TABLES"}
        assert found.table_privs == ()


def test_a_table_grant_holds_on_the_tables_physical_tables() -> None:
    grants = _grants(
        tables={
            ("sdb", name): privs
            for name, privs in (
                ("split", S),
                ("spread", INS),
                ("copies", U),
                ("one", D),
                ("later", C),  # not created yet: where a single table would be
                ("split_05", DR),  # a physical table's name: never granted as such
            )
        }
    )
    held = {i: _on(i, grants) for i in range(4)}
    tables = {
        i: {name: set(privs) for name, privs in found.table_privs} if found else None
        for i, found in held.items()
    }
    assert tables[0] == {
        "split_00": SELECTING,
        "split_01": SELECTING,
        "spread": {"INSERT"},
        "copies": {"UPDATE"},
        "one": {"DELETE"},
        "later": {"CREATE", "CREATE VIEW"},  # CREATE carries CREATE VIEW (views)
    }
    assert tables[2] == {
        "split_04": SELECTING,
        "split_05": SELECTING,
        "spread": {"INSERT"},
        "copies": {"UPDATE"},
    }
    found = held[2]
    assert found is not None and found.db_privs == {"LOCK TABLES"}
    assert held[0] is not None and held[0].db_privs == {"LOCK TABLES", "CREATE TEMPORARY TABLES"}
    # Where the account holds nothing, it has no mirror.
    assert _on(3, _grants(tables={("sdb", "one"): S})) is None


def test_physical_table_privileges_of_an_unsharded_database_are_its_grants() -> None:
    privileges = physical_table_privileges(EASYDB, EASYDB.physical_databases[0], {}, [("t", S)])
    assert privileges == [("t", S)]


def test_desired_on_each_shard_of_a_sharded_database(tmp_path: Path) -> None:
    catalog = Catalog.open("sqlite:///c.db", tmp_path)
    try:
        parts = SDB.physical_databases
        catalog.create_database(
            "sdb", "s0", "sdb_0000", "sg_sdb", "A#pw1", "R#pw1", partitions=parts
        )
        snapshot = catalog.snapshot()
        ro = snapshot.find_account("sdb_RO", "%")
        assert ro is not None
        on_s1 = desired_on_shard(snapshot, SECRET, "s1", [ro.id])
        assert set(on_s1) == {
            mirror_user(SECRET, ro.id, "sdb_0002"),
            mirror_user(SECRET, ro.id, "sdb_0003"),
        }
        assert {m.database for m in on_s1.values()} == {"sdb_0002", "sdb_0003"}
        assert len(desired_on_shard(snapshot, SECRET, "s0", [ro.id])) == 2
    finally:
        catalog.close()

"""The catalog: storage, snapshots, transactions, audit, durability under kill -9, and scale.

Every test taking the ``backend`` fixture (directly, or through ``catalog`` / ``easydb``) runs
twice: on the embedded SQLite store and on a MySQL/MariaDB store (a database of its own on a
throwaway MariaDB server). Tests about SQLite files only (WAL, kill -9, scale) run on SQLite.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pymysql
import pytest

import auth.catalog as catalog_module
from auth import mysql_store
from auth.catalog import (
    NODE_REPORT_FORGET,
    NODE_REPORT_FRESH,
    AccountExistsError,
    Catalog,
    CatalogConflictError,
    CatalogError,
    CatalogSecretError,
    CatalogSnapshot,
    CreateAccount,
    DatabaseExistsError,
    DiscardOldPassword,
    DropAccount,
    ProtectedAccountError,
    SchemaVersionError,
    SequenceExistsError,
    SetMaxUserConnections,
    SetPassword,
    SetPrivileges,
    TableExistsError,
    UnknownAccountError,
    UnknownDatabaseError,
    UnknownSequenceError,
    UnknownTableError,
    UnlockAccount,
    UserHost,
    secret_verifier,
)
from auth.model import (
    SEQUENCE_MAX,
    Account,
    Database,
    GroupSequence,
    KeyType,
    LogicalTable,
    PhysicalDatabase,
    SequenceRange,
    ShardKey,
    TableKind,
    TableRule,
    partition_layout,
)
from auth.mysql_store import MysqlCatalogStore
from auth.passwords import native_hash, verify_password
from auth.privileges import ALL_PRIVILEGES, NO_PRIVILEGES, Priv
from auth.sqlite_store import SCHEMA_VERSION
from auth.store import StoreError
from auth.urls import parse_mysql_url, sqlite_path
from tests.catalog_fill import bulk_insert
from tests.conftest import CATALOG_PASSWORD_ENV, CATALOG_USER

ROOT = Path(__file__).resolve().parents[2]
SEL = Priv.SELECT
INS = Priv.INSERT
URL = "sqlite:///data/catalog.db"


def _path(base: Path) -> Path:
    return base / "data" / "catalog.db"


@dataclass
class Backend:
    """One catalog store under test: how to open it again, and raw access to its tables."""

    kind: str
    url: str
    base: Path

    def open(self) -> Catalog:
        """Another handle on the same catalog, as another process or node would have."""
        return Catalog.open(self.url, self.base)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run raw SQL (``?`` placeholders) on the store, outside the catalog."""
        if self.kind == "sqlite":
            with sqlite3.connect(_path(self.base)) as connection:
                return list(connection.execute(sql, params).fetchall())
        parts = self.url.split("?")[0][len("mysql://") :]
        user_host, database = parts.split("/")
        host, port = user_host.split("@")[1].split(":")
        conn = pymysql.connect(
            host=host,
            port=int(port),
            user=CATALOG_USER,
            password=os.environ[CATALOG_PASSWORD_ENV],
            database=database,
            autocommit=True,
        )
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])


@pytest.fixture(params=["sqlite", "mysql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", URL, tmp_path)
    factory: Callable[..., str] = request.getfixturevalue("mysql_catalog_url")
    return Backend("mysql", factory(), tmp_path)


@pytest.fixture
def catalog(backend: Backend) -> Iterator[Catalog]:
    opened = backend.open()
    yield opened
    opened.close()


@pytest.fixture
def easydb(catalog: Catalog) -> Catalog:
    catalog.create_database("easydb", "shard1", "easydb_0001", "sg_easydb", "Admin#pw1", "Ro#pw12")
    return catalog


def _raw(base: Path) -> sqlite3.Connection:
    return sqlite3.connect(_path(base))


def _user(catalog: Catalog, user: str, host: str = "%") -> Account:
    account = catalog.snapshot().find_account(user, host)
    assert account is not None
    return account


# --- opening ---


def test_open_creates_directories_schema_and_wal(tmp_path: Path) -> None:
    with Catalog.open(URL, tmp_path) as catalog:
        assert catalog.snapshot().version == 0
        assert catalog.snapshot().databases() == []
    assert _path(tmp_path).exists()
    with _raw(tmp_path) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Opening again keeps everything and does not migrate twice.
    with Catalog.open(f"sqlite:///{_path(tmp_path)}", Path("/nowhere")) as again:
        assert again.snapshot().version == 0


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_catalog_and_its_side_files_are_private(tmp_path: Path) -> None:
    # Under the usual umask 022, which would make them world-readable.
    old = os.umask(0o022)
    try:
        with Catalog.open("sqlite:///new/deeper/catalog.db", tmp_path) as catalog:
            catalog.create_database("easydb", "s1", "easydb", "sg_easydb", "Admin#pw1", "")
            db = tmp_path / "new" / "deeper" / "catalog.db"
            side = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
            assert all(path.exists() for path in side)
            assert [_mode(path) for path in (db, *side)] == [0o600, 0o600, 0o600]
            assert _mode(tmp_path / "new") == _mode(tmp_path / "new" / "deeper") == 0o700
        # A rollback journal (another journal mode) would follow the database's mode too.
        raw = sqlite3.connect(db, isolation_level=None)
        try:
            raw.execute("PRAGMA journal_mode=DELETE")
            raw.execute("BEGIN")
            raw.execute("INSERT INTO counters (name, value) VALUES ('journal_test', 1)")
            assert _mode(db.with_name("catalog.db-journal")) == 0o600
            raw.execute("ROLLBACK")
        finally:
            raw.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_a_catalog_file_open_to_others_is_refused(tmp_path: Path, suffix: str) -> None:
    Catalog.open(URL, tmp_path).close()
    target = _path(tmp_path).with_name("catalog.db" + suffix)
    target.touch()
    os.chmod(target, 0o644)
    with pytest.raises(CatalogError) as refused:
        Catalog.open(URL, tmp_path)
    assert refused.value.message == (
        f"cannot open the catalog {_path(tmp_path)}: {target} is open to group or others "
        f"(mode 0644); run `chmod 600 {target}`"
    )
    assert "\n" not in refused.value.message
    os.chmod(target, 0o600)
    Catalog.open(URL, tmp_path).close()


def test_every_exposed_catalog_file_is_named_once(tmp_path: Path) -> None:
    Catalog.open(URL, tmp_path).close()
    db = _path(tmp_path)
    wal = db.with_name("catalog.db-wal")
    wal.touch()
    os.chmod(db, 0o640)
    os.chmod(wal, 0o604)
    with pytest.raises(CatalogError, match="chmod") as refused:
        Catalog.open(URL, tmp_path)
    assert refused.value.message.endswith(
        f"{db} (mode 0640), {wal} (mode 0604) are open to group or others; "
        f"run `chmod 600 {db} {wal}`"
    )


def test_a_catalog_file_of_another_user_is_that_users_business(tmp_path: Path) -> None:
    # As OpenSSH treats key files: only a file this user owns (and could chmod) is refused.
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    Catalog.open(URL, tmp_path).close()
    os.chmod(_path(tmp_path), 0o666)
    os.chown(_path(tmp_path), 12345, 12345)
    Catalog.open(URL, tmp_path).close()


def test_a_catalog_password_file_open_to_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "catalog pw"
    secret.write_text("not-used\n")
    os.chmod(secret, 0o644)
    url = f"mysql://cat@127.0.0.1:1/catalog?password_file={secret}"
    with pytest.raises(CatalogError) as refused:
        Catalog.open(url, tmp_path)
    assert refused.value.message == (
        f"cannot open the catalog: catalog password file: {secret} is open to group or others "
        f"(mode 0644); run `chmod 600 '{secret}'`"
    )
    os.chmod(secret, 0o600)
    with pytest.raises(CatalogError, match="cannot connect"):  # read, then no server on port 1
        Catalog.open(url, tmp_path)


def test_sqlite_urls(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:////abs/cat.db", tmp_path) == Path("/abs/cat.db")
    assert sqlite_path("sqlite:///rel/cat.db", tmp_path) == tmp_path / "rel" / "cat.db"
    for bad in ("mysql://host/db", "sqlite://cat.db", "sqlite:///", "catalog.db"):
        with pytest.raises(StoreError):
            sqlite_path(bad, tmp_path)
    with pytest.raises(CatalogError, match=r"^unsupported catalog URL: expected sqlite:///"):
        Catalog.open("catalog.db", tmp_path)


def test_refuses_newer_schema(backend: Backend) -> None:
    backend.open().close()
    backend.rows("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(CatalogError, match="newer"):
        backend.open()


def test_refuses_a_file_that_is_not_a_catalog(tmp_path: Path) -> None:
    _path(tmp_path).parent.mkdir(parents=True)
    _path(tmp_path).write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="cannot open"):
        Catalog.open(URL, tmp_path)


def test_an_older_schema_is_refused_until_migrated(backend: Backend) -> None:
    with backend.open() as catalog:
        catalog.create_database("easydb", "s1", "easydb", "sg_easydb", "Admin#pw1", "")
    # Turn it back into a version-1 catalog (before dual passwords), with data in it.
    for column in ("max_user_connections", "failed_logins", "locked_until"):
        backend.rows(f"ALTER TABLE accounts DROP COLUMN {column}")
    backend.rows("ALTER TABLE accounts DROP COLUMN retained_native_hash")
    backend.rows("ALTER TABLE accounts DROP COLUMN retained_password_hash")
    backend.rows("UPDATE schema_version SET version = ?", (1,))
    with pytest.raises(SchemaVersionError, match="catalog migrate"):
        backend.open()
    # The migrations of the missing versions are idempotent; migrate says from and to.
    assert Catalog.migrate(backend.url, backend.base) == (1, SCHEMA_VERSION)
    assert Catalog.migrate(backend.url, backend.base) == (SCHEMA_VERSION, SCHEMA_VERSION)
    with backend.open() as catalog:
        admin = _user(catalog, "easydb")
        assert verify_password(admin.password_hash, "Admin#pw1")
        assert not admin.has_retained_password


def test_migration_3_adds_the_account_protections(backend: Backend) -> None:
    with backend.open() as catalog:
        catalog.create_database("easydb", "s1", "easydb", "sg_easydb", "Admin#pw1", "")
    for column in ("max_user_connections", "failed_logins", "locked_until"):
        backend.rows(f"ALTER TABLE accounts DROP COLUMN {column}")
    backend.rows("UPDATE schema_version SET version = ?", (2,))
    with pytest.raises(SchemaVersionError, match="catalog migrate"):
        backend.open()
    assert Catalog.migrate(backend.url, backend.base) == (2, SCHEMA_VERSION)
    with backend.open() as catalog:
        admin = _user(catalog, "easydb")
        assert (admin.max_user_connections, admin.failed_logins, admin.locked_until) == (0, 0, None)
        assert verify_password(admin.password_hash, "Admin#pw1")


def test_migration_4_adds_revoked_sessions(backend: Backend) -> None:
    with backend.open() as catalog:
        catalog.create_database("easydb", "s1", "easydb", "sg_easydb", "Admin#pw1", "")
    backend.rows("DROP TABLE revoked_sessions")
    backend.rows("UPDATE schema_version SET version = ?", (3,))
    with pytest.raises(SchemaVersionError, match="catalog migrate"):
        backend.open()
    assert Catalog.migrate(backend.url, backend.base) == (3, SCHEMA_VERSION)
    with backend.open() as catalog:
        assert not catalog.session_revoked("a" * 64)
        catalog.revoke_session("a" * 64, time.time() + 60)
        assert catalog.session_revoked("a" * 64)
        assert verify_password(_user(catalog, "easydb").password_hash, "Admin#pw1")


def test_revoked_sessions_are_shared_and_pruned_once_expired(backend: Backend) -> None:
    with backend.open() as one, backend.open() as other:
        version = one.snapshot().version
        one.revoke_session("a" * 64, 1000.0, now=900.0)
        one.revoke_session("a" * 64, 1100.0, now=900.0)  # again: one record, the later expiry
        other.revoke_session("b" * 64, 2000.0, now=900.0)
        assert one.session_revoked("b" * 64) and other.session_revoked("a" * 64)
        assert backend.rows("SELECT session_hash, expires_at FROM revoked_sessions ORDER BY 1") == [
            ("a" * 64, 1100.0),
            ("b" * 64, 2000.0),
        ]
        # A later revocation forgets those that would have expired by then.
        other.revoke_session("c" * 64, 3000.0, now=1500.0)
        assert not one.session_revoked("a" * 64)
        assert one.session_revoked("b" * 64) and one.session_revoked("c" * 64)
        # Not a change of accounts: the version (and so every node's snapshot) stays.
        one.refresh()
        assert one.snapshot().version == version


def test_migration_5_adds_settings_session_reports_and_creation_times(backend: Backend) -> None:
    with backend.open() as catalog:
        catalog.create_database("easydb", "s1", "easydb", "sg_easydb", "Admin#pw1", "")
    created = backend.rows("SELECT at FROM audit WHERE action = 'CREATE DATABASE easydb'")
    for table in ("catalog_settings", "node_sessions", "database_created"):
        backend.rows(f"DROP TABLE {table}")
    backend.rows("UPDATE schema_version SET version = ?", (4,))
    with pytest.raises(SchemaVersionError, match="catalog migrate"):
        backend.open()
    assert Catalog.migrate(backend.url, backend.base) == (4, SCHEMA_VERSION)
    with backend.open() as catalog:
        # The creation time of a database that existed before comes from the audit log.
        assert catalog.databases_created() == {"easydb": created[0][0]}
        assert catalog.check_secret(b"s" * 32, claim=True)
        catalog.publish_sessions("node1", {"easydb": 2})
        assert catalog.open_sessions() == {"easydb": {"node1": 2}}
        assert verify_password(_user(catalog, "easydb").password_hash, "Admin#pw1")


def test_the_catalog_secret_is_claimed_once_and_checked_after(backend: Backend) -> None:
    with backend.open() as one, backend.open() as other:
        version = one.snapshot().version
        assert not one.check_secret(b"first secret", claim=False)  # nothing stored: no check
        assert backend.rows("SELECT COUNT(*) FROM catalog_settings") == [(0,)]
        assert one.check_secret(b"first secret", claim=True)
        assert not other.check_secret(b"first secret", claim=True)  # already claimed: checked
        for claim in (False, True):
            with pytest.raises(CatalogSecretError, match="same secret") as caught:
                other.check_secret(b"another secret", claim=claim)
            assert "another secret" not in str(caught.value)
        # The catalog keeps an HMAC of a label, never the secret; no new catalog version.
        [(stored,)] = backend.rows("SELECT value FROM catalog_settings")
        assert stored == secret_verifier(b"first secret") and b"first" not in stored.encode()
        one.refresh()
        assert one.snapshot().version == version and one.audit() == []


def test_session_reports_per_node(backend: Backend) -> None:
    with backend.open() as one, backend.open() as other:
        one.publish_sessions("a:3307", {"EasyDB": 2, "otherdb": 1, "idle": 0}, now=1000.0)
        other.publish_sessions("b:3307", {"easydb": 3}, now=1000.0)
        assert one.open_sessions(now=1001.0) == {
            "easydb": {"a:3307": 2, "b:3307": 3},
            "otherdb": {"a:3307": 1},
        }
        # A new report replaces the node's last one; stale reports do not count.
        one.publish_sessions("a:3307", {"otherdb": 4}, now=1010.0)
        assert other.open_sessions(now=1011.0) == {
            "easydb": {"b:3307": 3},
            "otherdb": {"a:3307": 4},
        }
        assert other.open_sessions(now=1000.0 + NODE_REPORT_FRESH + 1) == {"otherdb": {"a:3307": 4}}
        # Reports of nodes gone for long are deleted by the next report.
        one.publish_sessions("a:3307", {}, now=1000.0 + NODE_REPORT_FORGET + 1)
        assert backend.count("node_sessions") == 0


def test_database_creation_times(easydb: Catalog) -> None:
    created = easydb.databases_created()
    assert set(created) == {"easydb"}
    assert datetime.fromisoformat(created["easydb"]).tzinfo is not None
    easydb.drop_database("easydb")
    assert easydb.databases_created() == {}


def test_both_backends_have_the_same_schema_versions() -> None:
    assert mysql_store.SCHEMA_VERSION == SCHEMA_VERSION


def test_a_new_mysql_catalog_needs_migrate(mysql_catalog_url: Callable[..., str]) -> None:
    url = mysql_catalog_url(migrate=False)
    with pytest.raises(SchemaVersionError, match=r"version 0 .* catalog migrate"):
        Catalog.open(url, Path("/"))
    assert Catalog.migrate(url, Path("/")) == (0, SCHEMA_VERSION)
    with Catalog.open(url, Path("/")) as catalog:
        assert catalog.snapshot().version == 0


def test_mysql_urls_never_carry_a_password() -> None:
    with pytest.raises(StoreError, match="must not contain a password") as caught:
        parse_mysql_url("mysql://cat:Sekrit#1@db.internal:3306/catalog")
    assert "Sekrit" not in str(caught.value)
    parsed = parse_mysql_url("mysql://cat@db.internal:3307/catalog?password_env=CAT_PW")
    assert (parsed.user, parsed.host, parsed.port, parsed.database) == (
        "cat",
        "db.internal",
        3307,
        "catalog",
    )
    assert parsed.password_env == "CAT_PW" and "CAT_PW" not in repr(parsed.display())
    for bad in (
        "mysql://db.internal/catalog",  # no user
        "mysql://cat@db.internal/",  # no database
        "mysql://cat@db.internal/catalog?password=x",  # unknown parameter
        "mysql://cat@db.internal/catalog?password_file=relative.txt",
        "mysql://cat@db.internal:port/catalog",
    ):
        with pytest.raises(StoreError):
            parse_mysql_url(bad)


def test_mysql_store_reconnects_after_a_lost_connection(
    mysql_catalog_url: Callable[..., str], catalog_server: Any
) -> None:
    url = mysql_catalog_url()
    with Catalog.open(url, Path("/")) as catalog, Catalog.open(url, Path("/")) as other:
        catalog.create_database("easydb", "s1", "easydb", "sg_easydb", "", "")
        store = cast(MysqlCatalogStore, catalog._store)
        assert store._conn is not None
        thread_id = store._conn.thread_id()
        killer = pymysql.connect(
            host=catalog_server.endpoint.host,
            port=catalog_server.endpoint.port,
            user=catalog_server.endpoint.user,
            password=catalog_server.endpoint.password,
            autocommit=True,
        )
        with killer.cursor() as cur:
            cur.execute(f"KILL CONNECTION {int(thread_id)}")
        killer.close()
        # The next poll and the next change simply work on a new connection.
        other.create_account("lily", "%", "", "easydb", "easydb@'%'", "")
        assert catalog.refresh()
        catalog.create_account("rose", "%", "", "easydb", "easydb@'%'", "")
        assert other.refresh() and other.snapshot().find_account("rose", "%") is not None


def test_concurrent_conflicting_writers_stay_consistent(backend: Backend) -> None:
    """Two catalog handles (two nodes) racing to create, grant, and drop the same accounts:
    every change applies whole and in some order; both converge on the store's state."""
    import threading

    with backend.open() as setup:
        setup.create_database("easydb", "s1", "easydb", "sg_easydb", "", "")
    nodes = [backend.open(), backend.open()]
    errors: list[BaseException] = []

    def work(node: Catalog, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(60):
                user = f"user{rng.randrange(4)}"
                node.refresh()
                existing = node.snapshot().find_account(user, "%")
                try:
                    if existing is None or rng.random() < 0.2:
                        node.apply(
                            [
                                CreateAccount(user, "%", "", "easydb"),
                                SetPrivileges(UserHost(user, "%"), "easydb", None, SEL),
                            ],
                            "a",
                            "",
                            "create",
                        )
                    elif rng.random() < 0.3:
                        node.apply([DropAccount(UserHost(user, "%"))], "a", "", "drop")
                    else:
                        node.apply(
                            [
                                SetPrivileges(
                                    UserHost(user, "%"), "easydb", "t", Priv(1 + rng.randrange(255))
                                )
                            ],
                            "a",
                            "",
                            "grant",
                        )
                except (AccountExistsError, UnknownAccountError):
                    pass  # the other node got there first: refused whole
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n, i)) for i, n in enumerate(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    try:
        with backend.open() as fresh:
            truth = fresh.snapshot()
            for node in nodes:
                node.refresh()
                _same(node.snapshot(), truth)
            # Every created account got its SELECT in the same change; versions never skip.
            for account in truth.accounts():
                if not account.protected:
                    assert truth.privileges(account.id, "easydb") & SEL
            versions = [r.catalog_version for r in fresh.audit()]
            assert versions == list(range(1, truth.version + 1))
    finally:
        for node in nodes:
            node.close()


# --- databases and built-ins ---


def test_create_database_makes_protected_builtins(easydb: Catalog, backend: Backend) -> None:
    snapshot = easydb.snapshot()
    database = snapshot.database("EasyDB")
    assert database is not None
    assert (database.name, database.shard, database.physical_name, database.backend_user) == (
        "easydb",
        "shard1",
        "easydb_0001",
        "sg_easydb",
    )
    admin, ro = _user(easydb, "easydb"), _user(easydb, "easydb_RO")
    assert (admin.builtin, admin.owner_db, admin.protected) == ("admin", "easydb", True)
    assert (ro.builtin, ro.owner_db, ro.protected) == ("ro", "easydb", True)
    assert admin.native_hash == native_hash("Admin#pw1")
    assert verify_password(admin.password_hash, "Admin#pw1")
    assert verify_password(ro.password_hash, "Ro#pw12")
    # Privileges come from being the built-in, not from grant rows.
    assert backend.count("db_grants") == 0
    assert snapshot.privileges(admin.id, "easydb") == ALL_PRIVILEGES
    assert snapshot.privileges(admin.id, "EASYDB", "Employees") == ALL_PRIVILEGES
    assert snapshot.privileges(ro.id, "easydb") == SEL
    assert snapshot.privileges(ro.id, "easydb", "emp") == SEL
    assert snapshot.privileges(admin.id, "otherdb") == NO_PRIVILEGES
    assert snapshot.grants_of(admin.id).db_privs == {"easydb": ALL_PRIVILEGES}
    assert snapshot.usable_databases(admin.id) == ["easydb"]
    assert snapshot.usable_databases(ro.id) == ["easydb"]
    assert admin.is_admin_of("EasyDB") and admin.administered_database == "easydb"
    assert not ro.is_admin_of("easydb") and ro.administered_database is None
    assert not admin.is_admin_of("otherdb")


def test_database_names_are_case_insensitive(easydb: Catalog) -> None:
    with pytest.raises(DatabaseExistsError):
        easydb.create_database("EASYDB", "shard1", "x", "y", "", "")
    easydb.create_database("Alpha", "shard2", "alpha_0001", "sg_alpha", "", "")
    snapshot = easydb.snapshot()
    assert [d.name for d in snapshot.databases()] == ["Alpha", "easydb"]
    alpha = snapshot.database("ALPHA")
    assert alpha is not None and alpha.name == "Alpha"
    assert snapshot.find_account("Alpha", "%") is not None
    assert snapshot.find_account("Alpha_RO", "%") is not None
    assert snapshot.usable_databases(_user(easydb, "Alpha").id) == ["Alpha"]


def test_builtin_names_are_reserved(easydb: Catalog) -> None:
    # A database cannot be created over accounts already using its built-in names ...
    easydb.create_account("otherdb", "10.%", "", "easydb", "easydb@'%'", "10.0.0.9")
    with pytest.raises(AccountExistsError):
        easydb.create_database("otherdb", "shard1", "o", "o", "", "")
    assert easydb.snapshot().database("otherdb") is None
    # ... and no account may take a built-in's name on another host.
    with pytest.raises(ProtectedAccountError):
        easydb.create_account("easydb", "10.0.0.1", "", "easydb", "operator", "")
    with pytest.raises(ProtectedAccountError):
        easydb.create_account("easydb_RO", "%", "", None, "operator", "")


def test_builtins_cannot_be_dropped_or_regranted(easydb: Catalog) -> None:
    admin = _user(easydb, "easydb")
    version = easydb.snapshot().version
    with pytest.raises(ProtectedAccountError):
        easydb.drop_account(admin.id, "operator", "")
    with pytest.raises(ProtectedAccountError):
        easydb.set_privileges(admin.id, "easydb", None, SEL, "operator", "")
    assert easydb.snapshot().version == version


def test_reset_builtin_password(easydb: Catalog) -> None:
    easydb.reset_builtin_password("EASYDB", read_only=True, new_password="New#ro99")
    ro = _user(easydb, "easydb_RO")
    assert verify_password(ro.password_hash, "New#ro99")
    assert ro.native_hash == native_hash("New#ro99")
    assert verify_password(_user(easydb, "easydb").password_hash, "Admin#pw1")
    with pytest.raises(UnknownDatabaseError):
        easydb.reset_builtin_password("nodb", read_only=False, new_password="x")


def test_drop_database(easydb: Catalog, backend: Backend) -> None:
    easydb.create_database("shop", "shard2", "shop_0001", "sg_shop", "", "")
    owned = easydb.create_account("owned", "%", "", "easydb", "easydb@'%'", "")
    shared = easydb.create_account("shared", "%", "", "shop", "shop@'%'", "")
    easydb.set_privileges(owned.id, "easydb", None, SEL, "easydb@'%'", "")
    easydb.set_privileges(shared.id, "easydb", "emp", SEL, "easydb@'%'", "")
    easydb.set_privileges(shared.id, "shop", None, INS, "shop@'%'", "")
    easydb.drop_database("EasyDB")
    snapshot = easydb.snapshot()
    assert snapshot.database("easydb") is None
    assert snapshot.find_account("easydb", "%") is None
    assert snapshot.find_account("easydb_RO", "%") is None
    assert snapshot.account(owned.id) is None  # owned by the dropped database
    assert snapshot.account(shared.id) is not None
    assert snapshot.privileges(shared.id, "easydb", "emp") == NO_PRIVILEGES
    assert snapshot.privileges(shared.id, "shop") == INS
    assert snapshot.usable_databases(shared.id) == ["shop"]
    # Re-creating the database does not bring old grants back.
    easydb.create_database("easydb", "shard1", "easydb_0002", "sg_easydb", "", "")
    assert easydb.snapshot().privileges(shared.id, "easydb", "emp") == NO_PRIVILEGES
    assert backend.rows("SELECT COUNT(*) FROM table_grants WHERE db = 'easydb'") == [(0,)]
    with pytest.raises(UnknownDatabaseError):
        easydb.drop_database("nodb")


# --- accounts and lookups ---


def test_snapshot_lookups(easydb: Catalog) -> None:
    lily1 = easydb.create_account("lily", "30.9.73.96", "123456", "easydb", "easydb@'%'", "")
    lily2 = easydb.create_account("lily", "30.9.73.100", "654321", "easydb", "easydb@'%'", "")
    lily_any = easydb.create_account("lily", "%", "", "easydb", "easydb@'%'", "")
    upper = easydb.create_account("Lily", "%", "", "easydb", "easydb@'%'", "")
    snapshot = easydb.snapshot()
    assert snapshot.account(lily1.id) == lily1
    assert snapshot.account(999_999) is None
    assert snapshot.accounts_named("lily") == (lily1, lily2, lily_any)
    assert snapshot.accounts_named("Lily") == (upper,)
    assert snapshot.accounts_named("LILY") == ()
    assert snapshot.find_account("lily", "30.9.73.96") == lily1
    assert snapshot.find_account("lily", "30.9.73.%") is None
    assert snapshot.login_account("lily", "30.9.73.96") == lily1
    assert snapshot.login_account("lily", "30.9.73.100") == lily2
    assert snapshot.login_account("lily", "1.2.3.4") == lily_any
    assert snapshot.login_account("Lily", "30.9.73.96") == upper
    assert snapshot.login_account("nobody", "30.9.73.96") is None
    # Passwords are stored hashed, each account its own.
    assert lily1.native_hash == native_hash("123456")
    assert verify_password(lily2.password_hash, "654321")
    assert (lily_any.native_hash, lily_any.password_hash) == (b"", "")
    assert lily1.created_seq < lily2.created_seq < lily_any.created_seq
    assert lily1.owner_db == "easydb" and not lily1.protected


def test_seed_precedence_example_through_the_catalog(easydb: Catalog) -> None:
    later = easydb.create_account("david", "30.9.1%.234", "", "easydb", "easydb@'%'", "")
    first = easydb.create_account("david", "30.9.12_.%", "", "easydb", "easydb@'%'", "")
    assert later.created_seq < first.created_seq
    assert easydb.snapshot().login_account("david", "30.9.127.234") == first


def test_duplicate_and_unknown_accounts(easydb: Catalog) -> None:
    easydb.create_account("lily", "%", "", "easydb", "easydb@'%'", "")
    with pytest.raises(AccountExistsError):
        easydb.create_account("lily", "%", "", "easydb", "easydb@'%'", "")
    with pytest.raises(UnknownAccountError):
        easydb.drop_account(424242, "operator", "")
    with pytest.raises(UnknownAccountError):
        easydb.apply([SetPassword(UserHost("ghost", "%"), "x")], "operator", "", "x")
    with pytest.raises(UnknownDatabaseError):
        easydb.create_account("lily", "10.%", "", "nodb", "operator", "")


def test_account_ids_are_never_reused(easydb: Catalog, backend: Backend) -> None:
    first = easydb.create_account("lily", "%", "", "easydb", "easydb@'%'", "")
    easydb.drop_account(first.id, "easydb@'%'", "")
    second = easydb.create_account("lily", "%", "", "easydb", "easydb@'%'", "")
    assert second.id > first.id
    easydb.close()
    with backend.open() as reopened:
        third = reopened.create_account("lily2", "%", "", "easydb", "easydb@'%'", "")
        assert third.id > second.id


def test_set_password(easydb: Catalog) -> None:
    lily = easydb.create_account("lily", "%", "old#pass1", "easydb", "easydb@'%'", "")
    easydb.set_password(lily.id, "new#pass2", "lily@'%'", "10.0.0.1")
    changed = _user(easydb, "lily")
    assert changed.native_hash == native_hash("new#pass2")
    assert verify_password(changed.password_hash, "new#pass2")
    assert not verify_password(changed.password_hash, "old#pass1")
    easydb.set_password(lily.id, "", "lily@'%'", "10.0.0.1")
    assert (_user(easydb, "lily").native_hash, _user(easydb, "lily").password_hash) == (b"", "")


# --- privileges ---


def test_privileges_levels_and_case(easydb: Catalog, backend: Backend) -> None:
    easydb.create_database("shop", "shard2", "shop_0001", "sg_shop", "", "")
    hanson = easydb.create_account("hanson", "%", "", "easydb", "easydb@'%'", "")
    easydb.set_privileges(hanson.id, "EasyDB", "Emp", SEL | INS, "easydb@'%'", "")
    easydb.set_privileges(hanson.id, "easydb", None, Priv.UPDATE, "easydb@'%'", "")
    snapshot = easydb.snapshot()
    assert snapshot.privileges(hanson.id, "easydb", "emp") == SEL | INS | Priv.UPDATE
    assert snapshot.privileges(hanson.id, "EASYDB", "EMP") == SEL | INS | Priv.UPDATE
    assert snapshot.privileges(hanson.id, "easydb", "other") == Priv.UPDATE
    assert snapshot.privileges(hanson.id, "easydb") == Priv.UPDATE
    assert snapshot.privileges(hanson.id, "shop", "emp") == NO_PRIVILEGES
    assert snapshot.privileges(424242, "easydb", "emp") == NO_PRIVILEGES
    grants = snapshot.grants_of(hanson.id)
    assert grants.db_privs == {"easydb": Priv.UPDATE}
    assert grants.table_privs == {("easydb", "emp"): SEL | INS}
    assert snapshot.usable_databases(hanson.id) == ["easydb"]
    assert snapshot.grants_of(424242).empty
    # Replace, not add; an empty set removes the row.
    easydb.set_privileges(hanson.id, "easydb", "EMP", SEL, "easydb@'%'", "")
    assert easydb.snapshot().grants_of(hanson.id).table_privs == {("easydb", "emp"): SEL}
    easydb.set_privileges(hanson.id, "easydb", "emp", NO_PRIVILEGES, "easydb@'%'", "")
    easydb.set_privileges(hanson.id, "easydb", None, NO_PRIVILEGES, "easydb@'%'", "")
    assert easydb.snapshot().grants_of(hanson.id).empty
    assert easydb.snapshot().usable_databases(hanson.id) == []
    assert backend.count("table_grants") == 0
    assert backend.count("db_grants") == 0


def test_usable_databases_table_level_only_and_several(easydb: Catalog) -> None:
    easydb.create_database("shop", "shard2", "shop_0001", "sg_shop", "", "")
    easydb.create_database("blog", "shard2", "blog_0001", "sg_blog", "", "")
    user = easydb.create_account("multi", "%", "", "easydb", "easydb@'%'", "")
    easydb.set_privileges(user.id, "shop", "orders", SEL, "shop@'%'", "")
    easydb.set_privileges(user.id, "easydb", None, SEL, "easydb@'%'", "")
    assert easydb.snapshot().usable_databases(user.id) == ["easydb", "shop"]
    with pytest.raises(UnknownDatabaseError):
        easydb.set_privileges(user.id, "nodb", None, SEL, "operator", "")


def test_deleting_an_account_deletes_its_grants(easydb: Catalog, backend: Backend) -> None:
    user = easydb.create_account("gone", "%", "", "easydb", "easydb@'%'", "")
    easydb.set_privileges(user.id, "easydb", "t", SEL, "easydb@'%'", "")
    easydb.set_privileges(user.id, "easydb", None, SEL, "easydb@'%'", "")
    easydb.drop_account(user.id, "easydb@'%'", "")
    assert easydb.snapshot().account(user.id) is None
    assert easydb.snapshot().grants_of(user.id).empty
    assert backend.count("table_grants") == 0 and backend.count("db_grants") == 0


# --- apply: all or nothing ---


def test_apply_creates_and_refers_by_name(easydb: Catalog) -> None:
    ids = easydb.apply(
        [
            CreateAccount("lily", "30.9.%.%", "pw#123", "easydb"),
            SetPrivileges(UserHost("lily", "30.9.%.%"), "easydb", None, SEL),
            CreateAccount("david", "%", "", "easydb"),
            SetPrivileges(UserHost("david", "%"), "easydb", "emp", INS),
        ],
        "easydb@'%'",
        "10.0.0.1",
        "GRANT ...",
    )
    snapshot = easydb.snapshot()
    lily, david = snapshot.account(ids[0]), snapshot.account(ids[1])
    assert lily is not None and lily.user == "lily"
    assert david is not None and david.user == "david"
    assert snapshot.privileges(lily.id, "easydb", "x") == SEL
    assert snapshot.privileges(david.id, "easydb", "emp") == INS


@pytest.mark.parametrize(
    "failing",
    [
        SetPrivileges(UserHost("lily", "%"), "nodb", None, SEL),  # unknown database
        CreateAccount("lily", "%", "", "easydb"),  # duplicate of the first change
        DropAccount(UserHost("ghost", "%")),  # unknown account
        DropAccount(UserHost("easydb", "%")),  # protected
        SetPrivileges(UserHost("easydb_RO", "%"), "easydb", None, ALL_PRIVILEGES),  # protected
    ],
)
def test_apply_is_all_or_nothing(easydb: Catalog, backend: Backend, failing: object) -> None:
    existing = easydb.create_account("kept", "%", "Kept#pw1", "easydb", "easydb@'%'", "")
    easydb.set_privileges(existing.id, "easydb", None, SEL, "easydb@'%'", "")
    before = easydb.snapshot()
    audit_before = len(easydb.audit())
    with pytest.raises(CatalogError):
        easydb.apply(
            [
                CreateAccount("lily", "%", "Lily#pw1", "easydb"),
                SetPrivileges(UserHost("lily", "%"), "easydb", "emp", SEL),
                SetPassword(existing.id, "Changed#1"),
                SetPrivileges(existing.id, "easydb", None, NO_PRIVILEGES),
                DropAccount(existing.id),
                failing,  # type: ignore[list-item]
                CreateAccount("after", "%", "", "easydb"),
            ],
            "easydb@'%'",
            "10.0.0.1",
            "multi-account statement",
        )
    # Nothing happened: not in the snapshot, not in the file, not in the audit.
    assert easydb.snapshot() is before
    assert easydb.snapshot().find_account("lily", "%") is None
    assert len(easydb.audit()) == audit_before
    with backend.open() as fresh:
        snapshot = fresh.snapshot()
        assert snapshot.version == before.version
        assert snapshot.find_account("lily", "%") is None
        assert snapshot.find_account("after", "%") is None
        kept = snapshot.find_account("kept", "%")
        assert kept is not None and verify_password(kept.password_hash, "Kept#pw1")
        assert snapshot.privileges(kept.id, "easydb") == SEL


def test_apply_empty_changes_nothing(easydb: Catalog) -> None:
    version = easydb.snapshot().version
    assert easydb.apply([], "x", "y", "nothing") == ()
    assert easydb.snapshot().version == version


def test_apply_expected_version(easydb: Catalog) -> None:
    version = easydb.snapshot().version
    easydb.apply(
        [CreateAccount("first", "%", "", "easydb")], "a", "", "x", expected_version=version
    )
    with pytest.raises(CatalogConflictError):
        easydb.apply(
            [CreateAccount("second", "%", "", "easydb")], "a", "", "x", expected_version=version
        )
    assert easydb.snapshot().find_account("second", "%") is None


def test_every_change_bumps_the_version_once(easydb: Catalog) -> None:
    version = easydb.snapshot().version
    easydb.apply(
        [CreateAccount(f"user{i}", "%", "", "easydb") for i in range(5)], "a", "", "five at once"
    )
    assert easydb.snapshot().version == version + 1
    assert easydb.audit()[-1].catalog_version == version + 1


# --- several processes: refresh ---


def _same(left: CatalogSnapshot, right: CatalogSnapshot) -> None:
    """Two snapshots describe the same catalog."""
    assert left.version == right.version
    assert left.databases() == right.databases()
    for database in left.databases():
        assert left.tables(database.name) == right.tables(database.name)
        assert left.sequences(database.name) == right.sequences(database.name)
    assert left.accounts() == right.accounts()
    for account in left.accounts():
        assert left.grants_of(account.id) == right.grants_of(account.id)
        assert left.accounts_named(account.user) == right.accounts_named(account.user)
        assert left.usable_databases(account.id) == right.usable_databases(account.id)


def test_second_catalog_sees_changes_after_refresh(easydb: Catalog, backend: Backend) -> None:
    with backend.open() as other:
        assert not other.refresh()
        lily = easydb.create_account("lily", "%", "", "easydb", "easydb@'%'", "")
        assert other.snapshot().find_account("lily", "%") is None
        assert other.refresh()
        assert other.snapshot().find_account("lily", "%") == lily
        assert not other.refresh()
        # And the other way round.
        other.set_privileges(lily.id, "easydb", "emp", SEL, "easydb@'%'", "")
        assert easydb.refresh()
        assert easydb.snapshot().privileges(lily.id, "easydb", "emp") == SEL


def test_incremental_refresh_matches_a_full_load(easydb: Catalog, backend: Backend) -> None:
    rng = random.Random(7)
    easydb.create_database("shop", "shard2", "shop_0001", "sg_shop", "", "")
    with backend.open() as follower:
        for step in range(150):
            snapshot = easydb.snapshot()
            plain = [a for a in snapshot.accounts() if not a.protected]
            choice = rng.random()
            if choice < 0.3 or not plain:
                user = rng.choice(["ann", "bob", "cy", "dee"]) + str(rng.randrange(6))
                host = rng.choice(["%", "10.%", "10.0.0.1"])
                if snapshot.find_account(user, host) is None:
                    easydb.create_account(user, host, "", "easydb", "a", "")
            elif choice < 0.4:
                easydb.drop_account(rng.choice(plain).id, "a", "")
            elif choice < 0.45:
                easydb.set_password(rng.choice(plain).id, "", "a", "")
            else:
                target = rng.choice(plain)
                db = rng.choice(["easydb", "SHOP"])
                table = rng.choice([None, "t1", "T2"])
                easydb.set_privileges(target.id, db, table, Priv(rng.randrange(256)), "a", "")
            if step % 10 == 0:
                follower.refresh()
        follower.refresh()
        with backend.open() as fresh:
            _same(easydb.snapshot(), fresh.snapshot())
            _same(follower.snapshot(), fresh.snapshot())


def test_refresh_falls_back_to_a_full_load(
    easydb: Catalog, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_module, "CHANGE_LOG_RETENTION", 2)
    builds = []
    original = CatalogSnapshot.build.__func__  # type: ignore[attr-defined]

    def counting_build(cls: type[CatalogSnapshot], *args: object) -> CatalogSnapshot:
        builds.append(1)
        return original(cls, *args)  # type: ignore[no-any-return]

    with backend.open() as follower:
        monkeypatch.setattr(CatalogSnapshot, "build", classmethod(counting_build))
        for i in range(5):
            easydb.create_account(f"user{i}", "%", "", "easydb", "a", "")
        assert not builds  # the writer itself catches up incrementally
        assert follower.refresh()
        assert builds  # the follower fell behind the pruned log
        _same(follower.snapshot(), easydb.snapshot())


# --- audit ---


def test_audit_records_and_never_a_password(easydb: Catalog, backend: Backend) -> None:
    secrets = ["Admin#pw1", "Ro#pw12", "Lily#Secret1", "Other#Secret2", "Reset#Secret3"]
    lily = easydb.create_account("lily", "%", secrets[2], "easydb", "easydb@'%'", "10.1.2.3")
    easydb.apply(
        [SetPassword(lily.id, secrets[3])],
        "lily@'%'",
        "10.1.2.4",
        f"SET PASSWORD = PASSWORD('{secrets[3]}')",
    )
    easydb.reset_builtin_password("easydb", read_only=False, new_password=secrets[4])
    records = easydb.audit()
    assert [r.catalog_version for r in records] == [1, 2, 3, 4]
    assert records[0].actor == "operator" and "easydb" in records[0].action
    assert (records[1].actor, records[1].client) == ("easydb@'%'", "10.1.2.3")
    assert "'lily'@'%'" in records[1].details
    assert records[2].action == "SET PASSWORD = PASSWORD('<redacted>')"
    assert records[-1].at.endswith("+00:00")
    assert easydb.audit(limit=2) == records[-2:]
    for record in records:
        for field in (record.actor, record.client, record.action, record.details):
            for secret in secrets:
                assert secret not in field
    # Nor anywhere in the store: the files on disk, or every row of every table.
    easydb.close()
    if backend.kind == "sqlite":
        for file in _path(backend.base).parent.iterdir():
            content = file.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, file.name
    else:
        tables = [t for (t,) in backend.rows("SHOW TABLES")]
        assert "accounts" in tables and "audit" in tables
        for table in tables:
            dump = repr(backend.rows(f"SELECT * FROM {table}"))
            for secret in secrets:
                assert secret not in dump, table


# --- durability: kill -9 at random moments ---

GRANTS_PER_STEP = 40

_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from auth.catalog import Catalog, CreateAccount, DropAccount, SetPrivileges, UserHost
    from auth.privileges import Priv

    catalog = Catalog.open("sqlite:///" + sys.argv[1], Path("/"))
    base, grants = int(sys.argv[2]), int(sys.argv[3])
    print("ready", flush=True)
    while True:
        step = catalog.snapshot().version - base
        name = UserHost(f"u{step}", "%")
        changes = [CreateAccount(name.user, name.host, "", "db1")]
        changes += [
            SetPrivileges(name, "db1", f"t{j}", Priv(j % 255 + 1)) for j in range(grants)
        ]
        if step % 2 == 1:
            changes.append(DropAccount(UserHost(f"u{step - 1}", "%")))
        catalog.apply(changes, "operator", "", f"step {step}")
    """
)


def _check_consistent(path: Path, base: int) -> int:
    """The file holds exactly the effect of its first N steps; returns N."""
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Catalog.open(f"sqlite:///{path}", Path("/")) as catalog:
        snapshot = catalog.snapshot()
        steps = snapshot.version - base
        expected = {f"u{j}" for j in range(steps) if not (j % 2 == 0 and j + 1 < steps)}
        plain = [a for a in snapshot.accounts() if not a.protected]
        assert {a.user for a in plain} == expected
        for account in plain:
            grants = snapshot.grants_of(account.id)
            assert grants.table_privs == {
                ("db1", f"t{j}"): Priv(j % 255 + 1) for j in range(GRANTS_PER_STEP)
            }
        assert len(catalog.audit()) == snapshot.version
        assert [r.action for r in catalog.audit()][base:] == [f"step {j}" for j in range(steps)]
    return steps


def test_kill_9_never_leaves_a_half_applied_change(tmp_path: Path) -> None:
    path = tmp_path / "killed" / "catalog.db"
    with Catalog.open(f"sqlite:///{path}", Path("/")) as setup:
        setup.create_database("db1", "shard1", "db1_0001", "sg_db1", "", "")
        base = setup.snapshot().version
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    steps = 0
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(base), str(GRANTS_PER_STEP)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0.02, 0.4))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        new_steps = _check_consistent(path, base)
        assert new_steps >= steps
        steps = new_steps
    assert steps >= 10  # the writers did make progress


# --- scale ---

SCALE_ACCOUNTS = 100_000
SCALE_TABLE_GRANTS = 1_000_000
SCALE_DATABASES = 10


@pytest.mark.slow
def test_scale_100k_accounts_1m_table_grants(tmp_path: Path) -> None:
    catalog = Catalog.open(URL, tmp_path)
    for k in range(SCALE_DATABASES):
        catalog.create_database(f"db{k}", "shard1", f"db{k}_0001", f"sg_db{k}", "", "")
    started = time.perf_counter()
    bulk_insert(_path(tmp_path), SCALE_ACCOUNTS, SCALE_TABLE_GRANTS, SCALE_DATABASES)
    inserted = time.perf_counter()

    with Catalog.open(URL, tmp_path) as fresh:
        loaded = time.perf_counter()
        snapshot = fresh.snapshot()
        assert len(snapshot) == SCALE_ACCOUNTS + 2 * SCALE_DATABASES

        assert catalog.refresh()  # the first catalog reloads everything too
        refreshed = time.perf_counter()

        rng = random.Random(1)
        ids = [a.id for a in snapshot.accounts() if not a.protected]
        sample = [rng.choice(ids) for _ in range(100_000)]
        lookup_start = time.perf_counter()
        held = 0
        for account_id in sample:
            account = snapshot.account(account_id)
            assert account is not None
            held += bool(snapshot.privileges(account_id, "DB3", "table_1_1"))
            held += bool(snapshot.privileges(account_id, f"db{account_id % 10}"))
        lookups = time.perf_counter() - lookup_start
        users = [a.user for a in map(snapshot.account, sample[:20_000]) if a is not None]
        logins_start = time.perf_counter()
        for user, account_id in zip(users, sample, strict=False):
            assert snapshot.login_account(user, "10.5.0.1") is not None
            snapshot.usable_databases(account_id)
        logins = time.perf_counter() - logins_start
        some = snapshot.account(sample[0])
        assert some is not None
        grants = snapshot.grants_of(some.id)
        assert len(grants.table_privs) == SCALE_TABLE_GRANTS // SCALE_ACCOUNTS
        db, table = next(iter(grants.table_privs))
        assert snapshot.privileges(some.id, db.upper(), table.upper()) != NO_PRIVILEGES

        # A change at this scale is applied and picked up without reloading everything.
        change_start = time.perf_counter()
        catalog.set_privileges(some.id, "db0", "new_table", SEL, "operator", "")
        change = time.perf_counter() - change_start
        follow_start = time.perf_counter()
        assert fresh.refresh()
        follow = time.perf_counter() - follow_start
        assert fresh.snapshot().privileges(some.id, "db0", "new_table") & SEL

    catalog.close()
    report = (
        f"scale: insert {inserted - started:.1f}s, load {loaded - inserted:.1f}s, "
        f"refresh (full) {refreshed - loaded:.1f}s, 200k privilege checks {lookups:.2f}s, "
        f"20k logins+usable_databases {logins:.2f}s, one change {change * 1000:.0f}ms, "
        f"follower refresh {follow * 1000:.0f}ms"
    )
    print(report)
    assert loaded - inserted < 60
    assert lookups < 5
    assert change < 5 and follow < 5


# --- dual passwords ---


def test_retained_password_lifecycle(easydb: Catalog, backend: Backend) -> None:
    lily = easydb.create_account("lily", "%", "Old#pass1", "easydb", "easydb@'%'", "")
    easydb.apply([SetPassword(lily.id, "New#pass2", retain_current=True)], "a", "", "rotate")
    rotated = _user(easydb, "lily")
    assert verify_password(rotated.password_hash, "New#pass2")
    assert rotated.retained_password_hash is not None
    assert verify_password(rotated.retained_password_hash, "Old#pass1")
    assert rotated.retained_native_hash == native_hash("Old#pass1")
    # Another node sees the same; a plain change keeps the retained one (as MySQL does).
    with backend.open() as other:
        assert other.snapshot().find_account("lily", "%") == rotated
    easydb.set_password(lily.id, "Third#pass3", "a", "")
    assert _user(easydb, "lily").retained_native_hash == native_hash("Old#pass1")
    easydb.apply([DiscardOldPassword(lily.id)], "a", "", "discard")
    done = _user(easydb, "lily")
    assert not done.has_retained_password and done.native_hash == native_hash("Third#pass3")
    # Nothing to retain when the current password is empty; an empty new one drops it.
    easydb.apply([SetPassword(lily.id, "Four#pass4", retain_current=True)], "a", "", "x")
    easydb.set_password(lily.id, "", "a", "")
    assert not _user(easydb, "lily").has_retained_password
    with pytest.raises(CatalogError, match="empty password cannot be retained"):
        easydb.apply([SetPassword(lily.id, "Five#pass5", retain_current=True)], "a", "", "x")


# --- account protections (issue #7): lockout after failed logins, max_user_connections ---


def test_failed_logins_lock_the_account_for_every_node(easydb: Catalog, backend: Backend) -> None:
    lily = easydb.create_account("lily", "10.1.%", "Lily#pw1", "easydb", "operator", "")
    other_node = backend.open()
    try:
        start = easydb.snapshot().version
        now = 1_000_000.0
        # The first failure moves the version (every node learns there are failures, so its
        # next successful login resets them); the second does not; the third locks.
        assert easydb.record_login_failure(lily.id, 3, 60.0, "10.1.0.7", now=now) is None
        assert easydb.snapshot().version == start + 1
        assert _user(easydb, "lily", "10.1.%").failed_logins == 1
        assert easydb.record_login_failure(lily.id, 3, 60.0, "10.1.0.7", now=now + 1) is None
        assert easydb.snapshot().version == start + 1
        lock = easydb.record_login_failure(lily.id, 3, 60.0, "10.1.0.7", now=now + 2)
        assert lock is not None and lock.locked_until == now + 62.0
        assert easydb.snapshot().version == start + 2
        assert _user(easydb, "lily", "10.1.%").locked_at(now + 61.9)
        assert not _user(easydb, "lily", "10.1.%").locked_at(now + 62.0)
        # The other node shares the lock after its next poll (one account reloaded).
        assert other_node.refresh()
        assert _user(other_node, "lily", "10.1.%").locked_until == now + 62.0
        # While locked, failures are not counted and the lock is reported as it is.
        again = other_node.record_login_failure(lily.id, 3, 60.0, "10.1.0.8", now=now + 30)
        assert again is not None and again.locked_until == now + 62.0
        # A right password during the lock changes nothing and reports the lock.
        assert other_node.login_succeeded(lily.id, 60.0, now=now + 31) is not None
        # The lock, and only the lock, is audited: actor the account, client the address.
        record = easydb.audit(limit=1)[0]
        assert record.action == "LOCK ACCOUNT 'lily'@'10.1.%'"
        assert (record.actor, record.client) == ("'lily'@'10.1.%'", "10.1.0.7")
        assert "3 consecutive failed logins" in record.details
        assert "Lily#pw1" not in record.details + record.action
    finally:
        other_node.close()


def test_a_successful_login_resets_and_an_expired_lock_counts_again(easydb: Catalog) -> None:
    lily = easydb.create_account("lily", "%", "Lily#pw1", "easydb", "operator", "")
    now = 2_000_000.0
    easydb.record_login_failure(lily.id, 2, 10.0, "10.0.0.1", now=now)
    version = easydb.snapshot().version
    assert easydb.login_succeeded(lily.id, 10.0, now=now + 1) is None
    assert easydb.snapshot().version == version + 1
    assert _user(easydb, "lily").failed_logins == 0
    # Nothing to reset: no write, no new version.
    assert easydb.login_succeeded(lily.id, 10.0, now=now + 2) is None
    assert easydb.snapshot().version == version + 1
    easydb.record_login_failure(lily.id, 2, 10.0, "10.0.0.1", now=now + 3)
    assert easydb.record_login_failure(lily.id, 2, 10.0, "10.0.0.1", now=now + 4) is not None
    # After the lock has expired, counting starts again from one.
    assert easydb.record_login_failure(lily.id, 2, 10.0, "10.0.0.1", now=now + 20) is None
    assert not _user(easydb, "lily").locked_at(now + 20)
    assert easydb.record_login_failure(lily.id, 2, 10.0, "10.0.0.1", now=now + 21) is not None
    # Off (0) counts nothing.
    assert easydb.record_login_failure(lily.id, 0, 10.0, "10.0.0.1") is None


def test_unlock_and_a_new_password_end_the_lock(easydb: Catalog) -> None:
    lily = easydb.create_account("lily", "%", "Lily#pw1", "easydb", "operator", "")
    assert easydb.record_login_failure(lily.id, 1, 3600.0, "10.0.0.1") is not None
    assert _user(easydb, "lily").locked_at(time.time())
    easydb.apply(
        [UnlockAccount(lily.id)], "easydb@'%'", "10.0.0.2", "ALTER USER lily ACCOUNT UNLOCK"
    )
    unlocked = _user(easydb, "lily")
    assert (unlocked.failed_logins, unlocked.locked_until) == (0, None)
    record = easydb.audit(limit=1)[0]
    assert record.action == "ALTER USER lily ACCOUNT UNLOCK"
    assert "unlock account 'lily'@'%' (locked; failed logins were 1)" in record.details
    assert easydb.record_login_failure(lily.id, 1, 3600.0, "10.0.0.1") is not None
    easydb.apply([SetPassword(lily.id, "Lily#pw2")], "easydb@'%'", "", "SET PASSWORD FOR lily")
    assert _user(easydb, "lily").locked_until is None
    assert "unlocking it" in easydb.audit(limit=1)[0].details
    # The operator's reset of a built-in's password unlocks it too.
    admin = _user(easydb, "easydb")
    assert easydb.record_login_failure(admin.id, 1, 3600.0, "10.0.0.1") is not None
    easydb.reset_builtin_password("easydb", read_only=False, new_password="Admin#pw2")
    assert _user(easydb, "easydb").locked_until is None


def test_max_user_connections_is_stored(easydb: Catalog, backend: Backend) -> None:
    lily = easydb.create_account("lily", "%", "Lily#pw1", "easydb", "operator", "")
    assert lily.max_user_connections == 0
    easydb.apply([SetMaxUserConnections(lily.id, 7)], "operator", "", "ALTER USER lily")
    assert _user(easydb, "lily").max_user_connections == 7
    with backend.open() as other:
        assert _user(other, "lily").max_user_connections == 7
    with pytest.raises(CatalogError, match="not a connection limit"):
        easydb.apply([SetMaxUserConnections(lily.id, -1)], "operator", "", "x")


# --- sharded databases: topology, logical tables, sequences (schema 5, issue #15) ---

INT_KEY = KeyType("int")
TWO_SHARDS = partition_layout("sdb", ["s0", "s1"], 4)


def _sharded(catalog: Catalog, name: str = "sdb", count: int = 4) -> Database:
    parts = partition_layout(name, ["s0", "s1"], count)
    return catalog.create_database(
        name, "s0", parts[0].name, f"sg_{name}", "Admin#pw1", "Ro#pw12", partitions=parts
    )


def _table(name: str, kind: str = "sharded", per_db: int = 1, column: str = "id") -> LogicalTable:
    if kind != "sharded":
        rule = TableRule(cast(TableKind, kind))
    else:
        key = ShardKey("HASH", column, INT_KEY)
        rule = TableRule("sharded", key, key if per_db > 1 else None, per_db)
    return LogicalTable(name, rule, f"CREATE TABLE {name} (id int)")


def test_the_sharding_migration_adds_topology_tables_and_sequences(backend: Backend) -> None:
    """Migration 6 (then 7, the XA outcomes): an older catalog keeps its data and gains the
    tables; its databases stay unsharded."""
    with backend.open() as catalog:
        catalog.create_database("easydb", "s1", "easydb", "sg_easydb", "Admin#pw1", "")
    for table in ("database_partitions", "logical_tables", "sequences", "xa_decisions"):
        backend.rows(f"DROP TABLE {table}")
    backend.rows("UPDATE schema_version SET version = ?", (5,))
    with pytest.raises(SchemaVersionError, match="catalog migrate"):
        backend.open()
    assert Catalog.migrate(backend.url, backend.base) == (5, SCHEMA_VERSION)
    with backend.open() as catalog:
        easydb = catalog.snapshot().database("easydb")
        assert easydb is not None and not easydb.sharded
        assert easydb.physical_databases == (PhysicalDatabase(0, "easydb", "s1"),)
        assert verify_password(_user(catalog, "easydb").password_hash, "Admin#pw1")
        assert _sharded(catalog).sharded


def test_a_sharded_database_records_its_physical_databases(backend: Backend) -> None:
    assert [(p.name, p.shard) for p in TWO_SHARDS] == [
        ("sdb_0000", "s0"),
        ("sdb_0001", "s0"),
        ("sdb_0002", "s1"),
        ("sdb_0003", "s1"),
    ]
    with backend.open() as catalog, backend.open() as other:
        created = _sharded(catalog)
        assert created.sharded and created.partitions == TWO_SHARDS
        assert (created.shard, created.physical_name) == ("s0", "sdb_0000")
        assert created.shards == ("s0", "s1")
        assert created.physical_database("SDB_0002") == TWO_SHARDS[2]
        assert created.physical_database("sdb") is None
        assert other.refresh() and other.snapshot().database("SDB") == created
        audit = catalog.audit()[-1]
        assert audit.details.splitlines()[0] == (
            "create sharded database `sdb` with 4 physical databases"
            " (s0: sdb_0000, sdb_0001; s1: sdb_0002, sdb_0003) (backend user sg_sdb)"
        )
        catalog.drop_database("sdb")
        assert backend.count("database_partitions") == 0
        assert other.refresh() and other.snapshot().database("sdb") is None


def test_partition_layouts_that_cannot_be_are_refused(catalog: Catalog) -> None:
    for shards, count in ((["s0", "s1"], 3), (["s0", "s0"], 4), ([], 2), (["s0"], 0)):
        with pytest.raises(ValueError):
            partition_layout("x", shards, count)
    parts = partition_layout("sdb", ["s0"], 2)
    for shard, physical, given in (
        ("s1", "sdb_0000", parts),  # not physical database 0's shard
        ("s0", "sdb", parts),  # nor its name
        ("s0", "sdb_0001", parts[1:]),  # not numbered from 0
    ):
        with pytest.raises(CatalogError):
            catalog.create_database("sdb", shard, physical, "sg_sdb", "", "", partitions=given)
    assert catalog.snapshot().database("sdb") is None


def test_logical_tables_and_their_rules(backend: Backend) -> None:
    with backend.open() as catalog, backend.open() as other:
        _sharded(catalog)
        version = catalog.snapshot().version
        key = ShardKey("UNI_HASH", "Name", KeyType("varchar"))
        orders = LogicalTable(
            "Orders",
            TableRule("sharded", ShardKey("HASH", "id", KeyType("bigint", True)), key, 4),
            "CREATE TABLE Orders (...) dbpartition by hash(id)",
        )
        assert catalog.create_table("sdb", orders) == orders
        catalog.create_table("SDB", _table("regions", "broadcast"))
        catalog.create_table("sdb", _table("notes", "single"))
        assert catalog.snapshot().version == version + 3
        assert other.refresh()
        tables = other.snapshot().tables("sdb")
        assert set(tables) == {"orders", "regions", "notes"}
        assert other.snapshot().table("sdb", "ORDERS") == orders
        assert tables["regions"].rule == TableRule("broadcast")
        assert other.snapshot().tables("nodb") == {}
        # The rule as DRDS's SHOW CREATE TABLE writes it.
        assert orders.rule.drds_clause() == (
            "dbpartition by hash(`id`) tbpartition by uni_hash(`Name`) tbpartitions 4"
        )
        assert orders.physical_tables(4)[:5] == (
            (0, "Orders_00"),
            (0, "Orders_01"),
            (0, "Orders_02"),
            (0, "Orders_03"),
            (1, "Orders_04"),
        )
        catalog.set_table_definition("sdb", "orders", "CREATE TABLE Orders (v2)")
        assert other.refresh()
        assert other.snapshot().table("sdb", "orders") == replace(
            orders, definition="CREATE TABLE Orders (v2)"
        )
        assert catalog.drop_table("sdb", "ORDERS") == replace(
            orders, definition="CREATE TABLE Orders (v2)"
        )
        with pytest.raises(UnknownTableError):
            catalog.drop_table("sdb", "orders")
        with pytest.raises(UnknownTableError):
            catalog.set_table_definition("sdb", "orders", "x")
        assert other.refresh() and set(other.snapshot().tables("sdb")) == {"regions", "notes"}
        actions = [record.action for record in catalog.audit()[-3:]]
        assert actions == [
            "CREATE TABLE sdb.notes",
            "ALTER TABLE sdb.Orders",
            "DROP TABLE sdb.Orders",
        ]


def test_every_name_stands_for_one_logical_table(catalog: Catalog) -> None:
    _sharded(catalog)
    catalog.create_table("sdb", _table("t", per_db=4))  # physical t_00 .. t_15
    for clash in (
        _table("t", "single"),  # the same name
        _table("T", "broadcast"),
        _table("t_03", "single"),  # one of t's physical tables
        _table("t_15"),
    ):
        with pytest.raises(TableExistsError):
            catalog.create_table("sdb", clash)
    catalog.create_table("sdb", _table("u_01", "single"))
    with pytest.raises(TableExistsError, match="u_01"):
        catalog.create_table("sdb", _table("u", per_db=2))  # u_00 .. u_07 would hide u_01
    with pytest.raises(CatalogError, match="too long"):
        catalog.create_table("sdb", _table("x" * 62, per_db=2))
    assert set(catalog.snapshot().tables("sdb")) == {"t", "u_01"}


def test_rename_table_moves_its_sequence_and_keeps_names_unique(catalog: Catalog) -> None:
    _sharded(catalog)
    catalog.create_table("sdb", _table("t", per_db=2), auto_sequence_start=500)
    catalog.create_table("sdb", _table("u_03", "single"))
    assert catalog.reserve_sequence_range("sdb", "AUTO_SEQ_t", 10).start == 500
    renamed = catalog.rename_table("sdb", "T", "v")
    assert renamed.name == "v" and renamed.rule == _table("t", per_db=2).rule
    snapshot = catalog.snapshot()
    assert set(snapshot.tables("sdb")) == {"v", "u_03"}
    assert snapshot.sequence("sdb", "AUTO_SEQ_t") is None
    # The sequence goes on where it was (no value handed out twice).
    assert catalog.reserve_sequence_range("sdb", "AUTO_SEQ_v", 10).start == 510
    with pytest.raises(TableExistsError, match="u_03"):
        catalog.rename_table("sdb", "v", "u")  # u_00 .. u_07 would hide u_03
    with pytest.raises(TableExistsError):
        catalog.rename_table("sdb", "v", "U_03")
    with pytest.raises(UnknownTableError):
        catalog.rename_table("sdb", "t", "w")
    assert catalog.audit()[-1].action == "RENAME TABLE sdb.t TO v"


def test_an_xa_outcome_is_decided_once(catalog: Catalog) -> None:
    version = catalog.snapshot().version
    assert catalog.decide_xa("shardgate-1-2-3", "commit") == "commit"
    # A recovering node asking to abort gets the outcome already recorded, and the reverse.
    assert catalog.decide_xa("shardgate-1-2-3", "abort") == "commit"
    assert catalog.decide_xa("shardgate-9", "abort") == "abort"
    assert catalog.decide_xa("shardgate-9", "commit") == "abort"
    catalog.forget_xa("shardgate-1-2-3")
    assert catalog.decide_xa("shardgate-1-2-3", "abort") == "abort"
    with pytest.raises(CatalogError):
        catalog.decide_xa("x", "maybe")
    assert catalog.snapshot().version == version  # nothing for the nodes to reload


def test_tables_are_recorded_for_sharded_databases_only(easydb: Catalog) -> None:
    with pytest.raises(CatalogError, match="not sharded"):
        easydb.create_table("easydb", _table("t"))
    with pytest.raises(UnknownDatabaseError):
        easydb.create_table("nodb", _table("t"))
    with pytest.raises(CatalogError, match="not sharded"):
        easydb.create_sequence("easydb", "s")
    assert easydb.snapshot().tables("easydb") == {}


def test_a_table_change_reloads_the_accounts_granted_on_its_tables(catalog: Catalog) -> None:
    """Their mirrors map logical tables to physical ones: the change log names them."""
    _sharded(catalog)
    reader = catalog.create_account("reader", "%", "", "sdb", "a", "")
    whole = catalog.create_account("whole", "%", "", "sdb", "a", "")
    catalog.set_privileges(reader.id, "sdb", "t", SEL, "a", "")
    catalog.set_privileges(whole.id, "sdb", None, SEL, "a", "")
    before = catalog.snapshot().version
    catalog.create_table("sdb", _table("t", per_db=2))
    assert catalog.changed_since(before) == frozenset({reader.id})


def test_group_sequences(backend: Backend) -> None:
    with backend.open() as catalog, backend.open() as other:
        _sharded(catalog)
        seq = catalog.create_sequence("sdb", "Seq1")
        # (a generation: the catalog version that made it, newer than any sequence's before)
        assert seq == GroupSequence("Seq1", 100001, catalog.snapshot().version)
        assert catalog.create_sequence("sdb", "s2", 5).start_with == 5
        with pytest.raises(SequenceExistsError):
            catalog.create_sequence("sdb", "SEQ1")
        for bad in (0, SEQUENCE_MAX):
            with pytest.raises(CatalogError):
                catalog.create_sequence("sdb", "bad", bad)
        assert other.refresh() and set(other.snapshot().sequences("sdb")) == {"seq1", "s2"}
        # Ranges: consecutive on one node, never the same twice; no catalog version moves.
        version = catalog.snapshot().version
        first = catalog.reserve_sequence_range("sdb", "seq1", 1000)
        second = other.reserve_sequence_range("sdb", "SEQ1", 10)
        assert (first.start, first.end, first.generation) == (100001, 101001, seq.generation)
        assert (second.start, second.end, len(second)) == (101001, 101011, 10)
        assert catalog.snapshot().version == version and not other.refresh()
        # ALTER ... START WITH: the next range starts there, in a new generation.
        generation = catalog.alter_sequence("sdb", "seq1", 7).generation
        assert generation == catalog.snapshot().version > seq.generation
        assert other.reserve_sequence_range("sdb", "seq1", 3) == SequenceRange(7, 10, generation)
        other.refresh()  # (its reservation already caught up with the catalog)
        assert other.snapshot().sequence("sdb", "SEQ1") == GroupSequence("Seq1", 7, generation)
        # The end of the values.
        generation = catalog.alter_sequence("sdb", "s2", SEQUENCE_MAX - 2).generation
        assert catalog.reserve_sequence_range("sdb", "s2", 100) == SequenceRange(
            SEQUENCE_MAX - 2, SEQUENCE_MAX, generation
        )
        with pytest.raises(CatalogError, match="no values left"):
            catalog.reserve_sequence_range("sdb", "s2", 1)
        with pytest.raises(UnknownSequenceError):
            catalog.reserve_sequence_range("sdb", "nope", 1)
        catalog.drop_sequence("sdb", "S2")
        with pytest.raises(UnknownSequenceError):
            catalog.drop_sequence("sdb", "s2")
        with pytest.raises(UnknownSequenceError):
            catalog.alter_sequence("sdb", "s2", 5)
        assert other.refresh() and set(other.snapshot().sequences("sdb")) == {"seq1"}


def test_an_auto_increment_column_gets_its_implicit_sequence(catalog: Catalog) -> None:
    _sharded(catalog)
    catalog.create_table("sdb", _table("orders"), auto_sequence_start=100001)
    assert catalog.snapshot().sequence("sdb", "AUTO_SEQ_orders") == GroupSequence(
        "AUTO_SEQ_orders", 100001, catalog.snapshot().version
    )
    catalog.drop_table("sdb", "orders")
    assert catalog.snapshot().sequences("sdb") == {}


def test_two_nodes_reserving_at_once_never_share_a_value(backend: Backend) -> None:
    import threading

    with backend.open() as setup:
        _sharded(setup)
        setup.create_sequence("sdb", "ids", 1)
    nodes = [backend.open(), backend.open()]
    taken: list[list[SequenceRange]] = [[], []]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(40):
                taken[index].append(nodes[index].reserve_sequence_range("sdb", "ids", 25))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        values = [v for ranges in taken for r in ranges for v in range(r.start, r.end)]
        assert len(values) == len(set(values)) == 2 * 40 * 25
        assert sorted(values) == list(range(1, 2001))
    finally:
        for node in nodes:
            node.close()


def test_incremental_reloads_carry_the_layout(easydb: Catalog, backend: Backend) -> None:
    with backend.open() as follower:
        _sharded(easydb)
        easydb.create_table("sdb", _table("t", per_db=2))
        easydb.create_sequence("sdb", "s")
        follower.refresh()
        with backend.open() as fresh:
            _same(follower.snapshot(), fresh.snapshot())
            assert follower.snapshot().table("sdb", "t") == _table("t", per_db=2)

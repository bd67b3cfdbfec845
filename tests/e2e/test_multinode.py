"""Two `shardgate serve` processes sharing one MariaDB-backed catalog behave as one system.

A change made through node A (SQL) is enforced by node B within one second, on sessions
already open on B; concurrent conflicting changes through both nodes leave the catalog
consistent, and both nodes converge on the store's state.
"""

from __future__ import annotations

import functools
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from auth.catalog import Catalog
from auth.privileges import Priv
from proxy.backend.mirror import desired_on_shard, mirror_suffix
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint, free_port
from tests.conftest import CATALOG_PASSWORD_ENV, CATALOG_USER, connect_admin

ADMIN_PW = "Multi#pass1"
RO_PW = "MultiRO#1"
DEADLINE = 1.0  # seconds a change may take to reach the other node


def _bin() -> str:
    return str(Path(sys.executable).with_name("shardgate"))


@dataclass
class Cluster:
    url: str
    base: Path
    ports: tuple[int, int]
    procs: list[subprocess.Popen[str]]

    def connect(self, node: int, user: str, password: str, database: str | None = None) -> Any:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.ports[node],
            user=user,
            password=password,
            database=database,
            autocommit=True,
            connect_timeout=10,
            read_timeout=30,
        )

    def admin(self, node: int) -> Any:
        return self.connect(node, "multidb", ADMIN_PW, "multidb")

    def catalog(self) -> Catalog:
        return Catalog.open(self.url, self.base)


def _config(path: Path, url: str, port: int, shard: ShardEndpoint) -> None:
    base, _, _ = url.partition("?")
    path.write_text(
        "\n".join(
            [
                "[server]",
                'host = "127.0.0.1"',
                f"port = {port}",
                "handshake_timeout = 5.0",
                # The tests poll with logins that fail until a change arrives: the
                # per-address throttle would add its delays to the time measured.
                "login_throttle_failures = 0",
                "[catalog]",
                f'url = "{base}"',
                f'password_env = "{CATALOG_PASSWORD_ENV}"',
                'secret_file = "shared.secret"',  # both nodes derive the same backend passwords
                "[[shards]]",
                'name = "s0"',
                f'host = "{shard.host}"',
                f"port = {shard.port}",
                f'user = "{shard.user}"',
                f'password = "{shard.password}"',
            ]
        )
        + "\n"
    )


def _run(config: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [_bin(), "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"node on port {port} did not start")


@pytest.fixture(scope="module")
def cluster(
    catalog_server: LocalMariaDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("multinode")
    endpoint = catalog_server.endpoint
    admin = connect_admin(endpoint)
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS sgcat_multinode")
        cur.execute("CREATE DATABASE sgcat_multinode")
    admin.close()
    url = (
        f"mysql://{CATALOG_USER}@{endpoint.host}:{endpoint.port}/sgcat_multinode"
        f"?password_env={CATALOG_PASSWORD_ENV}"
    )
    ports = (free_port(), free_port())
    configs = [base / "node_a.toml", base / "node_b.toml"]
    for config, port in zip(configs, ports, strict=True):
        # The catalog server doubles as this cluster's shard: `database create` resets the
        # shard's shared sg_usage account from this cluster's secret, which must not touch the
        # session shards other tests' proxy derives its own from.
        _config(config, url, port, endpoint)
    assert "migrated from version 0" in _run(configs[0], "catalog", "migrate")
    _run(
        configs[0],
        "database",
        "create",
        "multidb",
        "--shard",
        "s0",
        "--admin-password-stdin",
        "--ro-password-stdin",
        stdin=f"{ADMIN_PW}\n{RO_PW}\n",
    )
    procs = [
        subprocess.Popen(
            [_bin(), "--config", str(config), "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for config in configs
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_listening(port, proc)
        env = Cluster(url, base, ports, procs)
        with env.admin(0) as conn, conn.cursor() as cur:
            for table in ("t1", "t2"):
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
                cur.execute(f"INSERT INTO {table} VALUES (1)")
        yield env
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, out
            assert ADMIN_PW not in out


def _until(check: Callable[[], bool], deadline: float = DEADLINE) -> float:
    """Poll ``check`` until it holds; returns the seconds it took (fails after 3 x deadline,
    then the caller's assertion on the time reports the real delay)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < 3 * deadline, "the change never arrived"
        time.sleep(0.02)
    return time.monotonic() - started


def _select(conn: Any, sql: str) -> int | None:
    """The errno of ``sql`` on ``conn`` (None: allowed)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    except pymysql.err.MySQLError as error:
        return int(error.args[0])
    return None


def _sql(conn: Any, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


def _login_ok(
    cluster: Cluster, node: int, user: str, password: str, database: str | None = None
) -> bool:
    """Whether ``user`` logs in on ``node`` (into ``database``: 1044 until the node has seen
    the grant too -- a node may see CREATE USER in one poll and the GRANT after it in the
    next)."""
    try:
        cluster.connect(node, user, password, database).close()
    except pymysql.err.OperationalError as error:
        assert error.args[0] in ((1045, 1044) if database else (1045,))
        return False
    return True


def test_grant_and_revoke_on_a_reach_an_open_session_on_b(cluster: Cluster) -> None:
    a = cluster.admin(0)
    _sql(a, "CREATE USER mnuser1@'%' IDENTIFIED BY 'Mnuser#1'")
    _sql(a, "GRANT SELECT ON multidb.t1 TO mnuser1@'%'")
    took = _until(lambda: _login_ok(cluster, 1, "mnuser1", "Mnuser#1", "multidb"))
    assert took < DEADLINE
    b = cluster.connect(1, "mnuser1", "Mnuser#1", "multidb")
    assert _select(b, "SELECT id FROM t1") is None
    assert _select(b, "SELECT id FROM t2") == 1142
    _sql(a, "GRANT SELECT ON multidb.t2 TO mnuser1@'%'")
    took = _until(lambda: _select(b, "SELECT id FROM t2") is None)
    assert took < DEADLINE, f"GRANT reached node B after {took:.2f}s"
    _sql(a, "REVOKE SELECT ON multidb.t2 FROM mnuser1@'%'")
    took = _until(lambda: _select(b, "SELECT id FROM t2") == 1142)
    assert took < DEADLINE, f"REVOKE reached node B after {took:.2f}s"
    assert _select(b, "SELECT id FROM t1") is None  # the same session, still open
    b.close()
    a.close()


def test_drop_user_on_a_ends_access_of_an_open_session_on_b(cluster: Cluster) -> None:
    a = cluster.admin(0)
    _sql(a, "CREATE USER mnuser2@'%' IDENTIFIED BY 'Mnuser#2'")
    _sql(a, "GRANT SELECT ON multidb.* TO mnuser2@'%'")
    _until(lambda: _login_ok(cluster, 1, "mnuser2", "Mnuser#2", "multidb"))
    b = cluster.connect(1, "mnuser2", "Mnuser#2", "multidb")
    assert _select(b, "SELECT id FROM t1") is None
    _sql(a, "DROP USER mnuser2@'%'")
    took = _until(lambda: _select(b, "SELECT id FROM t1") is not None)
    assert took < DEADLINE, f"DROP USER reached node B after {took:.2f}s"
    # The session is over: nothing more is served on it, and no new login works.
    assert _select(b, "SELECT 1") is not None
    assert not _login_ok(cluster, 1, "mnuser2", "Mnuser#2")
    a.close()


def test_set_password_on_a_is_enforced_by_b(cluster: Cluster) -> None:
    a = cluster.admin(0)
    _sql(a, "CREATE USER mnuser3@'%' IDENTIFIED BY 'Mnuser#3'")
    _until(lambda: _login_ok(cluster, 1, "mnuser3", "Mnuser#3"))
    _sql(a, "SET PASSWORD FOR mnuser3@'%' = 'Changed#3'")
    took = _until(lambda: _login_ok(cluster, 1, "mnuser3", "Changed#3"))
    assert took < DEADLINE, f"the new password worked on node B after {took:.2f}s"
    assert not _login_ok(cluster, 1, "mnuser3", "Mnuser#3")
    # And the other way round: a change through B, enforced by A.
    b = cluster.admin(1)
    _sql(b, "SET PASSWORD FOR mnuser3@'%' = 'Again#333'")
    took = _until(lambda: _login_ok(cluster, 0, "mnuser3", "Again#333"))
    assert took < DEADLINE
    assert not _login_ok(cluster, 0, "mnuser3", "Changed#3")
    a.close()
    b.close()


def _grants(conn: Any, user: str) -> list[str] | None:
    try:
        with conn.cursor() as cur:
            cur.execute(f"SHOW GRANTS FOR {user}@'%'")
            return [row[0] for row in cur.fetchall()]
    except pymysql.err.MySQLError as error:
        assert error.args[0] == 1141, error
        return None


def _shard_grants(shard: Any, user: str) -> set[tuple[str, frozenset[str]]]:
    """What ``user``@'%' holds on the shard, per level, but its USAGE line."""
    with shard.cursor() as cur:
        cur.execute(f"SHOW GRANTS FOR '{user}'@'%'")
        lines = [row[0] for row in cur.fetchall()]
    held = set()
    for line in lines:
        privileges, _, rest = line.removeprefix("GRANT ").partition(" ON ")
        level = rest.split(" TO ")[0]
        if level != "*.*":
            held.add((level, frozenset(privileges.split(", "))))
    return held


def test_drop_or_revoke_on_a_of_a_mirror_b_just_made(
    cluster: Cluster, catalog_server: LocalMariaDB
) -> None:
    """B creates an account and grants it a database (B makes its mirror on the shard); A
    drops it (or revokes the grant) before A's catalog poller has seen B's change. A's own
    snapshot never showed the account holding anything, yet the mirror B made must go."""
    secret = (cluster.base / "shared.secret").read_text().strip().encode()
    suffix = mirror_suffix(secret, "multidb")
    a, b = cluster.admin(0), cluster.admin(1)
    shard = connect_admin(catalog_server.endpoint)
    try:
        for round_ in range(5):
            user = f"stale{round_}"
            _sql(b, f"CREATE USER {user}@'%' IDENTIFIED BY 'Stale#pass1'")
            _sql(b, f"GRANT SELECT ON multidb.* TO {user}@'%'")
            # Within A's poll interval of B's change: a DROP, or a REVOKE of all it holds.
            if round_ % 2:
                _sql(a, f"REVOKE SELECT ON multidb.* FROM {user}@'%'")
            else:
                _sql(a, f"DROP USER {user}@'%'")
            with shard.cursor() as cur:
                # The DROP answered once its mirrors were synced: nothing left of it now.
                cur.execute("SELECT User FROM mysql.user WHERE User LIKE %s", (f"sgm\\_%{suffix}",))
                mirrors = {row[0] for row in cur.fetchall()}
            with cluster.catalog() as catalog:
                truth = catalog.snapshot()
            desired = desired_on_shard(truth, secret, "s0", [x.id for x in truth.accounts()])
            assert mirrors == set(desired), round_
    finally:
        shard.close()
        a.close()
        b.close()


def test_concurrent_conflicting_changes_from_both_nodes(
    cluster: Cluster, catalog_server: LocalMariaDB
) -> None:
    names = [f"race{i}" for i in range(5)]
    failures: list[BaseException] = []
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()

    def worker(node: int, seed: int) -> None:
        rng = random.Random(seed)
        conn = cluster.admin(node)
        try:
            for _ in range(40):
                user = rng.choice(names)
                statement = rng.choice(
                    [
                        f"CREATE USER {user}@'%' IDENTIFIED BY 'Race#pass1'",
                        f"DROP USER {user}@'%'",
                        f"GRANT SELECT, INSERT ON multidb.* TO {user}@'%'",
                        f"GRANT UPDATE ON multidb.t1 TO {user}@'%'",
                        f"REVOKE INSERT ON multidb.* FROM {user}@'%'",
                        f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {user}@'%'",
                        f"SET PASSWORD FOR {user}@'%' = 'Race#pass2'",
                    ]
                )
                try:
                    _sql(conn, statement)
                    outcome = "ok"
                except pymysql.err.MySQLError as error:
                    # Lost races are refused with the statement's own error, never half-done.
                    assert error.args[0] in (1396, 1141, 1133, 5104, 1213), error
                    outcome = "refused"
                with lock:
                    counts[outcome] += 1
        except BaseException as error:
            failures.append(error)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i % 2, i)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not failures, failures
    assert counts["ok"] > 10 and counts["refused"] > 0, counts

    with cluster.catalog() as catalog:
        truth = catalog.snapshot()
        # Invariants of the store: versions contiguous, one audit row per version.
        versions = [r.catalog_version for r in catalog.audit()]
        assert versions == list(range(1, truth.version + 1))
        for account in truth.accounts():
            assert truth.usable_databases(account.id) in ([], ["multidb"])
    # Both nodes converge on the store's state within the deadline.
    a, b = cluster.admin(0), cluster.admin(1)

    def converged() -> bool:
        for user in names:
            account = truth.find_account(user, "%")
            on_a, on_b = _grants(a, user), _grants(b, user)
            if (on_a is None) != (account is None) or on_a != on_b:
                return False
        return True

    took = _until(converged)
    assert took < DEADLINE
    for user in names:
        found = truth.find_account(user, "%")
        if found is not None:
            held = truth.privileges(found.id, "multidb", "t1")
            shown = _grants(a, user)
            assert shown is not None
            assert ("SELECT" in " ".join(shown)) == bool(held & Priv.SELECT)
    a.close()
    b.close()
    # On the shard (no reconcile run): every statement answered once its mirrors were synced,
    # each sync under the shard's lock with the catalog re-read, so the mirrors are exactly
    # what the final catalog says -- the last node to apply applied the newest state.
    secret = (cluster.base / "shared.secret").read_text().strip().encode()
    desired = desired_on_shard(truth, secret, "s0", [a.id for a in truth.accounts()])
    suffix = mirror_suffix(secret, "multidb")
    shard = connect_admin(catalog_server.endpoint)
    try:
        with shard.cursor() as cur:
            cur.execute("SELECT User FROM mysql.user WHERE User LIKE %s", (f"sgm\\_%{suffix}",))
            assert {row[0] for row in cur.fetchall()} == set(desired)
        for user, want in desired.items():
            expected = {(f"`multidb`.`{t}`", privs) for t, privs in want.table_privs}
            if want.db_privs:
                expected.add(("`multidb`.*", want.db_privs))
            assert _shard_grants(shard, user) == expected, user
    finally:
        shard.close()
    # Raw store check: no grant row without its account.
    conn = pymysql.connect(
        host=cluster.url.split("@")[1].split(":")[0],
        port=int(cluster.url.split(":")[2].split("/")[0]),
        user=CATALOG_USER,
        password=os.environ[CATALOG_PASSWORD_ENV],
        database="sgcat_multinode",
    )
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM db_grants g LEFT JOIN accounts a ON a.id = g.account_id"
            " WHERE a.id IS NULL"
        )
        assert cur.fetchone()[0] == 0
    conn.close()


def test_a_sequence_moved_or_made_again_on_a_never_repeats_a_value_on_b(
    cluster: Cluster, catalog_server: LocalMariaDB
) -> None:
    """A sharded table's GROUP sequence, each node holding a range of it: ALTER TABLE ...
    AUTO_INCREMENT = n on node a moves it, and node b, once it sees the move, takes values from
    n on; the table dropped and made again with AUTO_INCREMENT = m (a dump restored over it)
    restarts it at m on both nodes -- no node hands out a value of a range it held before (b
    went on with its old range before: the new sequence had generation 1 again)."""
    with _sequenced_table(cluster, catalog_server) as (a, b):
        taken = [_inserted(b), _inserted(a)]
        assert taken == [100001, 101001]  # a range each
        assert _counter(a) == _counter(b) == 102001
        _sql(a, "ALTER TABLE t AUTO_INCREMENT = 500000")
        time.sleep(3 * DEADLINE)  # b has seen it
        taken += [_inserted(b), _inserted(a)]
        assert taken[2:] == [500000, 501000]
        _sql(a, "DROP TABLE t")
        _sql(a, _SEQUENCED.replace(" DBPARTITION", " AUTO_INCREMENT=600000 DBPARTITION"))
        time.sleep(3 * DEADLINE)
        taken += [_inserted(b), _inserted(a)]
        assert taken[4:] == [600000, 601000]


def test_a_multi_row_insert_takes_consecutive_ids_on_each_node(
    cluster: Cluster, catalog_server: LocalMariaDB
) -> None:
    """A multi-row INSERT into a sharded table with a GROUP sequence takes consecutive ids, as
    InnoDB gives one statement's: drivers compute the later rows' ids from the OK's insert id
    (MariaDB Connector/J's getGeneratedKeys after a batch rewritten as one INSERT:
    LAST_INSERT_ID() + i). Node b, short of values, took the last of its range and the start
    of its next one, node a's range between them: the driver's ids named a's rows."""
    with _sequenced_table(cluster, catalog_server) as (a, b):
        assert [_inserted(b), _inserted(a)] == [100001, 101001]  # a range each
        rows = ", ".join(["(1)"] * 998)
        _sql(b, f"INSERT INTO t (v) VALUES {rows}")  # b's range: one value left
        with b.cursor() as cur:
            cur.execute("INSERT INTO t (v) VALUES (5), (6), (7), (8), (9)")
            first = int(cur.lastrowid)
            cur.execute("SELECT id, v FROM t WHERE v > 1 ORDER BY v")
            got = [tuple(row) for row in cur.fetchall()]
        assert got == [(first + i, 5 + i) for i in range(5)], (first, got)


_SEQUENCED = (
    "CREATE TABLE t (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, v int) DBPARTITION BY HASH(id)"
)


@contextmanager
def _sequenced_table(cluster: Cluster, catalog_server: LocalMariaDB) -> Iterator[tuple[Any, Any]]:
    """Sharded database ``seqmulti`` (made with node a's CLI) and its table ``t`` of a GROUP
    sequence (made on node a, seen by node b): a connection to each node, (a, b). Dropped
    afterwards."""
    password = "SeqMulti#pass1"
    _drop_physical(catalog_server)  # (a run before stopped halfway)
    _run(
        cluster.base / "node_a.toml",
        *("database", "create", "seqmulti", "--shards", "s0", "--db-partitions", "2"),
        *("--admin-password-stdin", "--ro-password-stdin"),
        stdin=f"{password}\n{password}2\n",
    )
    try:
        for node in (0, 1):
            _until(functools.partial(_login, cluster, node, password), 3 * DEADLINE)
        a = cluster.connect(0, "seqmulti", password, "seqmulti")
        b = cluster.connect(1, "seqmulti", password, "seqmulti")
        try:
            _sql(a, _SEQUENCED)
            _until(lambda: _select(b, "SHOW RULE FROM t") is None)  # b knows t
            yield a, b
        finally:
            a.close()
            b.close()
    finally:
        with cluster.catalog() as catalog:
            catalog.drop_database("seqmulti")
        _drop_physical(catalog_server)


def _drop_physical(shard: LocalMariaDB) -> None:
    admin = connect_admin(shard.endpoint)
    try:
        with admin.cursor() as cur:
            for index in range(2):
                cur.execute(f"DROP DATABASE IF EXISTS seqmulti_{index:04d}")
    finally:
        admin.close()


def _login(cluster: Cluster, node: int, password: str) -> bool:
    try:
        cluster.connect(node, "seqmulti", password, "seqmulti").close()
    except pymysql.err.MySQLError:
        return False
    return True


def _inserted(conn: Any) -> int:
    """The id a row inserted without it took (the OK's insert id)."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t (v) VALUES (1)")
        return int(cur.lastrowid)


def _counter(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute("SHOW CREATE TABLE t")
        ((_, shown),) = cur.fetchall()
    found = re.search(r" AUTO_INCREMENT=(\d+)", shown)
    assert found is not None, shown
    return int(found.group(1))

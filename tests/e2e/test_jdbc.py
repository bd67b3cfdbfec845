"""JDBC through the proxy: MariaDB Connector/J (Debian's libmariadb-java, 2.7.6) driven by a
small Java program (tests/drivers/jdbc/JdbcProbe.java, compiled with javac at test time, run in
one JVM for every target) as JDBC applications use it -- DBeaver, Spring/Hibernate, Flyway:
connecting (Connector/J's own session set-up, with each option set), Statement and
PreparedStatement (useServerPrepStmts=true and false), getGeneratedKeys after an INSERT, batches
(rewriteBatchedStatements, useBulkStmts), transactions with savepoints, ResultSetMetaData of
SELECTs and DatabaseMetaData (getTables, getColumns, getPrimaryKeys, getIndexInfo,
getImportedKeys/getExportedKeys, getCatalogs, getSchemas, getTypeInfo, the product version).

Each answer through the proxy is compared with the same program's answer from MariaDB itself
(a plain twin database with the same tables on shard s0, reached directly): (a) an unsharded
database (on s0), (b) a sharded database (a ``DBPARTITION BY HASH(id)`` table with a GROUP
sequence, single tables with a foreign key, a broadcast and a split table). Generated ids are
compared apart: a sharded table's sequence gives other values than a plain table's 1, 2, 3.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.dev.localshard import ShardEndpoint
from tests.e2e.binclient import BinaryClient, Prepared, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import plain_database, plain_twin, sharded_database

JAR = Path("/usr/share/java/mariadb-java-client.jar")
SOURCE = Path(__file__).resolve().parents[1] / "drivers" / "jdbc" / "JdbcProbe.java"

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("javac") is None or not JAR.is_file(),
    reason="needs java, javac and MariaDB Connector/J (.ci/setup installs Debian's"
    " default-jdk-headless and libmariadb-java)",
)

UNSHARDED = "jdbcplain"
UNSHARDED_PASSWORD = "Jdbc#plain1"
NOT_YET = "This version of shardgate doesn't yet support"
SHARDED = "jdbcshard"
SHARDED_PASSWORD = "Jdbc#shard1"
PLAIN_A = "jdbc_plain_a"
PLAIN_B = "jdbc_plain_b"

KINDS = (
    "CREATE TABLE kinds (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(60) NOT NULL,"
    " qty INT NULL, price DECIMAL(10,2) NULL, born DATE NULL, seen DATETIME(3) NULL,"
    " flag TINYINT(1) NULL, big BIGINT UNSIGNED NULL, note TEXT NULL, KEY k_name (name))"
)
PARENT = "CREATE TABLE parent (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL, UNIQUE KEY (label))"
CHILD = (
    "CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL,"
    " CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id))"
)
PARENT_ROWS = "INSERT INTO parent VALUES (1, 'one'), (2, 'two')"
VIEW = "CREATE VIEW v_parent AS SELECT id, label FROM parent"
REGION = "CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20))"
SPLIT = "CREATE TABLE split (id BIGINT PRIMARY KEY, v INT)"
PLAIN_DDL = [KINDS, PARENT, CHILD, PARENT_ROWS, VIEW]
SHARDED_DDL = [
    KINDS + " DBPARTITION BY HASH(id)",
    PARENT,
    CHILD,
    PARENT_ROWS,
    VIEW,
    REGION + " BROADCAST",
    SPLIT + " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
]
SHARDED_TWIN_DDL = [*PLAIN_DDL, REGION, SPLIT]

Observations = dict[str, dict[str, list[str]]]


def _url(host: str, port: int, database: str) -> str:
    # (a command left unanswered fails its observation after 20 s instead of hanging the run)
    return f"jdbc:mariadb://{host}:{port}/{database}?socketTimeout=20000&connectTimeout=20000"


def _target(name: str, host: str, port: int, user: str, password: str, database: str) -> str:
    return "|".join([name, _url(host, port, database), user, password, database, ""])


def run_probe(tmp: Path, targets: list[str]) -> Observations:
    """JdbcProbe compiled in ``tmp`` and run once over ``targets``: per target, per section,
    its lines in order."""
    shutil.copy(SOURCE, tmp / SOURCE.name)
    subprocess.run(
        ["javac", "-cp", str(JAR), "-d", str(tmp), str(tmp / SOURCE.name)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    out, err = tmp / "probe.out", tmp / "probe.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        try:
            done = subprocess.run(
                ["java", "-XX:TieredStopAtLevel=1", "-cp", f"{JAR}:{tmp}", "JdbcProbe", *targets],
                timeout=240,
                stdout=stdout,
                stderr=stderr,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"the probe hung after:\n{out.read_text()[-3000:]}{err.read_text()}")
    assert done.returncode == 0, err.read_text()[-4000:]
    seen: Observations = defaultdict(lambda: defaultdict(list))
    for line in out.read_text().splitlines():
        target, section, value = line.split("\t", 2)
        seen[target][section].append(value)
    return seen


@pytest.fixture(scope="module")
def observed(proxy: ProxyEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observations]:
    """The probe's observations of the four targets: ``unsharded`` (easydb through the proxy,
    as its administrator), ``plain_a`` (its twin on s0), ``sharded`` and ``plain_b``."""
    shard: ShardEndpoint = proxy.shards[0]
    with (
        plain_database(proxy, UNSHARDED, UNSHARDED_PASSWORD, setup=PLAIN_DDL),
        sharded_database(proxy, SHARDED, SHARDED_PASSWORD, setup=SHARDED_DDL),
        plain_twin(proxy, PLAIN_A, PLAIN_DDL),
        plain_twin(proxy, PLAIN_B, SHARDED_TWIN_DDL),
    ):
        targets = [
            _target("unsharded", proxy.host, proxy.port, UNSHARDED, UNSHARDED_PASSWORD, UNSHARDED),
            _target("plain_a", shard.host, shard.port, shard.user, shard.password, PLAIN_A),
            _target("sharded", proxy.host, proxy.port, SHARDED, SHARDED_PASSWORD, SHARDED),
            _target("plain_b", shard.host, shard.port, shard.user, shard.password, PLAIN_B),
        ]
        yield run_probe(tmp_path_factory.mktemp("jdbc"), targets)


# What a sharded database refuses on purpose (README, Sharded databases, the merge engine's
# "Refused with 1235 and why"): aggregates it does not merge across partitions, and LIMIT with
# parameters -- Hibernate's pagination as a server-side prepared statement (useServerPrepStmts;
# Connector/J's default client-side one writes the values in, and is served).
SHARDED_REFUSED = {
    "merged limit ? server": "LIMIT with a parameter or an expression across partitions",
    **{
        f"merged refused {name} {side}": why
        for name, why in (
            ("bit_or std", "BITWISE_OR_AGG across partitions"),
            ("group_concat", "GROUP_CONCAT across partitions"),
        )
        for side in ("client", "server")
    },
}


def _as_twin(
    got: dict[str, list[str]], want: dict[str, list[str]], refused: dict[str, str] | None = None
) -> list[str]:
    """Where the proxy's answers differ from the twin's, beyond what it answers otherwise on
    purpose (README, Drivers): the server version names the proxy (``-shardgate`` after the
    shard's own: the major and minor versions are the shard's), and getCatalogs lists the
    databases the account may see -- its own and information_schema (a sharded database's
    physical databases are not among them) -- where the twin's administrator sees every one.
    (An expression holding ``USER()``, answered by the proxy, keeps MariaDB's column name.)"""
    product = [re.sub(r"^(MariaDB \S+)", r"\1-shardgate", line) for line in want["product"]]
    assert got["product"] == product, (got["product"], product)
    assert got["getCatalogs"] == ["TABLE_CAT=DB", "TABLE_CAT=information_schema"] or got[
        "getCatalogs"
    ] == ["TABLE_CAT=information_schema", "TABLE_CAT=DB"], got["getCatalogs"]
    for section, why in (refused or {}).items():
        assert got[section] == [f"error: 42000 1235 {NOT_YET} '{why}'"], (section, got[section])
    found = []
    for section in sorted(set(got) | set(want)):
        if section.startswith("id:") or section in ("product", "getCatalogs", *(refused or {})):
            continue
        if got.get(section) != want.get(section):
            found.append(f"{section}:\n  proxy: {got.get(section)}\n  twin:  {want.get(section)}")
    return found


def _ids(seen: dict[str, list[str]]) -> list[int]:
    return [
        int(line.partition("=")[2])
        for section, lines in seen.items()
        if section.startswith("id:")
        for line in lines
    ]


def test_unsharded_as_mariadb(observed: Observations) -> None:
    """Every observation of easydb through the proxy is its twin's; so are the generated ids
    (one plain table each, the same inserts)."""
    diffs = _as_twin(observed["unsharded"], observed["plain_a"])
    assert not diffs, "\n".join(diffs)
    assert _ids(observed["unsharded"]) == _ids(observed["plain_a"])


def test_sharded_as_mariadb(observed: Observations) -> None:
    """Every observation of the sharded database through the proxy is its twin's: its logical
    tables only, with the twin's columns, keys and indexes; the rows each generated id names
    (read back by key) are the twin's. The ids themselves are the GROUP sequence's: distinct
    and increasing, not the plain table's. What it refuses on purpose is refused
    (SHARDED_REFUSED)."""
    diffs = _as_twin(observed["sharded"], observed["plain_b"], SHARDED_REFUSED)
    assert not diffs, "\n".join(diffs)
    ids, twin = _ids(observed["sharded"]), _ids(observed["plain_b"])
    assert len(ids) == len(twin) > 20
    assert ids == sorted(set(ids)) and ids != twin, ids


def test_session_tracking_setting(proxy: ProxyEnv) -> None:
    """Connector/J's set-up statement with rewriteBatchedStatements (2.7; 3.x sends it on every
    connection, tracking transaction_isolation) -- ``SET session_track_system_variables =
    CONCAT(@@global.session_track_system_variables, ',auto_increment_increment')`` -- was
    refused (1235: the connection failed): it is the session's, read back, and applied to
    every backend connection the session uses later."""
    conn = proxy.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SET autocommit = 1, session_track_system_variables ="
                " CONCAT(@@global.session_track_system_variables, ',auto_increment_increment')"
            )
            cur.execute("SELECT @@session.session_track_system_variables")
            (tracked,) = cur.fetchone()
            cur.execute("SELECT @@global.session_track_system_variables")
            (default,) = cur.fetchone()
            assert set(tracked.split(",")) == {*default.split(","), "auto_increment_increment"}
    finally:
        conn.close()


def _last_statement(client: BinaryClient) -> list[object]:
    """Statement -1 (the last prepared) as Connector/J 3 uses it, pipelined after its PREPARE,
    and after a failed PREPARE or a close (unknown then, 1243): what each answered."""

    def shown(answer: object) -> object:
        if isinstance(answer, ServerError):
            return ("error", answer.errno, str(answer) if answer.errno == 1243 else "")
        if isinstance(answer, Prepared):
            return ("prepared", answer.params, answer.columns)
        return answer

    seen: list[object] = []
    for sql, param in (
        ("SELECT ? + 1", 41),
        ("SELECT COUNT(*) FROM kinds WHERE qty > ?", 3),
        ("SELECT label FROM parent WHERE id = ?", 2),
        ("SELECT nope FROM kinds WHERE id = ?", 1),
    ):
        seen.append([shown(answer) for answer in client.prepare_execute(sql, [param])])
    last = Prepared(0xFFFFFFFF, 1, 1)
    for run in range(2):
        try:
            seen.append(client.execute(last, [run]))
        except ServerError as exc:
            seen.append(shown(exc))
        prepared = client.prepare("SELECT ? * 2")
        seen.append(client.execute(last, [21]))
        client.close_statement(prepared)
    return seen


@pytest.mark.parametrize("sharded", [False, True], ids=["unsharded", "sharded"])
def test_last_prepared_statement_id(proxy: ProxyEnv, observed: Observations, sharded: bool) -> None:
    """MariaDB's statement id -1 names the connection's last prepared statement (unknown after
    a failed PREPARE or once closed): Connector/J 3 sends COM_STMT_PREPARE and COM_STMT_EXECUTE
    of -1 together (useServerPrepStmts). The proxy, whose statement ids are its own, answered
    1243 Unknown prepared statement handler (4294967295); now as MariaDB (the twin)."""
    shard = proxy.shards[0]
    if sharded:
        via, twin = (proxy.port, SHARDED, SHARDED_PASSWORD, SHARDED), PLAIN_B
    else:
        via, twin = (proxy.port, UNSHARDED, UNSHARDED_PASSWORD, UNSHARDED), PLAIN_A
    answers = []
    for port, user, password, database in (via, (shard.port, shard.user, shard.password, twin)):
        client = BinaryClient(port, user, password, database)
        try:
            answers.append(_last_statement(client))
        finally:
            client.close()
    assert answers[0] == answers[1]
    assert answers[1][0] == [("prepared", 1, 1), [(42,)]], answers[1]

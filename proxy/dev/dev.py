"""``shardgate dev``: two throwaway local MariaDB shards, demo databases (one sharded over both
shards, its tables made through the proxy with DRDS DDL), and the proxy.

One ``shardgate dev`` per state directory: a second one on a live state is refused, saying where
the first one runs (``dev.lock``, held with ``flock`` while it runs: a crash releases it). The
built-in accounts' passwords are generated once and kept in ``dev-passwords.json`` (mode 0600,
like the catalog secret; printed at every start, never logged), so a second run prints the same
ones. Every failure is one line (``DevError`` and the errors it wraps), no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import click

from auth.catalog import Catalog
from auth.files import PRIVATE_FILE_MODE, exposure, make_private_dirs
from auth.passwords import verify_password
from auth.policy import POLARDBX
from proxy.backend.connection import (
    BackendConnection,
    BackendError,
    BackendQueryError,
    BackendTarget,
    shard_admin,
)
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from proxy.manage.provision import create_database, create_sharded_database
from proxy.ops.config import Config, load_config

DEMO_DATABASES = (("demo", "s0"), ("shop", "s1"))
# A sharded demo database over both shards (4 physical databases): its tables are created
# through the proxy itself, with DRDS's partitioning DDL, as a user would.
SHARDED_DEMO = "sales"
SHARDED_DEMO_SHARDS = ("s0", "s1")
SHARDED_DEMO_PARTITIONS = 4
_SHARDED_DEMO_DDL = [
    "CREATE TABLE IF NOT EXISTS customers (id BIGINT NOT NULL PRIMARY KEY, "
    "name VARCHAR(64) NOT NULL, city VARCHAR(32)) DBPARTITION BY HASH(id)",
    "CREATE TABLE IF NOT EXISTS orders (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "customer_id BIGINT NOT NULL, total DECIMAL(10,2) NOT NULL, placed DATE NOT NULL, "
    "KEY (customer_id)) DBPARTITION BY HASH(customer_id) "
    "TBPARTITION BY HASH(customer_id) TBPARTITIONS 2",
    "CREATE TABLE IF NOT EXISTS cities (name VARCHAR(32) PRIMARY KEY, country CHAR(2)) BROADCAST",
    "CREATE TABLE IF NOT EXISTS settings (name VARCHAR(32) PRIMARY KEY, value VARCHAR(64))",
]
_SHARDED_DEMO_ROWS = [
    "INSERT INTO cities VALUES ('Lisbon','PT'),('Oslo','NO'),('Kyoto','JP'),('Lima','PE')",
    "INSERT INTO settings VALUES ('currency','EUR'),('fiscal_year_start','01-01')",
    "INSERT INTO customers VALUES (1,'Ada','Lisbon'),(2,'Grace','Oslo'),(3,'Edsger','Kyoto'),"
    "(4,'Barbara','Lima'),(5,'Ken','Lisbon'),(6,'Frances','Oslo'),(7,'Donald','Kyoto'),"
    "(8,'Radia','Lima')",
    "INSERT INTO orders (customer_id, total, placed) VALUES (1,120.50,'2026-01-03'),"
    "(2,80.00,'2026-01-04'),(3,15.25,'2026-02-11'),(4,310.00,'2026-02-12'),"
    "(5,42.00,'2026-03-01'),(6,99.99,'2026-03-02'),(7,7.50,'2026-03-15'),"
    "(8,64.00,'2026-04-01'),(1,18.00,'2026-04-02'),(2,250.00,'2026-04-20')",
]

_DEMO_SQL = {
    "demo": [
        "CREATE TABLE IF NOT EXISTS employees (id INT PRIMARY KEY AUTO_INCREMENT, "
        "name VARCHAR(64) NOT NULL, dept VARCHAR(32), salary DECIMAL(10,2), hired DATE)",
        "INSERT IGNORE INTO employees VALUES "
        "(1,'Ada Lovelace','engineering',9800.00,'2021-03-01'),"
        "(2,'Grace Hopper','engineering',9900.00,'2020-07-15'),"
        "(3,'Edsger Dijkstra','research',8700.50,'2019-01-10'),"
        "(4,'Barbara Liskov','research',9100.00,'2022-11-30'),"
        "(5,'Ken Thompson','operations',8800.00,'2018-05-21')",
        "CREATE TABLE IF NOT EXISTS departments (name VARCHAR(32) PRIMARY KEY, floor INT)",
        "INSERT IGNORE INTO departments VALUES ('engineering',3),('research',4),('operations',1)",
    ],
    "shop": [
        "CREATE TABLE IF NOT EXISTS products (id INT PRIMARY KEY AUTO_INCREMENT, "
        "title VARCHAR(100) NOT NULL, price DECIMAL(8,2) NOT NULL)",
        "INSERT IGNORE INTO products VALUES (1,'Keyboard',49.90),(2,'Mouse',19.00),"
        "(3,'Monitor',229.00)",
    ],
}


LOCK_FILE = "dev.lock"
PASSWORDS_FILE = "dev-passwords.json"


class DevError(Exception):
    """``shardgate dev`` cannot start; the message is one line saying why and what to do."""


@contextlib.contextmanager
def _only_instance(state_dir: Path) -> Iterator[Path]:
    """Hold the state directory's lock while dev runs; DevError naming the pid and address of
    the one already running there. The lock file says who holds it (``_announce``)."""
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise DevError(
                f"shardgate dev is already running on {state_dir} ({_holder(path)}): stop it "
                "first (Ctrl-C in its terminal), or use another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid()}).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> str:
    try:
        running = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        running = {}
    pid = running.get("pid", "?")
    if "port" not in running:
        return f"pid {pid}, still starting"
    return f"pid {pid}, proxy on {running.get('host')}:{running['port']}"


def _announce(lock: Path, host: str, port: int) -> None:
    """Record in the lock file where this dev serves (for a second one's refusal)."""
    fd = os.open(lock, os.O_WRONLY)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": host, "port": port}).encode(), 0)
    finally:
        os.close(fd)


def _check_free(host: str, port: int, option: str) -> None:
    """DevError (before any shard starts) if ``host:port`` cannot be listened on."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DevError(
                f"cannot listen on {host}:{port} ({exc.strerror}): stop what uses it, or "
                f"choose another port with {option}"
            ) from None


def _write_config(
    path: Path, host: str, port: int, admin_port: int | None, shards: list[ShardEndpoint]
) -> None:
    lines = [
        "# Written by `shardgate dev`: throwaway local shards. Not for production.",
        "[server]",
        f'host = "{host}"',
        f"port = {port}",
        "",
        "[catalog]",
        'url = "sqlite:///catalog.db"',
        "",
    ]
    if admin_port is not None:
        lines += ["[admin]", "enabled = true", f'host = "{host}"', f"port = {admin_port}", ""]
    for index, shard in enumerate(shards):
        lines += [
            "[[shards]]",
            f'name = "s{index}"',
            f'host = "{shard.host}"',
            f"port = {shard.port}",
            f'user = "{shard.user}"',
            f'password = "{shard.password}"',
            "",
        ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines))


def _stored_passwords(state_dir: Path) -> dict[str, str]:
    """The built-in passwords kept from an earlier run (none yet: empty). DevError naming the
    chmod if the file is open to others."""
    path = state_dir / PASSWORDS_FILE
    problem = exposure([path])
    if problem is not None:
        raise DevError(problem)
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DevError(f"unreadable {path}: {exc}; delete it to get new passwords") from None
    if not isinstance(stored, dict):
        return {}
    return {str(k): str(v) for k, v in stored.items() if isinstance(v, str)}


def _store_passwords(state_dir: Path, passwords: dict[str, str]) -> None:
    """Write the passwords file (mode 0600 from its creation, replaced atomically)."""
    path = state_dir / PASSWORDS_FILE
    temporary = path.with_name(PASSWORDS_FILE + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as out:
        json.dump(passwords, out, indent=2, sort_keys=True)
    os.replace(temporary, path)


def _kept(catalog: Catalog, user: str, stored: dict[str, str]) -> str | None:
    """The stored password of built-in ``user`` if it still is its password in the catalog."""
    password = stored.get(user)
    account = catalog.snapshot().find_account(user, "%")
    if password is None or account is None:
        return None
    return password if verify_password(account.password_hash, password) else None


def _keep_builtins(catalog: Catalog, name: str, stored: dict[str, str]) -> dict[str, str]:
    """The passwords of existing database ``name``'s built-in accounts: the stored ones while
    they still match, new ones (set in the catalog) otherwise."""
    passwords = {}
    for user, read_only in ((name, False), (f"{name}_RO", True)):
        kept = _kept(catalog, user, stored)
        if kept is None:
            kept = POLARDBX.generate_password()
            catalog.reset_builtin_password(name, read_only=read_only, new_password=kept)
        passwords[user] = kept
    return passwords


async def _load_demo(config: Config, state_dir: Path) -> dict[str, str]:
    """Create the demo databases once; their built-in passwords are generated the first time
    (or when the stored one no longer matches, e.g. after ``database reset-password``) and
    kept in the passwords file. The sharded demo's tables are made later, through the proxy
    (``_load_sharded_demo``)."""
    stored = _stored_passwords(state_dir)
    # A state directory from an older shardgate: bring its catalog up to date.
    Catalog.migrate(config.catalog.url, config.base_dir)
    catalog = Catalog.open(config.catalog.url, config.base_dir, timeout=config.catalog.timeout)
    try:
        # dev sets its catalog up: the first run records the secret's verifier.
        catalog.check_secret(config.catalog_secret(), claim=True)
        passwords: dict[str, str] = {}
        for name, shard_name in DEMO_DATABASES:
            if catalog.snapshot().database(name) is not None:
                passwords.update(_keep_builtins(catalog, name, stored))
                continue
            admin_password = POLARDBX.generate_password()
            ro_password = POLARDBX.generate_password()
            await create_database(config, catalog, name, shard_name, admin_password, ro_password)
            admin = await shard_admin(config.shard(shard_name))
            try:
                for statement in _DEMO_SQL[name]:
                    await admin.query(f"USE `{name}`")
                    await admin.query(statement)
            finally:
                await admin.quit()
            passwords[name], passwords[f"{name}_RO"] = admin_password, ro_password
        name = SHARDED_DEMO
        if catalog.snapshot().database(name) is not None:
            passwords.update(_keep_builtins(catalog, name, stored))
        else:
            admin_password = POLARDBX.generate_password()
            ro_password = POLARDBX.generate_password()
            await create_sharded_database(
                config,
                catalog,
                name,
                SHARDED_DEMO_SHARDS,
                SHARDED_DEMO_PARTITIONS,
                admin_password,
                ro_password,
            )
            passwords[name], passwords[f"{name}_RO"] = admin_password, ro_password
    finally:
        catalog.close()
    _store_passwords(state_dir, passwords)
    return passwords


async def _load_sharded_demo(host: str, port: int, password: str) -> None:
    """Create the sharded demo's tables and rows through the running proxy, as its
    administrator would (DRDS DDL, inserts split by partition); rows only into empty tables,
    so a second run keeps what the person changed."""
    proxy = await BackendConnection.connect(
        BackendTarget(
            shard="dev",
            host=host,
            port=port,
            user=SHARDED_DEMO,
            password=password,
            database=SHARDED_DEMO,
        ),
        timeout=30,
    )
    try:
        for statement in _SHARDED_DEMO_DDL:
            await proxy.query(statement)
        empty = await proxy.query("SELECT COUNT(*) FROM customers")
        if empty.rows == [[b"0"]]:
            for statement in _SHARDED_DEMO_ROWS:
                await proxy.query(statement)
    finally:
        await proxy.quit()


def run_dev(state_dir: Path, host: str, port: int, admin_port: int | None = None) -> None:
    """Run dev in the foreground until Ctrl-C. ``admin_port``: also serve the dashboard there.
    Raises DevError (and CatalogError, ConfigError, LocalMariaDBError) with one line first."""
    state_dir = state_dir.resolve()
    make_private_dirs(state_dir)
    config_path = state_dir / "shardgate.toml"
    with _only_instance(state_dir) as lock:
        if config_path.exists():
            # A second run: refuse a catalog, secret or passwords file open to others before
            # starting anything (CatalogError / ConfigError naming the chmod to run).
            previous = load_config(config_path)
            Catalog.migrate(previous.catalog.url, previous.base_dir)
            previous.catalog_secret()
            _stored_passwords(state_dir)
        _check_free(host, port, "--port")
        if admin_port is not None:
            _check_free(host, admin_port, "--admin-port")
        _serve(state_dir, config_path, lock, host, port, admin_port)


def _serve(
    state_dir: Path, config_path: Path, lock: Path, host: str, port: int, admin_port: int | None
) -> None:
    shards = [LocalMariaDB(state_dir / f"s{i}") for i in range(2)]
    click.echo(f"Starting two local MariaDB shards under {state_dir} ...")
    try:
        endpoints = [shard.start() for shard in shards]
        _write_config(config_path, host, port, admin_port, endpoints)
        config = load_config(config_path)
        # A state directory from an older shardgate: bring its catalog up to date.
        Catalog.migrate(config.catalog.url, config.base_dir)
        passwords = asyncio.run(_load_demo(config, state_dir))

        from proxy.manage.admin.listener import admin_listener
        from proxy.server import ProxyServer, run_loop

        async def main() -> None:
            catalog = Catalog.open(
                config.catalog.url, config.base_dir, timeout=config.catalog.timeout
            )
            server = ProxyServer(config, catalog, admin=admin_listener)
            try:
                await server.start()
            except OSError as exc:  # the port was taken since it was checked
                raise DevError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            _announce(lock, host, server.port)
            try:
                await _load_sharded_demo(host, server.port, passwords[SHARDED_DEMO])
            except (BackendError, BackendQueryError) as exc:
                raise DevError(f"cannot load the sharded demo database: {exc}") from None
            dashboard = ""
            if server.admin is not None:
                dashboard = (
                    f"  dashboard: {server.admin.url}/ (sign in as demo with the password above)\n"
                )
            click.echo(
                "\nshardgate dev is running.\n"
                f"  config:    {config_path}\n"
                f"  proxy:     {host}:{server.port}\n"
                f"  connect:   mariadb -h {host} -P {server.port} -u demo "
                f"-p'{passwords['demo']}' demo\n"
                f"  read-only: mariadb -h {host} -P {server.port} -u demo_RO "
                f"-p'{passwords['demo_RO']}' demo\n"
                f"  shop:      mariadb -h {host} -P {server.port} -u shop "
                f"-p'{passwords['shop']}' shop\n"
                f"  sharded:   mariadb -h {host} -P {server.port} -u {SHARDED_DEMO} "
                f"-p'{passwords[SHARDED_DEMO]}' {SHARDED_DEMO}"
                "   (try SHOW TOPOLOGY FROM orders)\n"
                f"{dashboard}"
                "The passwords stay the same from run to run "
                f"({state_dir / PASSWORDS_FILE}).\n"
                "Press Ctrl-C to stop.",
            )
            await server.serve_until_stopped()

        run_loop(main())
    finally:
        for shard in shards:
            with contextlib.suppress(Exception):
                shard.stop()
        click.echo("shardgate dev stopped.")

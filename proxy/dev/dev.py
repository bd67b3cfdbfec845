"""``shardgate dev``: two throwaway local MariaDB shards, a demo database, and the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import click

from auth.catalog import Catalog
from auth.files import make_private_dirs
from auth.policy import POLARDBX
from proxy.backend.connection import shard_admin
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from proxy.manage.provision import create_database
from proxy.ops.config import load_config

DEMO_DATABASES = (("demo", "s0"), ("shop", "s1"))

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


def _write_config(path: Path, host: str, port: int, shards: list[ShardEndpoint]) -> None:
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


async def _load_demo(config_path: Path) -> dict[str, str]:
    """Create the demo databases once; reset the demo passwords every run (printed once)."""
    config = load_config(config_path)
    # A state directory from an older shardgate: bring its catalog up to date.
    Catalog.migrate(config.catalog.url, config.base_dir)
    catalog = Catalog.open(config.catalog.url, config.base_dir, timeout=config.catalog.timeout)
    passwords: dict[str, str] = {}
    for name, shard_name in DEMO_DATABASES:
        admin_password = POLARDBX.generate_password()
        ro_password = POLARDBX.generate_password()
        if catalog.snapshot().database(name) is None:
            await create_database(config, catalog, name, shard_name, admin_password, ro_password)
            admin = await shard_admin(config.shard(shard_name))
            try:
                for statement in _DEMO_SQL[name]:
                    await admin.query(f"USE `{name}`")
                    await admin.query(statement)
            finally:
                await admin.quit()
        else:
            catalog.reset_builtin_password(name, read_only=False, new_password=admin_password)
            catalog.reset_builtin_password(name, read_only=True, new_password=ro_password)
        passwords[name] = admin_password
        passwords[f"{name}_RO"] = ro_password
    return passwords


def run_dev(state_dir: Path, host: str, port: int) -> None:
    state_dir = state_dir.resolve()
    make_private_dirs(state_dir)
    config_path = state_dir / "shardgate.toml"
    if config_path.exists():
        # A second run: refuse a catalog or secret file open to others before starting
        # anything (CatalogError / ConfigError naming the chmod to run).
        previous = load_config(config_path)
        Catalog.migrate(previous.catalog.url, previous.base_dir)
        previous.catalog_secret()
    shards = [LocalMariaDB(state_dir / f"s{i}") for i in range(2)]
    click.echo(f"Starting two local MariaDB shards under {state_dir} ...")
    try:
        endpoints = [shard.start() for shard in shards]
        _write_config(config_path, host, port, endpoints)
        passwords = asyncio.run(_load_demo(config_path))
        config = load_config(config_path)

        from proxy.manage.admin.listener import admin_listener
        from proxy.server import ProxyServer, run_loop

        async def main() -> None:
            catalog = Catalog.open(
                config.catalog.url, config.base_dir, timeout=config.catalog.timeout
            )
            server = ProxyServer(config, catalog, admin=admin_listener)
            await server.start()
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
                "Press Ctrl-C to stop.",
            )
            await server.serve_until_stopped()

        run_loop(main())
    finally:
        for shard in shards:
            with contextlib.suppress(Exception):
                shard.stop()
        click.echo("shardgate dev stopped.")

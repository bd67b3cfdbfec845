"""The ``shardgate`` command line."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from auth.catalog import Catalog, CatalogError
from auth.errors import SqlError
from auth.policy import profile_by_name
from proxy.config import Config, ConfigError, load_config
from proxy.provision import ProvisionError, create_database


class CliState:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            if self.config_path is None:
                raise click.UsageError("this command needs --config FILE")
            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(f"config: {exc}") from None
        return self._config

    def catalog(self) -> Catalog:
        return Catalog.open(self.config.catalog.url, self.config.base_dir)


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The shardgate TOML configuration file.",
)
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str) -> None:
    """shardgate: an account-enforcing MySQL proxy."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = CliState(config_path)


@main.command()
@click.pass_obj
def serve(state: CliState) -> None:
    """Run the proxy in the foreground; SIGTERM drains and exits 0."""
    from proxy.server import run_server

    config = state.config
    run_server(config)


@main.group()
def database() -> None:
    """Logical databases."""


def _read_password_line(label: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException(f"expected the {label} password on standard input")
    return line.rstrip("\r\n")


@database.command("create")
@click.argument("name")
@click.option("--shard", "shard_name", required=True, help="The shard that holds the database.")
@click.option("--admin-password-stdin", is_flag=True, help="Read the administrator password.")
@click.option("--ro-password-stdin", is_flag=True, help="Read the read-only account password.")
@click.pass_obj
def database_create(
    state: CliState, name: str, shard_name: str, admin_password_stdin: bool, ro_password_stdin: bool
) -> None:
    """Create logical database NAME on SHARD with its built-in accounts."""
    config = state.config
    policy = profile_by_name(config.server.policy)
    generated: list[tuple[str, str]] = []
    if admin_password_stdin:
        admin_password = _read_password_line("administrator")
    else:
        admin_password = policy.generate_password()
        generated.append((name, admin_password))
    if ro_password_stdin:
        ro_password = _read_password_line("read-only")
    else:
        ro_password = policy.generate_password()
        generated.append((f"{name}_RO", ro_password))
    for password in (admin_password, ro_password):
        try:
            policy.validate_password(password)
        except SqlError as exc:
            raise click.ClickException(exc.message) from None
    try:
        config.shard(shard_name)
        catalog = state.catalog()
        asyncio.run(
            create_database(config, catalog, name, shard_name, admin_password, ro_password)
        )
    except (ConfigError, ProvisionError, CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # backend errors: say which, never a password
        raise click.ClickException(f"could not create database {name!r}: {exc}") from None
    click.echo(f"Database {name!r} created on shard {shard_name!r}.")
    for user, password in generated:
        click.echo(f'Account "{user}" created with password "{password}".')


@main.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".shardgate/dev"),
    show_default=True,
    help="Where the throwaway shards and the catalog live; a second run reuses them.",
)
@click.option("--port", default=3307, show_default=True, help="The proxy's port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The proxy's address.")
def dev(state_dir: Path, port: int, host: str) -> None:
    """Start two local MariaDB shards, a demo database and the proxy (Ctrl-C stops all)."""
    from proxy.dev import run_dev

    run_dev(state_dir, host, port)


if __name__ == "__main__":  # pragma: no cover
    main()

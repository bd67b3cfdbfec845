"""The ``shardgate`` command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from auth.accounts import AccountManager, Actor
from auth.catalog import Catalog, CatalogError, CatalogSecretError, CatalogSnapshot
from auth.errors import SqlError
from auth.policy import profile_by_name
from proxy.backend.connection import BackendError
from proxy.backend.mirror import MirrorManager
from proxy.manage.admin.users import (
    UserAdmin,
    UserAdminError,
    display_name,
    refusals,
    reset_builtin_password,
)
from proxy.manage.provision import (
    ProvisionError,
    builtin_ids,
    create_database,
    create_sharded_database,
    describe_sessions,
    drop_database,
    open_sessions,
    sharded_layout,
    topology_summary,
)
from proxy.ops.config import LOG_LEVELS, Config, ConfigError, LogConfig, load_config
from proxy.ops.logs import configure_logging


class CliState:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self.log_level: str | None = None  # --log-level, overriding [log] level
        self.secret_claimed = False  # the last catalog() recorded this node's secret's verifier

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

    def catalog(self, *, claim_secret: bool = False) -> Catalog:
        """The configured catalog, once this process's catalog secret is known to be the one
        the catalog was set up with (``claim_secret``: a catalog with no record of it yet
        takes this one's: ``serve``, ``catalog migrate``). ClickException, one line, if not."""
        config = self.config
        try:
            catalog = Catalog.open(
                config.catalog.url, config.base_dir, timeout=config.catalog.timeout
            )
        except CatalogError as exc:
            raise click.ClickException(exc.message) from None
        try:
            self.secret_claimed = catalog.check_secret(config.catalog_secret(), claim=claim_secret)
        except ConfigError as exc:
            catalog.close()
            raise click.ClickException(f"config: {exc}") from None
        except CatalogSecretError as exc:
            catalog.close()
            raise click.ClickException(
                f"{exc.message}; this node reads it from {config.catalog.secret_source()}"
            ) from None
        except CatalogError as exc:
            catalog.close()
            raise click.ClickException(exc.message) from None
        return catalog


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The shardgate TOML configuration file.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Logging level (default: [log] level for serve, else INFO).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str | None) -> None:
    """shardgate: an account-enforcing MySQL proxy."""
    configure_logging(LogConfig(), log_level)
    ctx.obj = CliState(config_path)
    ctx.obj.log_level = log_level


@main.command()
@click.option("--worker", "worker_slot", hidden=True, help="I/N: run as worker I of N.")
@click.pass_obj
def serve(state: CliState, worker_slot: str | None) -> None:
    """Run the proxy in the foreground; SIGTERM drains and exits 0.

    With [server] workers = N > 1, runs N worker processes on the same port."""
    from proxy.manage.admin.listener import admin_listener
    from proxy.ops.workers import RUNTIME_ENV, WorkerSlot, run_supervisor
    from proxy.server import run_server

    config = state.config
    # Refuse, with one clear line, a catalog that cannot be opened, whose schema is older or
    # newer than this code's (run `catalog migrate`), whose file, secret file or password file
    # is open to others (run chmod), or that was set up with another catalog secret, before
    # binding any port. The first node to start records its secret's verifier.
    state.catalog(claim_secret=True).close()
    try:
        configure_logging(config.log, state.log_level)
    except OSError as exc:  # the log file's directory cannot be written
        raise click.ClickException(f"log.file: {exc.strerror}: {config.log.file}") from None
    workers = config.server.workers
    if workers > 1 and worker_slot is None:
        assert state.config_path is not None  # state.config needed it
        sys.exit(
            run_supervisor(state.config_path, workers, state.log_level, config.server.drain_timeout)
        )
    slot = None
    if worker_slot is not None:
        runtime = os.environ.get(RUNTIME_ENV)
        if runtime is None:
            raise click.ClickException(f"--worker needs {RUNTIME_ENV} (set by the supervisor)")
        try:
            slot = WorkerSlot.parse(worker_slot, Path(runtime))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    run_server(config, state.config_path, state.log_level, slot, admin_listener)


@main.group()
def catalog() -> None:
    """The account catalog itself."""


@catalog.command("migrate")
@click.pass_obj
def catalog_migrate(state: CliState) -> None:
    """Create or upgrade the catalog schema to this version of shardgate.

    Safe to run on a catalog in use and from several nodes at once: migrations are applied in
    order, each once. Upgrade the code on every node after migrating.
    """
    try:
        before, after = Catalog.migrate(state.config.catalog.url, state.config.base_dir)
    except CatalogError as exc:
        raise click.ClickException(exc.message) from None
    if before == after:
        click.echo(f"Catalog schema is up to date (version {after}).")
    else:
        click.echo(f"Catalog schema migrated from version {before} to {after}.")
    state.catalog(claim_secret=True).close()
    if state.secret_claimed:
        click.echo(
            "Catalog secret recorded (a verifier, not the secret): every node sharing this "
            f"catalog needs the secret of {state.config.catalog.secret_source()}."
        )


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
@click.option("--shard", "shard_name", help="The shard that holds the (unsharded) database.")
@click.option(
    "--shards",
    "shard_list",
    help="Shard the database over these shards (comma-separated, in placement order).",
)
@click.option(
    "--db-partitions",
    "db_partitions",
    type=click.IntRange(1),
    help="Physical databases of a sharded database (default 4 per shard; a multiple of the"
    " number of shards).",
)
@click.option("--admin-password-stdin", is_flag=True, help="Read the administrator password.")
@click.option("--ro-password-stdin", is_flag=True, help="Read the read-only account password.")
@click.pass_obj
def database_create(
    state: CliState,
    name: str,
    shard_name: str | None,
    shard_list: str | None,
    db_partitions: int | None,
    admin_password_stdin: bool,
    ro_password_stdin: bool,
) -> None:
    """Create logical database NAME with its built-in accounts: on one shard (--shard), or
    sharded over several (--shards s0,s1 [--db-partitions D]) as physical databases
    NAME_0000 ... (DRDS's layout)."""
    if (shard_name is None) == (shard_list is None):
        raise click.UsageError("give either --shard or --shards")
    if db_partitions is not None and shard_list is None:
        raise click.UsageError("--db-partitions goes with --shards")
    shards = [s.strip() for s in shard_list.split(",")] if shard_list is not None else []
    if shard_list is not None and not all(shards):
        raise click.UsageError(f"--shards: a comma-separated list of shard names: {shard_list!r}")
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
    catalog: Catalog | None = None
    try:
        if shard_name is not None:
            config.shard(shard_name)
            catalog = state.catalog()
            asyncio.run(
                create_database(config, catalog, name, shard_name, admin_password, ro_password)
            )
            where = f"on shard {shard_name!r}"
        else:
            sharded_layout(config, name, shards, db_partitions)  # refuse before any I/O
            catalog = state.catalog()
            created = asyncio.run(
                create_sharded_database(
                    config, catalog, name, shards, db_partitions, admin_password, ro_password
                )
            )
            where = (
                f"with {len(created.physical_databases)} physical databases: "
                + topology_summary(created)
            )
    except (ConfigError, ProvisionError, CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # backend errors: say which, never a password
        raise click.ClickException(f"could not create database {name!r}: {exc}") from None
    finally:
        if catalog is not None:
            catalog.close()
    click.echo(f"Database {name!r} created {where}.")
    for user, password in generated:
        click.echo(f'Account "{user}" created with password "{password}".')


_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)


def _created(at: str | None) -> str:
    """An ISO 8601 UTC time as ``YYYY-MM-DD HH:MM:SS`` (``-`` when not known)."""
    return "-" if at is None else at[:19].replace("T", " ")


@database.command("list")
@_format_option
@click.pass_obj
def database_list(state: CliState, output_format: str) -> None:
    """List the logical databases: shard, creation time (UTC) and sessions open per node.

    Sessions are what each running proxy node last reported to the catalog (every few
    seconds, and whenever its count changes); a node that stopped reporting for 30 s counts
    no more."""
    catalog = state.catalog()
    try:
        catalog.refresh()
        databases = catalog.snapshot().databases()
        created = catalog.databases_created()
        sessions = catalog.open_sessions()
    except CatalogError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        catalog.close()
    if output_format == "json":
        listed = [
            {
                "name": db.name,
                "shards": [db.shard],
                "created": created.get(db.key),
                "sessions": sum(sessions.get(db.key, {}).values()),
                "sessions_per_node": sessions.get(db.key, {}),
            }
            for db in databases
        ]
        click.echo(json.dumps(listed, indent=2))
        return
    click.echo(
        _format_table(
            ("NAME", "SHARDS", "CREATED (UTC)", "SESSIONS (PER NODE)"),
            [
                (
                    db.name,
                    db.shard,
                    _created(created.get(db.key)),
                    describe_sessions(sessions.get(db.key, {})),
                )
                for db in databases
            ],
        )
    )


@database.command("drop")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask to type the name (for scripts).")
@click.option(
    "--force",
    is_flag=True,
    help="End the sessions open in the database (each gets an error) instead of refusing.",
)
@click.pass_obj
def database_drop(state: CliState, name: str, yes: bool, force: bool) -> None:
    """Drop database NAME: its data on the shard, its built-in accounts, the accounts it owns,
    every grant on it, and their accounts on the shard; every proxy node sees it within a
    second. Refused while sessions are open in it, unless --force."""
    config = state.config
    catalog = state.catalog()
    try:
        found = catalog.snapshot().database(name)
        if found is None:
            raise click.ClickException(f"unknown database {name!r}")
        sessions = open_sessions(catalog, found)
        if sessions and not force:  # before asking anything
            raise click.ClickException(
                f"database {found.name!r} has {describe_sessions(sessions)} session(s) open: "
                "end them first, or use --force to end them"
            )
        if not yes:
            typed = click.prompt(
                f"This drops database {found.name!r} on shard {found.shard!r}: its data, its "
                "accounts and every grant on it. Type its name to confirm",
                default="",
                show_default=False,
                err=True,
            )
            if typed != found.name:
                raise click.ClickException("the name typed does not match; nothing was dropped")
        dropped = asyncio.run(drop_database(config, catalog, found.name, force=force))
    except (ConfigError, ProvisionError, CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, BackendError) as exc:  # the shard cannot be reached: nothing changed
        raise click.ClickException(f"could not drop database {name!r}: {exc}") from None
    finally:
        catalog.close()
    ended = f"; {dropped.sessions} session(s) ended" if dropped.sessions else ""
    click.echo(
        f"Database {dropped.name!r} dropped from shard {dropped.shard!r} "
        f"({len(dropped.shard_accounts)} shard account(s) dropped{ended})."
    )


@database.command("reset-password")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="Reset NAME_RO (the read-only account) instead.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the new password (one line) from standard input."
)
@click.pass_obj
def database_reset_password(
    state: CliState, name: str, read_only: bool, password_stdin: bool
) -> None:
    """Reset the password of a protected built-in account of database NAME.

    Without --password-stdin (or with an empty line) a password is generated and printed once.
    It also makes sure the built-in accounts' mirrors on the shard hold what they should
    (e.g. for a database created by an older shardgate).
    """
    policy = profile_by_name(state.config.server.policy)
    password = _read_password_line("new") if password_stdin else ""
    catalog = state.catalog()
    try:
        user, generated = reset_builtin_password(catalog, policy, name, read_only, password or None)
        found = catalog.snapshot().database(name)
        if found is not None:
            asyncio.run(_mirrors(state, catalog).sync(builtin_ids(catalog, found)))
    except UserAdminError as exc:
        raise _refuse(exc) from None
    finally:
        catalog.close()
    if generated is None:
        click.echo(f'Account "{user}" updated.')
    else:
        click.echo(f'Account "{user}" updated with password "{generated}".')


# --- users: user management of one logical database (the same operations as SQL) ---


def _mirrors(state: CliState, catalog: Catalog) -> MirrorManager:
    """The mirrored accounts of ``catalog``'s accounts (a sync failure is logged and left to
    the proxies' reconcilers; the change itself stays applied)."""
    config = state.config
    return MirrorManager(lambda: config, catalog)


class _Users:
    """The operator's user management over the configured catalog."""

    def __init__(self, state: CliState) -> None:
        policy = profile_by_name(state.config.server.policy)
        self.catalog = state.catalog()
        self.accounts = AccountManager(self.catalog, policy)
        self.admin = UserAdmin(self.accounts)
        self.actor = Actor.operator()
        self.mirrors = _mirrors(state, self.catalog)

    def sync_mirrors(self, before: CatalogSnapshot) -> None:
        """The accounts whose grants changed since ``before``: their mirrors follow."""
        asyncio.run(self.mirrors.catalog_changed(before))

    def __enter__(self) -> _Users:
        return self

    def __exit__(self, *exc: object) -> None:
        self.catalog.close()


def _refuse(
    exc: UserAdminError,
    ops: _Users | None = None,
    database: str = "",
    username: str = "",
    host: str = "%",
) -> click.ClickException:
    """The refusal as one line; a user that is not at ``host`` but exists at other hosts of
    the database says which, and how to name one (``--host``)."""
    if ops is not None and exc.status == 404 and username:
        try:
            rows = ops.admin.list_users(ops.actor, database)
        except UserAdminError:
            rows = []
        hosts = [r.host for r in rows if r.username == username and r.host != host]
        if hosts:
            where = f"host {hosts[0]}" if len(hosts) == 1 else "hosts " + ", ".join(hosts)
            return click.ClickException(
                f'No user "{username}" at host {host} in database "{database}"; it exists at '
                f"{where}: name {'it' if len(hosts) == 1 else 'one'} with --host {hosts[0]}"
            )
    return click.ClickException(f"{exc.message} ({exc.detail})" if exc.detail else exc.message)


def _ask_password(password_stdin: bool) -> str | None:
    """The chosen password, or None to generate one (an empty answer)."""
    if password_stdin:
        value = _read_password_line("new")
    else:
        value = click.prompt(
            "Password (leave empty to generate one)",
            default="",
            show_default=False,
            hide_input=True,
            confirmation_prompt="Repeat for confirmation",
            err=True,
        )
    return value or None


def _centred(text: str, width: int) -> str:
    left = (width - len(text)) // 2
    return " " * left + text + " " * (width - len(text) - left)


def _format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``+---+`` bordered table: headers centred, values left-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    header = "|".join(_centred(h, w + 2) for h, w in zip(headers, widths, strict=True))
    lines = [border, f"|{header}|", border]
    for row in rows:
        cells = "|".join(f" {v.ljust(w)} " for v, w in zip(row, widths, strict=True))
        lines.append(f"|{cells}|")
    lines.append(border)
    return "\n".join(lines)


def _flag(value: bool) -> str:
    return "true" if value else "false"


_database_option = click.option(
    "--database", "database", required=True, help="The logical database whose users to manage."
)
_host_option = click.option(
    "--host", default="%", show_default=True, help="The account's host pattern (IP addresses)."
)
_password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password (one line) from standard input; an empty line generates one.",
)


@main.group()
def users() -> None:
    """Users of a logical database (the same rules as the SQL account statements)."""


@users.command("list")
@_database_option
@_format_option
@click.pass_obj
def users_list(state: CliState, database: str, output_format: str) -> None:
    """List the users of a database."""
    with _Users(state) as ops:
        try:
            rows = ops.admin.list_users(ops.actor, database)
        except UserAdminError as exc:
            raise _refuse(exc) from None
    if output_format == "json":
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
        return
    click.echo(
        _format_table(
            ("USERNAME", "HOST", "READ-ONLY", "PROTECTED"),
            [(r.username, r.host, _flag(r.read_only), _flag(r.protected)) for r in rows],
        )
    )


@users.command("create")
@click.argument("username")
@_database_option
@click.option("--read-only", is_flag=True, help="SELECT only (default: all eight privileges).")
@_host_option
@_password_stdin_option
@click.option(
    "--max-connections",
    "max_connections",
    type=click.IntRange(0, 4294967295),
    default=0,
    show_default=True,
    help="MAX_USER_CONNECTIONS: connections at once per proxy node (0: the server default).",
)
@click.pass_obj
def users_create(
    state: CliState,
    username: str,
    database: str,
    read_only: bool,
    host: str,
    password_stdin: bool,
    max_connections: int,
) -> None:
    """Create USERNAME in a database; an empty password generates one, printed once."""
    with _Users(state) as ops:
        try:
            ops.admin.list_users(ops.actor, database)  # unknown database: before any prompt
            password = _ask_password(password_stdin)
            before = ops.catalog.snapshot()
            _, generated = ops.admin.create_user(
                ops.actor, database, username, host, password, read_only, max_connections
            )
            ops.sync_mirrors(before)
        except UserAdminError as exc:
            raise _refuse(exc) from None
    name = display_name(username, host)
    if generated is None:
        click.echo(f'User "{name}" created.')
    else:
        click.echo(f'User "{name}" created with password "{generated}".')


@users.command("update-password")
@click.argument("username")
@_database_option
@_host_option
@_password_stdin_option
@click.option(
    "--retain-current",
    is_flag=True,
    help="Keep the current password valid too (for rotation) until discard-old-password.",
)
@click.pass_obj
def users_update_password(
    state: CliState,
    username: str,
    database: str,
    host: str,
    password_stdin: bool,
    retain_current: bool,
) -> None:
    """Set the password of USERNAME; an empty password generates one, printed once."""
    with _Users(state) as ops:
        try:
            # An unknown database or user: before any prompt.
            listed = ops.admin.list_users(ops.actor, database)
            if not any(r.username == username and r.host == host for r in listed):
                raise UserAdminError(
                    f'No user "{display_name(username, host)}" in database "{database}".', 404
                )
            password = _ask_password(password_stdin)
            if retain_current:
                with refusals("update-password", database, username, host):
                    generated = ops.accounts.update_password(
                        ops.actor, database, username, host, password, retain_current=True
                    )
            else:
                generated = ops.admin.update_password(ops.actor, database, username, host, password)
        except UserAdminError as exc:
            raise _refuse(exc, ops, database, username, host) from None
    name = display_name(username, host)
    if generated is None:
        click.echo(f'User "{name}" updated.')
    else:
        click.echo(f'User "{name}" updated with password "{generated}".')


@users.command("discard-old-password")
@click.argument("username")
@_database_option
@_host_option
@click.pass_obj
def users_discard_old_password(state: CliState, username: str, database: str, host: str) -> None:
    """Stop accepting the password USERNAME had before update-password --retain-current."""
    with _Users(state) as ops:
        try:
            ops.admin.list_users(ops.actor, database)
            with refusals("update-password", database, username, host):
                ops.accounts.discard_old_password_of(ops.actor, database, username, host)
        except UserAdminError as exc:
            raise _refuse(exc, ops, database, username, host) from None
    click.echo(f'User "{display_name(username, host)}" now has only its current password.')


@users.command("unlock")
@click.argument("username")
@_database_option
@_host_option
@click.pass_obj
def users_unlock(state: CliState, username: str, database: str, host: str) -> None:
    """End the lock of USERNAME after failed logins (built-in accounts too)."""
    with _Users(state) as ops:
        try:
            was_locked = ops.admin.unlock_user(ops.actor, database, username, host)
        except UserAdminError as exc:
            raise _refuse(exc, ops, database, username, host) from None
    name = display_name(username, host)
    if was_locked:
        click.echo(f'User "{name}" unlocked.')
    else:
        click.echo(f'User "{name}" was not locked.')


@users.command("set-limit")
@click.argument("username")
@click.argument("max_connections", type=click.IntRange(0, 4294967295))
@_database_option
@_host_option
@click.pass_obj
def users_set_limit(
    state: CliState, username: str, max_connections: int, database: str, host: str
) -> None:
    """Set USERNAME's MAX_USER_CONNECTIONS (per proxy node; 0: the server default)."""
    with _Users(state) as ops:
        try:
            ops.admin.set_user_limit(ops.actor, database, username, max_connections, host)
        except UserAdminError as exc:
            raise _refuse(exc, ops, database, username, host) from None
    shown = str(max_connections) if max_connections else "the server default"
    click.echo(f'User "{display_name(username, host)}" now has max_user_connections {shown}.')


@users.command("delete")
@click.argument("username")
@_database_option
@_host_option
@click.pass_obj
def users_delete(state: CliState, username: str, database: str, host: str) -> None:
    """Delete USERNAME from a database."""
    with _Users(state) as ops:
        try:
            before = ops.catalog.snapshot()
            ops.admin.delete_user(ops.actor, database, username, host)
            ops.sync_mirrors(before)
        except UserAdminError as exc:
            raise _refuse(exc, ops, database, username, host) from None
    click.echo(f'User "{display_name(username, host)}" deleted.')


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
@click.option("--admin", is_flag=True, help="Also serve the dashboard (its URL is printed).")
@click.option("--admin-port", default=8080, show_default=True, help="The dashboard's port.")
def dev(state_dir: Path, port: int, host: str, admin: bool, admin_port: int) -> None:
    """Start two local MariaDB shards, a demo database and the proxy (Ctrl-C stops all)."""
    from proxy.dev.dev import DevError, run_dev
    from proxy.dev.localshard import LocalMariaDBError

    try:
        run_dev(state_dir, host, port, admin_port if admin else None)
    except CatalogError as exc:
        raise click.ClickException(exc.message) from None
    except (ConfigError, DevError, LocalMariaDBError, OSError) as exc:
        # One line: a shard's failure carries its error log's tail, which the log path names.
        raise click.ClickException(str(exc).splitlines()[0]) from None


if __name__ == "__main__":  # pragma: no cover
    main()

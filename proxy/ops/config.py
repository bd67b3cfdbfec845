"""Configuration: a TOML file read with stdlib ``tomllib`` into frozen dataclasses.

Every key is validated; unknown keys are rejected with the dotted path of the offender, so a
typo never silently falls back to a default. The result is one immutable snapshot.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from auth.files import PRIVATE_FILE_MODE, exposure, make_private_dirs
from auth.store import StoreError
from auth.urls import parse_mysql_url, with_password_source


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3307
    # Version string shown to clients. Empty: the first shard's own version (plus
    # "-shardgate"), so drivers pick collations and SQL the backend really understands.
    server_version: str = ""
    # mysql_native_password or caching_sha2_password: what the handshake proposes.
    auth_plugin: Literal["mysql_native_password", "caching_sha2_password"] = "mysql_native_password"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_tls: bool = False
    handshake_timeout: float = 10.0
    # Largest packet accepted before authentication (the handshake response is small).
    max_handshake_packet: int = 16384
    max_packet: int = 64 * 1024 * 1024
    backend_connect_timeout: float = 5.0
    policy: Literal["polardbx", "managed"] = "polardbx"
    drain_timeout: float = 30.0
    # Client connections at once (0: no limit); one more gets 1040 "Too many connections".
    max_connections: int = 0
    # A logged-in client silent for this long is disconnected with 4031 (0: never).
    idle_timeout: float = 28800.0
    # A statement still running after this long is interrupted (0: no limit).
    query_timeout: float = 0.0
    # A shard that has not answered a waiting statement for this long is health-checked
    # (a fresh connection must get its greeting within backend_connect_timeout); if the check
    # fails, every statement waiting on that shard gets an error at once (0: never check).
    shard_check_after: float = 5.0
    # Worker processes serving the port together (SO_REUSEPORT; proxy/ops/workers.py);
    # ``workers = "auto"`` in the file: one per CPU this process may run on (auto_workers()).
    workers: int = 1
    # Lock an account after this many consecutive failed logins (wrong password from an
    # address its host pattern matches) for login_lock_seconds; 0: never (the default, as in
    # MySQL: with the usual user@'%' accounts anyone who can reach the port and knows a name
    # could lock it, so this is the operator's choice, not a surprise).
    login_max_failures: int = 0
    login_lock_seconds: float = 300.0
    # Connections at once per account on this node for accounts without their own
    # MAX_USER_CONNECTIONS (0: no limit); one more gets 1226.
    max_user_connections: int = 0
    # After this many failed logins from one client address (an IPv6 client: its /64), each
    # further attempt from it -- any user, right password or not -- first waits
    # login_throttle_delay seconds per failure beyond this number, at most
    # login_throttle_max_delay; the count is forgotten after login_throttle_window seconds
    # without a failure from the address (0: off). It never locks an account.
    login_throttle_failures: int = 5
    login_throttle_window: float = 300.0
    login_throttle_delay: float = 1.0
    login_throttle_max_delay: float = 10.0


@dataclass(frozen=True)
class CatalogConfig:
    # sqlite:///path, or mysql://user@host:port/dbname. For MySQL, the URL kept here carries
    # the password's source (password_env / password_file as query parameters), never the
    # password itself, so ``Catalog.open(url, base_dir)`` works wherever it is called.
    url: str = "sqlite:///catalog.db"
    # A secret from which each database's backend account password is derived; read from
    # this environment variable, else from ``secret_file`` (created on first use, mode 0600).
    secret_env: str | None = None
    secret_file: Path = Path("shardgate.secret")
    # The MySQL catalog account's password: from this environment variable, or this file.
    password_env: str | None = None
    password_file: Path | None = None
    # Seconds one catalog request may take: connecting, an answer, a lock another client holds
    # on catalog tables (MySQL), another writer's lock (SQLite). An account statement that cannot
    # reach the catalog fails after about this long with an error saying nothing was changed.
    timeout: float = 5.0

    def secret_source(self) -> str:
        """Where this process reads the catalog secret from, for messages (never the value)."""
        if self.secret_env:
            return f"the environment variable {self.secret_env} (catalog.secret_env)"
        return f"{self.secret_file} (catalog.secret_file)"


@dataclass(frozen=True)
class ShardConfig:
    name: str
    host: str
    port: int
    user: str
    password: str = field(default="", repr=False)
    # The backend connection pool (proxy/backend/pool.py): connections per backend account
    # and database; connections to this shard from one proxy node (split between its
    # workers), which clients beyond wait for, at most pool_wait_timeout seconds, before a
    # 1040; seconds an idle pooled connection is kept.
    pool_size: int = 16
    max_connections: int = 100
    pool_wait_timeout: float = 5.0
    idle_lifetime: float = 300.0


@dataclass(frozen=True)
class AdminConfig:
    """``[admin]``: the user-management dashboard and JSON API (``proxy.manage.admin``)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    # HTTPS: give both (the session cookie is then also marked Secure).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The secret signing session cookies: read from this environment variable; when unset,
    # derived from the catalog secret (Config.catalog_secret()).
    session_secret_env: str | None = None
    # Seconds a dashboard sign-in stays valid.
    session_max_age: int = 8 * 3600
    # Failed sign-ins allowed per client address, and per account, within login_window seconds;
    # further attempts are refused (HTTP 429) until the window has moved on.
    login_max_failures: int = 5
    login_window: float = 300.0


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class LogConfig:
    """``[log]``: how ``shardgate serve`` logs (``proxy.ops.logs``); reloaded on SIGHUP."""

    format: Literal["text", "json"] = "text"
    level: str = "INFO"
    # Append to this file (reopened when rotated away); unset: standard error.
    file: Path | None = None


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: Prometheus ``GET /metrics`` on the admin HTTP listener (``[admin]`` host,
    port and TLS). With ``[admin] enabled = false`` that listener then serves /metrics only."""

    enabled: bool = False
    # Require ``Authorization: Bearer <token>``, the token read from this environment variable
    # (unset: no authentication; fine while the listener binds 127.0.0.1).
    token_env: str | None = None

    def token(self) -> str | None:
        if not self.token_env:
            return None
        value = os.environ.get(self.token_env)
        if not value:
            raise ConfigError(
                f"metrics.token_env: environment variable {self.token_env} is not set"
            )
        return value


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    catalog: CatalogConfig
    shards: tuple[ShardConfig, ...]
    base_dir: Path
    admin: AdminConfig = field(default_factory=AdminConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def shard(self, name: str) -> ShardConfig:
        for shard in self.shards:
            if shard.name == name:
                return shard
        known = ", ".join(s.name for s in self.shards) or "none"
        raise ConfigError(f"unknown shard {name!r} (configured: {known})")

    def catalog_secret(self) -> bytes:
        """The backend-password secret: from the environment, else a private file."""
        if self.catalog.secret_env:
            value = os.environ.get(self.catalog.secret_env)
            if not value:
                raise ConfigError(
                    f"catalog.secret_env: environment variable {self.catalog.secret_env} is not set"
                )
            return value.encode()
        path = self.catalog.secret_file
        if not path.exists():
            make_private_dirs(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "w") as out:
                out.write(os.urandom(32).hex())
        problem = exposure([path])
        if problem is not None:
            raise ConfigError(f"catalog.secret_file: {problem}")
        return path.read_text().strip().encode()


_TOP_LEVEL = {"server", "catalog", "shards", "admin", "metrics", "log"}


def _check_keys(section: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = f"[{section}]" if section else "top level"
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} in {where}: {', '.join(unknown)}"
        )


def auto_workers() -> int:
    """``workers = "auto"``: one worker per CPU this process may run on (its affinity mask,
    which a container's cpuset narrows), at most 256."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 256))


def _typed(section: str, key: str, value: Any, expected: type | tuple[type, ...]) -> Any:
    # bool is an int subclass; never accept it where a number is meant.
    if isinstance(value, bool) and expected is not bool:
        raise ConfigError(f"{section}.{key}: expected {_type_name(expected)}, got a boolean")
    if not isinstance(value, expected):
        raise ConfigError(
            f"{section}.{key}: expected {_type_name(expected)}, got {type(value).__name__}"
        )
    return value


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return expected.__name__


def _resolve(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path)


def _server(data: dict[str, Any], base_dir: Path) -> ServerConfig:
    names = {f.name for f in fields(ServerConfig)}
    _check_keys("server", data, names)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("host", "server_version"):
            kwargs[key] = _typed("server", key, value, str)
        elif key in (
            "port",
            "max_handshake_packet",
            "max_packet",
            "max_connections",
            "login_max_failures",
            "max_user_connections",
            "login_throttle_failures",
        ):
            kwargs[key] = _typed("server", key, value, int)
        elif key == "workers":
            if value == "auto":
                kwargs[key] = auto_workers()
            elif isinstance(value, str):
                raise ConfigError('server.workers: expected an int or "auto"')
            else:
                kwargs[key] = _typed("server", key, value, int)
        elif key in (
            "handshake_timeout",
            "backend_connect_timeout",
            "drain_timeout",
            "idle_timeout",
            "query_timeout",
            "shard_check_after",
            "login_lock_seconds",
            "login_throttle_window",
            "login_throttle_delay",
            "login_throttle_max_delay",
        ):
            kwargs[key] = float(_typed("server", key, value, (int, float)))
        elif key == "require_tls":
            kwargs[key] = _typed("server", key, value, bool)
        elif key in ("tls_cert", "tls_key"):
            kwargs[key] = _resolve(base_dir, _typed("server", key, value, str))
        elif key == "auth_plugin":
            if value not in ("mysql_native_password", "caching_sha2_password"):
                raise ConfigError(
                    "server.auth_plugin: must be mysql_native_password or caching_sha2_password"
                )
            kwargs[key] = value
        elif key == "policy":
            if value not in ("polardbx", "managed"):
                raise ConfigError("server.policy: must be polardbx or managed")
            kwargs[key] = value
    server = ServerConfig(**kwargs)
    if not 1 <= server.workers <= 256:
        raise ConfigError("server.workers: must be between 1 and 256")
    if server.workers > 1 and server.port == 0:
        raise ConfigError("server.workers: several workers need a fixed server.port")
    for name in (
        "max_connections",
        "idle_timeout",
        "query_timeout",
        "shard_check_after",
        "login_max_failures",
        "max_user_connections",
        "login_throttle_failures",
    ):
        if getattr(server, name) < 0:
            raise ConfigError(f"server.{name}: must not be negative (0 turns it off)")
    for name in ("login_lock_seconds", "login_throttle_window", "login_throttle_delay"):
        if not getattr(server, name) > 0:
            raise ConfigError(f"server.{name}: must be positive")
    if not server.login_throttle_delay <= server.login_throttle_max_delay < math.inf:
        raise ConfigError(
            "server.login_throttle_max_delay: must be finite and not below login_throttle_delay"
        )
    if not 0 <= server.port <= 65535:
        raise ConfigError(f"server.port: {server.port} is not a TCP port")
    if (server.tls_cert is None) != (server.tls_key is None):
        raise ConfigError("server.tls_cert and server.tls_key must be given together")
    if server.require_tls and server.tls_cert is None:
        raise ConfigError("server.require_tls needs server.tls_cert and server.tls_key")
    return server


def _catalog(data: dict[str, Any], base_dir: Path) -> CatalogConfig:
    _check_keys(
        "catalog",
        data,
        {"url", "secret_env", "secret_file", "password_env", "password_file", "timeout"},
    )
    url = _typed("catalog", "url", data.get("url", "sqlite:///catalog.db"), str)
    password_env = data.get("password_env")
    if password_env is not None:
        _typed("catalog", "password_env", password_env, str)
    password_file = None
    if "password_file" in data:
        password_file = _resolve(
            base_dir, _typed("catalog", "password_file", data["password_file"], str)
        )
    if url.startswith("mysql://"):
        url = _mysql_catalog_url(url, password_env, password_file)
    elif url.startswith("sqlite:///"):
        if password_env is not None or password_file is not None:
            raise ConfigError(
                "catalog.password_env / password_file: only for a mysql:// catalog URL"
            )
    else:
        raise ConfigError("catalog.url: expected sqlite:///<path> or mysql://user@host/dbname")
    secret_env = data.get("secret_env")
    if secret_env is not None:
        _typed("catalog", "secret_env", secret_env, str)
    secret_file = _resolve(
        base_dir, _typed("catalog", "secret_file", data.get("secret_file", "shardgate.secret"), str)
    )
    timeout = float(_typed("catalog", "timeout", data.get("timeout", 5.0), (int, float)))
    if not 0 < timeout < math.inf:
        raise ConfigError("catalog.timeout: must be a positive number of seconds")
    return CatalogConfig(
        url=url,
        secret_env=secret_env,
        secret_file=secret_file,
        password_env=password_env,
        password_file=password_file,
        timeout=timeout,
    )


def _mysql_catalog_url(url: str, password_env: str | None, password_file: Path | None) -> str:
    """Check a mysql:// URL (never echoing it: it could hold a password) and append where the
    password comes from."""
    if password_env is not None and password_file is not None:
        raise ConfigError("catalog: give password_env or password_file, not both")
    try:
        if urlsplit(url).query:
            raise ConfigError(
                "catalog.url: no query parameters; use the password_env / password_file keys"
            )
    except ValueError:
        raise ConfigError("catalog.url: not a valid URL") from None
    try:
        parse_mysql_url(url)
    except StoreError as error:
        raise ConfigError(f"catalog.url: {error}") from None
    return with_password_source(url, password_env, password_file)


def _shard(index: int, data: Any, base_dir: Path) -> ShardConfig:
    section = f"shards[{index}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: expected a table")
    _check_keys(
        section,
        data,
        {"name", "host", "port", "user", "password", "password_env", "password_file"}
        | set(_POOL_KEYS),
    )
    for required in ("name", "host", "port", "user"):
        if required not in data:
            raise ConfigError(f"{section}.{required}: missing")
    sources = [key for key in ("password", "password_env", "password_file") if key in data]
    if len(sources) > 1:
        raise ConfigError(f"{section}: give password or password_env, not both")
    password = ""
    if "password" in data:
        password = _typed(section, "password", data["password"], str)
    elif "password_env" in data:
        env = _typed(section, "password_env", data["password_env"], str)
        if env not in os.environ:
            raise ConfigError(f"{section}.password_env: environment variable {env} is not set")
        password = os.environ[env]
    elif "password_file" in data:
        # A file holding the password (a Docker/Kubernetes secret); one trailing newline ignored.
        path = _resolve(base_dir, _typed(section, "password_file", data["password_file"], str))
        try:
            password = path.read_text().removesuffix("\n")
        except OSError as exc:
            raise ConfigError(f"{section}.password_file: {exc.strerror}: {path}") from None
    port = _typed(section, "port", data["port"], int)
    if not 0 < port <= 65535:
        raise ConfigError(f"{section}.port: {port} is not a TCP port")
    pool: dict[str, Any] = {}
    for key, kind in _POOL_KEYS.items():
        if key in data:
            value = _typed(section, key, data[key], (int, float) if kind is float else int)
            if not value > 0:
                raise ConfigError(f"{section}.{key}: must be positive")
            pool[key] = kind(value)
    if pool.get("pool_size", 1) > pool.get("max_connections", 10**9):
        raise ConfigError(f"{section}.pool_size: larger than max_connections")
    return ShardConfig(
        name=_typed(section, "name", data["name"], str),
        host=_typed(section, "host", data["host"], str),
        port=port,
        user=_typed(section, "user", data["user"], str),
        password=password,
        **pool,
    )


_POOL_KEYS: dict[str, type] = {
    "pool_size": int,
    "max_connections": int,
    "pool_wait_timeout": float,
    "idle_lifetime": float,
}


def _admin(data: dict[str, Any], base_dir: Path) -> AdminConfig:
    names = {f.name for f in fields(AdminConfig)}
    _check_keys("admin", data, names)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "enabled":
            kwargs[key] = _typed("admin", key, value, bool)
        elif key in ("host", "session_secret_env"):
            kwargs[key] = _typed("admin", key, value, str)
        elif key in ("port", "session_max_age", "login_max_failures"):
            kwargs[key] = _typed("admin", key, value, int)
        elif key == "login_window":
            kwargs[key] = float(_typed("admin", key, value, (int, float)))
        elif key in ("tls_cert", "tls_key"):
            kwargs[key] = _resolve(base_dir, _typed("admin", key, value, str))
    admin = AdminConfig(**kwargs)
    if not 0 <= admin.port <= 65535:
        raise ConfigError(f"admin.port: {admin.port} is not a TCP port")
    if (admin.tls_cert is None) != (admin.tls_key is None):
        raise ConfigError("admin.tls_cert and admin.tls_key must be given together")
    if admin.session_max_age <= 0:
        raise ConfigError("admin.session_max_age: must be positive")
    if admin.login_max_failures <= 0:
        raise ConfigError("admin.login_max_failures: must be positive")
    if admin.login_window <= 0:
        raise ConfigError("admin.login_window: must be positive")
    return admin


def _metrics(data: Any) -> MetricsConfig:
    if not isinstance(data, dict):
        raise ConfigError("metrics: expected a table")
    _check_keys("metrics", data, {"enabled", "token_env"})
    enabled = _typed("metrics", "enabled", data.get("enabled", False), bool)
    token_env = data.get("token_env")
    if token_env is not None and not _typed("metrics", "token_env", token_env, str):
        raise ConfigError("metrics.token_env: must not be empty")
    return MetricsConfig(enabled=enabled, token_env=token_env)


def _log(data: Any, base_dir: Path) -> LogConfig:
    if not isinstance(data, dict):
        raise ConfigError("log: expected a table")
    _check_keys("log", data, {"format", "level", "file"})
    log_format = data.get("format", "text")
    if log_format not in ("text", "json"):
        raise ConfigError("log.format: must be text or json")
    level = _typed("log", "level", data.get("level", "INFO"), str).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log.level: must be one of {', '.join(LOG_LEVELS)}")
    file = data.get("file")
    path = _resolve(base_dir, _typed("log", "file", file, str)) if file is not None else None
    return LogConfig(format=log_format, level=level, file=path)


def parse_config(data: dict[str, Any], base_dir: Path) -> Config:
    _check_keys("", data, _TOP_LEVEL)
    server_data = data.get("server", {})
    catalog_data = data.get("catalog", {})
    shards_data = data.get("shards", [])
    admin_data = data.get("admin", {})
    if not isinstance(admin_data, dict):
        raise ConfigError("admin: expected a table")
    if not isinstance(server_data, dict):
        raise ConfigError("server: expected a table")
    if not isinstance(catalog_data, dict):
        raise ConfigError("catalog: expected a table")
    if not isinstance(shards_data, list):
        raise ConfigError("shards: expected an array of tables ([[shards]])")
    shards = tuple(_shard(i, s, base_dir) for i, s in enumerate(shards_data))
    names = [s.name for s in shards]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"shards: duplicate name {', '.join(duplicates)}")
    return Config(
        server=_server(server_data, base_dir),
        catalog=_catalog(catalog_data, base_dir),
        shards=shards,
        base_dir=base_dir,
        admin=_admin(admin_data, base_dir),
        metrics=_metrics(data.get("metrics", {})),
        log=_log(data.get("log", {}), base_dir),
    )


def load_config(path: Path) -> Config:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_config(data, path.resolve().parent)

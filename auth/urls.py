"""Catalog URLs: which store a URL names, its parts, and where a MySQL catalog's password is.

``sqlite:///relative/path.db`` (under the configuration's directory) or ``sqlite:////abs.db``
names an SQLite file; ``mysql://user@host:port/dbname`` a MySQL/MariaDB database, whose password
is never in the URL but named by one query parameter, ``password_env=NAME`` or
``password_file=/abs/path`` (``with_password_source`` adds it from ``[catalog]``'s keys). Pure
text handling, apart from ``MysqlUrl.password()``: the configuration checks URLs with it
without depending on a store, and ``auth.stores`` opens the store a URL names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from auth.files import exposure
from auth.store import StoreError

SQLITE_PREFIX = "sqlite:///"
MYSQL_PREFIX = "mysql://"


def sqlite_path(url: str, base_dir: Path) -> Path:
    """``sqlite:////abs/path.db`` -> /abs/path.db; ``sqlite:///rel/path.db`` -> base_dir/rel/..."""
    if not url.startswith(SQLITE_PREFIX):
        raise StoreError("unsupported catalog URL: expected sqlite:///<path> or mysql://...")
    rest = url[len(SQLITE_PREFIX) :]
    if rest in ("", "/"):
        raise StoreError(f"catalog URL {url!r} names no file")
    path = Path(rest)
    return path if path.is_absolute() else base_dir / path


@dataclass(frozen=True)
class MysqlUrl:
    """A parsed ``mysql://user@host:port/dbname`` catalog URL (never holding a password)."""

    user: str
    host: str
    port: int
    database: str
    password_env: str | None = None
    password_file: Path | None = None

    def password(self) -> str:
        """The password from the environment variable or the file ("" if neither is named)."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise StoreError(
                    f"catalog password: environment variable {self.password_env} is not set"
                )
            return value
        if self.password_file is not None:
            problem = exposure([self.password_file])
            if problem is not None:
                raise StoreError(f"catalog password file: {problem}")
            try:
                return self.password_file.read_text().rstrip("\r\n")
            except OSError as error:
                raise StoreError(
                    f"catalog password: cannot read {self.password_file}: {error.strerror}"
                ) from None
        return ""

    def display(self) -> str:
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def is_mysql_url(url: str) -> bool:
    return url.startswith(MYSQL_PREFIX)


def parse_mysql_url(url: str) -> MysqlUrl:
    """Parse a catalog URL; refuses (without repeating it) one that carries a password."""
    if not is_mysql_url(url):
        raise StoreError("a MySQL catalog URL starts with mysql://")
    # ``user:secret@host``: never echo the URL, it holds a password. Checked on the raw text:
    # a password may hold '#', '/' or '?', which would fool a URL parser.
    rest = url[len(MYSQL_PREFIX) :]
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        raise StoreError(
            "the catalog URL must not contain a password: give it with [catalog] "
            "password_env or password_file"
        )
    parts = urlsplit(url)
    if not parts.username:
        raise StoreError("catalog URL: name the user, as in mysql://user@host:3306/dbname")
    if not parts.hostname:
        raise StoreError("catalog URL: name the host, as in mysql://user@host:3306/dbname")
    try:
        port = parts.port or 3306
    except ValueError:
        raise StoreError("catalog URL: the port is not a number") from None
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise StoreError("catalog URL: name the database, as in mysql://user@host:3306/dbname")
    if parts.fragment:
        raise StoreError("catalog URL: unexpected '#' part")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - {"password_env", "password_file"})
    if unknown:
        raise StoreError(f"catalog URL: unknown parameter {', '.join(unknown)}")
    if any(len(values) != 1 for values in query.values()):
        raise StoreError("catalog URL: a parameter is given twice")
    if "password_env" in query and "password_file" in query:
        raise StoreError("catalog URL: give password_env or password_file, not both")
    env = query.get("password_env", [None])[0]
    file = query.get("password_file", [None])[0]
    if file is not None and not Path(file).is_absolute():
        raise StoreError("catalog URL: password_file must be an absolute path")
    return MysqlUrl(
        user=unquote(parts.username),
        host=parts.hostname,
        port=port,
        database=database,
        password_env=env or None,
        password_file=Path(file) if file else None,
    )


def with_password_source(url: str, password_env: str | None, password_file: Path | None) -> str:
    """``url`` (a MySQL catalog URL without query parameters) naming where its password comes
    from: the environment variable ``password_env`` or the file ``password_file``."""
    if password_env is not None:
        return f"{url}?{urlencode({'password_env': password_env})}"
    if password_file is not None:
        return f"{url}?{urlencode({'password_file': str(password_file)})}"
    return url

"""Logging for ``shardgate serve``/``dev``: text or JSON lines, connection context, redaction.

Configuration (``[log]``, see ``proxy.ops.config.LogConfig``): ``format = "text" | "json"``,
``level`` (DEBUG, INFO, WARNING, ERROR), optional ``file`` (appended to, created 0600 in
directories created 0700; reopened when logrotate moves it, ``WatchedFileHandler``), else
standard error. ``configure_logging()``
installs one handler on the root logger and can be called again (SIGHUP) to switch format,
level or file; it leaves handlers it did not install (pytest's, for example) alone.

A JSON line::

    {"ts": "2025-05-01T12:00:00.123Z", "level": "INFO", "logger": "shardgate.session",
     "message": "login ok: ...", "conn_id": 7, "client": "10.0.0.5", "account": "app@'%'"}

``conn_id``, ``client`` and ``account`` appear when known; ``exc`` carries a traceback;
``event``/``result``/``database``/``shard`` when a record sets them (the audit lines do).
Text lines end with ``[conn=7 client=10.0.0.5 account=app@'%']`` when known.

Connection context -- what the session must call:

* The accept wrapper in ``proxy/server.py`` already calls ``bind_connection(conn_id, client_ip)``
  at the start of each connection's task, so every record logged from that task (and from
  tasks it creates) carries ``conn_id`` and ``client``. A Protocol-based server without one
  task per connection must call it wherever a connection's code runs, or use
  ``connection_logger()`` below instead.
* After a successful login: ``bind_account(account_name)`` (e.g. ``"app@'%'"``), then
  ``audit_login(True, user, client_ip)``; after a refused login ``audit_login(False, user,
  client_ip, reason)`` (reason: a short phrase such as ``"wrong password"``, never the
  password or the auth response).
* Where context variables do not follow the code (protocol callbacks):
  ``log = connection_logger("shardgate.session", conn_id, client_ip)`` and later
  ``log.bind_account(account_name)``; ``log.info(...)`` etc. add the same fields.

Audit: logins are logged on the ``shardgate.audit`` logger (``event="login"``); account
changes are recorded in the catalog's audit table (who, from where, what; ``Catalog.audit()``)
and, once committed, echoed on the same logger by the catalog (``event="account_change"``),
whichever way they were made (SQL, CLI, dashboard).

Redaction safety net: every record passes ``redact()`` before it is written: the quoted
string after ``IDENTIFIED [WITH plugin] BY|AS [PASSWORD]``, inside ``PASSWORD(...)``, and the
value of ``SET PASSWORD ... = '...'`` become ``'***'`` (an unterminated quote: the rest of the
line). It is a net, not a licence: code must still never log a password.
"""

from __future__ import annotations

import contextvars
import datetime
import io
import json
import logging
import logging.handlers
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

from auth.files import make_private_dirs, open_private_append
from proxy.ops.config import LOG_LEVELS, LogConfig

__all__ = [
    "AUDIT_LOGGER",
    "ConnectionLog",
    "audit_login",
    "bind_account",
    "bind_connection",
    "configure_logging",
    "connection_logger",
    "redact",
    "remove_logging",
]

AUDIT_LOGGER: Final = "shardgate.audit"
EXTRA_FIELDS: Final = ("event", "result", "database", "shard")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# ---------------------------------------------------------------------------- redaction

_QUOTED = r"""(?:'(?:[^'\\\n]|\\.|'')*'|"(?:[^"\\\n]|\\.|"")*"|['"][^\n]*)"""
_SECRET_PATTERNS: Final = (
    re.compile(
        r"(\bIDENTIFIED\s+(?:WITH\s+\S+\s+)?(?:BY|AS)\s+(?:PASSWORD\s+)?)" + _QUOTED,
        re.IGNORECASE,
    ),
    re.compile(r"(\bPASSWORD\s*\(\s*)" + _QUOTED, re.IGNORECASE),
    # (the FOR clause between PASSWORD and = is bounded: an unbounded [^=]* made a line of
    # many "SET PASSWORD"s without "=" quadratic to scan)
    re.compile(r"(\bSET\s+PASSWORD\b[^=\n]{0,512}=\s*)" + _QUOTED, re.IGNORECASE),
)


def redact(text: str) -> str:
    """``text`` with passwords in account statements replaced by ``'***'``."""
    if "'" not in text and '"' not in text:
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1'***'", text)
    return text


# ---------------------------------------------------------------------------- context


class _Connection:
    __slots__ = ("account", "client", "conn_id")

    def __init__(self, conn_id: int, client: str, account: str | None = None) -> None:
        self.conn_id = conn_id
        self.client = client
        self.account = account


_current: contextvars.ContextVar[_Connection | None] = contextvars.ContextVar(
    "shardgate_connection", default=None
)


def bind_connection(conn_id: int, client: str) -> None:
    """Records logged from now on in this task (and tasks it starts) carry these fields."""
    _current.set(_Connection(conn_id, client))


def bind_account(account: str) -> None:
    """Add the logged-in account to the current connection's records."""
    current = _current.get()
    if current is not None:
        current.account = account


class ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that adds one connection's fields, for code without a task per connection."""

    def __init__(self, logger: logging.Logger, conn_id: int, client: str) -> None:
        super().__init__(logger, {})
        self.connection = _Connection(conn_id, client)

    def bind_account(self, account: str) -> None:
        self.connection.account = account

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("conn_id", self.connection.conn_id)
        extra.setdefault("client", self.connection.client)
        if self.connection.account is not None:
            extra.setdefault("account", self.connection.account)
        kwargs["extra"] = extra
        return msg, kwargs


def connection_logger(name: str, conn_id: int, client: str) -> ConnectionLog:
    return ConnectionLog(logging.getLogger(name), conn_id, client)


# ---------------------------------------------------------------------------- audit

_audit = logging.getLogger(AUDIT_LOGGER)


def audit_login(ok: bool, user: str, client: str, reason: str = "") -> None:
    """One line per login attempt on ``shardgate.audit``; never a password."""
    if ok:
        _audit.info("login ok: %s from %s", user, client, extra={"event": "login", "result": "ok"})
    else:
        _audit.warning(
            "login failed: %s from %s%s",
            user,
            client,
            f" ({reason})" if reason else "",
            extra={"event": "login", "result": "failed"},
        )


# ---------------------------------------------------------------------------- handler


class _ContextFilter(logging.Filter):
    """Fills conn_id/client/account from the context variable and redacts the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current.get()
        if current is not None:
            if not hasattr(record, "conn_id"):
                record.conn_id = current.conn_id
                record.client = current.client
            if current.account is not None and not hasattr(record, "account"):
                record.account = current.account
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned is not message or record.args:
            record.msg, record.args = cleaned, None
        return True


def _context_suffix(record: logging.LogRecord) -> str:
    parts = [
        f"{label}={getattr(record, key)}"
        for key, label in (("conn_id", "conn"), ("client", "client"), ("account", "account"))
        if getattr(record, key, None) is not None
    ]
    return f" [{' '.join(parts)}]" if parts else ""


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        suffix = _context_suffix(record)
        if suffix:
            first, newline, rest = text.partition("\n")
            text = first + suffix + newline + rest
        return redact(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ("conn_id", "client", "account", *EXTRA_FIELDS):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _PrivateFileHandler(logging.handlers.WatchedFileHandler):
    """A ``WatchedFileHandler`` whose file, when it creates one (at start, or after the file
    was rotated away), is created mode 0600: logs name accounts and client addresses."""

    def _open(self) -> io.TextIOWrapper:
        return open_private_append(self.baseFilename, self.encoding)


def _handler(settings: LogConfig) -> logging.Handler:
    handler: logging.Handler
    if settings.file is not None:
        make_private_dirs(settings.file.parent)
        handler = _PrivateFileHandler(settings.file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    return handler


_installed: list[logging.Handler] = []


def configure_logging(settings: LogConfig, level_override: str | None = None) -> None:
    """Install (or replace) shardgate's handler on the root logger."""
    level = (level_override or settings.level).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    new = _handler(settings)
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed[:] = [new]
    root.addHandler(new)
    root.setLevel(level)


def remove_logging() -> None:
    """Take shardgate's handler off the root logger again (tests, embedding)."""
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed.clear()

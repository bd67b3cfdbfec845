"""The one place that maps error names to MySQL error numbers, SQLSTATEs and texts.

Every error the proxy sends a client is built here, so a driver sees exactly the number and
SQLSTATE it would get from MySQL (or, for concepts only PolarDB-X has, the PolarDB-X code in the
format ``ERR-CODE: [TDDL-<code>][<KEY>] <text>`` with SQLSTATE HY000).

This module is pure: no I/O, importable from ``auth`` and ``proxy`` alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class ErrorCode(Enum):
    """name -> (errno, SQLSTATE)."""

    # MySQL server errors
    CON_COUNT = (1040, "08004")
    SERVER_SHUTDOWN = (1053, "08S01")
    HANDSHAKE = (1043, "08S01")
    DBACCESS_DENIED = (1044, "42000")
    ACCESS_DENIED = (1045, "28000")
    NO_DB = (1046, "3D000")
    UNKNOWN_COM = (1047, "08S01")
    BAD_DB = (1049, "42000")
    BAD_FIELD = (1054, "42S22")
    TOO_LONG_IDENT = (1059, "42000")
    PARSE = (1064, "42000")
    WRONG_VALUE_COUNT_ON_ROW = (1136, "21S01")
    TABLE_EXISTS = (1050, "42S01")
    BAD_TABLE = (1051, "42S02")
    EMPTY_QUERY = (1065, "42000")
    NONUNIQ_TABLE = (1066, "42000")
    DB_CREATE_EXISTS = (1007, "HY000")
    NO_SUCH_THREAD = (1094, "HY000")
    KILL_DENIED = (1095, "HY000")
    UNKNOWN_ERROR = (1105, "HY000")
    ERROR_DURING_COMMIT = (1180, "HY000")
    PASSWORD_NO_MATCH = (1133, "42000")
    NONEXISTING_GRANT = (1141, "42000")
    TABLEACCESS_DENIED = (1142, "42000")
    COLUMNACCESS_DENIED = (1143, "42000")
    NONEXISTING_TABLE_GRANT = (1147, "42000")
    NO_SUCH_TABLE = (1146, "42S02")
    NET_PACKET_TOO_LARGE = (1153, "08S01")
    NET_READ_ERROR = (1158, "08S01")
    NET_READ_INTERRUPTED = (1159, "08S01")
    LOCK_DEADLOCK = (1213, "40001")
    NOT_SUPPORTED_YET = (1235, "42000")
    UNKNOWN_STMT_HANDLER = (1243, "HY000")
    UNSUPPORTED_PS = (1295, "HY000")  # ER_UNSUPPORTED_PS
    NEED_REPREPARE = (1615, "HY000")  # ER_NEED_REPREPARE
    INVALID_CHARACTER_STRING = (1300, "HY000")
    CANNOT_USER = (1396, "HY000")
    SPECIFIC_ACCESS_DENIED = (1227, "42000")
    USER_LIMIT_REACHED = (1226, "42000")  # ER_USER_LIMIT_REACHED
    # ER_USER_ACCESS_DENIED_FOR_USER_ACCOUNT_BLOCKED_BY_PASSWORD_LOCK (MySQL 8.0.19+)
    ACCOUNT_BLOCKED = (3955, "HY000")
    QUERY_INTERRUPTED = (1317, "70100")
    # MySQL 8.0.24+: a connection closed after wait_timeout seconds of inactivity.
    CLIENT_INTERACTION_TIMEOUT = (4031, "HY000")
    USER_ALREADY_EXISTS = (3163, "HY000")  # used as a note
    USER_DOES_NOT_EXIST = (3162, "HY000")  # used as a note
    SECURE_TRANSPORT_REQUIRED = (3159, "HY000")
    SECOND_PASSWORD_CANNOT_BE_EMPTY = (3878, "HY000")
    # Client-side style errors the proxy sends when the backend is gone
    SERVER_GONE = (2006, "HY000")
    SERVER_LOST = (2013, "HY000")
    # PolarDB-X (TDDL) errors: errno = code, SQLSTATE HY000
    TDDL_UNSUPPORTED_PRIVILEGE = (5101, "HY000")
    TDDL_USER_NOT_EXISTS = (5104, "HY000")
    TDDL_NO_ACCESS_TO_DATABASE = (5106, "HY000")
    TDDL_OPERATION_NOT_ALLOWED = (5107, "HY000")
    TDDL_INVALID_HOST = (5109, "HY000")
    TDDL_INVALID_USERNAME = (5202, "HY000")
    TDDL_INVALID_PASSWORD = (5203, "HY000")

    @property
    def errno(self) -> int:
        return self.value[0]

    @property
    def sqlstate(self) -> str:
        return self.value[1]


_TDDL_KEYS = {
    ErrorCode.TDDL_UNSUPPORTED_PRIVILEGE: "ERR_UNSUPPORTED_PRIVILEGE",
    ErrorCode.TDDL_USER_NOT_EXISTS: "ERR_USER_NOT_EXISTS",
    ErrorCode.TDDL_NO_ACCESS_TO_DATABASE: "ERR_NO_ACCESS_TO_DATABASE",
    ErrorCode.TDDL_OPERATION_NOT_ALLOWED: "ERR_OPERATION_NOT_ALLOWED",
    ErrorCode.TDDL_INVALID_HOST: "ERR_INVALID_HOST",
    ErrorCode.TDDL_INVALID_USERNAME: "ERR_INVALID_USERNAME",
    ErrorCode.TDDL_INVALID_PASSWORD: "ERR_INVALID_PASSWORD",
}


@dataclass(frozen=True)
class SqlError(Exception):
    """An error destined for a client: errno, SQLSTATE and message text."""

    errno: int
    sqlstate: str
    message: str

    def __str__(self) -> str:
        return f"({self.errno}, {self.sqlstate}) {self.message}"


def sql_error(code: ErrorCode, message: str) -> SqlError:
    """Build an error; PolarDB-X codes get the ``ERR-CODE: [TDDL-n][KEY]`` prefix."""
    key = _TDDL_KEYS.get(code)
    if key is not None:
        message = f"ERR-CODE: [TDDL-{code.errno}][{key}] {message}"
    return SqlError(code.errno, code.sqlstate, message)


# Frequently used texts, so every caller spells them identically.


def access_denied(user: str, client_ip: str, using_password: bool) -> SqlError:
    yes_no = "YES" if using_password else "NO"
    return sql_error(
        ErrorCode.ACCESS_DENIED,
        f"Access denied for user '{user}'@'{client_ip}' (using password: {yes_no})",
    )


def db_access_denied(user: str, host: str, db: str) -> SqlError:
    return sql_error(
        ErrorCode.DBACCESS_DENIED, f"Access denied for user '{user}'@'{host}' to database '{db}'"
    )


def database_exists(db: str) -> SqlError:
    return sql_error(ErrorCode.DB_CREATE_EXISTS, f"Can't create database '{db}'; database exists")


def unknown_database(db: str) -> SqlError:
    return sql_error(ErrorCode.BAD_DB, f"Unknown database '{db}'")


def database_dropped(db: str) -> SqlError:
    """The session's current database was dropped (``shardgate database drop``)."""
    return sql_error(
        ErrorCode.BAD_DB, f"Unknown database '{db}': it was dropped, and this session has ended"
    )


def no_database_selected() -> SqlError:
    return sql_error(ErrorCode.NO_DB, "No database selected")


def table_access_denied(priv: str, user: str, client_ip: str, table: str) -> SqlError:
    return sql_error(
        ErrorCode.TABLEACCESS_DENIED,
        f"{priv} command denied to user '{user}'@'{client_ip}' for table '{table}'",
    )


def column_access_denied(priv: str, user: str, client_ip: str, column: str, table: str) -> SqlError:
    """MariaDB's 1143: a column the statement reads without the privilege (the column and the
    table as the statement names them)."""
    return sql_error(
        ErrorCode.COLUMNACCESS_DENIED,
        f"{priv} command denied to user '{user}'@'{client_ip}' for column '{column}'"
        f" in table '{table}'",
    )


@dataclass(frozen=True)
class CrossDatabaseError(SqlError):
    """A statement names another database than the current one: 1235, "USE it first". The
    database is kept so that the decision, which knows the caller, can answer 1044 instead
    when the caller may not use it (``proxy.plan.plan``): never advice to run a USE that
    would be refused."""

    database: str = ""


def cross_database(db: str) -> SqlError:
    code = ErrorCode.NOT_SUPPORTED_YET
    return CrossDatabaseError(
        code.errno,
        code.sqlstate,
        f"Cross-database queries are not supported; USE {db} first",
        db,
    )


_PARSE_PREFIX = (
    "You have an error in your SQL syntax; check the manual that corresponds to your MySQL "
)


def parse_error(near: str, line: int = 1, server: str = "MySQL") -> SqlError:
    """1064 as the server says it (``server``: "MySQL", or "MariaDB" for a MariaDB shard)."""
    return sql_error(
        ErrorCode.PARSE,
        "You have an error in your SQL syntax; check the manual that corresponds to your "
        f"{server} server version for the right syntax to use near '{near[:80]}' at line {line}",
    )


def worded_for(error: SqlError, server: str) -> SqlError:
    """``error``, a 1064 of :func:`parse_error` worded for ``server`` instead of MySQL (the
    account grammar's, which does not know the shard); any other error as it is."""
    if server == "MySQL" or error.errno != ErrorCode.PARSE.errno:
        return error
    if not error.message.startswith(_PARSE_PREFIX):
        return error
    rest = error.message[len(_PARSE_PREFIX) :]
    return SqlError(error.errno, error.sqlstate, _PARSE_PREFIX[:-6] + server + " " + rest)


def packet_too_large() -> SqlError:
    """1153, as MariaDB and MySQL answer a packet over ``max_allowed_packet`` (then closing)."""
    return sql_error(
        ErrorCode.NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes"
    )


def not_supported(what: str) -> SqlError:
    return sql_error(
        ErrorCode.NOT_SUPPORTED_YET, f"This version of shardgate doesn't yet support '{what}'"
    )


def restricted_to_admin() -> SqlError:
    return sql_error(
        ErrorCode.TDDL_OPERATION_NOT_ALLOWED,
        "The authorization operations is restricted to administrator only.",
    )


def account_blocked(
    user: str, client_ip: str, lock_seconds: float, remaining: float, failures: int
) -> SqlError:
    """MySQL 8's error for an account locked after failed logins (3955, HY000). MySQL counts
    the lock in days; shardgate's lock is configured in seconds, so the text says seconds
    (rounded up) in MySQL's sentence. Drivers go by the number, which is MySQL's."""
    return sql_error(
        ErrorCode.ACCOUNT_BLOCKED,
        f"Access denied for user '{user}'@'{client_ip}'. Account is blocked for "
        f"{math.ceil(lock_seconds)} second(s) ({math.ceil(max(remaining, 0.0))} second(s) "
        f"remaining) due to {failures} consecutive failed logins.",
    )


def user_limit_reached(user: str, limit: int) -> SqlError:
    """1226: one connection more than the account's ``max_user_connections``."""
    return sql_error(
        ErrorCode.USER_LIMIT_REACHED,
        f"User '{user}' has exceeded the 'max_user_connections' resource (current value: {limit})",
    )

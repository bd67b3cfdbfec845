"""The answers the proxy gives itself: result sets built from its own state, as pure functions.

SHOW PROCESSLIST (the sessions the caller may see, passwords redacted from their statements),
SHOW DATABASES, SHOW QUERY_DIGEST, the notes of the proxy's own last statement (SHOW WARNINGS),
SHOW GRANTS, SHOW EVENTS (no rows). Each returns the packets of one text result set; the session
writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auth.model import Account
from proxy.ops.logs import redact
from proxy.wire.packets import FIELD_TYPE_LONGLONG, FIELD_TYPE_VAR_STRING, build_text_resultset

Row = Sequence[str | None]


def result_set(
    columns: Sequence[str],
    rows: Iterable[Row],
    capabilities: int,
    status: int,
    numeric: frozenset[str] = frozenset(),
) -> list[bytes]:
    """A text result set; ``numeric`` columns are BIGINT, the others VARCHAR."""
    typed = [(c, FIELD_TYPE_LONGLONG if c in numeric else FIELD_TYPE_VAR_STRING) for c in columns]
    return build_text_resultset(
        columns=typed,
        rows=[list(row) for row in rows],
        capabilities=capabilities,
        status=status,
    )


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What SHOW PROCESSLIST shows of one session (and what decides who sees it)."""

    connection_id: int
    account: Account
    user: str
    client: str  # ip:port
    db: str | None
    command: str  # "Sleep", "Query", "Execute", ...
    seconds: int
    info: str | None


def visible(me: Account, other: SessionInfo) -> bool:
    """Own sessions; a database's administrator also sees every session in its database."""
    if other.account.id == me.id:
        return True
    return other.db is not None and me.is_admin_of(other.db)


PROCESSLIST_COLUMNS = ("Id", "User", "Host", "db", "Command", "Time", "State", "Info", "Progress")
PROCESSLIST_NUMERIC = frozenset({"Id", "Time"})


def processlist_rows(sessions: Iterable[SessionInfo], self_id: int, full: bool) -> list[Row]:
    """MariaDB's SHOW [FULL] PROCESSLIST columns; the asking session shows its own statement.

    ``Info`` is redacted (the quoted password of ``SET PASSWORD``, ``IDENTIFIED BY``,
    ``PASSWORD(...)`` becomes ``'***'``) and cut to 100 characters unless FULL."""
    rows: list[Row] = []
    for s in sorted(sessions, key=lambda s: s.connection_id):
        me = s.connection_id == self_id
        sleeping = s.command == "Sleep" and not me
        if me:
            info: str | None = "SHOW FULL PROCESSLIST" if full else "SHOW PROCESSLIST"
        elif sleeping or s.info is None:
            info = None
        else:
            info = redact(s.info)
            if not full:
                info = info[:100]
        rows.append(
            [
                str(s.connection_id),
                s.user,
                s.client,
                s.db,
                "Query" if me else s.command,
                str(s.seconds),
                "" if sleeping else "executing",
                info,
                "0.000",
            ]
        )
    return rows


NOTE_COLUMNS = ("Level", "Code", "Message")
# SHOW EVENTS, as MariaDB names its columns (the proxy's answer has no rows).
EVENTS_COLUMNS = (
    "Db",
    "Name",
    "Definer",
    "Time zone",
    "Type",
    "Execute at",
    "Interval value",
    "Interval field",
    "Starts",
    "Ends",
    "Status",
    "Originator",
    "character_set_client",
    "collation_connection",
    "Database Collation",
)


def notes_rows(notes: Iterable[tuple[int, str]]) -> list[Row]:
    return [["Note", str(code), message] for code, message in notes]

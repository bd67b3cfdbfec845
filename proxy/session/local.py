"""The answers the proxy gives itself: result sets built from its own state, as pure functions.

SHOW PROCESSLIST (the sessions the caller may see, passwords redacted from their statements),
SHOW DATABASES, SHOW QUERY_DIGEST, the notes of the proxy's own last statement (SHOW WARNINGS),
SHOW GRANTS, SHOW EVENTS (no rows), SHOW STATUS and COM_STATISTICS (the proxy's own counters).
Each returns the rows of one text result set (or COM_STATISTICS's line); the session writes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from auth.model import Account
from proxy.ops.digest import QueryDigest
from proxy.ops.metrics import Metrics
from proxy.plan.plan import EVENTS_COLUMNS as EVENTS_COLUMNS
from proxy.plan.plan import STATUS_COLUMNS as STATUS_COLUMNS
from proxy.sql.lexer import LexError, LexMode, ServerFlavor, TokenKind, lex
from proxy.sql.like import LikePattern
from proxy.wire.packets import FIELD_TYPE_LONGLONG, FIELD_TYPE_VAR_STRING, build_text_resultset

Row = Sequence[str | None]


def result_set(
    columns: Sequence[str],
    rows: Iterable[Sequence[bytes | str | None]],
    capabilities: int,
    status: int,
    numeric: frozenset[str] = frozenset(),
    text_charset: int = 33,
) -> list[bytes]:
    """A text result set; ``numeric`` columns are BIGINT, the others VARCHAR of collation
    ``text_charset``."""
    typed = [(c, FIELD_TYPE_LONGLONG if c in numeric else FIELD_TYPE_VAR_STRING) for c in columns]
    return build_text_resultset(
        columns=typed,
        rows=[list(row) for row in rows],
        capabilities=capabilities,
        status=status,
        text_charset=text_charset,
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
    # The session's server, as its executable comments are read (None: not known yet).
    flavor: ServerFlavor | None = None


_SECRET_WORD = re.compile(r"password|identified", re.IGNORECASE)
_ALL_MODES = tuple(LexMode(a, b) for a in (False, True) for b in (False, True))
_LITERALS = frozenset({TokenKind.STRING, TokenKind.HEX, TokenKind.BIT})
REDACTED = "'***'"
# Longer texts are not lexed (four times, on the event loop): cut after the first such word.
REDACT_LEX_LIMIT = 256 * 1024


def redact_statement(text: str, flavor: ServerFlavor | None) -> str:
    """A statement's text with every literal replaced by ``'***'`` if it mentions a password
    at all (the words PASSWORD or IDENTIFIED anywhere, in any letter case): a password can only
    be a literal, and where the literals are is what the server's lexer says, not a pattern
    (``IDENTIFIED/**/BY 'p'``, ``SET PASSWORD\nFOR u = 'p'``, ``/* ' */ ... 'p'``). The text is
    lexed as the session's server reads it in each ``sql_mode`` that changes lexing, and the
    literals of every reading are masked; a text some reading cannot lex, or longer than
    REDACT_LEX_LIMIT, is cut after the first such word (a password follows its keyword)."""
    first = _SECRET_WORD.search(text)
    if first is None:
        return text
    if len(text) > REDACT_LEX_LIMIT:
        return f"{text[: first.end()]} {REDACTED}"
    spans: list[tuple[int, int]] = []
    try:
        for mode in _ALL_MODES:
            for statement in lex(text, mode, flavor):
                spans.extend(
                    (t.pos, t.pos + len(t.raw)) for t in statement.tokens if t.kind in _LITERALS
                )
    except LexError:
        return f"{text[: first.end()]} {REDACTED}"
    out: list[str] = []
    at = 0
    for start, end in sorted(spans):
        if end <= at:
            continue
        if start < at:  # overlaps the span just masked: extend it
            at = end
            continue
        out += [text[at:start], REDACTED]
        at = end
    out.append(text[at:])
    return "".join(out)


def visible(me: Account, other: SessionInfo) -> bool:
    """Own sessions; a database's administrator also sees every session in its database."""
    if other.account.id == me.id:
        return True
    return other.db is not None and me.is_admin_of(other.db)


PROCESSLIST_COLUMNS = ("Id", "User", "Host", "db", "Command", "Time", "State", "Info", "Progress")
PROCESSLIST_NUMERIC = frozenset({"Id", "Time"})


def processlist_rows(sessions: Iterable[SessionInfo], self_id: int, full: bool) -> list[Row]:
    """MariaDB's SHOW [FULL] PROCESSLIST columns; the asking session shows its own statement.

    ``Info`` is redacted (see :func:`redact_statement`) and cut to 100 characters unless
    FULL."""
    rows: list[Row] = []
    for s in sorted(sessions, key=lambda s: s.connection_id):
        me = s.connection_id == self_id
        sleeping = s.command == "Sleep" and not me
        if me:
            info: str | None = "SHOW FULL PROCESSLIST" if full else "SHOW PROCESSLIST"
        elif sleeping or s.info is None:
            info = None
        else:
            # Cut first (a cut literal fails to lex: cut after the word), then redacted.
            info = redact_statement(s.info if full else s.info[:100], s.flavor)
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


def notes_rows(notes: Iterable[tuple[str, int, str]]) -> list[Row]:
    """SHOW WARNINGS of (level, code, message) notes."""
    return [[level, str(code), message] for level, code, message in notes]


_SHOW_DIAGNOSTICS = re.compile(
    r"\s*SHOW\s+(COUNT\s*\(\s*\*\s*\)\s*)?(WARNINGS|ERRORS)"
    r"(?:\s+LIMIT\s+(\d+)\s*(?:,\s*(\d+))?)?\s*;?\s*$",
    re.IGNORECASE,
)


def diagnostics_answer(
    text: str, notes: Sequence[tuple[str, int, str]]
) -> tuple[list[str], list[Row]]:
    """The columns and rows of ``SHOW WARNINGS|ERRORS [LIMIT [offset,] count]`` or
    ``SHOW COUNT(*) WARNINGS|ERRORS`` (``text``, as analysed) over saved (level, code,
    message) notes, as MariaDB answers them: SHOW ERRORS lists the errors only."""
    match = _SHOW_DIAGNOSTICS.match(text)
    if match is None:
        return list(NOTE_COLUMNS), notes_rows(notes)
    counting, which, first, second = match.groups()
    errors = which.upper() == "ERRORS"
    chosen = [note for note in notes if note[0] == "Error"] if errors else list(notes)
    if counting:
        name = "@@session.error_count" if errors else "@@session.warning_count"
        return [name], [[str(len(chosen))]]
    if first is not None:
        offset, count = (int(first), int(second)) if second is not None else (0, int(first))
        chosen = chosen[offset : offset + count]
    return list(NOTE_COLUMNS), notes_rows(chosen)


@dataclass(frozen=True, slots=True)
class ProxyStatus:
    """The proxy process's counters under MySQL's status variable names (like ProxySQL's
    ``stats``): what ``SHOW STATUS`` and ``COM_STATISTICS`` answer instead of the shard's,
    whose counters are every tenant's. ``counters`` holds the rest (Com_*, Shardgate_*)."""

    uptime: int
    threads_connected: int
    threads_running: int
    questions: int
    counters: Mapping[str, int]


# MySQL's Com_* counters for the statements the proxy answers itself, by statement kind.
_KIND_COMMANDS = {
    "use": "Com_change_db",
    "show_databases": "Com_show_databases",
    "show_processlist": "Com_show_processlist",
    "show_status": "Com_show_status",
    "kill": "Com_kill",
    "prepare": "Com_stmt_prepare",
    "execute": "Com_stmt_execute",
}


@dataclass(frozen=True, slots=True)
class OpenSession:
    """What the status counters need of one open session."""

    running: bool  # executing a command now (not "Sleep")
    bytes_received: int
    bytes_sent: int


def proxy_status(
    metrics: Metrics,
    digest: QueryDigest,
    catalog_version: int,
    sessions: Sequence[OpenSession],
    now: float,
) -> ProxyStatus:
    """This process's counters (``now``: Unix time): connections, logins, statements by kind
    and the relayed ones by Com_* counter (from the query digest), bytes, and the proxy's own
    (``Shardgate_*``: refusals, backend errors, classifier misses, the catalog version)."""
    counters = {
        "Aborted_connects": int(metrics.logins_failed.value),
        "Bytes_received": metrics.closed_bytes_received + sum(s.bytes_received for s in sessions),
        "Bytes_sent": metrics.closed_bytes_sent + sum(s.bytes_sent for s in sessions),
        "Connections": int(metrics.connections_total.total()),
        "Max_used_connections": metrics.max_connections_active,
        **{name: metrics.statement_count(kind) for kind, name in _KIND_COMMANDS.items()},
        **digest.command_counts(),
        "Shardgate_account_statements": metrics.statement_count("account"),
        "Shardgate_backend_errors": int(metrics.backend_errors_total.total()),
        "Shardgate_catalog_version": catalog_version,
        "Shardgate_classifier_misses": int(metrics.classifier_misses_total.total()),
        "Shardgate_denials": int(metrics.denials_total.total()),
        "Shardgate_logins_throttled": int(metrics.logins_throttled.total()),
        "Shardgate_statements_refused": metrics.statement_count("refused"),
    }
    return ProxyStatus(
        uptime=max(0, int(now - metrics.start_time.value)),
        threads_connected=int(metrics.connections_active.value),
        threads_running=sum(1 for s in sessions if s.running),
        questions=int(metrics.statements_total.total()),
        counters=counters,
    )


def tls_status(cipher: str | None, version: str | None) -> dict[str, str]:
    """The session's own TLS variables, as MariaDB shows them: the cipher and protocol the
    client connection negotiated with the proxy, empty without TLS."""
    return {"Ssl_cipher": cipher or "", "Ssl_version": version or ""}


def status_rows(
    status: ProxyStatus, pattern: str | None, session: Mapping[str, str] | None = None
) -> list[Row]:
    """SHOW STATUS: every variable (sorted by name, as MariaDB lists them) whose name matches
    ``LIKE pattern`` (case-insensitively, ``%`` and ``_`` as in LIKE); ``session``: the
    asking session's own (``tls_status``)."""
    values: dict[str, int | str] = {
        "Uptime": status.uptime,
        "Uptime_since_flush_status": status.uptime,
        "Threads_connected": status.threads_connected,
        "Threads_running": status.threads_running,
        "Questions": status.questions,
        "Queries": status.questions,
        **status.counters,
        **(session or {}),
    }
    matches = None if pattern is None else LikePattern.compile(pattern).matches
    return [
        [name, str(value)]
        for name, value in sorted(values.items(), key=lambda item: item[0].lower())
        if matches is None or matches(name)
    ]


def statistics_text(status: ProxyStatus) -> str:
    """COM_STATISTICS's line, in MySQL's format (``mariadb-admin status`` prints it, and
    ``version`` reads the uptime from it). The proxy opens no tables and has no slow-query
    log: those are 0."""
    per_second = status.questions / max(status.uptime, 1)
    return (
        f"Uptime: {status.uptime}  Threads: {status.threads_connected}  "
        f"Questions: {status.questions}  Slow queries: 0  Opens: 0  Open tables: 0  "
        f"Queries per second avg: {per_second:.3f}"
    )

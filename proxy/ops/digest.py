"""The query digest: per statement shape, how often it ran, how long it took, rows it sent.

Like ProxySQL's ``stats_mysql_query_digest``: the proxy records every statement it relays
under its database and its *digest text* (the statement with literals replaced by ``?``, as
the classifier's cache keys it), and a database's administrator reads its own database's rows
with ``SHOW QUERY_DIGEST``. Kept in memory per proxy process, bounded: once ``max_entries``
shapes are known, new shapes of a database are counted under ``(other shapes)``.

A statement on sharded tables that ran on several partitions at once (a scatter: concatenated
or merged across them) marks its shape: ``scatter_count`` says how many of its executions were
scatters, ``max_partitions`` the most physical statements one of them ran (D x T for a scatter
over a split table), so a shape that misses the shard key shows in the digest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

OTHER_SHAPES = "(other shapes)"
MAX_DIGEST_TEXT = 1024

# MySQL's Com_* status counters for the statements the proxy relays, by the leading keywords of
# the digest text (a multi-statement packet counts as its first statement).
_COMMANDS: dict[tuple[str, ...], str] = {
    ("SELECT",): "Com_select",
    ("INSERT",): "Com_insert",
    ("UPDATE",): "Com_update",
    ("DELETE",): "Com_delete",
    ("REPLACE",): "Com_replace",
    ("SET",): "Com_set_option",
    ("BEGIN",): "Com_begin",
    ("START", "TRANSACTION"): "Com_begin",
    ("COMMIT",): "Com_commit",
    ("ROLLBACK",): "Com_rollback",
    ("CREATE", "TABLE"): "Com_create_table",
    ("ALTER", "TABLE"): "Com_alter_table",
    ("DROP", "TABLE"): "Com_drop_table",
    ("CREATE", "INDEX"): "Com_create_index",
    ("DROP", "INDEX"): "Com_drop_index",
    ("TRUNCATE",): "Com_truncate",
    ("RENAME", "TABLE"): "Com_rename_table",
    ("SHOW", "TABLES"): "Com_show_tables",
    ("SHOW", "FULL", "TABLES"): "Com_show_tables",
    ("SHOW", "VARIABLES"): "Com_show_variables",
    ("SHOW", "SESSION", "VARIABLES"): "Com_show_variables",
    ("SHOW", "GLOBAL", "VARIABLES"): "Com_show_variables",
    ("SHOW", "WARNINGS"): "Com_show_warnings",
    ("SHOW", "CREATE", "TABLE"): "Com_show_create_table",
}
COMMAND_NAMES = tuple(sorted(set(_COMMANDS.values())))


def command_of(text: str) -> str | None:
    """The Com_* counter a digest text counts towards (None: none of ``COMMAND_NAMES``)."""
    words = text[:40].upper().replace(";", " ").split()
    for length in (3, 2, 1):
        name = _COMMANDS.get(tuple(words[:length]))
        if name is not None:
            return name
    return None


@dataclass(slots=True)
class DigestEntry:
    count: int
    total: float
    min: float
    max: float
    rows: int
    first_seen: float
    last_seen: float
    scatters: int = 0  # executions that ran on several partitions at once
    partitions: int = 0  # the most physical statements one of them ran


class QueryDigest:
    def __init__(self, max_entries: int = 5000) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[str | None, str], DigestEntry] = {}
        # Statements counted under OTHER_SHAPES, by Com_* counter (their texts are not kept).
        self._other_commands: dict[str, int] = {}
        # last_seen has a one-second grain: a clock read per statement is not worth it.
        self.now = time.time()

    def tick(self) -> None:
        """Advance the coarse clock (the server's watchdog calls this every second)."""
        self.now = time.time()

    def record(
        self, database: str | None, text: str, seconds: float, rows: int, scatter: int = 0
    ) -> None:
        """One statement finished (the hot path: a dict lookup and a few adds); ``scatter``:
        the physical statements it ran if it was a scatter over several partitions."""
        key = (database, text)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._new(key)
        entry.count += 1
        entry.total += seconds
        if seconds < entry.min:
            entry.min = seconds
        if seconds > entry.max:
            entry.max = seconds
        entry.rows += rows
        entry.last_seen = self.now
        if scatter:
            entry.scatters += 1
            if scatter > entry.partitions:
                entry.partitions = scatter

    def _new(self, key: tuple[str | None, str]) -> DigestEntry:
        database, text = key
        if len(self._entries) >= self.max_entries:
            # Called for every statement of a shape not kept (its key is never stored).
            command = command_of(text)
            if command is not None:
                self._other_commands[command] = self._other_commands.get(command, 0) + 1
            key = (database, OTHER_SHAPES)
            entry = self._entries.get(key)
            if entry is not None:
                return entry
        elif len(text) > MAX_DIGEST_TEXT:
            key = (database, text[:MAX_DIGEST_TEXT] + "...")
            entry = self._entries.get(key)
            if entry is not None:
                return entry
        entry = DigestEntry(0, 0.0, float("inf"), 0.0, 0, self.now, self.now)
        self._entries[key] = entry
        return entry

    @property
    def entries(self) -> dict[tuple[str | None, str], DigestEntry]:
        return self._entries

    def command_counts(self) -> dict[str, int]:
        """Relayed statements per Com_* counter (``COMMAND_NAMES``), over every database."""
        counts = dict.fromkeys(COMMAND_NAMES, 0)
        for (_, text), entry in self._entries.items():
            command = command_of(text)
            if command is not None:
                counts[command] += entry.count
        for command, count in self._other_commands.items():
            counts[command] += count
        return counts

    def __len__(self) -> int:
        return len(self._entries)


DIGEST_COLUMNS = (
    "schema_name",
    "digest_text",
    "count_star",
    "sum_time_us",
    "min_time_us",
    "max_time_us",
    "avg_time_us",
    "sum_rows_sent",
    "first_seen",
    "last_seen",
    "scatter_count",
    "max_partitions",
)


Entries = dict[tuple[str | None, str], DigestEntry]


def rows_for(database: str, sources: list[Entries]) -> list[tuple[str, DigestEntry]]:
    """The database's shapes over several digests (worker processes), most total time first."""
    wanted = database.lower()
    merged: dict[str, DigestEntry] = {}
    for entries in sources:
        for (db, text), entry in entries.items():
            if db is None or db.lower() != wanted:
                continue
            seen = merged.get(text)
            if seen is None:
                merged[text] = DigestEntry(
                    entry.count,
                    entry.total,
                    entry.min,
                    entry.max,
                    entry.rows,
                    entry.first_seen,
                    entry.last_seen,
                    entry.scatters,
                    entry.partitions,
                )
                continue
            seen.count += entry.count
            seen.total += entry.total
            seen.min = min(seen.min, entry.min)
            seen.max = max(seen.max, entry.max)
            seen.rows += entry.rows
            seen.first_seen = min(seen.first_seen, entry.first_seen)
            seen.last_seen = max(seen.last_seen, entry.last_seen)
            seen.scatters += entry.scatters
            seen.partitions = max(seen.partitions, entry.partitions)
    found = sorted(merged.items(), key=lambda item: item[1].total, reverse=True)
    return found


def digest_table(database: str, sources: list[Entries]) -> list[list[str | None]]:
    """The rows of SHOW QUERY_DIGEST for ``database``, as text."""

    def micros(seconds: float) -> str:
        return str(round(seconds * 1_000_000))

    def stamp(at: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))

    return [
        [
            database,
            text,
            str(entry.count),
            micros(entry.total),
            micros(entry.min),
            micros(entry.max),
            micros(entry.total / entry.count),
            str(entry.rows),
            stamp(entry.first_seen),
            stamp(entry.last_seen),
            str(entry.scatters),
            str(entry.partitions),
        ]
        for text, entry in rows_for(database, sources)
    ]

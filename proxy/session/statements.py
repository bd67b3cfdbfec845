"""Server-side prepared statements of a session whose backend connection changes (the pool).

A client's prepared statement lives on the backend connection it was prepared on. With pooled
connections the session may run its next COM_STMT_EXECUTE on another one, so the proxy keeps,
per statement, its text and the connections it is prepared on, and:

* gives the client a statement id of the session's own (the first connection's id when no other
  statement of the session has it: then nothing is rewritten in the usual case);
* prepares the statement again, transparently, on a connection that does not have it, and
  rewrites the id in the command (the 4 bytes after the command byte);
* keeps the parameter types of the last execution that sent them: an execution that does not
  send them (``new_params_bound_flag`` 0: "as last time") gets them inserted when it runs on a
  connection that never saw them;
* closes the statement on every connection it is prepared on: on the session's connection at
  once, on others the next time any session leases them (COM_STMT_CLOSE has no answer).

A statement with an open cursor or long data sent keeps the session on its connection (both
live there only) until it is executed, reset or closed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from auth.errors import SqlError
from proxy.backend.connection import BackendConnection

__all__ = [
    "WireStatement",
    "WireStatements",
    "with_id",
    "with_types",
]


@dataclass(eq=False)
class WireStatement:
    """One client prepared statement: what preparing it again needs."""

    client_id: int
    text: bytes  # the COM_STMT_PREPARE payload after the command byte
    params: int
    # The client's own text, when the proxy spliced ``text`` from it (information_schema's
    # privilege tables: the account's grants, which may change before an execution).
    source: bytes | None = None
    types: bytes | None = None  # the parameter types of the last execution that sent them
    # The connections it is prepared on, and its id on each.
    on: weakref.WeakKeyDictionary[BackendConnection, int] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    # The connections that were sent ``types`` (an execution saying "as last time" is
    # answered there without them).
    typed: weakref.WeakSet[BackendConnection] = field(default_factory=weakref.WeakSet)
    cursor: bool = False  # executed with a cursor: its rows wait on that connection
    long_data: bool = False  # COM_STMT_SEND_LONG_DATA sent: the data waits on that connection
    # Long data that could not be sent (no connection): the next execution's answer.
    failed: SqlError | None = None
    # The fast path's memo of ``on`` and ``typed`` for the last connection it looked up (the
    # weak mappings cost a Python-level call and a weak reference per lookup): that
    # connection, its id there, and whether it is known to be in ``typed``. Whoever removes
    # entries from ``on`` or ``typed``, or changes an id in ``on``, calls ``forget``.
    _memo_conn: BackendConnection | None = field(default=None, init=False, repr=False)
    _memo_id: int = field(default=0, init=False, repr=False)
    _memo_typed: bool = field(default=False, init=False, repr=False)

    def id_on(self, conn: BackendConnection) -> int | None:
        """``on.get(conn)``: the statement's id on ``conn``, None if not prepared there."""
        if self._memo_conn is conn:
            return self._memo_id
        found = self.on.get(conn)
        if found is not None:
            self._memo_conn, self._memo_id, self._memo_typed = conn, found, False
        return found

    def has_types_on(self, conn: BackendConnection) -> bool:
        """``conn in typed``: ``conn`` was sent ``types``."""
        if self._memo_conn is conn and self._memo_typed:
            return True
        found = conn in self.typed
        if found and self._memo_conn is conn:
            self._memo_typed = True
        return found

    def sent_types(self, conn: BackendConnection) -> None:
        """``typed.add(conn)``: an execution sent ``types`` to ``conn``."""
        if self._memo_conn is conn and self._memo_typed:
            return
        self.typed.add(conn)
        if self._memo_conn is conn:
            self._memo_typed = True

    def took_types(self, types: bytes, conn: BackendConnection) -> None:
        """An execution sent ``types`` to ``conn``. Connections sent other types before are
        no longer ``typed``: an execution saying "as last time" means the client's last
        types, which they were never sent (they would read its values as the old ones)."""
        if types != self.types:
            self.types = types
            self.typed = weakref.WeakSet()
            self.forget()
        self.sent_types(conn)

    def forget(self) -> None:
        """Entries of ``on`` or ``typed`` were removed or changed: drop the memo."""
        self._memo_conn = None
        self._memo_typed = False

    def retext(self, text: bytes, send_close: CloseSender) -> None:
        """The statement is to run as ``text`` from now on: closed wherever it is prepared,
        it is prepared again as ``text`` where an execution runs (and sent the last
        execution's parameter types there)."""
        _close_everywhere(self, send_close)
        self.text = text
        self.typed = weakref.WeakSet()
        self.cursor = False


class WireStatements:
    """A session's prepared statements on the wire, by the id the client knows."""

    def __init__(self) -> None:
        self.by_id: dict[int, WireStatement] = {}
        # False: no statement has a cursor or long data (``pinning`` then answers without
        # walking every statement, once per statement on the hot path). Whoever sets a
        # statement's ``cursor`` or ``long_data`` calls ``pinned``.
        self.may_pin = False

    def pinned(self) -> None:
        """A statement's ``cursor`` or ``long_data`` may have been set."""
        self.may_pin = True

    def pinning(self) -> bool:
        """Whether a statement's state lives on one connection only (cursor, long data)."""
        if not self.may_pin:
            return False
        found = any(s.cursor or s.long_data for s in self.by_id.values())
        if not found:
            self.may_pin = False
        return found

    def client_id_for(self, backend_id: int, taken: Collection[int] = ()) -> int:
        """The id to give the client for a statement the shard calls ``backend_id`` (not one
        of ``taken`` either: the session's statements on a sharded database's partitions)."""
        if backend_id not in self.by_id and backend_id not in taken:
            return backend_id
        candidate = max(max(self.by_id, default=0), max(taken, default=0)) + 1
        while candidate in self.by_id or candidate in taken or candidate > 0xFFFFFFFF:
            candidate = 1 if candidate > 0xFFFFFFFF else candidate + 1
        return candidate

    def add(
        self,
        client_id: int,
        text: bytes,
        params: int,
        conn: BackendConnection,
        backend_id: int,
        source: bytes | None = None,
    ) -> None:
        statement = WireStatement(client_id, text, params, source)
        statement.on[conn] = backend_id
        self.by_id[client_id] = statement

    def close(self, client_id: int, send_close: CloseSender) -> None:
        """The client closed the statement: close it on every connection it is on."""
        statement = self.by_id.pop(client_id, None)
        if statement is not None:
            _close_everywhere(statement, send_close)

    def clear(self, send_close: CloseSender, dropped_on: BackendConnection | None = None) -> None:
        """Forget every statement (the session ends, changes database or is reset;
        ``dropped_on``: a connection that already dropped them, as COM_RESET_CONNECTION
        does)."""
        for statement in self.by_id.values():
            if dropped_on is not None:
                statement.on.pop(dropped_on, None)
                statement.forget()
            _close_everywhere(statement, send_close)
        self.by_id.clear()

    def forget_connection(self, conn: BackendConnection) -> None:
        for statement in self.by_id.values():
            if statement.on.pop(conn, None) is not None:
                statement.forget()
                statement.typed.discard(conn)
                statement.cursor = statement.long_data = False


# Closes statement ``id`` on a connection: at once where nothing is in flight, else before
# the connection's next command (COM_STMT_CLOSE has no answer).
CloseSender = Callable[[BackendConnection, int], None]


def _close_everywhere(statement: WireStatement, send_close: CloseSender) -> None:
    for conn, backend_id in list(statement.on.items()):
        if not conn.broken:
            send_close(conn, backend_id)
    statement.on.clear()
    statement.forget()


def with_id(payload: bytes, statement_id: int) -> bytes:
    """A COM_STMT_* payload (command byte first) with another statement id."""
    if int.from_bytes(payload[1:5], "little") == statement_id:
        return payload
    return payload[:1] + statement_id.to_bytes(4, "little") + payload[5:]


def with_types(payload: bytes, flag_at: int, types: bytes) -> bytes:
    """A COM_STMT_EXECUTE that said "types as last time" sending ``types`` instead."""
    return payload[:flag_at] + b"\x01" + types + payload[flag_at + 1 :]

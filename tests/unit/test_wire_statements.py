"""A session's prepared statements on the wire (proxy/session/statements.py): the fast path's
memo of where a statement is prepared and which connections were sent its parameter types
answers exactly what the weak mappings it stands for answer, whatever removed entries."""

from __future__ import annotations

from proxy.backend.connection import BackendConnection, BackendTarget
from proxy.session.statements import WireStatement, WireStatements


def _conn() -> BackendConnection:
    return BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "db"))


def _agrees(statement: WireStatement, conn: BackendConnection) -> None:
    assert statement.id_on(conn) == statement.on.get(conn)
    if statement.id_on(conn) is not None:
        assert statement.has_types_on(conn) == (conn in statement.typed)


def test_the_memo_follows_the_weak_mappings() -> None:
    a, b = _conn(), _conn()
    statements = WireStatements()
    statements.add(7, b"SELECT ?", 1, a, 7)
    statement = statements.by_id[7]
    assert statement.id_on(a) == 7
    assert statement.id_on(b) is None
    assert not statement.has_types_on(a)
    statement.sent_types(a)
    assert statement.has_types_on(a) and a in statement.typed
    _agrees(statement, a)

    # Prepared again on the same connection under another id (link.reprepare): the new id.
    statement.on[a] = 9
    statement.forget()
    assert statement.id_on(a) == 9

    # Another connection looked up: each answers its own.
    statement.on[b] = 3
    statement.forget()
    assert statement.id_on(b) == 3
    assert not statement.has_types_on(b)
    assert statement.id_on(a) == 9
    assert statement.has_types_on(a)

    # The connection dropped its statements (lost, or reset): nothing is remembered of it.
    statements.forget_connection(a)
    assert statement.id_on(a) is None
    assert a not in statement.typed
    statement.on[a] = 11
    statement.forget()
    assert statement.id_on(a) == 11
    assert not statement.has_types_on(a)
    _agrees(statement, a)
    _agrees(statement, b)


def test_closing_forgets_the_memo() -> None:
    a = _conn()
    statements = WireStatements()
    statements.add(1, b"SELECT ?", 1, a, 1)
    statement = statements.by_id[1]
    assert statement.id_on(a) == 1
    statement.sent_types(a)
    closed: list[tuple[BackendConnection, int]] = []
    statements.close(1, lambda conn, backend_id: closed.append((conn, backend_id)))
    assert closed == [(a, 1)]
    assert statement.id_on(a) is None
    assert not statement.on


def test_a_reset_connection_is_forgotten_by_clear() -> None:
    a = _conn()
    statements = WireStatements()
    statements.add(1, b"SELECT ?", 1, a, 1)
    statement = statements.by_id[1]
    assert statement.id_on(a) == 1
    statements.clear(lambda conn, backend_id: None, dropped_on=a)
    assert statement.id_on(a) is None
    assert not statements.by_id


def test_pinning_answers_what_the_statements_say_once_told_they_may_pin() -> None:
    """``pinning`` skips the walk over the statements until ``pinned`` says one may have a
    cursor or long data; from then on it answers what the statements say, and it skips the
    walk again once it found none."""
    conn = _conn()
    statements = WireStatements()
    statements.add(1, b"SELECT ?", 1, conn, 1)
    statements.add(2, b"SELECT ?, ?", 2, conn, 2)
    assert not statements.pinning() and not statements.may_pin
    second = statements.by_id[2]
    for cursor, long_data in ((True, False), (False, True), (True, True)):
        second.cursor, second.long_data = cursor, long_data
        statements.pinned()
        assert statements.pinning() and statements.pinning()  # (a walk keeps the flag)
    second.cursor = second.long_data = False  # executed again without a cursor / reset
    assert not statements.pinning() and not statements.may_pin
    second.long_data = True
    statements.pinned()
    statements.forget_connection(conn)  # the connection lost: its cursors and long data too
    assert not statements.pinning()


def test_new_types_leave_connections_sent_older_ones_untyped() -> None:
    """Executed with BIGINT on a, then with a string on b (the pool handed the session
    another connection): a was sent the old types, so an execution saying "types as last
    time" must be sent the string type there too, not read by a as a BIGINT."""
    a, b = _conn(), _conn()
    statements = WireStatements()
    statements.add(7, b"SELECT * FROM t WHERE k = ?", 1, a, 7)
    statement = statements.by_id[7]
    statement.on[b] = 9
    bigint, string = b"\x08\x00", b"\xfd\x00"
    statement.took_types(bigint, a)
    assert statement.has_types_on(a)
    statement.took_types(string, b)
    assert statement.types == string
    assert statement.has_types_on(b)
    assert not statement.has_types_on(a)
    _agrees(statement, a)
    _agrees(statement, b)
    statement.took_types(string, a)  # the same types again: b keeps them
    assert statement.has_types_on(a) and statement.has_types_on(b)

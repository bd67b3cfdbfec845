"""Column definitions of a sharded database's answers renamed to logical names
(``LogicalNames``): only the schema (where it is the partition's physical database), the table
and the org_table (where they are a split table's physical table) change; every other field,
MariaDB's extended type information included, stays byte for byte, and a definition that
needs no change is the same payload."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.backend.connection import BackendConnection, BackendTarget
from proxy.merge.values import ColumnDefinition
from proxy.session.sharded import LogicalNames, rename_in_text, rename_row, row_value
from proxy.wire.packets import Capability, build_text_row, frame
from proxy.wire.stream import PacketConnection, ResponseKind, ResponseScanner

NAMES = LogicalNames(b"sales", {b"orders_03": b"orders", b"orders_04": b"orders"})


def _definition(schema: bytes, table: bytes, org_table: bytes, extended: bytes | None) -> bytes:
    return ColumnDefinition(
        b"def", schema, table, org_table, b"amount", b"amount",
        extended, 45, 80, 253, 4097, 0,
    ).build()  # fmt: skip


def test_physical_names_become_logical() -> None:
    payload = _definition(b"sales_0001", b"orders_03", b"orders_03", b"\x00\x04json")
    renamed = ColumnDefinition.parse(NAMES.column(payload, b"sales_0001"))
    assert (renamed.schema, renamed.table, renamed.org_table) == (b"sales", b"orders", b"orders")
    before = ColumnDefinition.parse(payload)
    assert renamed.extended == b"\x00\x04json" == before.extended
    assert renamed.build() == _definition(b"sales", b"orders", b"orders", b"\x00\x04json")


def test_other_databases_aliases_and_plain_tables_stay() -> None:
    # Another database's column (information_schema), an alias, a table not split.
    for payload in (
        _definition(b"information_schema", b"TABLES", b"TABLES", None),
        _definition(b"", b"", b"", None),
        _definition(b"sales_0000", b"q", b"customers", None),
    ):
        out = NAMES.column(payload, b"sales_0001")
        assert out is payload or out == payload
    aliased = NAMES.column(_definition(b"sales_0001", b"q", b"orders_04", None), b"sales_0001")
    assert aliased == _definition(b"sales", b"q", b"orders", None)


def test_what_is_not_a_column_definition_passes_as_it_is() -> None:
    for payload in (b"\xfe\x00\x00\x02\x00", b"\x00\x01\x00\x00\x00", b"\x03def"):
        assert NAMES.column(payload, b"sales_0001") == payload


def test_the_rewrite_remembers_and_agrees() -> None:
    rewrite = NAMES.rewrite("sales_0001")
    assert NAMES.rewrite("sales_0001") is rewrite
    payload = _definition(b"sales_0001", b"orders_03", b"orders_03", None)
    assert rewrite(payload) == rewrite(payload) == NAMES.column(payload, b"sales_0001")


@given(
    st.sampled_from([b"sales_0001", b"sales_0002", b"other", b""]),
    st.sampled_from([b"orders_03", b"orders", b"x"]),
    st.sampled_from([b"orders_04", b"orders", b""]),
    st.one_of(st.none(), st.binary(max_size=20)),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
)
def test_round_trip_keeps_every_other_field(
    schema: bytes, table: bytes, org_table: bytes, extended: bytes | None, charset: int, length: int
) -> None:
    payload = ColumnDefinition(
        b"def", schema, table, org_table, b"n", b"org_n", extended, charset, length, 3, 1, 0
    ).build()
    out = ColumnDefinition.parse(NAMES.column(payload, b"sales_0001"))
    before = ColumnDefinition.parse(payload)
    assert out.schema == (b"sales" if schema == b"sales_0001" else schema)
    assert out.table == NAMES.tables.get(table, table)
    assert out.org_table == NAMES.tables.get(org_table, org_table)
    keep = ("catalog", "name", "org_name", "extended", "charset", "length", "type_code", "flags")
    assert all(getattr(out, f) == getattr(before, f) for f in keep)


class _Client(PacketConnection):
    """The client end of a relay: what reaches it, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()

    def write_raw(self, data: bytes | bytearray) -> None:
        self.out += data


def _answer(schema: bytes, table: bytes, cached: bool) -> list[bytes]:
    """A two-column result set of physical database ``schema`` (payloads; ``cached``: with
    MARIADB_CLIENT_CACHE_METADATA, its definitions not sent)."""
    columns = [_definition(schema, table, table, None), _definition(schema, b"q", table, None)]
    head = [b"\x02\x00"] if cached else [b"\x02", *columns]
    rows = [b"\x011\x03abc", b"\x012\xfb"]
    return [*head, b"\xfe\x00\x00\x02\x00", *rows, b"\xfe\x00\x00\x02\x00"]


def _wire(payloads: list[bytes]) -> bytes:
    return b"".join(frame(seq + 1, p) for seq, p in enumerate(payloads))


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096])
def test_a_relay_rewrites_only_the_definitions_wherever_the_chunks_fall(
    chunk: int, cached: bool
) -> None:
    """(The proxy never negotiates DEPRECATE_EOF with a shard: an EOF follows definitions.)"""
    conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "sales_0001"))
    conn.capabilities = int(Capability.PROTOCOL_41) | (
        int(Capability.MARIADB_CLIENT_CACHE_METADATA) if cached else 0
    )
    client = _Client()
    ended: list[ResponseScanner] = []
    conn.start_relay(
        client, ResponseKind.QUERY, lambda s, e: ended.append(s), NAMES.rewrite("sales_0001")
    )
    data = _wire(_answer(b"sales_0001", b"orders_03", cached))
    for at in range(0, len(data), chunk):
        conn.data_received(data[at : at + chunk])
    assert len(ended) == 1 and ended[0].rows == 2 and not conn.broken
    assert bytes(client.out) == _wire(_answer(b"sales", b"orders", cached))
    # An answer that is not a result set passes as it is.
    ok = frame(1, b"\x00\x01\x00\x02\x00\x00\x00")
    conn.start_relay(client, ResponseKind.QUERY, lambda s, e: ended.append(s), NAMES.rewrite("x"))
    conn.data_received(ok)
    assert len(ended) == 2 and bytes(client.out).endswith(ok)


def _more(answer: list[bytes]) -> list[bytes]:
    """``answer`` with its end saying another result follows (SERVER_MORE_RESULTS_EXISTS)."""
    return [*answer[:-1], b"\xfe\x00\x00\x0a\x00"]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096])
def test_every_result_set_of_an_answer_is_renamed(chunk: int) -> None:
    """``every``: a multi-statement answer's result sets (an OK between them) each have their
    definitions renamed, the rows and ends as they came, wherever the chunks fall."""
    conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "sales_0001"))
    conn.capabilities = int(Capability.PROTOCOL_41) | int(Capability.MULTI_RESULTS)
    client = _Client()
    ended: list[ResponseScanner] = []
    ok_more = b"\x00\x01\x00\x0a\x00\x00\x00"
    physical = [
        *_more(_answer(b"sales_0001", b"orders_03", False)),
        ok_more,
        *_answer(b"sales_0001", b"orders_04", False),
    ]
    logical = [
        *_more(_answer(b"sales", b"orders", False)),
        ok_more,
        *_answer(b"sales", b"orders", False),
    ]
    conn.start_relay(
        client,
        ResponseKind.QUERY,
        lambda s, e: ended.append(s),
        NAMES.rewrite("sales_0001"),
        every=True,
    )
    data = _wire(physical)
    for at in range(0, len(data), chunk):
        conn.data_received(data[at : at + chunk])
    assert len(ended) == 1 and not conn.broken
    assert bytes(client.out) == _wire(logical)


def test_errors_name_the_logical_database_and_tables() -> None:
    def err(message: bytes) -> bytes:
        return b"\xff\x7a\x04#42S02" + message

    assert NAMES.column(err(b"Table 'sales_0001.nope' doesn't exist"), b"sales_0001") == err(
        b"Table 'sales.nope' doesn't exist"
    )
    assert NAMES.error(err(b"Table 'sales_0001.orders_03' is full"), b"sales_0001") == err(
        b"Table 'sales.orders' is full"
    )
    # Another partition's name, a name inside a longer word, a message naming neither: kept.
    for message in (b"Table 'sales_0002.x' doesn't exist", b"Unknown column 'sales_0001x'"):
        assert NAMES.error(err(message), b"sales_0001") == err(message)


def test_row_values_renamed_at_any_column() -> None:
    row = build_text_row([b"sales_0000", None, b"CREATE DATABASE `sales_0000` /*x*/", b"q"])
    renamed = rename_in_text(
        rename_row(row, 0, {"sales_0000": "sales"}), 2, {"sales_0000": "sales"}
    )
    assert renamed == build_text_row([b"sales", None, b"CREATE DATABASE `sales` /*x*/", b"q"])
    assert [row_value(renamed, i) for i in range(4)] == [
        b"sales",
        None,
        b"CREATE DATABASE `sales` /*x*/",
        b"q",
    ]
    assert rename_row(row, 3, {"x": "y"}) is row  # nothing to rename: the same row


@pytest.mark.parametrize("chunk", [5, 4096])
def test_a_head_seen_before_is_written_as_then(chunk: int) -> None:
    """A connection remembers the heads it rewrote: the same answer again (the shard's head
    byte for byte, the same rewrite) is written as it was, in one piece with what follows,
    and a different one (another table, another rewrite) is rewritten as usual."""
    conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "sales_0001"))
    conn.capabilities = int(Capability.PROTOCOL_41)
    rewrite = NAMES.rewrite("sales_0001")
    ended: list[ResponseScanner] = []
    for shard_table, table, columns in (
        (b"orders_03", b"orders", rewrite),
        (b"orders_03", b"orders", rewrite),  # known
        (b"orders_04", b"orders", rewrite),  # the same length, other bytes
        (b"orders_03", b"orders_03", lambda payload: payload),  # another rewrite
        (b"orders_03", b"orders", rewrite),
    ):
        client = _Client()
        ended.clear()
        conn.start_relay(client, ResponseKind.QUERY, lambda s, e: ended.append(s), columns)
        data = _wire(_answer(b"sales_0001", shard_table, False))
        for at in range(0, len(data), chunk):
            conn.data_received(data[at : at + chunk])
        assert len(ended) == 1 and ended[0].rows == 2 and not conn.broken
        schema = b"sales" if columns is rewrite else b"sales_0001"
        assert bytes(client.out) == _wire(_answer(schema, table, False))


@pytest.mark.parametrize("chunk", [5, 4096])
def test_each_rewrite_remembers_its_last_head(chunk: int) -> None:
    """Rewrites of their own per statement (the sharded fast paths give each statement's
    route one): statements alternating on a connection each find their head again by their
    rewrite; an answer under the same rewrite with other bytes (another table, the same
    length) is rewritten anew."""
    conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "sales_0001"))
    conn.capabilities = int(Capability.PROTOCOL_41)
    # (orders_04 keeps its name: a head taken for another one's would show)
    rewrite = LogicalNames(b"sales", {b"orders_03": b"orders"}).rewrite("sales_0001")
    first, second = functools.partial(rewrite), functools.partial(rewrite)
    ended: list[ResponseScanner] = []
    for shard_table, columns in (
        (b"orders_03", first),
        (b"orders_04", second),
        (b"orders_03", first),  # known, by its rewrite
        (b"orders_04", second),
        (b"orders_04", first),  # the same rewrite, another head
        (b"orders_03", first),
        (b"orders_03", second),
    ):
        client = _Client()
        ended.clear()
        conn.start_relay(client, ResponseKind.QUERY, lambda s, e: ended.append(s), columns)
        data = _wire(_answer(b"sales_0001", shard_table, False))
        for at in range(0, len(data), chunk):
            conn.data_received(data[at : at + chunk])
        assert len(ended) == 1 and ended[0].rows == 2 and not conn.broken
        table = b"orders" if shard_table == b"orders_03" else shard_table
        assert bytes(client.out) == _wire(_answer(b"sales", table, False))
    if chunk > len(data):  # (heads that came in one piece are remembered)
        assert set(conn._last_heads) == {first, second}

"""A minimal MySQL client for the binary protocol, byte by byte: COM_STMT_PREPARE, EXECUTE
(with or without the parameter types: ``new_params_bound_flag``), SEND_LONG_DATA, FETCH with a
cursor, RESET and CLOSE -- what drivers do, with every choice in the test's hands."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from auth.passwords import scramble_native
from proxy.wire.packets import (
    Capability,
    build_handshake_response,
    parse_err,
    parse_handshake_v10,
    parse_stmt_prepare_ok,
)

CAPABILITIES = (
    Capability.LONG_PASSWORD
    | Capability.LONG_FLAG
    | Capability.CONNECT_WITH_DB
    | Capability.PROTOCOL_41
    | Capability.TRANSACTIONS
    | Capability.SECURE_CONNECTION
    | Capability.PLUGIN_AUTH
)
_LONGLONG, _BLOB, _VAR_STRING = 8, 252, 253
# The integer types' binary row values (signed): TINY, SHORT, YEAR, LONG, INT24.
_INTEGERS = {1: "<b", 2: "<h", 13: "<h", 3: "<i", 9: "<i"}
Value = int | str | bytes | None  # bytes: sent before with send_long_data (no value here)


class ServerError(Exception):
    def __init__(self, errno: int, message: str) -> None:
        super().__init__(f"({errno}) {message}")
        self.errno = errno


@dataclass(frozen=True)
class Prepared:
    statement_id: int
    params: int
    columns: int


def _lenenc(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFC:
        return int.from_bytes(data[pos + 1 : pos + 3], "little"), pos + 3
    if first == 0xFD:
        return int.from_bytes(data[pos + 1 : pos + 4], "little"), pos + 4
    return int.from_bytes(data[pos + 1 : pos + 9], "little"), pos + 9


def lenenc_bytes(value: bytes) -> bytes:
    """``value`` as the protocol's length-encoded string."""
    return _lenenc_bytes(value)


def _lenenc_bytes(value: bytes) -> bytes:
    n = len(value)
    if n < 0xFB:
        return bytes([n]) + value
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little") + value
    return b"\xfd" + n.to_bytes(3, "little") + value


class BinaryClient:
    def __init__(self, port: int, user: str, password: str, database: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        seq, greeting = self._read()
        handshake = parse_handshake_v10(greeting)
        response = build_handshake_response(
            capabilities=CAPABILITIES,
            max_packet_size=1 << 24,
            charset=45,
            username=user,
            auth_response=scramble_native(password, handshake.scramble[:20]),
            database=database,
            auth_plugin="mysql_native_password",
        )
        self._send(response, seq + 1)
        seq, answer = self._read()
        if answer[:1] == b"\xfe":  # auth switch
            name_end = answer.index(0, 1)
            self._send(scramble_native(password, answer[name_end + 1 : name_end + 21]), seq + 1)
            seq, answer = self._read()
        self._check(answer)
        self.thread_id = handshake.connection_id
        self.types: list[int] = []  # the column types of the last result
        # The column definition payloads last read (a prepare's columns, an execution's).
        self.columns: list[bytes] = []

    # -- packets -----------------------------------------------------------------------------

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def _read(self) -> tuple[int, bytes]:
        header = self._recv(4)
        return header[3], self._recv(int.from_bytes(header[:3], "little"))

    def _send(self, payload: bytes, seq: int = 0) -> None:
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload)

    def _check(self, payload: bytes) -> bytes:
        if payload[:1] == b"\xff":
            err = parse_err(payload, CAPABILITIES)
            raise ServerError(err.errno, err.message)
        return payload

    def _skip_eof(self) -> None:
        _, payload = self._read()
        assert payload[:1] == b"\xfe", payload

    def _column_types(self, count: int) -> list[int]:
        types = []
        self.columns = []
        for _ in range(count):
            _, column = self._read()
            self.columns.append(column)
            pos = 0
            for _ in range(6):  # catalog, schema, table, org_table, name, org_name
                length, pos = _lenenc(column, pos)
                pos += length
            pos += 1 + 2 + 4  # fixed-length fields, charset, column length
            types.append(column[pos])
        self._skip_eof()
        return types

    # -- commands ----------------------------------------------------------------------------

    def query(self, sql: str) -> None:
        """A statement without a result set (its OK)."""
        self._send(b"\x03" + sql.encode())
        self._check(self._read()[1])

    def query_raw(self, sql: str) -> list[bytes]:
        """A text statement's whole answer as the payloads received (an OK or ERR alone;
        else the column count, definitions, EOF, rows and the final EOF or ERR)."""
        self._send(b"\x03" + sql.encode())
        first = self._read()[1]
        answer = [first]
        if first[:1] in (b"\x00", b"\xff"):
            return answer
        count, _ = _lenenc(first, 0)
        answer += [self._read()[1] for _ in range(count + 1)]
        while True:
            payload = self._read()[1]
            answer.append(payload)
            if payload[:1] == b"\xff" or (payload[:1] == b"\xfe" and len(payload) < 9):
                return answer

    def send_only(self, sql: str) -> None:
        """Send a statement and read nothing."""
        self._send(b"\x03" + sql.encode())

    def query_slowly(self, sql: str, pause: float) -> int:
        """A statement whose (text) result is read only after ``pause`` seconds: its rows."""
        self._send(b"\x03" + sql.encode())
        time.sleep(pause)
        count, _ = _lenenc(self._check(self._read()[1]), 0)
        self._column_types(count)
        rows = 0
        while True:
            payload = self._check(self._read()[1])
            if payload[:1] == b"\xfe" and len(payload) < 9:
                return rows
            rows += 1

    def prepare(self, sql: str) -> Prepared:
        self._send(b"\x16" + sql.encode())
        return self._prepare_answer()

    def _prepare_answer(self) -> Prepared:
        ok = parse_stmt_prepare_ok(self._check(self._read()[1]))
        if ok.num_params:
            self._column_types(ok.num_params)
        if ok.num_columns:
            self._column_types(ok.num_columns)
        return Prepared(ok.statement_id, ok.num_params, ok.num_columns)

    def execute(
        self,
        statement: Prepared,
        params: list[Value],
        *,
        send_types: bool = True,
        cursor: bool = False,
    ) -> list[tuple[int | str | None, ...]] | int:
        """Rows (ints and strings), or the affected rows of an OK; with ``cursor`` the rows
        wait for ``fetch``."""
        self._send(self._execute_body(statement, params, send_types, cursor))
        return self._execute_answer(cursor)

    @staticmethod
    def _execute_body(
        statement: Prepared, params: list[Value], send_types: bool = True, cursor: bool = False
    ) -> bytes:
        body = bytearray(b"\x17" + statement.statement_id.to_bytes(4, "little"))
        body += bytes([1 if cursor else 0]) + (1).to_bytes(4, "little")
        if statement.params:
            bitmap = bytearray((statement.params + 7) // 8)
            for i, value in enumerate(params):
                if value is None:
                    bitmap[i // 8] |= 1 << (i % 8)
            body += bitmap
            body.append(1 if send_types else 0)
            if send_types:
                for value in params:
                    body += struct.pack(
                        "<BB", _LONGLONG if isinstance(value, int) else _VAR_STRING, 0
                    )
            for value in params:
                if isinstance(value, int):
                    body += struct.pack("<q", value)
                elif isinstance(value, str):
                    body += _lenenc_bytes(value.encode())
        return bytes(body)

    def _execute_answer(self, cursor: bool = False) -> list[tuple[int | str | None, ...]] | int:
        first = self._check(self._read()[1])
        if first[:1] == b"\x00":
            return _lenenc(first, 1)[0]
        count, _ = _lenenc(first, 0)
        self.types = self._column_types(count)
        if cursor:
            return []
        return self._rows(self.types)

    def prepare_execute(
        self, sql: str, params: list[Value]
    ) -> tuple[Prepared | ServerError, list[tuple[int | str | None, ...]] | int | ServerError]:
        """COM_STMT_PREPARE and COM_STMT_EXECUTE of statement -1 (MariaDB's last prepared
        statement) sent together before either answer is read, as Connector/J 3 pipelines
        them: (the prepared statement or its error, the execution's answer or its error)."""
        pipelined = Prepared(0xFFFFFFFF, len(params), 0)
        prepare = b"\x16" + sql.encode()
        execute = self._execute_body(pipelined, params)
        self.sock.sendall(
            len(prepare).to_bytes(3, "little")
            + b"\x00"
            + prepare
            + len(execute).to_bytes(3, "little")
            + b"\x00"
            + execute
        )
        prepared: Prepared | ServerError
        try:
            prepared = self._prepare_answer()
        except ServerError as exc:
            prepared = exc
        try:
            return prepared, self._execute_answer()
        except ServerError as exc:
            return prepared, exc

    def execute_typed(
        self,
        statement: Prepared,
        params: list[tuple[int, bytes | None]],
        *,
        unsigned: bool = False,
        send_types: bool = True,
    ) -> list[tuple[int | str | None, ...]] | int:
        """``execute`` with each parameter's type code and its value as the wire encodes it
        (None: NULL), sent as given (the types flagged ``unsigned``; without them, "as last
        time", with ``send_types`` False): rows, or the affected rows of an OK."""
        body = bytearray(b"\x17" + statement.statement_id.to_bytes(4, "little"))
        body += b"\x00" + (1).to_bytes(4, "little")
        bitmap = bytearray((statement.params + 7) // 8)
        for i, (_, raw) in enumerate(params):
            if raw is None:
                bitmap[i // 8] |= 1 << (i % 8)
        body += bitmap + (b"\x01" if send_types else b"\x00")
        for code, _ in params if send_types else ():
            body += bytes([code, 0x80 if unsigned else 0])
        for _, raw in params:
            body += raw or b""
        self._send(bytes(body))
        first = self._check(self._read()[1])
        if first[:1] == b"\x00":
            return _lenenc(first, 1)[0]
        count, _ = _lenenc(first, 0)
        self.types = self._column_types(count)
        return self._rows(self.types)

    def execute_raw(self, statement: Prepared) -> tuple[list[bytes], list[bytes]]:
        """A statement without parameters executed: its column definitions and binary rows
        as the payloads received (none for an OK); ServerError for an ERR, also mid-rows."""
        body = (
            b"\x17"
            + statement.statement_id.to_bytes(4, "little")
            + b"\x00"
            + (1).to_bytes(4, "little")
        )
        self._send(body)
        first = self._check(self._read()[1])
        if first[:1] == b"\x00":
            return [], []
        count, _ = _lenenc(first, 0)
        columns = [self._read()[1] for _ in range(count)]
        self._skip_eof()
        rows: list[bytes] = []
        while True:
            payload = self._check(self._read()[1])
            if payload[:1] == b"\xfe" and len(payload) < 9:
                return columns, rows
            rows.append(payload)

    def fetch(self, statement: Prepared, rows: int) -> list[tuple[int | str | None, ...]]:
        """Rows from the cursor of the last execution (``cursor=True``)."""
        head = statement.statement_id.to_bytes(4, "little") + rows.to_bytes(4, "little")
        self._send(b"\x1c" + head)
        return self._rows(self.types)

    def _rows(self, types: list[int]) -> list[tuple[int | str | None, ...]]:
        out: list[tuple[int | str | None, ...]] = []
        while True:
            payload = self._check(self._read()[1])
            if payload[:1] == b"\xfe" and len(payload) < 9:
                return out
            nulls = payload[1 : 1 + (len(types) + 9) // 8]
            pos = 1 + len(nulls)
            row: list[int | str | None] = []
            for i, kind in enumerate(types):
                if nulls[(i + 2) // 8] & (1 << ((i + 2) % 8)):
                    row.append(None)
                elif kind == _LONGLONG:
                    row.append(struct.unpack_from("<q", payload, pos)[0])
                    pos += 8
                elif kind in _INTEGERS:  # (SHOW PROCESSLIST's Time on MariaDB: a LONG)
                    form = _INTEGERS[kind]
                    row.append(struct.unpack_from(form, payload, pos)[0])
                    pos += struct.calcsize(form)
                else:
                    length, pos = _lenenc(payload, pos)
                    row.append(payload[pos : pos + length].decode())
                    pos += length
            out.append(tuple(row))

    def send_long_data(self, statement: Prepared, param: int, data: bytes) -> None:
        head = statement.statement_id.to_bytes(4, "little") + param.to_bytes(2, "little")
        self._send(b"\x18" + head + data)

    def reset(self, statement: Prepared) -> None:
        self._send(b"\x1a" + statement.statement_id.to_bytes(4, "little"))
        self._check(self._read()[1])

    def close_statement(self, statement: Prepared) -> None:
        self._send(b"\x19" + statement.statement_id.to_bytes(4, "little"))

    def close(self) -> None:
        try:
            self._send(b"\x01")
        finally:
            self.sock.close()

"""Pure MySQL client/server wire codec.

Bytes in, values out: no I/O, no asyncio, no policy. Builders return packet
*payloads* (without the 4-byte frame header); use :func:`frame` /
:func:`frame_all` to add headers. Parsers raise :class:`ProtocolError` (and
nothing else) on malformed or truncated input.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CHARSET_BINARY",
    "FIELD_TYPE_BLOB",
    "FIELD_TYPE_DOUBLE",
    "FIELD_TYPE_LONG",
    "FIELD_TYPE_LONGLONG",
    "FIELD_TYPE_NULL",
    "FIELD_TYPE_STRING",
    "FIELD_TYPE_TINY",
    "FIELD_TYPE_VARCHAR",
    "FIELD_TYPE_VAR_STRING",
    "MAX_PAYLOAD",
    "Capability",
    "ChangeUser",
    "Command",
    "ErrPacket",
    "HandshakeResponse",
    "OkPacket",
    "ProtocolError",
    "ServerHandshake",
    "ServerStatus",
    "StmtPrepareOk",
    "build_auth_more_data",
    "build_auth_switch_request",
    "build_column_count",
    "build_column_definition",
    "build_eof",
    "build_err",
    "build_handshake_response",
    "build_handshake_v10",
    "build_ok",
    "build_text_resultset",
    "build_text_row",
    "frame",
    "frame_all",
    "frame_count",
    "is_eof_packet",
    "is_err_packet",
    "is_ok_packet",
    "is_resultset_terminator",
    "is_ssl_request",
    "lenenc_int",
    "lenenc_str",
    "parse_change_user",
    "parse_eof",
    "parse_err",
    "parse_frame_header",
    "parse_handshake_response",
    "parse_handshake_v10",
    "parse_ok",
    "parse_ok_status",
    "parse_ssl_request",
    "parse_stmt_prepare_ok",
    "read_lenenc_int",
    "read_lenenc_str",
    "read_nul_str",
    "session_track_schema",
]

Buffer = bytes | bytearray | memoryview


class ProtocolError(Exception):
    """Malformed, truncated or unsupported wire data."""


class Capability(enum.IntFlag):
    LONG_PASSWORD = 1
    FOUND_ROWS = 2
    LONG_FLAG = 4
    CONNECT_WITH_DB = 8
    NO_SCHEMA = 16
    COMPRESS = 32
    ODBC = 64
    LOCAL_FILES = 128
    IGNORE_SPACE = 256
    PROTOCOL_41 = 512
    INTERACTIVE = 1024
    SSL = 2048
    IGNORE_SIGPIPE = 4096
    TRANSACTIONS = 8192
    RESERVED = 16384
    SECURE_CONNECTION = 32768
    MULTI_STATEMENTS = 1 << 16
    MULTI_RESULTS = 1 << 17
    PS_MULTI_RESULTS = 1 << 18
    PLUGIN_AUTH = 1 << 19
    CONNECT_ATTRS = 1 << 20
    PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21
    CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22
    SESSION_TRACK = 1 << 23
    DEPRECATE_EOF = 1 << 24
    OPTIONAL_RESULTSET_METADATA = 1 << 25
    ZSTD_COMPRESSION = 1 << 26
    QUERY_ATTRIBUTES = 1 << 27
    SSL_VERIFY_SERVER_CERT = 1 << 30
    REMEMBER_OPTIONS = 1 << 31
    # MariaDB's extended capabilities: the last 4 of the greeting's 10 reserved bytes and of
    # the handshake response's 23 filler bytes, read only when CLIENT_MYSQL (LONG_PASSWORD)
    # is clear. Kept here shifted by 32, so one int carries every capability.
    MARIADB_CLIENT_PROGRESS = 1 << 32
    MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1 << 34
    MARIADB_CLIENT_EXTENDED_TYPE_INFO = 1 << 35
    MARIADB_CLIENT_CACHE_METADATA = 1 << 36


class ServerStatus(enum.IntFlag):
    IN_TRANS = 1
    AUTOCOMMIT = 2
    MORE_RESULTS_EXISTS = 8
    NO_GOOD_INDEX_USED = 16
    NO_INDEX_USED = 32
    CURSOR_EXISTS = 64
    LAST_ROW_SENT = 128
    DB_DROPPED = 256
    NO_BACKSLASH_ESCAPES = 512
    METADATA_CHANGED = 1024
    QUERY_WAS_SLOW = 2048
    PS_OUT_PARAMS = 4096
    IN_TRANS_READONLY = 8192
    SESSION_STATE_CHANGED = 1 << 14


class Command(enum.IntEnum):
    COM_SLEEP = 0
    COM_QUIT = 1
    COM_INIT_DB = 2
    COM_QUERY = 3
    COM_FIELD_LIST = 4
    COM_CREATE_DB = 5
    COM_DROP_DB = 6
    COM_REFRESH = 7
    COM_SHUTDOWN = 8
    COM_STATISTICS = 9
    COM_PROCESS_INFO = 10
    COM_CONNECT = 11
    COM_PROCESS_KILL = 12
    COM_DEBUG = 13
    COM_PING = 14
    COM_TIME = 15
    COM_DELAYED_INSERT = 16
    COM_CHANGE_USER = 17
    COM_BINLOG_DUMP = 18
    COM_TABLE_DUMP = 19
    COM_CONNECT_OUT = 20
    COM_REGISTER_SLAVE = 21
    COM_STMT_PREPARE = 22
    COM_STMT_EXECUTE = 23
    COM_STMT_SEND_LONG_DATA = 24
    COM_STMT_CLOSE = 25
    COM_STMT_RESET = 26
    COM_SET_OPTION = 27
    COM_STMT_FETCH = 28
    COM_DAEMON = 29
    COM_BINLOG_DUMP_GTID = 30
    COM_RESET_CONNECTION = 31


MAX_PAYLOAD = 0xFFFFFF

FIELD_TYPE_TINY = 1
FIELD_TYPE_LONG = 3
FIELD_TYPE_DOUBLE = 5
FIELD_TYPE_NULL = 6
FIELD_TYPE_LONGLONG = 8
FIELD_TYPE_VARCHAR = 15
FIELD_TYPE_BLOB = 252
FIELD_TYPE_VAR_STRING = 253
FIELD_TYPE_STRING = 254

# Column definition flags used by the result-set helper.
_NOT_NULL_FLAG = 1
_BINARY_FLAG = 128

CHARSET_BINARY = 63

# Plain int copies of the flags for the hot paths (IntFlag ops are slow).
_CAP_PROTOCOL_41 = 512
_CAP_TRANSACTIONS = 8192
_CAP_SECURE_CONNECTION = 32768
_CAP_CONNECT_WITH_DB = 8
_CAP_SSL = 2048
_CAP_PLUGIN_AUTH = 1 << 19
_CAP_CONNECT_ATTRS = 1 << 20
_CAP_LENENC_AUTH = 1 << 21
_CAP_SESSION_TRACK = 1 << 23
_CAP_DEPRECATE_EOF = 1 << 24
_CAP_CLIENT_MYSQL = 1  # LONG_PASSWORD's bit: set by MySQL, clear when MariaDB's extensions count
_CAP_EXTENDED_TYPE_INFO = 1 << 35
_CAP_CACHE_METADATA = 1 << 36
_STATUS_SESSION_STATE_CHANGED = 1 << 14

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_EOF = struct.Struct("<BHH")
_ERR_HEAD = struct.Struct("<BH")
_HS_RESP_HEAD = struct.Struct("<IIB19xI")
_COLDEF_TAIL = struct.Struct("<BHIBHB2x")
_PREPARE_OK = struct.Struct("<xIHHxH")
_NUL_SCRAMBLE_PLUGINS = frozenset({"mysql_native_password", "caching_sha2_password"})


# ---------------------------------------------------------------------------
# Framing
# ---------------------------------------------------------------------------


def frame(seq: int, payload: bytes) -> bytes:
    """Prefix ``payload`` with frame header(s), splitting at 0xFFFFFF bytes.

    A payload of exactly k * 0xFFFFFF bytes (k >= 1) is followed by an empty
    frame, as the protocol requires.
    """
    n = len(payload)
    if n < MAX_PAYLOAD:
        return _U32.pack(n | (seq & 0xFF) << 24) + payload
    return b"".join(frame_parts(seq, payload))


def frame_parts(seq: int, payload: bytes) -> list[bytes | memoryview]:
    """:func:`frame` as a list of pieces -- headers, and views of ``payload`` not copied -- for
    a vectored write of a large payload."""
    parts: list[bytes | memoryview] = []
    view = memoryview(payload)
    pos = 0
    n = len(payload)
    while True:
        size = min(MAX_PAYLOAD, n - pos)
        parts.append(_U32.pack(size | (seq & 0xFF) << 24))
        if size:
            parts.append(view[pos : pos + size])
        seq += 1
        pos += size
        if size < MAX_PAYLOAD:
            return parts


def frame_count(payload_len: int) -> int:
    """Number of frames :func:`frame` emits for a payload of this length."""
    return payload_len // MAX_PAYLOAD + 1


def frame_all(seq: int, payloads: Iterable[bytes]) -> tuple[bytes, int]:
    """Frame consecutive payloads; return the bytes and the next sequence id."""
    parts: list[bytes] = []
    for p in payloads:
        parts.append(frame(seq, p))
        seq = (seq + frame_count(len(p))) & 0xFF
    return b"".join(parts), seq


def parse_frame_header(header: Buffer) -> tuple[int, int]:
    """Return ``(payload_length, sequence_id)`` from a 4-byte frame header."""
    if len(header) < 4:
        raise ProtocolError("truncated frame header")
    return header[0] | header[1] << 8 | header[2] << 16, header[3]


# ---------------------------------------------------------------------------
# Primitive encodings
# ---------------------------------------------------------------------------


def lenenc_int(n: int) -> bytes:
    if n < 0:
        raise ValueError("length-encoded integer must be non-negative")
    if n < 251:
        return bytes((n,))
    if n < 0x10000:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 0x1000000:
        return b"\xfd" + n.to_bytes(3, "little")
    if n < 1 << 64:
        return b"\xfe" + n.to_bytes(8, "little")
    raise ValueError("length-encoded integer too large")


def read_lenenc_int(buf: Buffer, pos: int) -> tuple[int | None, int]:
    """Read a length-encoded integer at ``pos``; 0xFB (NULL) yields ``None``."""
    n = len(buf)
    if pos >= n:
        raise ProtocolError("truncated length-encoded integer")
    first = buf[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFB:
        return None, pos + 1
    if first == 0xFC:
        end = pos + 3
    elif first == 0xFD:
        end = pos + 4
    elif first == 0xFE:
        end = pos + 9
    else:
        raise ProtocolError("invalid length-encoded integer prefix 0xFF")
    if end > n:
        raise ProtocolError("truncated length-encoded integer")
    return int.from_bytes(buf[pos + 1 : end], "little"), end


def _read_lenenc_int_notnull(buf: Buffer, pos: int) -> tuple[int, int]:
    value, pos = read_lenenc_int(buf, pos)
    if value is None:
        raise ProtocolError("unexpected NULL length-encoded integer")
    return value, pos


def lenenc_str(b: bytes) -> bytes:
    return lenenc_int(len(b)) + b


def read_lenenc_str(buf: Buffer, pos: int) -> tuple[bytes | None, int]:
    """Read a length-encoded string at ``pos``; NULL (0xFB) yields ``None``."""
    length, pos = read_lenenc_int(buf, pos)
    if length is None:
        return None, pos
    end = pos + length
    if end > len(buf):
        raise ProtocolError("truncated length-encoded string")
    return bytes(buf[pos:end]), end


def _read_lenenc_bytes(buf: Buffer, pos: int) -> tuple[bytes, int]:
    value, pos = read_lenenc_str(buf, pos)
    if value is None:
        raise ProtocolError("unexpected NULL length-encoded string")
    return value, pos


def read_nul_str(buf: Buffer, pos: int) -> tuple[bytes, int]:
    """Read a NUL-terminated string at ``pos``; returns it without the NUL."""
    if isinstance(buf, memoryview):
        tail = bytes(buf[pos:])
        idx = tail.find(0)
        if idx < 0:
            raise ProtocolError("unterminated string")
        return tail[:idx], pos + idx + 1
    idx = buf.find(0, pos)
    if idx < 0:
        raise ProtocolError("unterminated string")
    return bytes(buf[pos:idx]), idx + 1


def _read_fixed(buf: Buffer, pos: int, n: int) -> tuple[bytes, int]:
    end = pos + n
    if end > len(buf):
        raise ProtocolError("truncated packet")
    return bytes(buf[pos:end]), end


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not valid utf-8") from exc


def _decode_name(raw: bytes) -> str:
    """A user or database name of a login: bytes that are not UTF-8 become U+FFFD, as MariaDB
    shows them ('?'). Such a name matches no account and no database, so the login gets the
    same refusal (1045, or the database's 1044/1049) as any other unknown name, never a "bad
    handshake" that would tell them apart."""
    return raw.decode("utf-8", "replace")


def _as_bytes(buf: Buffer) -> bytes:
    return buf if isinstance(buf, bytes) else bytes(buf)


# ---------------------------------------------------------------------------
# Server -> client builders
# ---------------------------------------------------------------------------


def build_handshake_v10(
    *,
    connection_id: int,
    server_version: str,
    scramble: bytes,
    capabilities: int,
    charset: int,
    status: int,
    auth_plugin: str,
) -> bytes:
    """Initial Handshake Packet, protocol version 10.

    ``scramble`` must be 20 bytes (sent as 8 + 12 + NUL). The auth-plugin-data
    length (21) and the plugin name are only sent with CLIENT_PLUGIN_AUTH, as
    the protocol prescribes (otherwise the length byte is 0). MariaDB's extended
    capabilities (``capabilities >> 32``) go in the last 4 reserved bytes, and
    then CLIENT_MYSQL is cleared, as a MariaDB server does.
    """
    if len(scramble) != 20:
        raise ValueError("scramble must be 20 bytes")
    extended = (capabilities >> 32) & 0xFFFFFFFF
    if extended:
        capabilities &= ~_CAP_CLIENT_MYSQL
    plugin_auth = bool(capabilities & _CAP_PLUGIN_AUTH)
    parts = [
        b"\x0a",
        server_version.encode("utf-8"),
        b"\x00",
        _U32.pack(connection_id & 0xFFFFFFFF),
        scramble[:8],
        b"\x00",
        _U16.pack(capabilities & 0xFFFF),
        bytes((charset & 0xFF,)),
        _U16.pack(status & 0xFFFF),
        _U16.pack((capabilities >> 16) & 0xFFFF),
        b"\x15" if plugin_auth else b"\x00",
        bytes(6),
        _U32.pack(extended),
        scramble[8:],
        b"\x00",
    ]
    if plugin_auth:
        parts.append(auth_plugin.encode("utf-8"))
        parts.append(b"\x00")
    return b"".join(parts)


def build_ok(
    *,
    capabilities: int,
    affected_rows: int = 0,
    last_insert_id: int = 0,
    status: int = 2,
    warnings: int = 0,
    info: bytes = b"",
    header: int = 0x00,
    session_state: bytes = b"",
) -> bytes:
    """OK packet (``header=0xFE`` for the OK-as-EOF of CLIENT_DEPRECATE_EOF).

    ``info`` is sent length-encoded when non-empty (what MySQL and MariaDB
    servers actually do, with or without CLIENT_SESSION_TRACK). ``session_state``
    (session-state change records, :func:`session_track_schema`) is sent only
    with CLIENT_SESSION_TRACK, after the info (then always present) and with
    SERVER_SESSION_STATE_CHANGED set; otherwise that flag is always clear, so the
    packet never announces data it does not carry.
    """
    status &= ~_STATUS_SESSION_STATE_CHANGED
    tracked = bool(session_state) and bool(capabilities & _CAP_SESSION_TRACK)
    if tracked:
        status |= _STATUS_SESSION_STATE_CHANGED
    parts = [bytes((header,)), lenenc_int(affected_rows), lenenc_int(last_insert_id)]
    if capabilities & _CAP_PROTOCOL_41:
        parts.append(_U16.pack(status & 0xFFFF))
        parts.append(_U16.pack(warnings & 0xFFFF))
    elif capabilities & _CAP_TRANSACTIONS:
        parts.append(_U16.pack(status & 0xFFFF))
    if info or tracked:
        parts.append(lenenc_str(info))
    if tracked:
        parts.append(lenenc_str(session_state))
    return b"".join(parts)


SESSION_TRACK_SCHEMA = 1


def session_track_schema(database: str) -> bytes:
    """The session-state record of a new current database (SESSION_TRACK_SCHEMA), as MariaDB
    sends it in the OK of ``USE`` / COM_INIT_DB."""
    return bytes((SESSION_TRACK_SCHEMA,)) + lenenc_str(lenenc_str(database.encode("utf-8")))


def build_err(*, errno: int, sqlstate: str, message: str, capabilities: int) -> bytes:
    parts = [_ERR_HEAD.pack(0xFF, errno & 0xFFFF)]
    if capabilities & _CAP_PROTOCOL_41:
        state = sqlstate.encode("ascii")
        if len(state) != 5:
            raise ValueError("sqlstate must be 5 ASCII characters")
        parts.append(b"#")
        parts.append(state)
    # surrogateescape: a message quoting client text gives the client its own bytes back
    parts.append(message.encode("utf-8", "surrogateescape"))
    return b"".join(parts)


def build_eof(*, warnings: int = 0, status: int = 2) -> bytes:
    return _EOF.pack(0xFE, warnings & 0xFFFF, status & 0xFFFF)


def build_auth_switch_request(plugin: str, data: bytes) -> bytes:
    """Auth Switch Request. For mysql_native_password / caching_sha2_password a
    20-byte scramble gets the trailing NUL MySQL sends; other data is sent as is.
    """
    if plugin in _NUL_SCRAMBLE_PLUGINS and len(data) == 20:
        data = data + b"\x00"
    return b"\xfe" + plugin.encode("utf-8") + b"\x00" + data


def build_auth_more_data(data: bytes) -> bytes:
    return b"\x01" + data


def build_column_count(n: int) -> bytes:
    return lenenc_int(n)


def build_column_definition(
    *,
    name: str,
    type_code: int,
    charset: int = 33,
    length: int = 0,
    flags: int = 0,
    decimals: int = 0,
    schema: str = "",
    table: str = "",
    org_table: str = "",
    org_name: str = "",
    capabilities: int = 0,
) -> bytes:
    """ColumnDefinition41 (catalog "def"); with MARIADB_CLIENT_EXTENDED_TYPE_INFO
    negotiated, an (empty) extended type information block follows the names. A name made
    of a client's text (``SHOW DATABASES LIKE '...'``'s column) may hold its bytes that were
    no UTF-8, kept as surrogates: they are sent back as those bytes."""
    return b"".join(
        (
            b"\x03def",
            lenenc_str(schema.encode("utf-8")),
            lenenc_str(table.encode("utf-8")),
            lenenc_str(org_table.encode("utf-8")),
            lenenc_str(name.encode("utf-8", "surrogateescape")),
            lenenc_str(org_name.encode("utf-8", "surrogateescape")),
            b"\x00" if capabilities & _CAP_EXTENDED_TYPE_INFO else b"",
            _COLDEF_TAIL.pack(
                0x0C,
                charset & 0xFFFF,
                length & 0xFFFFFFFF,
                type_code & 0xFF,
                flags & 0xFFFF,
                decimals & 0xFF,
            ),
        )
    )


def build_stmt_prepare_ok(
    statement_id: int,
    columns: Sequence[bytes],
    params: int,
    *,
    capabilities: int,
    warnings: int = 0,
) -> list[bytes]:
    """The payloads of a COM_STMT_PREPARE's answer: its OK, then ``params`` parameter
    definitions (``?``, of no type, as MariaDB sends them) and the ``columns``' definitions,
    each list followed by an EOF unless CLIENT_DEPRECATE_EOF."""
    out = [_PREPARE_OK.pack(statement_id, len(columns), params, warnings)]
    parameter = build_column_definition(
        name="?",
        type_code=FIELD_TYPE_NULL,
        charset=CHARSET_BINARY,
        flags=_BINARY_FLAG,
        capabilities=capabilities,
    )
    for definitions in ([parameter] * params, list(columns)):
        if definitions:
            out += definitions
            if not capabilities & _CAP_DEPRECATE_EOF:
                out.append(build_eof())
    return out


def _text_bytes(v: bytes | str | None) -> bytes | None:
    """A text value's UTF-8. Text that came from a client (a statement in the processlist or
    the digest) may hold bytes that are not UTF-8, kept as surrogates: each becomes U+FFFD (as
    MariaDB shows them, '?'), so the proxy's own answers are always valid UTF-8."""
    if not isinstance(v, str):
        return v
    try:
        return v.encode("utf-8")
    except UnicodeEncodeError:
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8")


def _text_value(v: bytes | str | None) -> bytes:
    if v is None:
        return b"\xfb"
    if isinstance(v, str):
        v = _text_bytes(v)
        assert v is not None
    return lenenc_int(len(v)) + v


def build_text_row(values: Sequence[bytes | str | None]) -> bytes:
    return b"".join([_text_value(v) for v in values])


_NUMERIC_TYPES: dict[int, int] = {
    # type_code -> display length
    1: 4,  # TINY
    2: 6,  # SHORT
    3: 11,  # LONG
    4: 12,  # FLOAT
    5: 22,  # DOUBLE
    8: 21,  # LONGLONG
    9: 9,  # INT24
    246: 65,  # NEWDECIMAL
}


def build_text_resultset(
    *,
    columns: Sequence[tuple[str, int]],
    rows: Iterable[Sequence[bytes | str | None]],
    capabilities: int,
    status: int = 2,
    definitions: Sequence[bytes] = (),
    text_charset: int = 33,
) -> list[bytes]:
    """Payloads of a complete text result set (no frame headers); ``definitions``: the
    columns' definitions as given (else made as below).

    Numeric columns are described as binary-charset (63) with BINARY_FLAG;
    everything else as ``text_charset`` (a collation number: utf8mb3_general_ci unless told)
    with column length = longest value in bytes.
    The column count and definitions follow the negotiated capabilities (MariaDB's
    metadata-follows byte with MARIADB_CLIENT_CACHE_METADATA, extended type info),
    and ``status`` never claims session-state data (see :func:`build_ok`).
    """
    status &= ~_STATUS_SESSION_STATE_CHANGED
    ncols = len(columns)
    raw_rows: list[list[bytes | None]] = []
    for row in rows:
        if len(row) != ncols:
            raise ValueError("row length does not match column count")
        raw_rows.append([_text_bytes(v) for v in row])
    count = lenenc_int(ncols)
    if capabilities & _CAP_CACHE_METADATA:
        count += b"\x01"  # the column definitions follow
    out: list[bytes] = [count, *definitions]
    for i, (name, type_code) in enumerate(() if definitions else columns):
        numeric_len = _NUMERIC_TYPES.get(type_code)
        if numeric_len is not None:
            out.append(
                build_column_definition(
                    name=name,
                    type_code=type_code,
                    charset=CHARSET_BINARY,
                    length=numeric_len,
                    flags=_BINARY_FLAG,
                    capabilities=capabilities,
                )
            )
        else:
            longest = max((len(v) for r in raw_rows if (v := r[i]) is not None), default=0)
            out.append(
                build_column_definition(
                    name=name,
                    type_code=type_code,
                    charset=text_charset,
                    length=longest,
                    capabilities=capabilities,
                )
            )
    deprecate_eof = bool(capabilities & _CAP_DEPRECATE_EOF)
    if not deprecate_eof:
        out.append(build_eof(status=status))
    out.extend(build_text_row(r) for r in raw_rows)
    if deprecate_eof:
        out.append(build_ok(capabilities=capabilities, status=status, header=0xFE))
    else:
        out.append(build_eof(status=status))
    return out


# ---------------------------------------------------------------------------
# Client -> server parsers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HandshakeResponse:
    capabilities: int
    max_packet_size: int
    charset: int
    username: str
    auth_response: bytes
    database: str | None
    auth_plugin: str | None
    attributes: dict[str, str] = field(default_factory=dict)


def is_ssl_request(payload: Buffer) -> bool:
    """True for a 32-byte HandshakeResponse41 prefix with CLIENT_SSL set."""
    return len(payload) == 32 and bool(payload[1] & (_CAP_SSL >> 8))


def parse_ssl_request(payload: Buffer) -> tuple[int, int, int]:
    """Return ``(capabilities, max_packet_size, charset)`` of an SSLRequest."""
    if len(payload) < 32:
        raise ProtocolError("truncated SSL request")
    return _response_head(payload)


def _response_head(buf: Buffer) -> tuple[int, int, int]:
    """Capabilities (MariaDB's extended ones shifted in when CLIENT_MYSQL is clear), max
    packet size and character set of a HandshakeResponse41 or SSLRequest."""
    caps, max_packet, charset, extended = _HS_RESP_HEAD.unpack_from(buf, 0)
    if not caps & _CAP_CLIENT_MYSQL:
        caps |= extended << 32
    return caps, max_packet, charset


def _read_attributes(buf: bytes, pos: int) -> tuple[dict[str, str], int]:
    total, pos = _read_lenenc_int_notnull(buf, pos)
    end = pos + total
    if end > len(buf):
        raise ProtocolError("truncated connection attributes")
    attrs: dict[str, str] = {}
    region = buf[:end]
    while pos < end:
        key, pos = _read_lenenc_bytes(region, pos)
        value, pos = _read_lenenc_bytes(region, pos)
        attrs[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return attrs, end


def _read_trailing_plugin(buf: bytes, pos: int) -> tuple[str | None, int]:
    """Plugin name at the end of a packet; tolerates absence and a missing NUL."""
    if pos >= len(buf):
        return None, pos
    idx = buf.find(0, pos)
    if idx < 0:
        return _decode(buf[pos:], "auth plugin name"), len(buf)
    return _decode(buf[pos:idx], "auth plugin name"), idx + 1


def parse_handshake_response(payload: Buffer) -> HandshakeResponse:
    """Parse a HandshakeResponse41 (CLIENT_PROTOCOL_41 required).

    An empty database name is reported as ``None``; a missing trailing plugin
    name or attribute block (as some clients send) is tolerated.
    """
    buf = _as_bytes(payload)
    if len(buf) < 32:
        raise ProtocolError("truncated handshake response")
    caps, max_packet, charset = _response_head(buf)
    if not caps & _CAP_PROTOCOL_41:
        raise ProtocolError("client does not support CLIENT_PROTOCOL_41")
    raw_user, pos = read_nul_str(buf, 32)
    username = _decode_name(raw_user)
    if caps & _CAP_LENENC_AUTH:
        auth, pos = _read_lenenc_bytes(buf, pos)
    elif caps & _CAP_SECURE_CONNECTION:
        if pos >= len(buf):
            raise ProtocolError("truncated auth response")
        auth, pos = _read_fixed(buf, pos + 1, buf[pos])
    else:
        auth, pos = read_nul_str(buf, pos)
    database: str | None = None
    if caps & _CAP_CONNECT_WITH_DB:
        raw_db, pos = read_nul_str(buf, pos)
        database = _decode_name(raw_db) or None
    plugin: str | None = None
    if caps & _CAP_PLUGIN_AUTH:
        plugin, pos = _read_trailing_plugin(buf, pos)
    attrs: dict[str, str] = {}
    if caps & _CAP_CONNECT_ATTRS and pos < len(buf):
        attrs, pos = _read_attributes(buf, pos)
    return HandshakeResponse(
        capabilities=caps,
        max_packet_size=max_packet,
        charset=charset,
        username=username,
        auth_response=auth,
        database=database,
        auth_plugin=plugin,
        attributes=attrs,
    )


@dataclass(frozen=True)
class ChangeUser:
    username: str
    auth_response: bytes
    database: str | None
    charset: int | None
    auth_plugin: str | None
    attributes: dict[str, str] = field(default_factory=dict)


def parse_change_user(payload: Buffer, capabilities: int) -> ChangeUser:
    """Parse COM_CHANGE_USER (``payload`` starts with the 0x11 command byte).

    An empty database name is reported as ``None``.
    """
    buf = _as_bytes(payload)
    if not buf or buf[0] != Command.COM_CHANGE_USER:
        raise ProtocolError("not a COM_CHANGE_USER packet")
    raw_user, pos = read_nul_str(buf, 1)
    username = _decode_name(raw_user)
    if capabilities & _CAP_SECURE_CONNECTION:
        if pos >= len(buf):
            raise ProtocolError("truncated auth response")
        auth, pos = _read_fixed(buf, pos + 1, buf[pos])
    else:
        auth, pos = read_nul_str(buf, pos)
    raw_db, pos = read_nul_str(buf, pos)
    database = _decode_name(raw_db) or None
    charset: int | None = None
    plugin: str | None = None
    attrs: dict[str, str] = {}
    if pos < len(buf):
        if capabilities & _CAP_PROTOCOL_41:
            raw_cs, pos = _read_fixed(buf, pos, 2)
            charset = raw_cs[0] | raw_cs[1] << 8
        if capabilities & _CAP_PLUGIN_AUTH:
            plugin, pos = _read_trailing_plugin(buf, pos)
        if capabilities & _CAP_CONNECT_ATTRS and pos < len(buf):
            attrs, pos = _read_attributes(buf, pos)
    return ChangeUser(
        username=username,
        auth_response=auth,
        database=database,
        charset=charset,
        auth_plugin=plugin,
        attributes=attrs,
    )


# ---------------------------------------------------------------------------
# Backend side (proxy acting as a client)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerHandshake:
    protocol_version: int
    server_version: str
    connection_id: int
    scramble: bytes
    capabilities: int
    charset: int
    status: int
    auth_plugin: str


def parse_handshake_v10(payload: Buffer) -> ServerHandshake:
    """Parse the server greeting (protocol 10 only; ERR or other -> ProtocolError).

    MariaDB's extended capabilities (the last 4 reserved bytes, when CLIENT_MYSQL
    is clear) are shifted into ``capabilities`` above bit 32. If the server does
    not announce a plugin, ``auth_plugin`` is "mysql_native_password".
    """
    buf = _as_bytes(payload)
    if not buf:
        raise ProtocolError("empty handshake")
    if buf[0] != 10:
        raise ProtocolError(f"unsupported handshake protocol version {buf[0]}")
    raw_version, pos = read_nul_str(buf, 1)
    end = pos + 4 + 8 + 1 + 2
    if end > len(buf):
        raise ProtocolError("truncated handshake")
    conn_id = _U32.unpack_from(buf, pos)[0]
    scramble = buf[pos + 4 : pos + 12]
    caps = buf[pos + 13] | buf[pos + 14] << 8
    pos = end
    charset = 0
    status = 0
    plugin = "mysql_native_password"
    if pos < len(buf):
        if pos + 16 > len(buf):
            raise ProtocolError("truncated handshake")
        charset = buf[pos]
        status = buf[pos + 1] | buf[pos + 2] << 8
        caps |= (buf[pos + 3] | buf[pos + 4] << 8) << 16
        if not caps & _CAP_CLIENT_MYSQL:
            caps |= _U32.unpack_from(buf, pos + 12)[0] << 32
        auth_len = buf[pos + 5]
        pos += 16  # charset, status, caps upper, auth len, 10 reserved
        if caps & _CAP_SECURE_CONNECTION:
            part2_len = max(13, auth_len - 8)
            part2 = buf[pos : pos + part2_len]
            if len(part2) < 12:
                raise ProtocolError("truncated auth plugin data")
            pos += len(part2)
            if part2.endswith(b"\x00"):
                part2 = part2[:-1]
            scramble += part2
        if caps & _CAP_PLUGIN_AUTH:
            name, pos = _read_trailing_plugin(buf, pos)
            if name:
                plugin = name
    return ServerHandshake(
        protocol_version=10,
        server_version=raw_version.decode("utf-8", "replace"),
        connection_id=conn_id,
        scramble=scramble,
        capabilities=caps,
        charset=charset,
        status=status,
        auth_plugin=plugin,
    )


def build_handshake_response(
    *,
    capabilities: int,
    max_packet_size: int,
    charset: int,
    username: str,
    auth_response: bytes,
    database: str | None,
    auth_plugin: str,
    attributes: dict[str, str] | None = None,
) -> bytes:
    """HandshakeResponse41.

    The capabilities actually sent are ``capabilities | PROTOCOL_41 |
    PLUGIN_AUTH``, with CONNECT_WITH_DB set iff ``database`` is given and
    CONNECT_ATTRS set iff ``attributes`` is non-empty; MariaDB's extended ones
    (``capabilities >> 32``) go in the last 4 filler bytes, with CLIENT_MYSQL
    then cleared so that a MariaDB server reads them. The auth response is
    length-encoded with PLUGIN_AUTH_LENENC_CLIENT_DATA, else 1-byte-length
    prefixed with SECURE_CONNECTION, else NUL-terminated.
    """
    caps = capabilities | _CAP_PROTOCOL_41 | _CAP_PLUGIN_AUTH
    if database:
        caps |= _CAP_CONNECT_WITH_DB
    else:
        caps &= ~_CAP_CONNECT_WITH_DB
    if attributes:
        caps |= _CAP_CONNECT_ATTRS
    else:
        caps &= ~_CAP_CONNECT_ATTRS
    extended = (caps >> 32) & 0xFFFFFFFF
    if extended:
        caps &= ~_CAP_CLIENT_MYSQL
    caps &= 0xFFFFFFFF
    parts = [
        _HS_RESP_HEAD.pack(caps, max_packet_size & 0xFFFFFFFF, charset & 0xFF, extended),
        username.encode("utf-8"),
        b"\x00",
    ]
    if caps & _CAP_LENENC_AUTH:
        parts.append(lenenc_str(auth_response))
    elif caps & _CAP_SECURE_CONNECTION:
        if len(auth_response) > 255:
            raise ValueError("auth response too long without PLUGIN_AUTH_LENENC_CLIENT_DATA")
        parts.append(bytes((len(auth_response),)))
        parts.append(auth_response)
    else:
        if b"\x00" in auth_response:
            raise ValueError("auth response contains NUL without SECURE_CONNECTION")
        parts.append(auth_response)
        parts.append(b"\x00")
    if database:
        parts.append(database.encode("utf-8"))
        parts.append(b"\x00")
    parts.append(auth_plugin.encode("utf-8"))
    parts.append(b"\x00")
    if attributes:
        blob = b"".join(
            lenenc_str(k.encode("utf-8")) + lenenc_str(v.encode("utf-8"))
            for k, v in attributes.items()
        )
        parts.append(lenenc_str(blob))
    return b"".join(parts)


# ---------------------------------------------------------------------------
# Response parsing (backend -> client)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OkPacket:
    affected_rows: int
    last_insert_id: int
    status: int
    warnings: int
    info: bytes


def parse_ok(payload: Buffer, capabilities: int) -> OkPacket:
    """Parse an OK packet (header 0x00 or 0xFE). Session-state data is skipped."""
    n = len(payload)
    if n < 3:
        raise ProtocolError("truncated OK packet")
    if payload[0] != 0x00 and payload[0] != 0xFE:
        raise ProtocolError("not an OK packet")
    # Fast path: one-byte affected rows / insert id.
    affected = payload[1]
    if affected < 0xFB:
        pos = 2
    else:
        affected, pos = _read_lenenc_int_notnull(payload, 1)
    last_id = payload[pos] if pos < n else 0xFF
    if last_id < 0xFB:
        pos += 1
    else:
        last_id, pos = _read_lenenc_int_notnull(payload, pos)
    status = 0
    warnings = 0
    if capabilities & _CAP_PROTOCOL_41:
        if pos + 4 > n:
            raise ProtocolError("truncated OK packet")
        status = payload[pos] | payload[pos + 1] << 8
        warnings = payload[pos + 2] | payload[pos + 3] << 8
        pos += 4
    elif capabilities & _CAP_TRANSACTIONS:
        if pos + 2 > n:
            raise ProtocolError("truncated OK packet")
        status = payload[pos] | payload[pos + 1] << 8
        pos += 2
    info = b""
    if pos < n:
        if capabilities & _CAP_SESSION_TRACK:
            info, pos = _read_lenenc_bytes(payload, pos)
            if status & _STATUS_SESSION_STATE_CHANGED and pos < n:
                _read_lenenc_bytes(payload, pos)  # validate & skip session state
        else:
            # Documented as string<EOF>, but servers send it length-encoded:
            # accept a length prefix only when it spans exactly the rest.
            info = bytes(payload[pos:n])
            try:
                length, p = read_lenenc_int(payload, pos)
            except ProtocolError:
                length = None
            if length is not None and p + length == n:
                info = info[p - pos :]
    return OkPacket(affected, last_id, status, warnings, info)


def _skip_lenenc(payload: Buffer, pos: int, n: int) -> int:
    if pos >= n:
        raise ProtocolError("truncated length-encoded integer")
    first = payload[pos]
    if first < 0xFB:
        return pos + 1
    if first == 0xFC:
        return pos + 3
    if first == 0xFD:
        return pos + 4
    if first == 0xFE:
        return pos + 9
    raise ProtocolError("invalid length-encoded integer in OK packet")


def parse_ok_status(payload: Buffer, capabilities: int) -> int:
    """Hot-path variant of :func:`parse_ok`: only the server status flags.

    Returns 0 when the negotiated capabilities carry no status field.
    """
    n = len(payload)
    if n < 3 or (payload[0] != 0x00 and payload[0] != 0xFE):
        raise ProtocolError("not an OK packet")
    if not capabilities & (_CAP_PROTOCOL_41 | _CAP_TRANSACTIONS):
        return 0
    pos = _skip_lenenc(payload, _skip_lenenc(payload, 1, n), n)
    if pos + 2 > n:
        raise ProtocolError("truncated OK packet")
    return payload[pos] | payload[pos + 1] << 8


def parse_eof(payload: Buffer) -> tuple[int, int]:
    """Return ``(warnings, status)`` of an EOF packet (pre-4.1 1-byte EOF -> 0, 0)."""
    n = len(payload)
    if n >= 5 and payload[0] == 0xFE:
        return payload[1] | payload[2] << 8, payload[3] | payload[4] << 8
    if n == 1 and payload[0] == 0xFE:
        return 0, 0
    raise ProtocolError("not an EOF packet")


def is_eof_packet(payload: Buffer) -> bool:
    """Header 0xFE and length < 9 (classic EOF)."""
    return 0 < len(payload) < 9 and payload[0] == 0xFE


def is_ok_packet(payload: Buffer) -> bool:
    """Header 0x00 and at least 7 bytes (a PROTOCOL_41 OK packet).

    Only meaningful where a command response is expected (a text row whose
    first column is an empty string also starts with 0x00).
    """
    return len(payload) >= 7 and payload[0] == 0x00


def is_err_packet(payload: Buffer) -> bool:
    return len(payload) > 0 and payload[0] == 0xFF


def err_message_at(payload: Buffer) -> int:
    """Where an ERR payload's message starts: after the errno, and after the ``#`` SQLSTATE
    marker and state when there is one (a shard's errors to the proxy, protocol 4.1)."""
    return 9 if payload[3:4] == b"#" else 3


def is_resultset_terminator(payload: Buffer, capabilities: int) -> bool:
    """True if this payload ends the row stream of a result set: EOF, or with
    CLIENT_DEPRECATE_EOF the 0xFE-headed OK (which may be longer than 9 bytes).
    ERR packets are not included (check :func:`is_err_packet` separately)."""
    n = len(payload)
    if n == 0 or payload[0] != 0xFE:
        return False
    if capabilities & _CAP_DEPRECATE_EOF:
        return n < MAX_PAYLOAD
    return n < 9


@dataclass(frozen=True)
class ErrPacket:
    errno: int
    sqlstate: str
    message: str


def parse_err(payload: Buffer, capabilities: int) -> ErrPacket:
    """Parse an ERR packet; sqlstate defaults to "HY000" without a '#' marker."""
    n = len(payload)
    if n < 3 or payload[0] != 0xFF:
        raise ProtocolError("not an ERR packet")
    errno = payload[1] | payload[2] << 8
    pos = 3
    sqlstate = "HY000"
    if capabilities & _CAP_PROTOCOL_41 and n >= 9 and payload[3] == 0x23:  # '#'
        sqlstate = bytes(payload[4:9]).decode("ascii", "replace")
        pos = 9
    message = bytes(payload[pos:]).decode("utf-8", "replace")
    return ErrPacket(errno, sqlstate, message)


@dataclass(frozen=True)
class StmtPrepareOk:
    statement_id: int
    num_columns: int
    num_params: int
    warnings: int


def parse_stmt_prepare_ok(payload: Buffer) -> StmtPrepareOk:
    n = len(payload)
    if n < 10 or payload[0] != 0x00:
        raise ProtocolError("not a COM_STMT_PREPARE OK packet")
    if n >= 12:
        stmt_id, ncols, nparams, warnings = _PREPARE_OK.unpack_from(payload, 0)
    else:
        stmt_id = _U32.unpack_from(payload, 1)[0]
        ncols = _U16.unpack_from(payload, 5)[0]
        nparams = _U16.unpack_from(payload, 7)[0]
        warnings = 0
    return StmtPrepareOk(stmt_id, ncols, nparams, warnings)

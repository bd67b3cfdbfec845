"""Golden-byte tests for proxy.wire.packets.

Vectors marked "captured" were recorded once from MariaDB 10.11 (server side)
or from PyMySQL / mysql-connector-python (client side) and pasted here; the
tests themselves need no server.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.wire.packets import (
    FIELD_TYPE_LONG,
    FIELD_TYPE_LONGLONG,
    FIELD_TYPE_VAR_STRING,
    MAX_PAYLOAD,
    Capability,
    ChangeUser,
    Command,
    ErrPacket,
    HandshakeResponse,
    OkPacket,
    ProtocolError,
    ServerHandshake,
    ServerStatus,
    StmtPrepareOk,
    build_auth_more_data,
    build_auth_switch_request,
    build_column_count,
    build_column_definition,
    build_eof,
    build_err,
    build_handshake_response,
    build_handshake_v10,
    build_ok,
    build_text_resultset,
    build_text_row,
    frame,
    frame_all,
    is_eof_packet,
    is_err_packet,
    is_ok_packet,
    is_resultset_terminator,
    is_ssl_request,
    lenenc_int,
    lenenc_str,
    parse_change_user,
    parse_eof,
    parse_err,
    parse_frame_header,
    parse_handshake_response,
    parse_handshake_v10,
    parse_ok,
    parse_ok_status,
    parse_ssl_request,
    parse_stmt_prepare_ok,
    read_lenenc_int,
    read_lenenc_str,
    read_nul_str,
    session_track_schema,
)

H = bytes.fromhex
P41 = int(Capability.PROTOCOL_41)
CLIENT_CAPS = int(
    Capability.LONG_PASSWORD
    | Capability.PROTOCOL_41
    | Capability.TRANSACTIONS
    | Capability.SECURE_CONNECTION
    | Capability.PLUGIN_AUTH
)

# --- captured vectors ------------------------------------------------------

# MariaDB 10.11.19 greeting; bytes 10..13 of "reserved" carry MariaDB's
# extended capabilities (0x1d).
MARIADB_GREETING = H(
    "0a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275310008000000"
    "702a7a4a44555f5d00fef72d0200ff81150000000000001d0000003636494f32495a67763c67"
    "73006d7973716c5f6e61746976655f70617373776f726400"
)
# PyMySQL 1.2.4 HandshakeResponse41 (user bob, db db1, lenenc auth, attrs).
PYMYSQL_RESPONSE = H(
    "0da23a00ffffff002d0000000000000000000000000000000000000000000000626f6200141290"
    "9d72d875523f8c9d6da44cbd3a6c1ce794db646231006d7973716c5f6e61746976655f706173"
    "73776f726400350c5f636c69656e745f6e616d650770796d7973716c0f5f636c69656e745f76"
    "657273696f6e05312e322e34045f7069640438383133"
)
# mysql-connector-python 26.10 COM_CHANGE_USER (alice / db2).
CONNECTOR_CHANGE_USER = H(
    "11616c69636500148817c50fa779daef010ee7577825b0847df9842e64623200ff006d7973716c"
    "5f6e61746976655f70617373776f7264008d045f7069640438383438095f706c6174666f726d"
    "067838365f36340c5f736f757263655f686f737402766d0c5f636c69656e745f6e616d651"
    "66d7973716c2d636f6e6e6563746f722d707974686f6e0f5f636c69656e745f6c6963656e73"
    "650747504c2d322e300f5f636c69656e745f76657273696f6e0732362e31302e30035f6f7309"
    "44656269616e2d3132"
)
MARIADB_OK = H("00000002000000")
MARIADB_INSERT_OK = H(
    "00030102000000265265636f7264733a203320204475706c6963617465733a203020205761726e696e67733a2030"
)
# USE mysql with CLIENT_SESSION_TRACK: empty info + schema-change state.
MARIADB_USE_OK_TRACKED = H("0000000240000000080106056d7973716c")
MARIADB_ERR = H(
    "ff1e04233432533232556e6b6e6f776e20636f6c756d6e20276e6f73756368636f6c2720696e202753454c45435427"
)
MARIADB_EOF = H("fe00000200")
MARIADB_OK_AS_EOF = H("fe000002000000")
MARIADB_PREPARE_OK = H("000300000002000100000000")
# SELECT 1 AS a, 'héllo' AS b, NULL AS c, CAST(5 AS UNSIGNED) AS d
MARIADB_COLDEF_A = H("036465660000000161000c3f0001000000038100000000")
MARIADB_COLDEF_B = H("036465660000000162000c21000f000000fd0100270000")
MARIADB_COLDEF_C = H("036465660000000163000c3f0000000000068000000000")
MARIADB_ROW = H("01310668c3a96c6c6ffb0135")


# --- framing -----------------------------------------------------------------


def test_frame_small() -> None:
    assert frame(0, b"\x0e") == H("010000000e")
    assert frame(3, b"") == H("00000003")
    assert frame(256 + 7, b"ab") == H("020000076162")
    assert parse_frame_header(H("0a000005")) == (10, 5)
    assert parse_frame_header(H("ffffff01")) == (MAX_PAYLOAD, 1)
    with pytest.raises(ProtocolError):
        parse_frame_header(b"\x00\x00")


def test_frame_exactly_max_payload() -> None:
    payload = b"\xab" * MAX_PAYLOAD
    out = frame(5, payload)
    assert len(out) == 4 + MAX_PAYLOAD + 4
    assert out[:4] == H("ffffff05")
    assert out[4 : 4 + MAX_PAYLOAD] == payload
    assert out[4 + MAX_PAYLOAD :] == H("00000006")


def test_frame_max_payload_plus_one() -> None:
    payload = b"\x01" * MAX_PAYLOAD + b"\x02"
    out = frame(255, payload)
    assert len(out) == 4 + MAX_PAYLOAD + 4 + 1
    assert out[:4] == H("ffffffff")
    assert out[4 + MAX_PAYLOAD :] == H("0100000002")  # seq wrapped 255 -> 0


def test_frame_all_tracks_sequence() -> None:
    data, nxt = frame_all(1, [b"a", b"bc"])
    assert data == H("01000001610200000262 63".replace(" ", ""))
    assert nxt == 3
    big = b"x" * MAX_PAYLOAD
    data, nxt = frame_all(0, [big, b""])
    assert nxt == 3  # big -> seq 0 and 1 (empty trailer), then b"" -> seq 2
    assert data[-4:] == H("00000002")


# --- primitives ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "enc"),
    [
        (0, "00"),
        (250, "fa"),
        (251, "fcfb00"),
        (0xFFFF, "fcffff"),
        (0x10000, "fd000001"),
        (0xFFFFFF, "fdffffff"),
        (0x1000000, "fe0000000100000000"),
        (2**64 - 1, "feffffffffffffffff"),
    ],
)
def test_lenenc_int(n: int, enc: str) -> None:
    assert lenenc_int(n) == H(enc)
    assert read_lenenc_int(H("aa" + enc), 1) == (n, 1 + len(enc) // 2)
    assert read_lenenc_int(memoryview(H(enc)), 0) == (n, len(enc) // 2)


def test_lenenc_int_errors() -> None:
    with pytest.raises(ValueError):
        lenenc_int(-1)
    with pytest.raises(ValueError):
        lenenc_int(2**64)
    assert read_lenenc_int(H("fb"), 0) == (None, 1)
    for bad in ("ff", "fc00", "fd0000", "fe00000000000000", ""):
        with pytest.raises(ProtocolError):
            read_lenenc_int(H(bad), 0)


def test_lenenc_str_and_nul_str() -> None:
    assert lenenc_str(b"def") == H("03646566")
    assert lenenc_str(b"") == H("00")
    assert lenenc_str(b"x" * 300)[:3] == H("fc2c01")
    assert read_lenenc_str(H("0003646566"), 1) == (b"def", 5)
    assert read_lenenc_str(H("fb"), 0) == (None, 1)
    with pytest.raises(ProtocolError):
        read_lenenc_str(H("0464"), 0)
    assert read_nul_str(b"xab\x00cd", 1) == (b"ab", 4)
    assert read_nul_str(memoryview(b"xab\x00cd"), 1) == (b"ab", 4)
    assert read_nul_str(b"\x00", 0) == (b"", 1)
    with pytest.raises(ProtocolError):
        read_nul_str(b"abc", 0)
    with pytest.raises(ProtocolError):
        read_nul_str(memoryview(b"abc"), 0)


def test_enums() -> None:
    assert Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA == 1 << 21
    assert Capability.REMEMBER_OPTIONS == 1 << 31
    assert ServerStatus.SESSION_STATE_CHANGED == 1 << 14
    assert int(Command.COM_RESET_CONNECTION) == 31
    assert int(Command.COM_CHANGE_USER) == 0x11


# --- server -> client builders ---------------------------------------------------


def test_build_handshake_v10_golden() -> None:
    caps = int(Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH)
    out = build_handshake_v10(
        connection_id=1,
        server_version="5.7.0",
        scramble=bytes(range(1, 21)),
        capabilities=caps,
        charset=33,
        status=2,
        auth_plugin="mysql_native_password",
    )
    assert out == H(
        "0a"  # protocol 10
        "352e372e3000"  # "5.7.0\0"
        "01000000"  # connection id
        "0102030405060708"  # auth-plugin-data part 1
        "00"  # filler
        "0082"  # capabilities, lower
        "21"  # charset
        "0200"  # status
        "0800"  # capabilities, upper
        "15"  # auth-plugin-data length (21)
        "00000000000000000000"  # reserved
        "090a0b0c0d0e0f101112131400"  # part 2 + NUL
        "6d7973716c5f6e61746976655f70617373776f726400"  # plugin name
    )


def test_build_handshake_v10_matches_mariadb() -> None:
    hs = parse_handshake_v10(MARIADB_GREETING)
    out = build_handshake_v10(
        connection_id=hs.connection_id,
        server_version=hs.server_version,
        scramble=hs.scramble,
        capabilities=hs.capabilities,
        charset=hs.charset,
        status=hs.status,
        auth_plugin=hs.auth_plugin,
    )
    # Byte for byte, MariaDB's extended capabilities in the reserved bytes included.
    assert out == MARIADB_GREETING
    with pytest.raises(ValueError):
        build_handshake_v10(
            connection_id=1,
            server_version="x",
            scramble=b"short",
            capabilities=caps_all(),
            charset=33,
            status=2,
            auth_plugin="mysql_native_password",
        )


def caps_all() -> int:
    return CLIENT_CAPS


def test_build_ok() -> None:
    assert build_ok(capabilities=P41) == MARIADB_OK
    assert (
        build_ok(
            capabilities=P41,
            affected_rows=3,
            last_insert_id=1,
            info=b"Records: 3  Duplicates: 0  Warnings: 0",
        )
        == MARIADB_INSERT_OK
    )
    assert build_ok(capabilities=P41, header=0xFE) == MARIADB_OK_AS_EOF
    assert build_ok(
        capabilities=P41, affected_rows=300, last_insert_id=70000, status=3, warnings=1
    ) == H("00fc2c01fd701101030001 00".replace(" ", ""))
    # Pre-4.1 variants.
    assert build_ok(capabilities=int(Capability.TRANSACTIONS), affected_rows=1) == H("0001000200")
    assert build_ok(capabilities=0) == H("000000")


def test_build_err() -> None:
    msg = "Unknown column 'nosuchcol' in 'SELECT'"
    assert build_err(errno=1054, sqlstate="42S22", message=msg, capabilities=P41) == MARIADB_ERR
    assert build_err(errno=1045, sqlstate="28000", message="é", capabilities=0) == H("ff1504c3a9")
    with pytest.raises(ValueError):
        build_err(errno=1, sqlstate="X", message="", capabilities=P41)


def test_build_eof() -> None:
    assert build_eof() == MARIADB_EOF
    assert build_eof(warnings=2, status=0x000A) == H("fe02000a00")


def test_build_auth_switch_and_more_data() -> None:
    scramble = bytes(range(1, 21))
    assert build_auth_switch_request("mysql_native_password", scramble) == (
        H("fe6d7973716c5f6e61746976655f70617373776f726400")
        + H("0102030405060708090a0b0c0d0e0f1011121314")
        + H("00")
    )
    assert build_auth_switch_request("caching_sha2_password", scramble + b"\x00").endswith(
        H("131400")
    )
    assert build_auth_switch_request("client_ed25519", b"abc") == H(
        "fe636c69656e745f6564323535313900616263"
    )
    assert build_auth_more_data(b"\x04") == H("0104")


def test_build_column_count() -> None:
    assert build_column_count(4) == H("04")
    assert build_column_count(251) == H("fcfb00")


def test_build_column_definition() -> None:
    assert (
        build_column_definition(
            name="a", type_code=FIELD_TYPE_LONG, charset=63, length=1, flags=0x81
        )
        == MARIADB_COLDEF_A
    )
    assert (
        build_column_definition(
            name="b", type_code=FIELD_TYPE_VAR_STRING, length=15, flags=1, decimals=0x27
        )
        == MARIADB_COLDEF_B
    )
    assert build_column_definition(name="c", type_code=6, charset=63, flags=0x80) == (
        MARIADB_COLDEF_C
    )
    assert build_column_definition(
        name="n",
        type_code=FIELD_TYPE_LONGLONG,
        charset=63,
        length=20,
        flags=0x1003,
        schema="db",
        table="t",
        org_table="tbl",
        org_name="id",
    ) == H(
        "03646566"  # catalog
        "026462"  # schema
        "0174"  # table
        "0374626c"  # org_table
        "016e"  # name
        "026964"  # org_name
        "0c"  # fixed-length fields
        "3f00"  # charset
        "14000000"  # length
        "08"  # type
        "0310"  # flags
        "00"  # decimals
        "0000"  # filler
    )


def test_build_text_row() -> None:
    assert build_text_row([b"1", "héllo", None, "5"]) == MARIADB_ROW
    assert build_text_row([]) == b""
    assert build_text_row([b""]) == H("00")


def test_build_text_resultset_classic() -> None:
    rows: list[tuple[bytes | str | None, ...]] = [(b"1", "ab"), ("22", None)]
    out = build_text_resultset(
        columns=[("id", FIELD_TYPE_LONGLONG), ("name", FIELD_TYPE_VAR_STRING)],
        rows=iter(rows),
        capabilities=P41,
    )
    assert out == [
        H("02"),
        H("03646566000000026964000c3f0015000000088000000000"),
        H("03646566000000046e616d65000c210002000000fd0000000000"),
        H("fe00000200"),
        H("01310261 62".replace(" ", "")),
        H("023232fb"),
        H("fe00000200"),
    ]


def test_build_text_resultset_deprecate_eof() -> None:
    caps = P41 | int(Capability.DEPRECATE_EOF)
    out = build_text_resultset(
        columns=[("v", FIELD_TYPE_VAR_STRING)], rows=[["x"]], capabilities=caps, status=3
    )
    assert out == [
        H("01"),
        H("036465660000000176000c210001000000fd0000000000"),
        H("0178"),
        H("fe000003000000"),
    ]
    with pytest.raises(ValueError):
        build_text_resultset(columns=[("v", 253)], rows=[["x", "y"]], capabilities=caps)


# --- client -> server parsers ---------------------------------------------------


def test_parse_handshake_response_pymysql() -> None:
    hr = parse_handshake_response(PYMYSQL_RESPONSE)
    assert hr == HandshakeResponse(
        capabilities=0x003AA20D,
        max_packet_size=0xFFFFFF,
        charset=45,
        username="bob",
        auth_response=H("12909d72d875523f8c9d6da44cbd3a6c1ce794db"),
        database="db1",
        auth_plugin="mysql_native_password",
        attributes={"_client_name": "pymysql", "_client_version": "1.2.4", "_pid": "8813"},
    )
    assert hr.capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
    assert not is_ssl_request(PYMYSQL_RESPONSE)


def test_parse_handshake_response_secure_connection_golden() -> None:
    payload = H(
        "0d820800"  # PROTOCOL_41|SECURE_CONNECTION|PLUGIN_AUTH|LONG_PASSWORD|LONG_FLAG|WITH_DB
        "00000001"  # max packet
        "21" + "00" * 23 + "726f6f7400"  # charset  # "root\0"
        "03616263"  # auth (1-byte length)
        "7300"  # db "s"
        "6d7973716c5f6e61746976655f70617373776f726400"
    )
    hr = parse_handshake_response(payload)
    assert hr.username == "root"
    assert hr.auth_response == b"abc"
    assert hr.database == "s"
    assert hr.max_packet_size == 1 << 24
    assert hr.auth_plugin == "mysql_native_password"
    assert hr.attributes == {}


def test_parse_handshake_response_nul_auth_and_lenient_tail() -> None:
    caps = int(Capability.PROTOCOL_41 | Capability.PLUGIN_AUTH | Capability.CONNECT_ATTRS)
    head = caps.to_bytes(4, "little") + bytes(4) + b"\x21" + bytes(23)
    # NUL-terminated auth data, no plugin name, no attributes present.
    hr = parse_handshake_response(head + b"u\x00pw\x00")
    assert (hr.auth_response, hr.auth_plugin, hr.attributes) == (b"pw", None, {})
    # Plugin name without its NUL at the very end.
    hr = parse_handshake_response(head + b"u\x00pw\x00plug")
    assert hr.auth_plugin == "plug"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        bytes(31),
        bytes(32),  # no PROTOCOL_41
        H("00020000") + bytes(28),  # PROTOCOL_41 but no username
        H("00820000") + bytes(28) + b"u\x00",  # SECURE_CONNECTION, missing length
        H("00820000") + bytes(28) + b"u\x00\x05ab",  # auth truncated
        H("08820000") + bytes(28) + b"u\x00\x00db",  # db unterminated
        H("00022000") + bytes(28) + b"u\x00\xfd\x01",  # lenenc auth truncated
        H("00021000") + bytes(28) + b"u\x00\x00\x05\x01a",  # attrs truncated
        H("00021000") + bytes(28) + b"u\x00\x00\x03\x01a\x05",  # attr value too long
    ],
)
def test_parse_handshake_response_malformed(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_handshake_response(payload)


def test_names_that_are_not_utf8_are_names_that_match_nothing() -> None:
    """Not a bad handshake (which would tell them from unknown names): U+FFFD, as MariaDB
    shows them."""
    head = H("08020000") + bytes(28)
    hr = parse_handshake_response(head + b"\xff\xfe\x00\x00db\xc3\x00")
    assert (hr.username, hr.database) == ("\ufffd\ufffd", "db\ufffd")


def test_ssl_request() -> None:
    caps = int(Capability.PROTOCOL_41 | Capability.SSL | Capability.SECURE_CONNECTION)
    payload = H("008a0000000000402d") + bytes(23)
    assert caps == 0x8A00
    assert is_ssl_request(payload)
    assert parse_ssl_request(payload) == (caps, 0x40000000, 45)
    assert not is_ssl_request(H("00820000") + bytes(28))  # no SSL flag
    assert not is_ssl_request(payload + b"x")
    with pytest.raises(ProtocolError):
        parse_ssl_request(payload[:10])


def test_parse_change_user_connector() -> None:
    caps = int(
        Capability.PROTOCOL_41
        | Capability.SECURE_CONNECTION
        | Capability.PLUGIN_AUTH
        | Capability.CONNECT_ATTRS
    )
    cu = parse_change_user(CONNECTOR_CHANGE_USER, caps)
    assert cu.username == "alice"
    assert cu.auth_response == H("8817c50fa779daef010ee7577825b0847df9842e")
    assert cu.database == "db2"
    assert cu.charset == 255
    assert cu.auth_plugin == "mysql_native_password"
    assert cu.attributes["_client_name"] == "mysql-connector-python"
    assert len(cu.attributes) == 7


def test_parse_change_user_minimal() -> None:
    caps = int(Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH)
    assert parse_change_user(H("1175000000"), caps) == ChangeUser(
        username="u",
        auth_response=b"",
        database=None,
        charset=None,
        auth_plugin=None,
        attributes={},
    )
    # Without SECURE_CONNECTION the auth data is NUL-terminated.
    cu = parse_change_user(H("1175007077006462002100"), P41)
    assert (cu.auth_response, cu.database, cu.charset) == (b"pw", "db", 33)
    for bad in [
        b"",
        H("03"),
        H("1175"),
        H("117500"),
        H("11750002aa"),
        H("11750000"),
        H("117500000021"),
    ]:
        with pytest.raises(ProtocolError):
            parse_change_user(bad, caps)


# --- backend side --------------------------------------------------------------


def test_parse_handshake_v10_mariadb() -> None:
    assert parse_handshake_v10(MARIADB_GREETING) == ServerHandshake(
        protocol_version=10,
        server_version="5.5.5-10.11.19-MariaDB-0+deb12u1",
        connection_id=8,
        scramble=b"p*zJDU_]66IO2IZgv<gs",
        capabilities=0x1D_81FFF7FE,
        charset=45,
        status=2,
        auth_plugin="mysql_native_password",
    )
    assert parse_handshake_v10(memoryview(MARIADB_GREETING)).connection_id == 8


def test_parse_handshake_v10_errors() -> None:
    for bad in [b"", MARIADB_ERR, H("0a352e3700"), MARIADB_GREETING[:40], H("09")]:
        with pytest.raises(ProtocolError):
            parse_handshake_v10(bad)


def test_build_handshake_response_golden() -> None:
    caps = int(
        Capability.LONG_PASSWORD
        | Capability.PROTOCOL_41
        | Capability.SECURE_CONNECTION
        | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
    )
    out = build_handshake_response(
        capabilities=caps,
        max_packet_size=1 << 24,
        charset=45,
        username="root",
        auth_response=b"\x01\x02",
        database="db",
        auth_plugin="mysql_native_password",
        attributes={"k": "v"},
    )
    assert (
        out
        == H(
            "09823800"  # caps | CONNECT_WITH_DB | PLUGIN_AUTH | CONNECT_ATTRS
            "00000001"
            "2d" + "00" * 23 + "726f6f7400"
            "020102"  # lenenc auth
            "646200"
            "6d7973716c5f6e61746976655f70617373776f726400"
            "04016b0176"  # attributes
        )
    )
    # 1-byte-length auth, no db, no attributes.
    out = build_handshake_response(
        capabilities=int(Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION),
        max_packet_size=0,
        charset=33,
        username="u",
        auth_response=b"ab",
        database=None,
        auth_plugin="p",
    )
    assert out == H("008208000000000021") + bytes(23) + H("75000261627000")


@pytest.mark.parametrize(
    "caps",
    [
        CLIENT_CAPS,
        CLIENT_CAPS | int(Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA),
        int(Capability.PROTOCOL_41),
    ],
)
def test_handshake_response_round_trip(caps: int) -> None:
    auth = b"\x01\x02\x03" if caps & Capability.SECURE_CONNECTION else b"pw"
    out = build_handshake_response(
        capabilities=caps,
        max_packet_size=1 << 30,
        charset=255,
        username="üser",
        auth_response=auth,
        database="shop",
        auth_plugin="caching_sha2_password",
        attributes={"_client_name": "x", "é": ""},
    )
    hr = parse_handshake_response(out)
    assert hr.capabilities == (
        caps
        | Capability.PLUGIN_AUTH
        | Capability.CONNECT_WITH_DB
        | Capability.CONNECT_ATTRS
        | Capability.PROTOCOL_41
    )
    assert (hr.username, hr.auth_response, hr.database) == ("üser", auth, "shop")
    assert hr.auth_plugin == "caching_sha2_password"
    assert hr.attributes == {"_client_name": "x", "é": ""}
    assert (hr.max_packet_size, hr.charset) == (1 << 30, 255)


_names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    lenenc=st.booleans(),
    username=_names,
    auth=st.binary(max_size=300),
    database=st.one_of(st.none(), _names),
    plugin=_names,
    attrs=st.dictionaries(st.text(max_size=10), st.text(max_size=300), max_size=5),
)
def test_handshake_response_round_trip_property(
    lenenc: bool,
    username: str,
    auth: bytes,
    database: str | None,
    plugin: str,
    attrs: dict[str, str],
) -> None:
    caps = CLIENT_CAPS | (int(Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) if lenenc else 0)
    if not lenenc:
        auth = auth[:255]
    out = build_handshake_response(
        capabilities=caps,
        max_packet_size=1,
        charset=33,
        username=username,
        auth_response=auth,
        database=database,
        auth_plugin=plugin,
        attributes=attrs,
    )
    hr = parse_handshake_response(out)
    assert hr.username == username
    assert hr.auth_response == auth
    assert hr.database == (database or None)
    assert hr.auth_plugin == plugin
    assert hr.attributes == attrs


# --- response parsing ------------------------------------------------------------


def test_parse_ok_captured() -> None:
    assert parse_ok(MARIADB_OK, CLIENT_CAPS) == OkPacket(0, 0, 2, 0, b"")
    assert parse_ok(MARIADB_INSERT_OK, CLIENT_CAPS) == OkPacket(
        3, 1, 2, 0, b"Records: 3  Duplicates: 0  Warnings: 0"
    )
    tracked = CLIENT_CAPS | int(Capability.SESSION_TRACK)
    assert parse_ok(MARIADB_INSERT_OK, tracked).info.startswith(b"Records: 3")
    assert parse_ok(MARIADB_USE_OK_TRACKED, tracked) == OkPacket(
        0, 0, int(ServerStatus.AUTOCOMMIT | ServerStatus.SESSION_STATE_CHANGED), 0, b""
    )
    assert parse_ok(MARIADB_OK_AS_EOF, CLIENT_CAPS | int(Capability.DEPRECATE_EOF)) == OkPacket(
        0, 0, 2, 0, b""
    )


def test_parse_ok_variants() -> None:
    # Big lenenc values, status and warnings.
    payload = H("00fe0000000001000000fd0102030b000700")
    assert parse_ok(payload, P41) == OkPacket(1 << 32, 0x030201, 0x0B, 7, b"")
    # Info as string<EOF> (no length prefix) is also accepted.
    assert parse_ok(H("00000002000000") + b"hi there", P41).info == b"hi there"
    assert parse_ok(H("00000002000000"), 0) == OkPacket(0, 0, 0, 0, H("02000000"))
    assert parse_ok(H("0001000300"), int(Capability.TRANSACTIONS)) == OkPacket(1, 0, 3, 0, b"")
    for bad in [b"", H("00"), H("0000"), H("000000020000"), H("ff0000020000"), H("00fb00020000")]:
        with pytest.raises(ProtocolError):
            parse_ok(bad, P41)


@pytest.mark.parametrize(
    ("status", "warnings", "info", "caps"),
    [
        (2, 0, b"", P41),
        (0x0003, 65535, b"x" * 300, P41),
        (8, 1, b"Rows matched: 1", P41 | int(Capability.SESSION_TRACK)),
    ],
)
def test_ok_round_trip(status: int, warnings: int, info: bytes, caps: int) -> None:
    for header in (0x00, 0xFE):
        out = build_ok(
            capabilities=caps,
            affected_rows=2**40,
            last_insert_id=251,
            status=status,
            warnings=warnings,
            info=info,
            header=header,
        )
        assert parse_ok(out, caps) == OkPacket(2**40, 251, status, warnings, info)


SESSION_TRACK = P41 | int(Capability.SESSION_TRACK)


@pytest.mark.parametrize("caps", [P41, SESSION_TRACK, int(Capability.TRANSACTIONS)])
@pytest.mark.parametrize("info", [b"", b"Rows matched: 1"])
def test_ok_never_claims_session_state_it_does_not_carry(caps: int, info: bytes) -> None:
    """A status copied from the shard's last OK may have SERVER_SESSION_STATE_CHANGED set: the
    proxy's own OK clears it unless it sends session-state data (and can: SESSION_TRACK)."""
    out = build_ok(capabilities=caps, status=0x4003, info=info)
    ok = parse_ok(out, caps)
    assert ok.status & 0x4000 == 0
    assert ok.info == info


def test_err_message_quoting_client_bytes() -> None:
    """Client text is decoded with surrogateescape; an error quoting it gives the bytes back."""
    text = b"near '\xe9'".decode("utf-8", "surrogateescape")
    out = build_err(errno=1064, sqlstate="42000", message=text, capabilities=P41)
    assert out.endswith(b"near '\xe9'")


def test_ok_with_session_state_matches_mariadb() -> None:
    """MariaDB 10.11's OK to COM_INIT_DB with CLIENT_SESSION_TRACK (captured)."""
    captured = H("0000000240000000080106056d7973716c")
    built = build_ok(
        capabilities=SESSION_TRACK, status=2, session_state=session_track_schema("mysql")
    )
    assert built == captured
    assert parse_ok(built, SESSION_TRACK).status == 0x4002
    # Without SESSION_TRACK the state is not sent, and the flag stays clear.
    assert build_ok(capabilities=P41, status=2, session_state=b"\x01\x01\x00") == H(
        "00000002000000"
    )


def test_handshake_response_mariadb_extended_capabilities() -> None:
    """MariaDB's extended capabilities ride in the last 4 filler bytes, read only when
    CLIENT_MYSQL is clear (mysql2 and Connector/C clear it for a MariaDB server)."""
    extended = int(Capability.MARIADB_CLIENT_EXTENDED_TYPE_INFO)
    out = build_handshake_response(
        capabilities=caps_all() | extended,
        max_packet_size=1 << 24,
        charset=45,
        username="u",
        auth_response=b"",
        database=None,
        auth_plugin="mysql_native_password",
    )
    assert out[0] & 1 == 0
    assert out[28:32] == H("08000000")
    hr = parse_handshake_response(out)
    assert hr.capabilities & extended
    assert hr.capabilities & 1 == 0
    assert parse_ssl_request(out[:32])[0] & extended
    # A MySQL client (CLIENT_MYSQL set) has no extended capabilities, whatever the filler says.
    mysql_client = bytes([out[0] | 1]) + out[1:]
    assert parse_handshake_response(mysql_client).capabilities >> 32 == 0


def test_column_definition_extended_type_info_and_cached_metadata() -> None:
    """The proxy's own result sets follow the negotiated MariaDB format: an empty extended
    type information block in each column definition, and the metadata-follows byte."""
    plain = build_column_definition(name="c", type_code=253)
    extended = build_column_definition(
        name="c", type_code=253, capabilities=int(Capability.MARIADB_CLIENT_EXTENDED_TYPE_INFO)
    )
    assert extended == plain[: len(plain) - 13] + b"\x00" + plain[len(plain) - 13 :]
    caps = P41 | int(Capability.MARIADB_CLIENT_CACHE_METADATA)
    assert build_text_resultset(columns=[("v", 253)], rows=[], capabilities=caps)[0] == H("0101")


def test_parse_ok_status() -> None:
    assert parse_ok_status(MARIADB_OK, P41) == 2
    assert parse_ok_status(H("0003002200000028") + b"x" * 40, P41) == 0x22
    assert parse_ok_status(MARIADB_OK_AS_EOF, P41) == 2
    assert parse_ok_status(H("00fe0000000001000000fd0102030b000700"), P41) == 0x0B
    assert parse_ok_status(H("0001000300"), int(Capability.TRANSACTIONS)) == 3
    assert parse_ok_status(H("000000"), 0) == 0
    for bad in [b"", H("0000"), H("ff00000200"), H("00ff0002000000"), H("000000"), H("00fe00")]:
        with pytest.raises(ProtocolError):
            parse_ok_status(bad, P41)


def test_parse_eof() -> None:
    assert parse_eof(MARIADB_EOF) == (0, 2)
    assert parse_eof(H("fe0300 2a00".replace(" ", ""))) == (3, 42)
    assert parse_eof(H("fe")) == (0, 0)
    for bad in [b"", H("00000002000000"), H("fe0000")]:
        with pytest.raises(ProtocolError):
            parse_eof(bad)


def test_classifiers() -> None:
    assert is_eof_packet(MARIADB_EOF)
    assert is_eof_packet(MARIADB_OK_AS_EOF)
    assert not is_eof_packet(H("fe") + bytes(8))  # 9 bytes: a lenenc row
    assert not is_eof_packet(b"")
    assert is_ok_packet(MARIADB_OK)
    assert not is_ok_packet(MARIADB_EOF)
    assert not is_ok_packet(b"")
    assert is_err_packet(MARIADB_ERR)
    assert not is_err_packet(MARIADB_OK)
    assert not is_err_packet(b"")
    deprecate = CLIENT_CAPS | int(Capability.DEPRECATE_EOF)
    long_ok = build_ok(capabilities=deprecate, header=0xFE, info=b"some info text")
    assert is_resultset_terminator(long_ok, deprecate)
    assert not is_resultset_terminator(long_ok, CLIENT_CAPS)
    assert is_resultset_terminator(MARIADB_EOF, CLIENT_CAPS)
    assert not is_resultset_terminator(MARIADB_ROW, deprecate)
    assert not is_resultset_terminator(b"", deprecate)


def test_parse_err() -> None:
    assert parse_err(MARIADB_ERR, P41) == ErrPacket(
        1054, "42S22", "Unknown column 'nosuchcol' in 'SELECT'"
    )
    # Without PROTOCOL_41 (or without '#') there is no sqlstate.
    assert parse_err(MARIADB_ERR, 0) == ErrPacket(
        1054, "HY000", "#42S22Unknown column 'nosuchcol' in 'SELECT'"
    )
    assert parse_err(H("ff1504") + b"denied", P41) == ErrPacket(1045, "HY000", "denied")
    assert parse_err(H("ff1504"), P41) == ErrPacket(1045, "HY000", "")
    assert parse_err(H("ff1504ff"), P41).message == "\ufffd"
    for bad in [b"", H("ff15"), MARIADB_OK]:
        with pytest.raises(ProtocolError):
            parse_err(bad, P41)
    roundtrip = build_err(errno=1142, sqlstate="42000", message="nope ✓", capabilities=P41)
    assert parse_err(roundtrip, P41) == ErrPacket(1142, "42000", "nope ✓")


def test_parse_stmt_prepare_ok() -> None:
    assert parse_stmt_prepare_ok(MARIADB_PREPARE_OK) == StmtPrepareOk(3, 2, 1, 0)
    assert parse_stmt_prepare_ok(H("00ffffffff01000200000500")) == StmtPrepareOk(
        0xFFFFFFFF, 1, 2, 5
    )
    assert parse_stmt_prepare_ok(H("00010000000000000000")) == StmtPrepareOk(1, 0, 0, 0)
    for bad in [b"", H("ff1504"), H("00010000000000")]:
        with pytest.raises(ProtocolError):
            parse_stmt_prepare_ok(bad)


# --- fuzz --------------------------------------------------------------------------

_ALL_CAPS = st.integers(min_value=0, max_value=0xFFFFFFFF)
# Random bytes, plus bytes behind a plausible HandshakeResponse41 header so the
# fuzzer gets past the first checks.
_hs_payloads = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda caps, tail: (caps | P41).to_bytes(4, "little") + bytes(28) + tail,
        _ALL_CAPS,
        st.binary(max_size=200),
    ),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_hs_payloads)
def test_fuzz_parse_handshake_response(payload: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_handshake_response(payload)
    is_ssl_request(payload)
    with contextlib.suppress(ProtocolError):
        parse_ssl_request(payload)


@settings(max_examples=500, deadline=None)
@given(tail=st.binary(max_size=200), caps=_ALL_CAPS, prefix=st.booleans())
def test_fuzz_parse_change_user(tail: bytes, caps: int, prefix: bool) -> None:
    payload = b"\x11" + tail if prefix else tail
    with contextlib.suppress(ProtocolError):
        parse_change_user(payload, caps)


@settings(max_examples=500, deadline=None)
@given(payload=st.binary(max_size=100), caps=_ALL_CAPS, header=st.sampled_from([0, 0xFE, 0xFF]))
def test_fuzz_response_parsers(payload: bytes, caps: int, header: int) -> None:
    for data in (payload, bytes((header,)) + payload):
        for fn in (
            lambda d: parse_ok(d, caps),
            lambda d: parse_ok_status(d, caps),
            lambda d: parse_err(d, caps),
            parse_eof,
            parse_stmt_prepare_ok,
            parse_handshake_v10,
        ):
            with contextlib.suppress(ProtocolError):
                fn(data)
        is_eof_packet(data)
        is_ok_packet(data)
        is_err_packet(data)
        is_resultset_terminator(data, caps)


@settings(max_examples=500, deadline=None)
@given(tail=st.binary(max_size=120))
def test_fuzz_parse_handshake_v10(tail: bytes) -> None:
    for data in (b"\x0a" + tail, MARIADB_GREETING[: len(tail)] + tail):
        with contextlib.suppress(ProtocolError):
            parse_handshake_v10(data)

"""Character sets and collations: which ones the proxy can serve, by name and by collation id.

The proxy lexes every statement to authorize it, so it must find quotes, backslashes and comment
markers exactly where the shard will: that holds for the character sets whose multi-byte
characters never contain a byte below 0x80 (``SAFE_CHARSETS``). A client may name its character
set by a collation id in the handshake (or COM_CHANGE_USER); ``COLLATIONS`` maps the ids of
MariaDB 10.11 to their character sets (``information_schema.COLLATIONS``; a test compares it
with the test shard), and :func:`client_collation` says whether the proxy serves an id as asked.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from auth.errors import ErrorCode, SqlError, sql_error
from proxy.wire.params import UTF8MB3, beyond_bmp, decode_text

__all__ = [
    "COLLATIONS",
    "SAFE_CHARSETS",
    "UTF8MB3",
    "UTF8MB4_GENERAL_CI",
    "beyond_bmp",
    "client_collation",
    "decode_text",
    "python_codec",
    "unsupported_charset",
    "utf8mb3_stored",
]

# Character sets whose multi-byte characters never contain a byte below 0x80, so that quotes,
# backslashes and comment markers are found at the same places whatever the proxy decodes.
SAFE_CHARSETS: Final = frozenset(
    """
    utf8 utf8mb3 utf8mb4 latin1 latin2 latin5 latin7 ascii binary cp1250 cp1251 cp1256 cp1257
    cp850 cp852 cp866 dec8 greek hebrew hp8 keybcs2 koi8r koi8u macce macroman swe7 tis620
    armscii8 geostd8 ujis eucjpms euckr
    """.split()  # noqa: SIM905
)

UTF8MB4_GENERAL_CI: Final = 45

# MariaDB 10.11's collation ids (information_schema.COLLATIONS, ID IS NOT NULL), by character
# set. Ids above 255 cannot be named in the handshake (one byte) and are listed for the test.
_COLLATION_IDS: Final[dict[str, tuple[int, ...]]] = {
    "armscii8": (32, 64, 1056, 1088),
    "ascii": (11, 65, 1035, 1089),
    "big5": (1, 84, 1025, 1108),
    "binary": (63,),
    "cp1250": (26, 34, 44, 66, 99, 1050, 1090),
    "cp1251": (14, 23, 50, 51, 52, 1074, 1075),
    "cp1256": (57, 67, 1081, 1091),
    "cp1257": (29, 58, 59, 1082, 1083),
    "cp850": (4, 80, 1028, 1104),
    "cp852": (40, 81, 1064, 1105),
    "cp866": (36, 68, 1060, 1092),
    "cp932": (95, 96, 1119, 1120),
    "dec8": (3, 69, 1027, 1093),
    "eucjpms": (97, 98, 1121, 1122),
    "euckr": (19, 85, 1043, 1109),
    "gb2312": (24, 86, 1048, 1110),
    "gbk": (28, 87, 1052, 1111),
    "geostd8": (92, 93, 1116, 1117),
    "greek": (25, 70, 1049, 1094),
    "hebrew": (16, 71, 1040, 1095),
    "hp8": (6, 72, 1030, 1096),
    "keybcs2": (37, 73, 1061, 1097),
    "koi8r": (7, 74, 1031, 1098),
    "koi8u": (22, 75, 1046, 1099),
    "latin1": (5, 8, 15, 31, 47, 48, 49, 94, 1032, 1071),
    "latin2": (2, 9, 21, 27, 77, 1033, 1101),
    "latin5": (30, 78, 1054, 1102),
    "latin7": (20, 41, 42, 79, 1065, 1103),
    "macce": (38, 43, 1062, 1067),
    "macroman": (39, 53, 1063, 1077),
    "sjis": (13, 88, 1037, 1112),
    "swe7": (10, 82, 1034, 1106),
    "tis620": (18, 89, 1042, 1113),
    "ucs2": (
        35,
        90,
        128,
        129,
        130,
        131,
        132,
        133,
        134,
        135,
        136,
        137,
        138,
        139,
        140,
        141,
        142,
        143,
        144,
        145,
        146,
        147,
        148,
        149,
        150,
        151,
        159,
        640,
        641,
        642,
        1059,
        1114,
        1152,
        1174,
    ),
    "ujis": (12, 91, 1036, 1115),
    "utf16": (
        54,
        55,
        101,
        102,
        103,
        104,
        105,
        106,
        107,
        108,
        109,
        110,
        111,
        112,
        113,
        114,
        115,
        116,
        117,
        118,
        119,
        120,
        121,
        122,
        123,
        124,
        672,
        673,
        674,
        1078,
        1079,
        1125,
        1147,
    ),
    "utf16le": (56, 62, 1080, 1086),
    "utf32": (
        60,
        61,
        160,
        161,
        162,
        163,
        164,
        165,
        166,
        167,
        168,
        169,
        170,
        171,
        172,
        173,
        174,
        175,
        176,
        177,
        178,
        179,
        180,
        181,
        182,
        183,
        736,
        737,
        738,
        1084,
        1085,
        1184,
        1206,
    ),
    "utf8mb3": (
        33,
        83,
        192,
        193,
        194,
        195,
        196,
        197,
        198,
        199,
        200,
        201,
        202,
        203,
        204,
        205,
        206,
        207,
        208,
        209,
        210,
        211,
        212,
        213,
        214,
        215,
        223,
        576,
        577,
        578,
        1057,
        1107,
        1216,
        1238,
    ),
    "utf8mb4": (
        45,
        46,
        224,
        225,
        226,
        227,
        228,
        229,
        230,
        231,
        232,
        233,
        234,
        235,
        236,
        237,
        238,
        239,
        240,
        241,
        242,
        243,
        244,
        245,
        246,
        247,
        608,
        609,
        610,
        1069,
        1070,
        1248,
        1270,
    ),
}
COLLATIONS: Final[dict[int, str]] = {
    collation: charset for charset, ids in _COLLATION_IDS.items() for collation in ids
}


# Character sets MariaDB cannot use for a client's text (it falls back to its default for a
# client asking for one of them at login).
_NOT_CLIENT_CHARSETS: Final = frozenset({"ucs2", "utf16", "utf16le", "utf32"})


def unsupported_charset(name: str) -> SqlError:
    """The refusal of a character set the proxy cannot lex in (1235)."""
    return sql_error(
        ErrorCode.NOT_SUPPORTED_YET,
        f"Character set '{name}' is not supported by the proxy: only character sets whose "
        "multi-byte characters never contain ASCII bytes (such as utf8mb4 and latin1) can be "
        "checked safely",
    )


def client_collation(collation: int) -> int | SqlError:
    """The collation the proxy serves a client that asked for ``collation`` at login, and logs
    in to the shard with: the one asked for when its character set is safe and the handshake can
    carry it (one byte); utf8mb4_general_ci for an id MariaDB 10.11 does not know (such as MySQL
    8's 255, utf8mb4_0900_ai_ci) or one it cannot use for a client (ucs2, utf16, utf32), which is
    what MariaDB itself does. A client character set the proxy cannot lex in (gbk, big5, sjis,
    cp932, gb2312) is refused, as ``SET NAMES`` of it is: serving it in utf8mb4 instead would
    silently garble the client's text."""
    charset = COLLATIONS.get(collation)
    if charset is None or charset in _NOT_CLIENT_CHARSETS:
        return UTF8MB4_GENERAL_CI
    if charset not in SAFE_CHARSETS:
        return unsupported_charset(charset)
    return collation if collation < 256 else UTF8MB4_GENERAL_CI


# The Python codecs that read a character set's bytes as MariaDB does (for the ones listed);
# utf8mb3's is UTF8MB3 (``proxy.wire.params.decode_text``): Python's utf-8 reads a 4-byte
# sequence as one character, where MariaDB's utf8mb3 reads no character (it stores '?' for
# each of its bytes).
_CODECS: Final = {
    "utf8mb4": "utf-8", "utf8mb3": UTF8MB3, "utf8": UTF8MB3, "latin1": "cp1252",
    "ascii": "ascii", "cp1250": "cp1250", "cp1251": "cp1251", "cp1256": "cp1256",
    "cp1257": "cp1257", "latin2": "iso8859-2", "greek": "iso8859-7",
}  # fmt: skip


# Each character set's default collation in MariaDB 10.11 (information_schema.COLLATIONS,
# IS_DEFAULT): the collation number a result's text column carries for a session whose
# character_set_results is that character set.
DEFAULT_COLLATIONS: Final[dict[str, int]] = {
    "armscii8": 32, "ascii": 11, "big5": 1, "binary": 63, "cp1250": 26, "cp1251": 51,
    "cp1256": 57, "cp1257": 59, "cp850": 4, "cp852": 40, "cp866": 36, "cp932": 95, "dec8": 3,
    "eucjpms": 97, "euckr": 19, "gb2312": 24, "gbk": 28, "geostd8": 92, "greek": 25,
    "hebrew": 16, "hp8": 6, "keybcs2": 37, "koi8r": 7, "koi8u": 22, "latin1": 8, "latin2": 9,
    "latin5": 30, "latin7": 41, "macce": 38, "macroman": 39, "sjis": 13, "swe7": 10,
    "tis620": 18, "ucs2": 35, "ujis": 12, "utf16": 54, "utf16le": 56, "utf32": 60,
    "utf8mb3": 33, "utf8": 33, "utf8mb4": 45,
}  # fmt: skip


def in_charset(text: str, codec: str) -> bytes:
    """``text`` as MariaDB converts a result's text into a session's character set
    (``codec``, from :func:`python_codec`): a character the set cannot hold is '?'; a byte
    the proxy kept as a surrogate (a client's text that was no UTF-8) is that byte again."""
    if codec == UTF8MB3:
        text = "".join(c if c <= "\uffff" else "?" for c in text)
        codec = "utf-8"
    try:
        return text.encode(codec, "surrogateescape")
    except UnicodeEncodeError:
        return b"".join(_char_in(c, codec) for c in text)


def _char_in(char: str, codec: str) -> bytes:
    try:
        return char.encode(codec, "surrogateescape")
    except UnicodeEncodeError:
        return b"?"


def python_codec(charset: str) -> str | None:
    """The Python codec reading ``charset``'s bytes as MariaDB does (None: not known here;
    ``UTF8MB3`` for utf8mb3, read with ``decode_text``)."""
    return _CODECS.get(charset.lower())


def _byte_question(exc: UnicodeError) -> tuple[str, int]:
    """Each byte of an ill-formed sequence read as one '?', the next read from the byte
    after it."""
    assert isinstance(exc, UnicodeDecodeError)
    return "?", exc.start + 1


codecs.register_error("shardgate.byte_question", _byte_question)
# A surrogate's UTF-8 form (ED A0..BF ..): a character for MariaDB's utf8mb3, none for Python.
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


def utf8mb3_stored(data: bytes) -> str | None:
    """A string's bytes read as utf8mb3 -- an ``N'...'`` literal's (the national character
    set, whatever the client's), any literal's of a utf8mb3 client -- as MariaDB converts
    them into a character column (checked on 10.11, a column of utf8mb4, utf8mb3 or latin1,
    without strict mode; strict mode refuses the row, 1366): every byte that starts no
    well-formed character of at most 3 bytes becomes ``?`` and the next is read after it
    (``N'\U0001f600'`` is ``'????'``, ``E3 A9 78`` is ``'??x'``). None when the bytes hold a
    surrogate's UTF-8 form (MariaDB reads it as a character, which Python has no string
    for)."""
    if _ENCODED_SURROGATE.search(data) is not None:
        return None
    text = data.decode("utf-8", "shardgate.byte_question")
    if beyond_bmp(text):
        text = "".join("????" if ord(c) > 0xFFFF else c for c in text)
    return text

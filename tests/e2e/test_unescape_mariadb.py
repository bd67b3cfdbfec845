"""The lexer's string values are MariaDB's: tricky literals, selected on a real shard (with and
without NO_BACKSLASH_ESCAPES), give the bytes ``unescape_string`` gives for them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pymysql.connections import Connection

from proxy.dev.localshard import ShardEndpoint
from proxy.sql.lexer import LexMode, TokenKind, lex

_BODIES = [
    "\\0\\'\\\"\\b\\n\\r\\t\\Z\\\\\\%\\_",
    "\\q\\é\\ \\N\\x41\\%%\\__",
    "a''b\\'''\\\\''",
    '""\\"x"',
    "\\\\\\\\\\n\\\\\\%\\\\_",
    "100\\% of a\\_b\\\\%",
    "\\" + "\\\\" * 3 + "''' \\'",
    "日本\\語 \\\t \\\n end",
]


@pytest.mark.parametrize("no_backslash_escapes", [False, True])
@pytest.mark.parametrize("quote", ["'", '"'])
def test_string_values_are_mariadbs(
    shards: list[ShardEndpoint],
    shard_admin: Callable[..., Connection],
    quote: str,
    no_backslash_escapes: bool,
) -> None:
    conn = shard_admin(shards[0], charset="utf8mb4")
    mode = LexMode(no_backslash_escapes=no_backslash_escapes)
    with conn.cursor() as cur:
        cur.execute(
            "SET SESSION sql_mode = %s", ("NO_BACKSLASH_ESCAPES" if no_backslash_escapes else "",)
        )
        for body in _BODIES:
            if quote == '"':  # the quotes' parts swapped: a body of "..." as valid
                body = body.translate({ord("'"): '"', ord('"'): "'"})
            if no_backslash_escapes:  # backslashes are characters: every quote doubled
                body = body.replace(quote, quote + quote)
            literal = quote + body + quote
            sql = f"SELECT HEX({literal})"
            (statement,) = lex(sql, mode)
            (value,) = [t.value for t in statement.tokens if t.kind is TokenKind.STRING]
            cur.execute(sql)
            assert cur.fetchall() == ((value.encode().hex().upper(),),), literal

"""A sharded database's transaction statements, read from the lexer's tokens (pure).

On a sharded database the proxy runs the client's transactions itself, as XA transactions across
the physical databases they touch (``proxy.session.transaction``). These helpers say which
statements begin, end or change that transaction:

* :func:`transaction_control` -- ``BEGIN``, ``START TRANSACTION [READ ONLY | READ WRITE | WITH
  CONSISTENT SNAPSHOT]``, ``COMMIT``/``ROLLBACK [WORK] [AND [NO] CHAIN] [NO RELEASE]``,
  ``SAVEPOINT``/``ROLLBACK TO``/``RELEASE SAVEPOINT`` and ``SET [SESSION] autocommit = <literal>``
  as a :class:`TransactionControl`;
* :func:`commits_implicitly` -- a statement MariaDB commits the open transaction before (DDL,
  LOCK TABLES, ANALYZE TABLE, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from auth.errors import not_supported
from proxy.shard.route import is_op_token, token_keyword
from proxy.sql.lexer import DEFAULT_MODE, LexMode, ServerFlavor, Token, TokenKind, lex


@dataclass(frozen=True, slots=True)
class TransactionControl:
    """What a transaction statement asks for.

    ``verb``: "begin", "commit", "rollback", "autocommit", "characteristics" (``SET
    TRANSACTION ...``: the next transaction's) or "savepoint" (SAVEPOINT, ROLLBACK TO
    SAVEPOINT, RELEASE SAVEPOINT: per-branch state the proxy does not carry across branches).
    """

    verb: str
    read_only: bool | None = None  # START TRANSACTION READ ONLY / READ WRITE
    snapshot: bool = False  # WITH CONSISTENT SNAPSHOT
    chain: bool = False  # COMMIT / ROLLBACK AND CHAIN
    autocommit: bool | None = None  # SET autocommit = 1 (True) / 0 (False)
    isolation: str | None = None  # SET TRANSACTION ISOLATION LEVEL (words, upper case)


_ON = frozenset({"1", "ON", "TRUE"})
_OFF = frozenset({"0", "OFF", "FALSE"})

# Statements MariaDB commits the open transaction before (the ones a session relays on a
# sharded database: its own DDL goes through the sharded data path).
_IMPLICIT_COMMIT = frozenset(
    {
        "CREATE",
        "ALTER",
        "DROP",
        "RENAME",
        "TRUNCATE",
        "LOCK",
        "ANALYZE",
        "OPTIMIZE",
        "REPAIR",
        "FLUSH",
        "INSTALL",
        "UNINSTALL",
        "GRANT",
        "REVOKE",
        "LOAD",
    }
)


def transaction_control(
    text: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> TransactionControl | None:
    """The transaction statement ``text`` is, or None for any other statement. Raises
    SqlError (1235) for a ``SET`` of autocommit the proxy cannot follow (an expression, or
    with other variables)."""
    statements = lex(text, mode, flavor)
    if len(statements) != 1:
        return None
    tokens = list(statements[0].tokens)
    words = [token_keyword(t) for t in tokens]
    if not words:
        return None
    first = words[0]
    if first == "BEGIN" and words[1:] in ([], ["WORK"]):
        return TransactionControl("begin")
    if first == "START" and words[1:2] == ["TRANSACTION"]:
        read_only: bool | None = None
        snapshot = False
        rest = " ".join(w or t.value for w, t in zip(words[2:], tokens[2:], strict=True))
        for part in rest.split(","):
            modes: list[str] = part.split()
            if modes == ["READ", "ONLY"]:
                read_only = True
            elif modes == ["READ", "WRITE"]:
                read_only = False
            elif modes == ["WITH", "CONSISTENT", "SNAPSHOT"]:
                snapshot = True
        return TransactionControl("begin", read_only=read_only, snapshot=snapshot)
    if first in ("COMMIT", "ROLLBACK"):
        after = words[1:]
        if after[:1] == ["WORK"]:
            after = after[1:]
        if first == "ROLLBACK" and after[:1] == ["TO"]:
            return TransactionControl("savepoint")
        chain = after[:2] == ["AND", "CHAIN"]
        return TransactionControl(first.lower(), chain=chain)
    if first == "SAVEPOINT" or (first == "RELEASE" and words[1:2] == ["SAVEPOINT"]):
        return TransactionControl("savepoint")
    if first == "SET":
        if words[1:2] == ["TRANSACTION"]:
            return _characteristics(words[2:], [t.value for t in tokens[2:]])
        return _set_autocommit(tokens)
    return None


def _characteristics(words: list[str], values: list[str]) -> TransactionControl:
    """``SET TRANSACTION`` (the analyzer checked its grammar): the next transaction's."""
    read_only: bool | None = None
    isolation: str | None = None
    text = " ".join(w or v for w, v in zip(words, values, strict=True))
    for part in text.split(","):
        found = part.split()
        if found == ["READ", "ONLY"]:
            read_only = True
        elif found == ["READ", "WRITE"]:
            read_only = False
        elif found[:2] == ["ISOLATION", "LEVEL"] and len(found) > 2:
            isolation = " ".join(found[2:])
    return TransactionControl("characteristics", read_only=read_only, isolation=isolation)


def _set_autocommit(tokens: list[Token]) -> TransactionControl | None:
    def names_autocommit(token: Token) -> bool:
        value = token.value.lower()
        if token.kind is TokenKind.SYS_VAR:
            return value in ("autocommit", "session.autocommit", "local.autocommit")
        return token.kind is TokenKind.WORD and value == "autocommit"

    if not any(names_autocommit(t) for t in tokens):
        return None
    body = tokens[1:]
    if body and token_keyword(body[0]) in ("SESSION", "LOCAL"):
        body = body[1:]
    if (
        len(body) == 3
        and names_autocommit(body[0])
        and (is_op_token(body[1], "=") or is_op_token(body[1], ":="))
    ):
        value = body[2].value.upper()
        if value in _ON:
            return TransactionControl("autocommit", autocommit=True)
        if value in _OFF:
            return TransactionControl("autocommit", autocommit=False)
    raise not_supported(
        "SET autocommit with another variable or to an expression on a sharded database"
        " (SET autocommit = 0 or 1 alone)"
    )


def commits_implicitly(
    text: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> bool:
    """Whether MariaDB commits the open transaction before ``text`` (not for a temporary
    table's CREATE or DROP)."""
    statements = lex(text, mode, flavor)
    for statement in statements:
        words = [token_keyword(t) for t in statement.tokens[:3]]
        if words and words[0] in _IMPLICIT_COMMIT and "TEMPORARY" not in words:
            if words[0] == "LOAD" and words[1:2] != ["INDEX"]:
                continue  # LOAD DATA / LOAD XML: no implicit commit
            return True
    return False

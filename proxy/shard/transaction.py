"""A sharded database's transaction statements, read from the lexer's tokens (pure).

On a sharded database the proxy runs the client's transactions itself, as XA transactions across
the physical databases they touch (``proxy.session.transaction``). These helpers say which
statements begin, end or change that transaction:

* :func:`transaction_control` -- ``BEGIN``, ``START TRANSACTION [READ ONLY | READ WRITE | WITH
  CONSISTENT SNAPSHOT]``, ``COMMIT``/``ROLLBACK [WORK] [AND [NO] CHAIN] [NO RELEASE]``,
  ``SAVEPOINT``/``ROLLBACK TO``/``RELEASE SAVEPOINT`` and ``SET TRANSACTION`` as a
  :class:`TransactionControl`;
* :func:`autocommit_assignment` -- the value a ``SET`` gives autocommit; :func:`reads_tables`
  -- a ``SET`` with a subquery (it starts a transaction under autocommit=0);
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

    ``verb``: "begin", "commit", "rollback", "characteristics" (``SET
    TRANSACTION ...``: the next transaction's) or "savepoint" (``SAVEPOINT``, ``ROLLBACK TO
    SAVEPOINT``, ``RELEASE SAVEPOINT``: ``savepoint`` says which -- "set", "rollback" or
    "release" -- and ``name`` names it).
    """

    verb: str
    read_only: bool | None = None  # START TRANSACTION READ ONLY / READ WRITE
    snapshot: bool = False  # WITH CONSISTENT SNAPSHOT
    chain: bool = False  # COMMIT / ROLLBACK AND CHAIN
    isolation: str | None = None  # SET TRANSACTION ISOLATION LEVEL (words, upper case)
    savepoint: str | None = None  # "set", "rollback" (ROLLBACK TO), "release"
    name: str = ""  # the savepoint's name, as MariaDB reads it


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
        "CHECK",
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
    """The transaction statement ``text`` is, or None for any other statement (a ``SET`` of
    autocommit too: see :func:`autocommit_assignment`). Raises SqlError (1235) for a ``SET`` of
    autocommit to an expression."""
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
            return _savepoint("rollback", tokens)
        chain = after[:2] == ["AND", "CHAIN"]
        return TransactionControl(first.lower(), chain=chain)
    if first == "SAVEPOINT":
        return _savepoint("set", tokens)
    if first == "RELEASE" and words[1:2] == ["SAVEPOINT"]:
        return _savepoint("release", tokens)
    if first == "SET":
        if words[1:2] == ["TRANSACTION"]:
            return _characteristics(words[2:], [t.value for t in tokens[2:]])
        # SET autocommit: relayed (with the session's read-back), the proxy committing first
        # when it goes from 0 to 1 (autocommit_assignment); only its value is checked here.
        _assigned_autocommit(tokens)
    return None
    return None


def _savepoint(action: str, tokens: list[Token]) -> TransactionControl:
    """``SAVEPOINT x``, ``ROLLBACK [WORK] TO [SAVEPOINT] x``, ``RELEASE SAVEPOINT x`` (the
    analyzer checked the grammar): the name is the last token, an identifier."""
    last = tokens[-1]
    if last.kind not in (TokenKind.WORD, TokenKind.IDENT):
        raise not_supported("this savepoint statement")
    return TransactionControl("savepoint", savepoint=action, name=last.value)


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


def _names_autocommit(token: Token) -> bool:
    value = token.value.lower()
    if token.kind is TokenKind.SYS_VAR:
        return value in ("autocommit", "session.autocommit", "local.autocommit")
    return token.kind is TokenKind.WORD and value == "autocommit"


def _assigned_autocommit(tokens: list[Token]) -> bool | None:
    """The value a ``SET`` gives autocommit, if it does (SqlError 1235: not a literal)."""
    items: list[list[Token]] = [[]]
    depth = 0
    for token in tokens[1:]:
        if is_op_token(token, "("):
            depth += 1
        elif is_op_token(token, ")"):
            depth -= 1
        elif depth == 0 and is_op_token(token, ","):
            items.append([])
            continue
        items[-1].append(token)
    found: bool | None = None
    for item in items:
        if item and token_keyword(item[0]) in ("SESSION", "LOCAL"):
            item = item[1:]
        if len(item) < 2 or not _names_autocommit(item[0]):
            continue
        if not (is_op_token(item[1], "=") or is_op_token(item[1], ":=")):
            continue
        value = item[2].value.upper() if len(item) == 3 else ""
        if value in _ON:
            found = True
        elif value in _OFF:
            found = False
        else:
            raise not_supported(
                "SET autocommit to an expression on a sharded database (0 or 1, ON or OFF)"
            )
    return found


def autocommit_assignment(
    text: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> bool | None:
    """The value the last ``SET`` of ``text`` that assigns autocommit gives it (None: none
    does). Raises SqlError (1235) when the value is not a literal."""
    found: bool | None = None
    for statement in lex(text, mode, flavor):
        tokens = list(statement.tokens)
        if tokens and token_keyword(tokens[0]) == "SET" and any(map(_names_autocommit, tokens)):
            value = _assigned_autocommit(tokens)
            found = found if value is None else value
    return found


def reads_tables(
    text: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> bool:
    """Whether a ``SET`` reads tables (a subquery): under autocommit=0 it starts a transaction
    on MariaDB, so it runs in the transaction's branch."""
    for statement in lex(text, mode, flavor):
        tokens = statement.tokens
        if (
            tokens
            and token_keyword(tokens[0]) == "SET"
            and any(token_keyword(t) == "SELECT" for t in tokens[1:])
        ):
            return True
    return False


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

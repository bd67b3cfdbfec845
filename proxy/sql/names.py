"""The structural check: every name the lexer saw is a name in sqlglot's reading.

The analyser reads queries and DML with sqlglot, a parser for many dialects. Where sqlglot
knows a word as a keyword that MariaDB reads as a name (``SELECT * FROM lateral x``: a
``LATERAL`` clause for sqlglot, the table ``lateral`` for MariaDB), the two read different
statements, and the table MariaDB reads may get no privilege check. :func:`unaccounted`
compares the statement's tokens with the tree:

* every token that can only be a name for MariaDB -- a quoted identifier, or an unquoted word
  that is neither a MariaDB keyword nor a built-in function name
  (:mod:`~proxy.sql.mariadb_words`) -- must appear, with the same spelling and quoting, as a
  name in sqlglot's tree: an identifier (table, alias, column, CTE, index, window), a function
  name, a character set introducer or a bare word (``Var``: collations, character sets,
  interval units). Each name in the tree accounts for one token (a multiset), so a name
  elsewhere in the statement cannot cover for a word sqlglot consumed as a keyword (the lexer
  quotes a word written before a dot: in ``t1 lateral WHERE lateral.a = 1`` the qualifier is
  the quoted name, and the alias a word sqlglot read as a keyword);
* a name followed by ``(`` that sqlglot knows as a function name is accounted for by itself:
  both parsers read a function call there (sqlglot does not keep the name of the functions it
  knows) -- unless it is quoted and not one of MariaDB's ``NATIVE_FUNCTIONS``: MariaDB calls a
  stored function there (`` `count`(x) ``, and ``count (x)``, ``db.count(x)``, which the lexer
  quotes), sqlglot its built-in, so it must be a name in the tree (sqlglot keeps the quoted
  name of a function it does not know), else the statement is refused.

What it does not see: a word that is a MariaDB keyword is not checked (MariaDB may read it as
a name or as a keyword depending on the position), and a name read in a different *role*
(a table taken for an alias) still counts as a name. ``tests/parse_differential.py`` covers
those positions by comparing with MariaDB itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from sqlglot import exp
from sqlglot.dialects.mysql import MySQL

from proxy.sql.mariadb_words import FUNCTIONS, KEYWORDS, NATIVE_FUNCTIONS

__all__ = ["MARIADB_WORDS", "tree_names", "unaccounted"]

MARIADB_WORDS: Final = KEYWORDS | FUNCTIONS

_SQLGLOT_FUNCTIONS: Final = frozenset(
    name.upper()
    for name in (*MySQL.parser_class.FUNCTIONS, *MySQL.parser_class.FUNCTION_PARSERS)
    if isinstance(name, str)
)
_NAMED: Final = (exp.Identifier, exp.Var, exp.Anonymous, exp.Introducer)
# Variables: their names are not names of the statement's objects (the lexer gives them
# their own tokens, which never need accounting for).
_VARIABLES: Final = (exp.Parameter, exp.SessionParameter)


def tree_names(tree: exp.Expression) -> Counter[tuple[str, bool]]:
    """How many times each ``(name, quoted)`` occurs in ``tree``."""
    names: Counter[tuple[str, bool]] = Counter()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, _VARIABLES):
            continue
        if isinstance(node, _NAMED):
            this = node.this
            if isinstance(this, str):
                names[this, isinstance(node, exp.Identifier) and bool(node.args.get("quoted"))] += 1
        for value in node.args.values():
            if isinstance(value, exp.Expression):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, exp.Expression))
    return names


def _must_be_name(images: Sequence[str], i: int) -> tuple[str, bool] | None:
    """``(name, quoted)`` of image ``i`` if MariaDB can only read it as a name, else None."""
    image = images[i]
    c = image[0]
    if c == "`":
        name = image[1:-1].replace("``", "`")
    elif c.isalpha() or c == "_":
        if image.upper() in MARIADB_WORDS:
            return None
        name = image
    else:
        return None  # literal, operator, variable
    if (
        name.upper() in _SQLGLOT_FUNCTIONS
        and i + 1 < len(images)
        and images[i + 1] == "("
        and (c != "`" or name.upper() in NATIVE_FUNCTIONS)
    ):
        return None
    return name, c == "`"


def unaccounted(images: Sequence[str], tree: exp.Expression) -> int | None:
    """The index of the first image that must be a name but is none in ``tree``, or None.

    ``images`` are the shape-key tokens sqlglot parsed (the rewrites the analyser makes
    before parsing only drop or add keywords and variables).
    """
    names = tree_names(tree)
    for i in range(len(images)):
        key = _must_be_name(images, i)
        if key is None:
            continue
        if names[key] <= 0:
            return i
        names[key] -= 1
    return None

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of ``proxy.sql.analyze._fast_base_pure``: the fast key of a statement before
its literal lists are collapsed, or None when the statement is not in the fast language.

The pure version is three regular expressions (the language's full match, then strings and
numbers replaced by ``'?'`` and ``?``); this is one pass of the tokenizer those expressions
describe. Every quantifier there is possessive and every token atomic, so the tokenization is
deterministic: at each position the first alternative that matches is taken, or the statement
is refused. ``fast_literals`` is the same scan that also says where each literal it replaced
is (``_fast_literals_pure``). tests/unit/test_compiled.py checks both agree on random input.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_DecodeASCII

from proxy.sql.mariadb_words import SPACED_FUNCTIONS

cdef Py_ssize_t FAST_MAX = 4096
cdef frozenset _SPACED = SPACED_FUNCTIONS


cdef inline bint _ws(Py_UCS4 c):
    return c == 32 or c == 9 or c == 13 or c == 10


cdef inline bint _alpha(Py_UCS4 c):
    return (65 <= c <= 90) or (97 <= c <= 122) or c == 95  # A-Z a-z _


cdef inline bint _digit(Py_UCS4 c):
    return 48 <= c <= 57


cdef inline bint _word(Py_UCS4 c):
    return _alpha(c) or _digit(c)


cdef inline bint _quoting(Py_UCS4 c):
    # $ ' ` "
    return c == 36 or c == 39 or c == 96 or c == 34


def fast_base(str sql not None):
    """See proxy.sql.analyze._fast_base_pure."""
    cdef Py_ssize_t n = len(sql)
    if n > FAST_MAX:
        return None
    cdef char* out = <char*>PyMem_Malloc(2 * n + 2)
    if out == NULL:
        raise MemoryError()
    try:
        return _scan(sql, n, out, None)
    finally:
        PyMem_Free(out)


def fast_literals(str sql not None):
    """See proxy.sql.analyze._fast_literals_pure: ``(fast_base(sql), spans)``, ``spans`` the
    start and end of each literal the key replaced (flat, in order), or None."""
    cdef Py_ssize_t n = len(sql)
    if n > FAST_MAX:
        return None
    cdef char* out = <char*>PyMem_Malloc(2 * n + 2)
    if out == NULL:
        raise MemoryError()
    cdef list spans = []
    try:
        key = _scan(sql, n, out, spans)
    finally:
        PyMem_Free(out)
    if key is None:
        return None
    return key, tuple(spans)


cdef object _scan(str sql, Py_ssize_t n, char* out, list spans):
    cdef Py_ssize_t i = 0, j = 0, k, m
    cdef Py_UCS4 c, d
    cdef int tokens = 0
    # leading whitespace
    while i < n:
        c = sql[i]
        if not _ws(c):
            break
        out[j] = <char>c
        j += 1
        i += 1
    while i < n:
        c = sql[i]
        if _alpha(c):
            k = i + 1
            while k < n and _word(sql[k]):
                k += 1
            if k < n:
                d = sql[k]
                if _quoting(d) or d >= 0x80:
                    return None
                if _ws(d):
                    # a function name IGNORE_SPACE reads otherwise (proxy.sql.lexer.spaced_call)
                    m = k + 1
                    while m < n and _ws(sql[m]):
                        m += 1
                    if m < n and sql[m] == 40 and sql[i:k].upper() in _SPACED:
                        return None
            while i < k:
                out[j] = <char>sql[i]
                j += 1
                i += 1
        elif _digit(c):
            if i > 0 and sql[i - 1] == 46:  # '.'
                return None
            k = i + 1
            while k < n and _digit(sql[k]):
                k += 1
            if k + 1 < n and sql[k] == 46 and _digit(sql[k + 1]):
                k += 2
                while k < n and _digit(sql[k]):
                    k += 1
            if k < n:
                d = sql[k]
                if _word(d) or _quoting(d) or d == 46 or d >= 0x80:
                    return None
            if i > 0 and sql[i - 1] == 96:  # after a backquoted name: kept as written
                while i < k:
                    out[j] = <char>sql[i]
                    j += 1
                    i += 1
            else:
                if spans is not None:
                    spans.append(i)
                    spans.append(k)
                out[j] = 63  # '?'
                j += 1
                i = k
        elif c == 39:  # '
            k = i + 1
            while k < n:
                d = sql[k]
                if d == 39 or d == 92 or d == 0:
                    break
                k += 1
            if k >= n or sql[k] != 39:
                return None
            k += 1
            if k < n and sql[k] == 39:
                return None
            if spans is not None:
                spans.append(i)
                spans.append(k)
            out[j] = 39
            out[j + 1] = 63
            out[j + 2] = 39
            j += 3
            i = k
        elif c == 96:  # `
            k = i + 1
            while k < n:
                d = sql[k]
                if not (_word(d) or d == 36):
                    break
                k += 1
            if k == i + 1 or k >= n or sql[k] != 96:
                return None
            k += 1
            while i < k:
                out[j] = <char>sql[i]
                j += 1
                i += 1
        else:
            d = sql[i + 1] if i + 1 < n else 0
            if c == 58:  # ':' only in ':='
                if d != 61:
                    return None
                out[j] = 58
                out[j + 1] = 61
                j += 2
                i += 2
            elif c == 47:  # '/' not opening a comment
                if d == 42:
                    return None
                out[j] = 47
                j += 1
                i += 1
            elif c == 45:  # '-' not opening a comment
                if d == 45:
                    return None
                out[j] = 45
                j += 1
                i += 1
            elif c == 63:  # '?' as a placeholder only
                if _word(d) or d == 36 or d >= 0x80:
                    return None
                out[j] = 63
                j += 1
                i += 1
            elif (
                c == 61 or c == 60 or c == 62 or c == 33 or c == 44 or c == 40 or c == 41
                or c == 42 or c == 43 or c == 37 or c == 46 or c == 124 or c == 38 or c == 94
                or c == 126
            ):  # = < > ! , ( ) * + % . | & ^ ~
                out[j] = <char>c
                j += 1
                i += 1
            else:
                return None
        tokens += 1
        while i < n:
            c = sql[i]
            if not _ws(c):
                break
            out[j] = <char>c
            j += 1
            i += 1
    if not tokens:
        return None
    return PyUnicode_DecodeASCII(out, j, NULL)

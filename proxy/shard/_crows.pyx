# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of ``proxy.shard.rows.split_rows_pure`` (see that module): the rows of a
multi-row INSERT and one column's placement code per row, in one pass over the text, or None
for anything not judged there. The same scan, statement for statement, with C types;
tests/unit/test_shard_rows.py checks both agree on random statements."""

from cpython cimport array
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_KIND, PyUnicode_READ
from libc.stdint cimport int64_t

import array

cdef int MAX_DIGITS = 18


cdef struct Text:
    # the statement's characters, read straight from its storage (1, 2 or 4 bytes each)
    int kind
    void* data


cdef inline Py_UCS4 _at(Text t, Py_ssize_t i) noexcept:
    return PyUnicode_READ(t.kind, t.data, i)


cdef inline bint _space_char(Py_UCS4 c):
    return c == 32 or c == 9 or c == 10 or c == 13 or c == 11 or c == 12


cdef inline bint _digit(Py_UCS4 c):
    return 48 <= c <= 57


cdef inline bint _hexdigit(Py_UCS4 c):
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


cdef inline bint _word_char(Py_UCS4 c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95


cdef inline bint _ident(Py_UCS4 c):
    return _word_char(c) or c == 36 or c >= 0x80


cdef Py_ssize_t _line_end(Text t, Py_ssize_t i, Py_ssize_t n):
    """Where a ``#`` or ``--`` comment from ``i`` ends (its newline, or n); -1 on a NUL."""
    cdef Py_UCS4 c
    while i < n:
        c = _at(t, i)
        if c == 10:
            return i
        if c == 0:
            return -1
        i += 1
    return n


cdef Py_ssize_t _space(Text t, Py_ssize_t i, Py_ssize_t n):
    cdef Py_UCS4 c, d
    while i < n:
        c = _at(t, i)
        if _space_char(c):
            i += 1
        elif c == 35:  # '#'
            i = _line_end(t, i, n)
            if i < 0:
                return -1
        elif c == 45 and i + 1 < n and _at(t, i + 1) == 45 and (
            i + 2 >= n or _at(t, i + 2) <= 32 or _at(t, i + 2) == 127
        ):  # '-- '
            i = _line_end(t, i, n)
            if i < 0:
                return -1
        elif c == 47 and i + 1 < n and _at(t, i + 1) == 42:  # '/*'
            if i + 2 < n:
                d = _at(t, i + 2)
                if d == 33 or (d == 77 and i + 3 < n and _at(t, i + 3) == 33):  # ! M!
                    return -1
            i += 2
            while True:
                if i + 1 >= n:
                    return -1
                d = _at(t, i)
                if d == 0:
                    return -1
                if d == 42 and _at(t, i + 1) == 47:
                    i += 2
                    break
                i += 1
        else:
            return i
    return i


cdef Py_ssize_t _string(Text t, Py_ssize_t i, Py_ssize_t n, Py_UCS4 quote, bint backslash):
    cdef Py_UCS4 c
    i += 1
    while i < n:
        c = _at(t, i)
        if c == 92 and backslash:
            i += 2
        elif c == quote:
            if i + 1 < n and _at(t, i + 1) == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return -1


def split_rows(
    str sql not None,
    Py_ssize_t pos,
    Py_ssize_t column,
    int64_t low,
    int64_t high,
    int64_t modulus,
    bint backslash,
    bint ansi_quotes,
    Py_ssize_t limit,
):
    """See proxy.shard.rows.split_rows_pure."""
    cdef Py_ssize_t n = len(sql)
    cdef Py_ssize_t i, j, k, start, row_open, key_start, key_end, items, item_tokens, prev_end
    cdef Py_ssize_t columns = -1, tokens = 0, depth
    cdef Py_UCS4 c, d
    cdef int key_state
    cdef bint negative, plain, op, word, prev_op, prev_word, hexa
    cdef int64_t magnitude, value, code
    cdef array.array flat = array.array("q")
    cdef Py_ssize_t size = 0
    cdef str text
    cdef Text t
    if pos < 0 or pos > n:
        return None
    t.kind = PyUnicode_KIND(sql)
    t.data = PyUnicode_DATA(sql)
    i = _space(t, pos, n)
    if i < 0 or i >= n or _at(t, i) != 40:
        return None
    while True:
        row_open = i
        i += 1
        tokens += 1
        depth = 0
        items = 0
        item_tokens = 0
        key_start = -1
        key_end = -1
        key_state = 0
        negative = False
        magnitude = 0
        prev_end = -1
        prev_op = True
        prev_word = False
        while True:
            i = _space(t, i, n)
            if i < 0 or i >= n:
                return None
            c = _at(t, i)
            start = i
            plain = False
            op = False
            word = False
            if c == 41 and depth == 0:  # ')'
                if item_tokens == 0:
                    return None
                items += 1
                i += 1
                tokens += 1
                break
            if c == 44 and depth == 0:  # ','
                if item_tokens == 0:
                    return None
                items += 1
                item_tokens = 0
                i += 1
                tokens += 1
                prev_end = i
                prev_op = True
                prev_word = False
                continue
            if c == 40:  # '('
                if prev_word:
                    return None
                depth += 1
                i += 1
                op = True
            elif c == 41:
                depth -= 1
                i += 1
                op = True
            elif c == 43 or c == 45 or c == 42 or c == 47 or c == 37:  # + - * / %
                i += 1
                op = True
            elif c == 39:  # '
                i = _string(t, i, n, 39, backslash)
            elif c == 34:  # "
                if ansi_quotes:
                    return None
                i = _string(t, i, n, 34, backslash)
            elif (c == 120 or c == 88 or c == 98 or c == 66) and i + 1 < n and _at(t, i + 1) == 39:
                hexa = c == 120 or c == 88
                j = i + 2
                while j < n and _at(t, j) != 39:
                    d = _at(t, j)
                    if hexa and not _hexdigit(d):
                        return None
                    if not hexa and d != 48 and d != 49:
                        return None
                    j += 1
                if j >= n:
                    return None
                if hexa and (j - i - 2) % 2:
                    return None
                i = j + 1
            elif (c == 110 or c == 78) and i + 1 < n and _at(t, i + 1) == 39:  # N'
                i = _string(t, i + 1, n, 39, backslash)
            elif _digit(c) or (c == 46 and i + 1 < n and _digit(_at(t, i + 1))):
                if c == 46 and prev_end == i and not prev_op:
                    return None
                if c == 48 and i + 1 < n and (_at(t, i + 1) == 120 or _at(t, i + 1) == 98):  # 0x 0b
                    hexa = _at(t, i + 1) == 120
                    j = i + 2
                    while j < n and (
                        (hexa and _hexdigit(_at(t, j))) or (not hexa and (_at(t, j) == 48 or _at(t, j) == 49))
                    ):
                        j += 1
                    if j == i + 2:
                        return None
                    i = j
                else:
                    j = i
                    while j < n and _digit(_at(t, j)):
                        j += 1
                    plain = True
                    if j < n and _at(t, j) == 46:
                        plain = False
                        j += 1
                        while j < n and _digit(_at(t, j)):
                            j += 1
                    if j < n and (_at(t, j) == 101 or _at(t, j) == 69):  # e E
                        k = j + 1
                        if k < n and (_at(t, k) == 43 or _at(t, k) == 45):
                            k += 1
                        if k < n and _digit(_at(t, k)):
                            plain = False
                            j = k
                            while j < n and _digit(_at(t, j)):
                                j += 1
                    i = j
                if i < n and (_ident(_at(t, i)) or _at(t, i) == 46):
                    return None
            elif _word_char(c):
                j = i
                while j < n and _ident(_at(t, j)):
                    d = _at(t, j)
                    if d == 36 or d >= 0x80:
                        return None
                    j += 1
                if j < n and _at(t, j) == 46:
                    return None
                text = sql[i:j].upper()
                if text == "NULL" or text == "TRUE" or text == "FALSE" or text == "DEFAULT":
                    word = True
                elif not (c == 95 and j < n and _at(t, j) == 39):
                    return None
                i = j
            else:
                return None
            if i < 0:
                return None
            tokens += 1
            item_tokens += 1
            if items == column:
                if item_tokens == 1:
                    key_start = start
                key_end = i
                if key_state == 0 and op and (c == 43 or c == 45):
                    if c == 45:
                        negative = not negative
                elif key_state == 0 and plain and i - start <= MAX_DIGITS:
                    key_state = 1
                    magnitude = 0
                    for k in range(start, i):
                        magnitude = magnitude * 10 + (<int64_t>_at(t, k) - 48)
                else:
                    key_state = 2
            prev_end = i
            prev_op = op
            prev_word = word
        if columns < 0:
            columns = items
        elif items != columns:
            return None
        code = -1
        if column >= 0 and modulus > 0 and key_state == 1:
            value = -magnitude if negative else magnitude
            if low <= value <= high:
                code = magnitude % modulus
        array.resize_smart(flat, size + 5)
        flat.data.as_longlongs[size] = row_open
        flat.data.as_longlongs[size + 1] = i
        flat.data.as_longlongs[size + 2] = key_start
        flat.data.as_longlongs[size + 3] = key_end
        flat.data.as_longlongs[size + 4] = code
        size += 5
        j = _space(t, i, n)
        if j < 0:
            return None
        if j >= n or _at(t, j) != 44:
            return columns, tokens, flat, -1
        i = _space(t, j + 1, n)
        tokens += 1
        if i < 0 or i >= n or _at(t, i) != 40:
            return None
        if i - pos >= limit:
            return columns, tokens, flat, i

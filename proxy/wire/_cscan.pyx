# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of proxy/wire/scanner.py (``take_packet``, ``ResponseScanner``,
``text_row_values``, ``text_row_key`` and ``RowMerge``).

The pure module is the reference: this one must behave identically -- the same return values,
the same attribute values, the same exceptions with the same messages -- on every input,
which tests/unit/test_compiled.py checks with random and malformed byte streams cut into
random chunks. Rare paths (a malformed terminal packet, COM_STMT_PREPARE's answer) call the
pure module's helpers, so their errors are the reference's own.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.object cimport Py_EQ, Py_LT, PyObject_RichCompareBool
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from proxy.wire.scanner import PacketTooLarge, ProtocolViolation, ResponseKind
from proxy.wire.scanner import _eof_status, _lenenc_at, _ok_status
from proxy.wire.scanner import text_row_values as _pure_text_row_values
from proxy.wire.scanner import binary_row_key as _pure_binary_row_key
from proxy.wire.packets import ProtocolError, parse_stmt_prepare_ok

cdef enum:
    MAXP = 0xFFFFFF
    CAP_PROTOCOL_41 = 512
    CAP_TRANSACTIONS = 8192
    MORE_RESULTS_EXISTS = 8
    CURSOR_EXISTS = 64
    # states (scanner._State's values)
    S_FIRST = 1
    S_COLUMNS = 2
    S_COLUMNS_EOF = 3
    S_ROWS = 4
    S_PREPARE_PARAMS = 5
    S_PREPARE_COLUMNS = 6
    # kinds (ResponseKind's values)
    K_QUERY = 1
    K_PREPARE = 2
    K_FETCH = 3
    K_FIELD_LIST = 4
    K_SINGLE = 5

cdef unsigned long long CAP_CACHE_METADATA = 1ULL << 36
# A remaining count this large never reaches zero in practice; the pure scanner keeps a
# Python int, this one clamps (a column count of 2**62 packets is never sent).
cdef long long REMAINING_CAP = 1LL << 62

# By identity: an Enum's hash is Python code.
_QUERY = ResponseKind.QUERY
_PREPARE = ResponseKind.PREPARE
_FETCH = ResponseKind.FETCH
_FIELD_LIST = ResponseKind.FIELD_LIST
_SINGLE = ResponseKind.SINGLE


def take_packet(bytearray buf, Py_ssize_t max_size):
    """See proxy.wire.scanner.take_packet."""
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(buf)
    cdef Py_ssize_t pos = 0, total = 0, length, end, out
    cdef const unsigned char* p = <const unsigned char*>PyByteArray_AS_STRING(buf)
    cdef int seq
    cdef bytes payload
    cdef char* dest
    while True:
        if n - pos < 4:
            return None
        length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
        total += length
        if total > max_size:
            raise PacketTooLarge(total, (p[pos + 3] + 1) & 0xFF)
        end = pos + 4 + length
        if end > n:
            return None
        seq = p[pos + 3]
        if length < MAXP:
            if pos == 0:
                payload = PyBytes_FromStringAndSize(<const char*>p + 4, length)
            else:
                # one copy of a large packet: the frames' payloads, joined
                payload = PyBytes_FromStringAndSize(NULL, total)
                dest = PyBytes_AS_STRING(payload)
                pos = 0
                out = 0
                while pos < end:
                    length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
                    memcpy(dest + out, p + pos + 4, length)
                    out += length
                    pos += 4 + length
            del buf[:end]
            return seq, payload
        pos = end


cdef class ResponseScanner:
    """See proxy.wire.scanner.ResponseScanner."""

    cdef int _kind
    cdef int _state
    cdef unsigned long long _capabilities
    cdef long long _remaining
    cdef bint _continuation
    cdef bytes _pending
    cdef Py_ssize_t _skip
    cdef public object status
    cdef public bint error
    cdef int _errno  # (errno is a C macro)
    cdef public long long rows
    cdef public object statement_id
    cdef public object prepared_params
    cdef public object prepared_columns
    cdef public Py_ssize_t error_at
    cdef public Py_ssize_t unsure

    @property
    def errno(self):
        """The error number of the ERR that ended the response (0: none)."""
        return self._errno

    def __init__(self, kind, capabilities):
        if kind is _QUERY:
            self._kind = K_QUERY
        elif kind is _PREPARE:
            self._kind = K_PREPARE
        elif kind is _FETCH:
            self._kind = K_FETCH
        elif kind is _FIELD_LIST:
            self._kind = K_FIELD_LIST
        elif kind is _SINGLE:
            self._kind = K_SINGLE
        else:
            raise TypeError(f"not a ResponseKind: {kind!r}")
        self._capabilities = capabilities
        if self._kind == K_FETCH:
            self._state = S_ROWS
        elif self._kind == K_FIELD_LIST:
            self._state = S_COLUMNS_EOF
        else:
            self._state = S_FIRST
        self._remaining = 0
        self._continuation = False
        self._pending = b""
        self._skip = 0
        self.status = None
        self.error = False
        self._errno = 0
        self.error_at = 0
        self.unsure = 0
        self.rows = 0
        self.statement_id = None
        self.prepared_params = 0
        self.prepared_columns = 0

    def feed(self, bytes data not None):
        """Consume the next chunk of the response; -1, or the offset just past its end."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t pos = 0, base = 0, avail, length, end
        cdef Py_ssize_t skip = self._skip
        cdef const unsigned char* p
        cdef int first, state
        cdef long long rows
        cdef bint broke
        self.unsure = 0
        if skip:
            if skip >= n:
                self._skip = skip - n
                return -1
            pos = skip
            self._skip = 0
        elif PyBytes_GET_SIZE(self._pending):
            base = PyBytes_GET_SIZE(self._pending)
            data = self._pending + data
            n += base
            self._pending = b""
        p = <const unsigned char*>PyBytes_AS_STRING(data)
        while True:
            avail = n - pos
            if avail < 4:
                if avail:
                    self._pending = PyBytes_FromStringAndSize(<const char*>p + pos, avail)
                self.unsure = avail
                return -1
            length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
            end = pos + 4 + length
            if self._continuation:
                # The tail of a packet larger than 16 MiB: never looked at.
                self._continuation = length == MAXP
                if end > n:
                    self._skip = end - n
                    return -1
                pos = end
                continue
            if length == 0:
                raise ProtocolViolation("empty packet")
            if avail < 5:
                self._pending = PyBytes_FromStringAndSize(<const char*>p + pos, avail)
                self.unsure = avail
                return -1
            first = p[pos + 4]
            state = self._state
            if state == S_ROWS and first != 0xFF and (first != 0xFE or length >= 9):
                # Rows: walk the packet headers in a tight loop.
                rows = 1
                broke = False
                while end + 5 <= n and length < MAXP:
                    length = p[end] | (p[end + 1] << 8) | (p[end + 2] << 16)
                    first = p[end + 4]
                    if first == 0xFF or (first == 0xFE and length < 9):
                        broke = True
                        break
                    end += 4 + length
                    rows += 1
                if not broke:
                    self._continuation = length == MAXP
                    self.rows += rows
                    if end > n:
                        self._skip = end - n
                        return -1
                    pos = end
                    continue
                # A terminal candidate follows at ``end``: the outer loop looks at it whole.
                self.rows += rows
                pos = end
                continue
            if state == S_COLUMNS:
                self._remaining -= 1
                if self._remaining == 0:
                    self._state = S_COLUMNS_EOF
                self._continuation = length == MAXP
                if end > n:
                    self._skip = end - n
                    return -1
                pos = end
                continue
            if end > n:
                self._pending = PyBytes_FromStringAndSize(<const char*>p + pos, n - pos)
                self.unsure = n - pos if first == 0xFF else 0
                return -1
            self._continuation = length == MAXP
            done = self._packet(data, p, pos + 4, end, first)
            if done:
                self.error_at = pos - base
                return end - base
            pos = end

    def frame(self, buf, Py_ssize_t start, Py_ssize_t end):
        """Feed one wire frame's payload (``buf[start:end]``). True when the response is done."""
        cdef const unsigned char* p
        cdef Py_ssize_t length = end - start
        cdef int first
        if isinstance(buf, bytes):
            p = <const unsigned char*>PyBytes_AS_STRING(buf)
        elif isinstance(buf, bytearray):
            p = <const unsigned char*>PyByteArray_AS_STRING(buf)
        else:
            buf = bytes(buf)
            p = <const unsigned char*>PyBytes_AS_STRING(buf)
        if self._continuation:
            self._continuation = length == MAXP
            return False
        self._continuation = length == MAXP
        if length == 0:
            raise ProtocolViolation("empty packet")
        first = p[start]
        if self._state == S_ROWS and first != 0xFF and (first != 0xFE or length >= 9):
            self.rows += 1
            return False
        return self._packet(buf, p, start, end, first)

    cdef bint _error(self, const unsigned char* p, Py_ssize_t start, Py_ssize_t length):
        self.error = True
        if length >= 3:
            self._errno = p[start + 1] | (p[start + 2] << 8)
        return True

    cdef int _ok(self, object buf, const unsigned char* p, Py_ssize_t start, Py_ssize_t end) except -1:
        """parse_ok_status on buf[start:end]; the pure helper raises for a malformed one."""
        cdef Py_ssize_t n = end - start, pos = 1, i
        cdef int lead
        if n >= 3 and (p[start] == 0x00 or p[start] == 0xFE):
            if not self._capabilities & (CAP_PROTOCOL_41 | CAP_TRANSACTIONS):
                return 0
            for i in range(2):
                if pos >= n:
                    break
                lead = p[start + pos]
                if lead < 0xFB:
                    pos += 1
                elif lead == 0xFC:
                    pos += 3
                elif lead == 0xFD:
                    pos += 4
                elif lead == 0xFE:
                    pos += 9
                else:
                    break
            else:
                if pos + 2 <= n:
                    return p[start + pos] | (p[start + pos + 1] << 8)
        return _ok_status(bytes(buf[start:end]), self._capabilities)

    cdef int _eof(self, object buf, const unsigned char* p, Py_ssize_t start, Py_ssize_t end) except -1:
        cdef Py_ssize_t n = end - start
        if n >= 5 and p[start] == 0xFE:
            return p[start + 3] | (p[start + 4] << 8)
        if n == 1 and p[start] == 0xFE:
            return 0
        return _eof_status(bytes(buf[start:end]))

    cdef int _packet(
        self, object buf, const unsigned char* p, Py_ssize_t start, Py_ssize_t end, int first
    ) except -1:
        cdef int state = self._state
        cdef Py_ssize_t length = end - start
        cdef int status
        cdef long long remaining
        if state == S_ROWS:
            if first == 0xFE and length < 9:
                status = self._eof(buf, p, start, end)
                self.status = status
                if status & MORE_RESULTS_EXISTS:
                    self._state = S_FIRST
                    return False
                return True
            if first == 0xFF:
                return self._error(p, start, length)
            self.rows += 1
            return False
        if state == S_FIRST:
            if first == 0xFF:
                return self._error(p, start, length)
            if self._kind == K_SINGLE:
                if first == 0xFE and length < 9:
                    self.status = self._eof(buf, p, start, end)
                elif first == 0x00:
                    self.status = self._ok(buf, p, start, end)
                return True
            if self._kind == K_PREPARE:
                if first != 0x00:
                    raise ProtocolViolation("unexpected COM_STMT_PREPARE response")
                try:
                    ok = parse_stmt_prepare_ok(bytes(buf[start:end]))
                except ProtocolError as exc:
                    raise ProtocolViolation(str(exc)) from None
                self.statement_id = ok.statement_id
                self.prepared_params = ok.num_params
                self.prepared_columns = ok.num_columns
                if ok.num_params:
                    self._remaining = ok.num_params
                    self._state = S_PREPARE_PARAMS
                    return False
                if ok.num_columns:
                    self._remaining = ok.num_columns
                    self._state = S_PREPARE_COLUMNS
                    return False
                return True
            if first == 0x00:
                status = self._ok(buf, p, start, end)
                self.status = status
                return not (status & MORE_RESULTS_EXISTS)
            if first == 0xFB:
                raise ProtocolViolation("backend asked for LOCAL INFILE")
            if first == 0xFE:
                raise ProtocolViolation("unexpected EOF at start of response")
            # A column count (see the pure scanner).
            if first < 0xFB:
                remaining = first
                width = 1
            else:
                value, width = _lenenc_at(buf, start, end)
                remaining = value if value < REMAINING_CAP else REMAINING_CAP
            self._remaining = remaining
            if (
                self._capabilities & CAP_CACHE_METADATA
                and start + width < end
                and p[start + width] == 0
            ):
                self._state = S_COLUMNS_EOF
            else:
                self._state = S_COLUMNS
            return False
        if state == S_COLUMNS:
            self._remaining -= 1
            if self._remaining == 0:
                self._state = S_COLUMNS_EOF
            return False
        if state == S_COLUMNS_EOF:
            if first == 0xFF:
                return self._error(p, start, length)
            if first == 0xFE and length < 9:
                status = self._eof(buf, p, start, end)
                if self._kind == K_FIELD_LIST:
                    self.status = status
                    return True
                if status & CURSOR_EXISTS:
                    self.status = status
                    return True
                self._state = S_ROWS
                return False
            if self._kind == K_FIELD_LIST:
                return False
            raise ProtocolViolation("expected EOF after column definitions")
        if state == S_PREPARE_PARAMS:
            if self._remaining == 0:
                if self.prepared_columns:
                    self._remaining = self.prepared_columns
                    self._state = S_PREPARE_COLUMNS
                    return False
                return True
            self._remaining -= 1
            return False
        if state == S_PREPARE_COLUMNS:
            if self._remaining == 0:
                return True
            self._remaining -= 1
            return False
        raise AssertionError(state)


def text_row_values(bytes payload, Py_ssize_t count):
    """See proxy.wire.scanner.text_row_values."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(payload)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
    cdef Py_ssize_t pos = 0, i, n
    cdef list values = []
    for i in range(count):
        if pos >= size:
            raise ProtocolError("truncated text row")
        n = p[pos]
        if n < 0xFB:
            pos += 1
            if pos + n > size:
                raise ProtocolError("truncated text row")
            values.append(PyBytes_FromStringAndSize(<const char*>p + pos, n))
            pos += n
        elif n == 0xFB:
            values.append(None)
            pos += 1
        else:
            # A value of 251 bytes or more (rare in sort keys): the reference reads it.
            return _pure_text_row_values(payload, count)
    return values


cdef enum:
    # scanner.KEY_* (text_row_key's shortcuts)
    KEY_CALL = 0
    KEY_INTEGER = 1
    KEY_BYTES = 2
    KEY_GENERAL_CI = 3
    KEY_BIN = 4
    KEY_SIGNED = 5
    KEY_UNSIGNED = 6
    KEY_FLOAT = 7
    KEY_DOUBLE = 8
    KEY_DATETIME = 9
    KEY_TIME = 10
    # scanner.WIDTH_*
    WIDTH_TEMPORAL = -1
    WIDTH_LENENC = -2
    # binary_row_key reads up to this many columns itself (more: the reference)
    BIN_COLUMNS = 64


cdef object _ascii_pad_key_at(const unsigned char* p, Py_ssize_t n, bint upper):
    """Printable ASCII ``p[:n]`` as its PAD SPACE key (upper-cased: general_ci's weights), or
    None for anything else (the key function decides)."""
    cdef Py_ssize_t i, end
    cdef unsigned char c
    for i in range(n):
        if p[i] < 0x20 or p[i] > 0x7E:
            return None
    end = n
    while end > 0 and p[end - 1] == 0x20:
        end -= 1
    cdef bytes out = PyBytes_FromStringAndSize(NULL, end + 1)
    cdef unsigned char* q = <unsigned char*>PyBytes_AS_STRING(out)
    for i in range(end):
        c = p[i]
        if upper and 0x61 <= c <= 0x7A:
            c -= 32
        q[i] = c
    q[end] = 0x20
    return PyUnicode_DecodeASCII(<const char*>q, end + 1, NULL)


cdef object _ascii_pad_key(bytes raw, bint upper):
    return _ascii_pad_key_at(
        <const unsigned char*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), upper
    )


def text_row_key(bytes payload, Py_ssize_t upto, parts):
    """See proxy.wire.scanner.text_row_key."""
    cdef list row = text_row_values(payload, upto)
    cdef list out = []
    cdef int shortcut
    for part in parts:
        column, shortcut, key, wrap = part
        raw = row[column]
        if raw is None or shortcut == KEY_CALL:
            value = key(raw)
        elif shortcut == KEY_INTEGER:
            value = (1, int(raw))
        elif shortcut == KEY_BYTES:
            value = (1, raw)
        else:
            text = _ascii_pad_key(raw, shortcut == KEY_GENERAL_CI)
            value = key(raw) if text is None else (1, text)
        out.append(value if wrap is None else wrap(value))
    return tuple(out)


cdef object _small_int(const unsigned char* p, Py_ssize_t n):
    """``int(p[:n])`` for an optional minus and 1 to 18 digits; None for anything else."""
    cdef Py_ssize_t i = 0
    cdef long long v = 0
    cdef bint negative = False
    if n and p[0] == 0x2D:
        negative = True
        i = 1
    if n - i < 1 or n - i > 18:
        return None
    while i < n:
        if p[i] < 0x30 or p[i] > 0x39:
            return None
        v = v * 10 + (p[i] - 0x30)
        i += 1
    return PyLong_FromLongLong(-v if negative else v)


cdef int _compare_keys(object ka, object kb) except -2:
    """-1, 0 or 1: ``ka`` before, equal to or after ``kb`` as Python orders them (a tuple: its
    first items that are not equal decide, by ``<``). One pass over keys of equal length whose
    parts are ``(1, str)`` or ``(1, int)`` (the shortcuts' values); anything else as Python
    compares it."""
    cdef Py_ssize_t i, n
    cdef object x, y, vx, vy
    if type(ka) is not tuple or type(kb) is not tuple or len(<tuple>ka) != len(<tuple>kb):
        if PyObject_RichCompareBool(ka, kb, Py_EQ):
            return 0
        return -1 if PyObject_RichCompareBool(ka, kb, Py_LT) else 1
    n = len(<tuple>ka)
    for i in range(n):
        x = (<tuple>ka)[i]
        y = (<tuple>kb)[i]
        if x is y:
            continue
        if (
            type(x) is tuple and type(y) is tuple and len(<tuple>x) == 2 and len(<tuple>y) == 2
            and (<tuple>x)[0] is (<tuple>y)[0]
        ):
            vx = (<tuple>x)[1]
            vy = (<tuple>y)[1]
            if type(vx) is str and type(vy) is str:
                if vx == vy:
                    continue
                return -1 if <str>vx < <str>vy else 1
        if PyObject_RichCompareBool(x, y, Py_EQ):
            continue
        return -1 if PyObject_RichCompareBool(x, y, Py_LT) else 1
    return 0


cdef class RowMerge:
    """See proxy.wire.scanner.RowMerge. The heap holds stream indexes ordered as the
    reference's ``(key, index)`` tuples are; a text row's key is read straight from its
    packet in the buffer (``text_row_key`` itself for a row it does not read plainly)."""

    cdef list _buffers
    cdef Py_ssize_t _max, _upto, _streams, _size, _nparts
    cdef tuple _parts
    cdef object _key
    cdef list _keys  # per stream: its head's key
    cdef list _heads  # per stream: its head row
    cdef int* _heap
    cdef Py_ssize_t* _taken
    cdef Py_ssize_t* _starts  # per column up to ``upto``: where its value starts (-1: NULL)
    cdef Py_ssize_t* _lens
    cdef int* _columns  # per key part
    cdef int* _shortcuts
    cdef list _keyfuncs
    cdef list _wraps

    def __cinit__(self, buffers, Py_ssize_t max_packet, Py_ssize_t upto, parts, key=None):
        self._streams = len(buffers)
        self._upto = upto
        self._nparts = len(parts)
        self._heap = <int*>malloc(max(self._streams, 1) * sizeof(int))
        self._taken = <Py_ssize_t*>malloc(max(self._streams, 1) * sizeof(Py_ssize_t))
        self._starts = <Py_ssize_t*>malloc(max(upto, 1) * sizeof(Py_ssize_t))
        self._lens = <Py_ssize_t*>malloc(max(upto, 1) * sizeof(Py_ssize_t))
        self._columns = <int*>malloc(max(self._nparts, 1) * sizeof(int))
        self._shortcuts = <int*>malloc(max(self._nparts, 1) * sizeof(int))
        if (not self._heap or not self._taken or not self._starts or not self._lens
                or not self._columns or not self._shortcuts):
            raise MemoryError()

    def __init__(self, buffers, Py_ssize_t max_packet, Py_ssize_t upto, parts, key=None):
        cdef Py_ssize_t i
        self._buffers = list(buffers)
        for buf in self._buffers:
            if buf is not None and not isinstance(buf, bytearray):
                raise TypeError("a buffer must be a bytearray or None")
        self._max = max_packet
        self._parts = tuple(parts)
        self._key = key
        self._keys = [None] * self._streams
        self._heads = [None] * self._streams
        self._keyfuncs = []
        self._wraps = []
        self._size = 0
        for i in range(self._streams):
            self._taken[i] = 0
        for i, part in enumerate(self._parts):
            column, shortcut, keyfunc, wrap = part
            if key is None and not 0 <= column < upto:
                raise IndexError("list index out of range")
            self._columns[i] = column
            self._shortcuts[i] = shortcut
            self._keyfuncs.append(keyfunc)
            self._wraps.append(wrap)

    def __dealloc__(self):
        free(self._heap)
        free(self._taken)
        free(self._starts)
        free(self._lens)
        free(self._columns)
        free(self._shortcuts)

    @property
    def streams(self):
        """How many streams are in the merge."""
        return self._size

    cdef object _key_of(self, bytes payload):
        if self._key is not None:
            return self._key(payload)
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(payload), pos = 0, i, n, start
        cdef int shortcut
        for i in range(self._upto):
            if pos >= size:
                return text_row_key(payload, self._upto, self._parts)
            n = p[pos]
            if n < 0xFB:
                if pos + 1 + n > size:
                    return text_row_key(payload, self._upto, self._parts)
                self._starts[i] = pos + 1
                self._lens[i] = n
                pos += 1 + n
            elif n == 0xFB:
                self._starts[i] = -1
                pos += 1
            else:
                return text_row_key(payload, self._upto, self._parts)
        cdef list out = []
        for i in range(self._nparts):
            c = self._columns[i]
            shortcut = self._shortcuts[i]
            start = self._starts[c]
            n = self._lens[c]
            if start < 0:
                value = self._keyfuncs[i](None)
            elif shortcut == KEY_INTEGER:
                value = _small_int(p + start, n)
                if value is None:
                    value = int(PyBytes_FromStringAndSize(<const char*>p + start, n))
                value = (1, value)
            elif shortcut == KEY_BYTES:
                value = (1, PyBytes_FromStringAndSize(<const char*>p + start, n))
            elif shortcut == KEY_CALL:
                value = self._keyfuncs[i](PyBytes_FromStringAndSize(<const char*>p + start, n))
            else:
                value = _ascii_pad_key_at(p + start, n, shortcut == KEY_GENERAL_CI)
                if value is None:
                    value = self._keyfuncs[i](
                        PyBytes_FromStringAndSize(<const char*>p + start, n)
                    )
                else:
                    value = (1, value)
            wrap = self._wraps[i]
            out.append(value if wrap is None else wrap(value))
        return tuple(out)

    cdef int _before(self, int a, int b) except -1:
        """Whether stream ``a``'s head comes before ``b``'s (as ``(key, index)`` tuples)."""
        cdef int c = _compare_keys(self._keys[a], self._keys[b])
        if c == 0:
            return a < b
        return c < 0

    cdef int _down(self, Py_ssize_t pos) except -1:
        cdef int* heap = self._heap
        cdef Py_ssize_t size = self._size, child
        cdef int item = heap[pos]
        while True:
            child = 2 * pos + 1
            if child >= size:
                break
            if child + 1 < size and self._before(heap[child + 1], heap[child]):
                child += 1
            if not self._before(heap[child], item):
                break
            heap[pos] = heap[child]
            pos = child
        heap[pos] = item
        return 0

    cdef int _up(self, Py_ssize_t pos) except -1:
        cdef int* heap = self._heap
        cdef int item = heap[pos]
        cdef Py_ssize_t parent
        while pos > 0:
            parent = (pos - 1) >> 1
            if not self._before(item, heap[parent]):
                break
            heap[pos] = heap[parent]
            pos = parent
        heap[pos] = item
        return 0

    def set_head(self, Py_ssize_t index, payload):
        """See proxy.wire.scanner.RowMerge.set_head."""
        if payload is None:
            return
        if not 0 <= index < self._streams:
            raise IndexError("list index out of range")
        key = self._key_of(payload)
        self._keys[index] = key
        self._heads[index] = payload
        self._heap[self._size] = index
        self._size += 1
        self._up(self._size - 1)

    cdef object _cut(self, Py_ssize_t index):
        """The plain row packet whole at the stream's buffer's next unread offset, or None."""
        buf = self._buffers[index]
        if buf is None:
            return None
        cdef bytearray b = <bytearray>buf
        cdef Py_ssize_t n = PyByteArray_GET_SIZE(b), pos = self._taken[index], length
        cdef const unsigned char* p = <const unsigned char*>PyByteArray_AS_STRING(b)
        if n - pos < 5:
            return None
        length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
        if length >= MAXP or length > self._max or p[pos + 4] == 0xFE or p[pos + 4] == 0xFF:
            return None
        if pos + 4 + length > n:
            return None
        self._taken[index] = pos + 4 + length
        return PyBytes_FromStringAndSize(<const char*>p + pos + 4, length)

    def run(self, list out not None, Py_ssize_t count):
        """See proxy.wire.scanner.RowMerge.run."""
        cdef int index
        cdef Py_ssize_t i
        try:
            while True:
                if count <= 0:
                    return -2
                if not self._size:
                    return -1
                index = self._heap[0]
                out.append(self._heads[index])
                count -= 1
                row = self._cut(index)
                if row is None:
                    self._heads[index] = None
                    self._keys[index] = None
                    self._size -= 1
                    if self._size:
                        self._heap[0] = self._heap[self._size]
                        self._down(0)
                    return index
                self._heads[index] = row
                self._keys[index] = self._key_of(row)
                self._down(0)
        finally:
            for i in range(self._streams):
                if self._taken[i]:
                    del self._buffers[i][:self._taken[i]]
                    self._taken[i] = 0


cdef inline unsigned long long _le(const unsigned char* p, Py_ssize_t n):
    cdef unsigned long long v = 0
    cdef Py_ssize_t i
    for i in range(n - 1, -1, -1):
        v = (v << 8) | p[i]
    return v


cdef object _binary_value_key(const unsigned char* p, Py_ssize_t n, int shortcut, key):
    """The sort key of a non-NULL binary value ``p[:n]`` (see scanner.binary_row_key)."""
    cdef unsigned long long u
    cdef long long v
    cdef float f
    cdef double d
    cdef unsigned long long days
    if shortcut == KEY_SIGNED and (n == 1 or n == 2 or n == 4 or n == 8):
        u = _le(p, n)
        if n < 8 and u >> (8 * n - 1):
            u |= ~0ULL << (8 * n)  # sign-extend
        v = <long long>u
        return (1, PyLong_FromLongLong(v))
    if shortcut == KEY_UNSIGNED and (n == 1 or n == 2 or n == 4 or n == 8):
        return (1, PyLong_FromUnsignedLongLong(_le(p, n)))
    if shortcut == KEY_FLOAT and n == 4:
        memcpy(&f, p, 4)
        return (1, PyFloat_FromDouble(<double>f))
    if shortcut == KEY_DOUBLE and n == 8:
        memcpy(&d, p, 8)
        return (1, PyFloat_FromDouble(d))
    if shortcut == KEY_DATETIME and (n == 0 or n == 4 or n == 7 or n == 11):
        return (1, (
            PyLong_FromLongLong(p[0] | (p[1] << 8)) if n else 0,
            p[2] if n else 0,
            p[3] if n else 0,
            p[4] if n > 4 else 0,
            p[5] if n > 4 else 0,
            p[6] if n > 4 else 0,
            PyLong_FromUnsignedLongLong(_le(p + 7, 4)) if n > 7 else 0,
        ))
    if shortcut == KEY_TIME and (n == 0 or n == 8 or n == 12):
        if not n:
            return (1, 0)
        days = _le(p + 1, 4)
        if days < 1000000:
            v = <long long>((((days * 24 + p[5]) * 60 + p[6]) * 60 + p[7]) * 1000000)
            if n == 12:
                v += <long long>_le(p + 8, 4)
            return (1, PyLong_FromLongLong(-v if p[0] else v))
    cdef bytes raw = PyBytes_FromStringAndSize(<const char*>p, n)
    if shortcut == KEY_BYTES:
        return (1, raw)
    if shortcut == KEY_GENERAL_CI or shortcut == KEY_BIN:
        text = _ascii_pad_key_at(p, n, shortcut == KEY_GENERAL_CI)
        if text is not None:
            return (1, text)
    return key(raw)


def binary_row_key(Py_ssize_t bitmap_len, widths, Py_ssize_t upto, parts, bytes payload):
    """See proxy.wire.scanner.binary_row_key."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(payload), pos, i, width, n, start, bit
    cdef Py_ssize_t starts[BIN_COLUMNS]
    cdef Py_ssize_t lens[BIN_COLUMNS]
    cdef int shortcut
    if upto > BIN_COLUMNS or upto > len(widths) or size < 1 + bitmap_len:
        return _pure_binary_row_key(bitmap_len, widths, upto, parts, payload)
    pos = 1 + bitmap_len
    for i in range(upto):
        bit = i + 2
        if (bit >> 3) >= bitmap_len:
            return _pure_binary_row_key(bitmap_len, widths, upto, parts, payload)
        if p[1 + (bit >> 3)] & (1 << (bit & 7)):
            starts[i] = -1
            continue
        width = widths[i]
        if width == WIDTH_TEMPORAL or width == WIDTH_LENENC:
            if pos >= size or p[pos] >= 0xFB:
                return _pure_binary_row_key(bitmap_len, widths, upto, parts, payload)
            start = pos + 1
            n = p[pos]
        elif width >= 0:
            start = pos
            n = width
        else:
            return _pure_binary_row_key(bitmap_len, widths, upto, parts, payload)
        if start + n > size:
            return _pure_binary_row_key(bitmap_len, widths, upto, parts, payload)
        starts[i] = start
        lens[i] = n
        pos = start + n
    cdef list out = []
    for part in parts:
        column, shortcut, key, wrap = part
        if not 0 <= column < upto:
            return _pure_binary_row_key(bitmap_len, widths, upto, parts, payload)
        if starts[column] < 0:
            value = key(None)
        else:
            value = _binary_value_key(p + starts[column], lens[column], shortcut, key)
        out.append(value if wrap is None else wrap(value))
    return tuple(out)

# The compiled relay (setup.py's COMPILED_MODULES): connection.py's BackendConnection as an
# extension type with typed fields, so its relay callbacks (data_received, _relay_data,
# _finish, start_relay) read and write them in C. Every attribute it sets must be here; the
# base's instance dict (stream.pxd) takes anything else. The .py file is the reference
# (SHARDGATE_PURE_PYTHON=1 runs it).
cimport cython

from proxy.wire.stream cimport PacketConnection


cdef class BackendConnection(PacketConnection):
    cdef public object target
    cdef public object capabilities
    cdef public object thread_id
    cdef public object server_version
    cdef public bint broken
    cdef public object status
    cdef public object applied
    cdef public object pending_closes
    cdef public object on_lost
    cdef public object applied_replay
    cdef public object applied_from
    cdef public object applied_version
    cdef public object born
    cdef public bint relayed_any
    cdef public object _scanner
    cdef public bytes _held
    cdef public bint relaying
    cdef public object _client
    cdef public object _on_done
    cdef public object _columns
    cdef public object _head
    cdef public object _defs
    cdef public bint _every
    cdef public object _phase
    cdef public bint _continued
    cdef public dict _heads
    cdef public dict _last_heads
    cdef public object _head_kind
    cdef public double waiting_since
    cdef public object _stalled
    cdef public object parked_by
    cdef public double parked_at

    @cython.locals(n=Py_ssize_t, length=Py_ssize_t, last=tuple, raw=bytes, known=dict,
                   written=bytes)
    cdef _known_head(self, bytes data, columns)

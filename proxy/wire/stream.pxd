# The compiled relay (setup.py's COMPILED_MODULES): stream.py's connection classes as
# extension types with typed fields (an augmenting .pxd: the .py file is the code and the
# reference, SHARDGATE_PURE_PYTHON=1 runs it). Measured with tests.bench.instructions: the
# point select's instructions fall only when BackendConnection (connection.pxd) is typed too
# (interpreted code reading a typed class's fields goes through descriptors it cannot
# specialize). The instance dict takes what tests and subclasses set beyond these fields.
cdef class PacketConnection:
    cdef public object transport
    cdef public bytearray _buf
    cdef public object _waiter
    cdef public object _drain_waiter
    cdef public bint _eof
    cdef public object _lost
    cdef public bint write_paused
    cdef public bint reading_paused
    cdef public object feeder
    cdef public object errors
    cdef public Py_ssize_t read_limit
    cdef public bint _limit_paused
    cdef dict __dict__
    cdef object __weakref__


cdef class ClientConnection(PacketConnection):
    cdef public object _on_made
    cdef public object tls
    cdef public object fast
    cdef public bint hold
    cdef public bint input_paused
    cdef public object bytes_received
    cdef public object bytes_sent
    cdef public object on_lost

# The compiled relay (setup.py's COMPILED_MODULES): pool.py's ShardPool as an extension type
# with typed fields, so the give-back of every statement (BackendLink.release -> release,
# BackendLink.reclaim -> reclaim: proxy/session/link.pxd) is C calls reading the connection's
# C fields (connection.pxd). The .py file is the code and the reference
# (SHARDGATE_PURE_PYTHON=1 runs it). No instance dict: every attribute is here.
from proxy.backend.connection cimport BackendConnection


cdef class ShardPool:
    cdef public object shard
    cdef public object limits
    cdef public Py_ssize_t total
    cdef public dict _per_account
    cdef public dict _key_of
    cdef public dict _idle
    cdef public dict _idle_all
    cdef public dict _owner
    cdef public dict _idle_since
    cdef public object _waiters
    cdef public set _retiring
    cdef public bint _any_parked
    cdef public Py_ssize_t waits
    cdef public Py_ssize_t timeouts
    cdef public Py_ssize_t evictions
    cdef public Py_ssize_t handoffs

    cpdef bint reclaim(self, BackendConnection conn, owner)
    cpdef release(self, BackendConnection conn, owner)
    cpdef _dispatch(self)

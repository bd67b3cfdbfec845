# The compiled relay (setup.py's COMPILED_MODULES): link.py's BackendLink as an extension type
# with typed fields, so the give-back of every statement (``release``, ``reclaim``) reads the
# link's, the connection's (connection.pxd) and the pool's (pool.pxd) state in C and calls
# the pool's ``release``/``reclaim`` directly. The .py file is the code and the reference
# (SHARDGATE_PURE_PYTHON=1 runs it). No instance dict: every attribute is here.
cimport cython

from proxy.backend.connection cimport BackendConnection
from proxy.backend.pool cimport ShardPool


cdef class BackendLink:
    cdef public BackendConnection conn
    cdef public ShardPool pool
    cdef public BackendConnection affine
    cdef public object carried
    cdef public object _capture
    cdef public bint _retire
    cdef public object last_status
    cdef public bint closed
    cdef public Py_ssize_t killing
    cdef public object state
    cdef public set binds
    cdef public object statements
    cdef public object max_allowed_packet
    cdef public object _leasing
    cdef public bint _interrupted

    @cython.locals(conn=BackendConnection)
    cpdef bint bound(self)
    @cython.locals(conn=BackendConnection, affine=BackendConnection, pool=ShardPool)
    cpdef BackendConnection reclaim(self)
    @cython.locals(conn=BackendConnection, pool=ShardPool)
    cpdef release(self)

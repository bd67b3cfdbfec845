# The compiled fast path (setup.py's COMPILED_MODULES): fast.py's FastPath as an extension type
# with typed fields, so the fast hook and the relay's completion read the session's link
# (link.pxd), its backend connection (connection.pxd) and the client connection (stream.pxd)
# in C and call the give-back (``reclaim``, ``release``) directly; Activity's fields are C
# fields written in C. The .py file is the code and the reference (SHARDGATE_PURE_PYTHON=1
# runs it). No instance dict: every attribute is here.
cimport cython

from proxy.wire.stream cimport ClientConnection
from proxy.backend.connection cimport BackendConnection
from proxy.session.link cimport BackendLink


@cython.locals(flag_at=Py_ssize_t, end=Py_ssize_t)
cpdef tuple execute_types(payload, Py_ssize_t params, Py_ssize_t base=*)
cpdef bint opens_cursor(payload, Py_ssize_t base=*)
@cython.locals(value=cython.ulonglong, i=Py_ssize_t)
cpdef unsigned long long uint_le(bytes packet, Py_ssize_t at)


cdef class Activity:
    cdef public object command
    cdef public double since
    cdef public object info


cdef class FastRoute:
    cdef public object target
    cdef public Py_ssize_t partition
    cdef public object physical
    cdef public BackendConnection conn
    cdef public bytes statement_id
    cdef public bint same_id
    cdef public bint typed
    cdef public object layout
    cdef public object columns


cdef class HeldConnections:
    cdef public dict conns
    cdef public dict versions
    cdef public object snapshot
    cdef public bint locked
    cdef public Py_ssize_t ran_on

    @cython.locals(conn=BackendConnection)
    cpdef BackendConnection ready(self, Py_ssize_t index, snapshot, Py_ssize_t version)


cdef class ShardedStatement:
    cdef public object client_id
    cdef public object text
    cdef public object params
    cdef public object slots
    cdef public object types
    cdef public dict physical
    cdef public dict placed
    cdef public dict hashed
    cdef public object placed_for
    cdef public object failed
    cdef public object integer
    cdef public dict fast
    cdef public Py_ssize_t fast_length
    cdef public object fast_half


cdef class TextRoute:
    cdef public object shape
    cdef public object statement
    cdef public object digest
    cdef public object layout
    cdef public bint reads_rows
    cdef public object names
    cdef public object kind
    cdef public dict columns
    cdef public dict own_text
    cdef public Py_ssize_t key_at
    cdef public long long low
    cdef public long long high
    cdef public long long modulus
    cdef public bint negative

    @cython.locals(at=Py_ssize_t, start=Py_ssize_t, end=Py_ssize_t, i=Py_ssize_t,
                   value=cython.longlong, digit=cython.longlong)
    cpdef long long table(self, str sql, tuple spans)


cdef class FastPath:
    cdef public object session
    cdef public object ctx
    cdef public ClientConnection client
    cdef public BackendLink link
    cdef public object sharded
    cdef public HeldConnections held
    cdef public dict memo
    cdef public object memo_snapshot
    cdef public object memo_account
    cdef public object memo_db
    cdef public object memo_state
    cdef public object memo_version
    cdef public object digest
    cdef public double started
    cdef public dict shard_metrics
    cdef public BackendConnection fast_conn
    cdef public Py_ssize_t fast_partition
    cdef public BackendConnection area
    cdef public object relay_done
    cdef public object relay_partition_done
    cdef public dict shapes
    cdef public tuple shapes_for

    @cython.locals(conn=BackendConnection, activity=Activity, client=ClientConnection,
                   now=cython.double, code=cython.int, flag_at=Py_ssize_t)
    cpdef bint hook(self, packet)
    @cython.locals(conn=BackendConnection, activity=Activity, client=ClientConnection,
                   now=cython.double, partition=Py_ssize_t)
    cpdef sharded_execute(self, packet)
    @cython.locals(conn=BackendConnection, partition=Py_ssize_t, now=cython.double,
                   known=TextRoute)
    cpdef bint sharded_text(self, packet)
    @cython.locals(shapes=dict, seen=tuple, spans=tuple, route=TextRoute, g=cython.longlong)
    cpdef text_target(self, str sql, snapshot)
    @cython.locals(route=FastRoute, conn=BackendConnection, partition=Py_ssize_t)
    cpdef routed_execute(self, ShardedStatement statement, plan, bytes packet, snapshot)
    @cython.locals(conn=BackendConnection)
    cpdef BackendConnection serving(self, Py_ssize_t partition, snapshot)
    @cython.locals(client=ClientConnection)
    cpdef relay_routed(self, BackendConnection conn, Py_ssize_t partition, columns, digest)
    @cython.locals(memo=dict)
    cpdef memoized(self, statement, snapshot, bint prepared=*, original=*)
    @cython.locals(activity=Activity, now=cython.double)
    cdef double _idle(self)
    @cython.locals(activity=Activity, link=BackendLink, conn=BackendConnection, now=cython.double)
    cpdef done(self, scanner, error)
    @cython.locals(activity=Activity, conn=BackendConnection, now=cython.double,
                   seconds=cython.double)
    cpdef partition_done(self, scanner, error)
    cdef _latency(self, shard, double seconds)
    cpdef record(self, BackendConnection conn, digest, double seconds, scanner)

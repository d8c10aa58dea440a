# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :mod:`waystation.store.pylmdb_driver`: a small binding to the system liblmdb.

Only the part of py-lmdb's API that the custody store uses is here, with py-lmdb's names,
keyword arguments, return values and *py-lmdb's own exception classes* (``lmdb.MapFullError``
etc., with ``what``/``code``/``reason`` set as py-lmdb sets them), so
:mod:`waystation.store.lmdb_store` runs unchanged on either. What it adds is the reason it
exists: :func:`put_many` and :func:`delete_many` apply a whole batch of inserts/deletes, across
any number of sub-databases, in ONE loop over C arrays with the GIL released ONCE. py-lmdb
releases and retakes the GIL around every single ``put`` (~1.6 us each, and under asyncio every
release lets the event loop thread in for up to a switch interval); the custody store writes
four to six records per bundle, so that per-insert cost, not the store's Python, was the floor
(docs/store.md, "A second LMDB binding").

GIL policy: calls that can block on another thread or on the disk -- opening the environment,
beginning a transaction (a writer waits for LMDB's writer mutex), committing (two fsyncs), the
bulk calls -- release the GIL. Single ``get``/``put``/``delete``/cursor moves are a few hundred
nanoseconds of B-tree work in the memory map and keep it.

One environment per process: LMDB's locks are POSIX ``fcntl`` locks, owned by the (process,
file) pair, so a second ``MDB_env`` on the same files would reset the reader table under the
first. This module refuses to open files it already has open (as py-lmdb does for itself); it
cannot see environments opened through py-lmdb, so a process must use one binding per store.

Transactions and cursors follow py-lmdb: every transaction is ``MDB_NOTLS`` (read transactions
run on executor threads), ending a transaction invalidates its cursors, closing the
environment aborts its live transactions, and any use of a finished object raises
``lmdb.Error("Attempt to operate on closed/deleted/dropped object.")``. A transaction may be
used by one thread at a time; using one while another thread is inside one of its GIL-free
calls raises ``lmdb.Error`` instead of crashing.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc
from posix.unistd cimport write

import os
import weakref

import lmdb as _pylmdb

cdef extern from "lmdb.h" nogil:
    ctypedef struct MDB_env:
        pass
    ctypedef struct MDB_txn:
        pass
    ctypedef struct MDB_cursor:
        pass
    ctypedef unsigned int MDB_dbi
    ctypedef int mdb_mode_t
    ctypedef struct MDB_val:
        size_t mv_size
        void *mv_data
    ctypedef struct MDB_stat:
        unsigned int ms_psize
        unsigned int ms_depth
        size_t ms_branch_pages
        size_t ms_leaf_pages
        size_t ms_overflow_pages
        size_t ms_entries
    ctypedef struct MDB_envinfo:
        void *me_mapaddr
        size_t me_mapsize
        size_t me_last_pgno
        size_t me_last_txnid
        unsigned int me_maxreaders
        unsigned int me_numreaders
    ctypedef enum MDB_cursor_op:
        MDB_FIRST
        MDB_GET_CURRENT
        MDB_NEXT
        MDB_SET_RANGE

    enum:
        MDB_NOSUBDIR
        MDB_NOSYNC
        MDB_RDONLY
        MDB_NOMETASYNC
        MDB_WRITEMAP
        MDB_MAPASYNC
        MDB_NOTLS
        MDB_NOLOCK
        MDB_NORDAHEAD
        MDB_NOMEMINIT
        MDB_REVERSEKEY
        MDB_DUPSORT
        MDB_INTEGERKEY
        MDB_DUPFIXED
        MDB_INTEGERDUP
        MDB_CREATE
        MDB_NOOVERWRITE
        MDB_NODUPDATA
        MDB_APPEND
        MDB_SUCCESS
        MDB_KEYEXIST
        MDB_NOTFOUND
        MDB_PAGE_NOTFOUND
        MDB_CORRUPTED
        MDB_PANIC
        MDB_VERSION_MISMATCH
        MDB_INVALID
        MDB_MAP_FULL
        MDB_DBS_FULL
        MDB_READERS_FULL
        MDB_TLS_FULL
        MDB_TXN_FULL
        MDB_CURSOR_FULL
        MDB_PAGE_FULL
        MDB_MAP_RESIZED
        MDB_INCOMPATIBLE
        MDB_BAD_RSLOT
        MDB_BAD_TXN
        MDB_BAD_VALSIZE
        MDB_BAD_DBI

    char *mdb_version(int *major, int *minor, int *patch)
    char *mdb_strerror(int err)
    int mdb_env_create(MDB_env **env)
    int mdb_env_open(MDB_env *env, const char *path, unsigned int flags, mdb_mode_t mode)
    void mdb_env_close(MDB_env *env)
    int mdb_env_set_mapsize(MDB_env *env, size_t size)
    int mdb_env_set_maxreaders(MDB_env *env, unsigned int readers)
    int mdb_env_set_maxdbs(MDB_env *env, MDB_dbi dbs)
    int mdb_env_stat(MDB_env *env, MDB_stat *stat)
    int mdb_env_info(MDB_env *env, MDB_envinfo *stat)
    int mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn)
    int mdb_txn_commit(MDB_txn *txn)
    void mdb_txn_abort(MDB_txn *txn)
    int mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi)
    int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
    int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags)
    int mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
    int mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor)
    void mdb_cursor_close(MDB_cursor *cursor)
    int mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data, MDB_cursor_op op)

__all__ = [
    "APPEND",
    "NOOVERWRITE",
    "BadValsizeError",
    "CorruptedError",
    "Cursor",
    "Environment",
    "Error",
    "IncompatibleError",
    "InvalidError",
    "MapFullError",
    "MapResizedError",
    "NotFoundError",
    "PageNotFoundError",
    "PanicError",
    "Transaction",
    "VersionMismatchError",
    "commit",
    "delete_many",
    "open",
    "put_many",
    "version",
]

# py-lmdb's exception classes, re-exported: callers catch ``lmdb.MapFullError`` whichever
# binding raised it.
Error = _pylmdb.Error
MapFullError = _pylmdb.MapFullError
MapResizedError = _pylmdb.MapResizedError
NotFoundError = _pylmdb.NotFoundError
CorruptedError = _pylmdb.CorruptedError
PageNotFoundError = _pylmdb.PageNotFoundError
InvalidError = _pylmdb.InvalidError
VersionMismatchError = _pylmdb.VersionMismatchError
IncompatibleError = _pylmdb.IncompatibleError
BadValsizeError = _pylmdb.BadValsizeError
PanicError = _pylmdb.PanicError

#: put_many flag: refuse (and stop at) an item whose key exists (``MDB_NOOVERWRITE``).
NOOVERWRITE = MDB_NOOVERWRITE
#: put_many flag: the key probably sorts after every key of its sub-database. It is then put
#: with ``MDB_APPEND``, which fills the last leaf page instead of splitting it in half (so a
#: store fed ascending keys writes about a third fewer pages per commit); a key that does
#: not sort last is put plainly, so the flag never changes what ends up stored.
APPEND = MDB_APPEND

import errno as _errno

_ERRORS = {
    MDB_KEYEXIST: _pylmdb.KeyExistsError,
    MDB_NOTFOUND: _pylmdb.NotFoundError,
    MDB_PAGE_NOTFOUND: _pylmdb.PageNotFoundError,
    MDB_CORRUPTED: _pylmdb.CorruptedError,
    MDB_PANIC: _pylmdb.PanicError,
    MDB_VERSION_MISMATCH: _pylmdb.VersionMismatchError,
    MDB_INVALID: _pylmdb.InvalidError,
    MDB_MAP_FULL: _pylmdb.MapFullError,
    MDB_DBS_FULL: _pylmdb.DbsFullError,
    MDB_READERS_FULL: _pylmdb.ReadersFullError,
    MDB_TLS_FULL: _pylmdb.TlsFullError,
    MDB_TXN_FULL: _pylmdb.TxnFullError,
    MDB_CURSOR_FULL: _pylmdb.CursorFullError,
    MDB_PAGE_FULL: _pylmdb.PageFullError,
    MDB_MAP_RESIZED: _pylmdb.MapResizedError,
    MDB_INCOMPATIBLE: _pylmdb.IncompatibleError,
    MDB_BAD_RSLOT: _pylmdb.BadRslotError,
    MDB_BAD_TXN: _pylmdb.BadTxnError,
    MDB_BAD_VALSIZE: _pylmdb.BadValsizeError,
    MDB_BAD_DBI: _pylmdb.BadDbiError,
    _errno.EACCES: _pylmdb.ReadonlyError,
    _errno.EINVAL: _pylmdb.InvalidParameterError,
    _errno.EAGAIN: _pylmdb.LockError,
    _errno.ENOMEM: _pylmdb.MemoryError,
    _errno.ENOSPC: _pylmdb.DiskError,
}
# py-lmdb appends these hints to the message; kept so messages read the same on both twins
_HINTS = {
    MDB_MAP_FULL: "Please use a larger Environment(map_size=) parameter",
    MDB_DBS_FULL: "Please use a larger Environment(max_dbs=) parameter",
    MDB_READERS_FULL: "Please use a larger Environment(max_readers=) parameter",
    MDB_TXN_FULL: "Please do less work within your transaction",
}
# Which calls release the GIL (see _tune); module globals so a benchmark can compare policies.
cdef bint _release_begin = True
cdef bint _release_bulk = True

_CLOSED_MSG = "Attempt to operate on closed/deleted/dropped object."

# (st_dev, st_ino) of the files of every environment this module has open (see module doc)
_open_files: set = set()


cdef object _error(str what, int rc):
    """The py-lmdb exception for ``rc``, built as py-lmdb builds it."""
    cls = _ERRORS.get(rc, _pylmdb.Error)
    reason = mdb_strerror(rc).decode("utf-8", "replace")
    msg = f"{what}: {reason}"
    hint = _HINTS.get(rc)
    if hint:
        msg = f"{msg} ({hint})"
    exc = cls(msg)
    exc.what = what
    exc.code = rc
    exc.reason = reason
    return exc


cdef object _closed():
    exc = _pylmdb.Error(_CLOSED_MSG)
    exc.what = _CLOSED_MSG
    exc.code = 0
    exc.reason = "Successful return: 0"
    return exc


cdef inline bytes _as_bytes(object v):
    """Keys and values: bytes as they are, other buffers copied; str refused as py-lmdb does."""
    if type(v) is bytes:
        return <bytes>v
    if isinstance(v, str):
        raise TypeError("Won't implicitly convert Unicode to bytes; use .encode()")
    return bytes(memoryview(v))


cdef inline void _setval(MDB_val *val, bytes b):
    val.mv_data = <void *>PyBytes_AS_STRING(b)
    val.mv_size = <size_t>PyBytes_GET_SIZE(b)


cdef inline bytes _tobytes(MDB_val *val):
    return PyBytes_FromStringAndSize(<const char *>val.mv_data, <Py_ssize_t>val.mv_size)


def version():
    """(major, minor, patch) of the liblmdb this module is linked with."""
    cdef int major = 0, minor = 0, patch = 0
    mdb_version(&major, &minor, &patch)
    return (major, minor, patch)


def _file_keys(path, subdir):
    """Identities of an environment's data and lock files (those that exist)."""
    if subdir:
        names = (os.path.join(path, "data.mdb"), os.path.join(path, "lock.mdb"))
    else:
        names = (path, path + "-lock")
    keys = set()
    for name in names:
        try:
            st = os.stat(name)
        except OSError:
            continue
        keys.add((st.st_dev, st.st_ino))
    return keys


cdef class Database:
    """A sub-database handle (py-lmdb's ``_Database``)."""

    cdef readonly Environment env
    cdef MDB_dbi _dbi

    def __repr__(self):
        return f"<lmdbfast.Database dbi={self._dbi}>"


cdef class Environment:
    """An LMDB environment (``lmdb.Environment``'s subset); create it with :func:`open`."""

    cdef MDB_env *_env
    cdef MDB_dbi _main
    cdef bint _readonly
    cdef int _busy  # GIL-free calls in progress (close must not pull the map from under them)
    cdef object _txns  # WeakSet of live transactions, aborted by close()
    cdef object _keys
    cdef object _path
    cdef object __weakref__

    def __init__(
        self,
        path,
        map_size=10485760,
        subdir=True,
        readonly=False,
        metasync=True,
        sync=True,
        map_async=False,
        mode=0o755,
        create=True,
        readahead=True,
        writemap=False,
        meminit=True,
        max_readers=126,
        max_dbs=0,
        max_spare_txns=1,
        lock=True,
    ):
        cdef unsigned int flags = MDB_NOTLS
        cdef unsigned int tflags
        cdef int rc
        cdef MDB_env *env = NULL
        cdef MDB_txn *txn = NULL
        cdef bytes bpath
        cdef const char *cpath
        cdef mdb_mode_t cmode = mode
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        self._path = path
        self._readonly = bool(readonly)
        self._txns = weakref.WeakSet()
        if create and subdir and not readonly:
            os.makedirs(path, exist_ok=True)
        keys = _file_keys(path, subdir)
        if not _open_files.isdisjoint(keys):
            raise _pylmdb.Error(f"{path}: environment is already open in this process")
        if not subdir:
            flags |= MDB_NOSUBDIR
        if readonly:
            flags |= MDB_RDONLY
        if not metasync:
            flags |= MDB_NOMETASYNC
        if not sync:
            flags |= MDB_NOSYNC
        if map_async:
            flags |= MDB_MAPASYNC
        if writemap:
            flags |= MDB_WRITEMAP
        if not readahead:
            flags |= MDB_NORDAHEAD
        if not meminit:
            flags |= MDB_NOMEMINIT
        if not lock:
            flags |= MDB_NOLOCK
        rc = mdb_env_create(&env)
        if rc:
            raise _error("mdb_env_create", rc)
        try:
            rc = mdb_env_set_mapsize(env, map_size)
            if rc:
                raise _error("mdb_env_set_mapsize", rc)
            rc = mdb_env_set_maxreaders(env, max_readers)
            if rc:
                raise _error("mdb_env_set_maxreaders", rc)
            rc = mdb_env_set_maxdbs(env, max_dbs)
            if rc:
                raise _error("mdb_env_set_maxdbs", rc)
            if not create and subdir and not os.path.isdir(path):
                raise _error(path, _errno.ENOENT)
            bpath = os.fsencode(path)
            cpath = bpath
            with nogil:
                rc = mdb_env_open(env, cpath, flags, cmode)
            if rc:
                raise _error(path, rc)
            # the main database's handle, as py-lmdb opens it up front
            tflags = MDB_RDONLY if readonly else 0
            with nogil:
                rc = mdb_txn_begin(env, NULL, tflags, &txn)
            if rc:
                raise _error("mdb_txn_begin", rc)
            rc = mdb_dbi_open(txn, NULL, 0, &self._main)
            if rc:
                mdb_txn_abort(txn)
                raise _error("mdb_dbi_open", rc)
            with nogil:
                rc = mdb_txn_commit(txn)
            if rc:
                raise _error("mdb_txn_commit", rc)
        except BaseException:
            mdb_env_close(env)
            raise
        self._env = env
        self._keys = _file_keys(path, subdir)
        _open_files.update(self._keys)

    def __dealloc__(self):
        # transactions hold a reference to their environment: none can be alive here
        if self._env != NULL:
            mdb_env_close(self._env)
            self._env = NULL
            if self._keys and _open_files is not None:  # None late in interpreter shutdown
                _open_files.difference_update(self._keys)

    cdef inline int _check(self) except -1:
        if self._env == NULL:
            raise _closed()
        return 0

    def path(self):
        return self._path

    @property
    def readonly(self):
        return self._readonly

    def begin(self, db=None, parent=None, write=False, buffers=False):
        """A transaction (read-only unless ``write``); nested ones are not supported."""
        if parent is not None:
            raise TypeError("waystation.ext.lmdbfast does not support nested transactions")
        if buffers:
            raise TypeError("waystation.ext.lmdbfast does not support buffers=True")
        self._check()
        return Transaction._begin(self, db, bool(write))

    def open_db(
        self,
        key=None,
        txn=None,
        reverse_key=False,
        dupsort=False,
        create=True,
        integerkey=False,
        integerdup=False,
        dupfixed=False,
    ):
        """Open (``create``: or create) sub-database ``key`` (bytes) or the main one (None)."""
        cdef unsigned int flags = 0
        cdef int rc
        cdef MDB_dbi dbi
        cdef const char *cname = NULL
        cdef bytes bname
        cdef Transaction t
        self._check()
        if key is not None:
            bname = _as_bytes(key)
            if b"\0" in bname:
                raise TypeError("database name must not contain NUL bytes")
            cname = bname
        if create and not self._readonly:
            flags |= MDB_CREATE
        if reverse_key:
            flags |= MDB_REVERSEKEY
        if dupsort:
            flags |= MDB_DUPSORT
        if integerkey:
            flags |= MDB_INTEGERKEY
        if integerdup:
            flags |= MDB_INTEGERDUP
        if dupfixed:
            flags |= MDB_DUPFIXED
        if txn is None:
            t = Transaction._begin(self, None, not self._readonly)
            try:
                rc = mdb_dbi_open(t._txn, cname, flags, &dbi)
                if rc:
                    raise _error("mdb_dbi_open", rc)
            except BaseException:
                t.abort()
                raise
            t.commit()
        else:
            if not isinstance(txn, Transaction):
                raise TypeError(f"txn must be a lmdbfast.Transaction, not {type(txn).__name__}")
            t = <Transaction>txn
            t._check()
            rc = mdb_dbi_open(t._txn, cname, flags, &dbi)
            if rc:
                raise _error("mdb_dbi_open", rc)
        db = Database.__new__(Database)
        (<Database>db).env = self
        (<Database>db)._dbi = dbi
        return db

    def info(self):
        cdef MDB_envinfo info
        cdef int rc
        self._check()
        rc = mdb_env_info(self._env, &info)
        if rc:
            raise _error("mdb_env_info", rc)
        return {
            "map_addr": <size_t>info.me_mapaddr,
            "map_size": info.me_mapsize,
            "last_pgno": info.me_last_pgno,
            "last_txnid": info.me_last_txnid,
            "max_readers": info.me_maxreaders,
            "num_readers": info.me_numreaders,
        }

    def stat(self):
        cdef MDB_stat st
        cdef int rc
        self._check()
        rc = mdb_env_stat(self._env, &st)
        if rc:
            raise _error("mdb_env_stat", rc)
        return _stat_dict(&st)

    def set_mapsize(self, map_size):
        """Resize the map (0: adopt the size another process set); no transaction may be live."""
        cdef int rc
        cdef size_t size = map_size
        cdef MDB_env *env
        self._check()
        env = self._env
        with nogil:
            rc = mdb_env_set_mapsize(env, size)
        if rc:
            raise _error("mdb_env_set_mapsize", rc)

    def close(self):
        """Abort live transactions (invalidating their cursors), then close. Idempotent."""
        if self._env == NULL:
            return
        if self._busy:
            raise _pylmdb.Error("cannot close: another thread is inside a call on this environment")
        for txn in list(self._txns):
            (<Transaction>txn)._invalidate()
        mdb_env_close(self._env)
        self._env = NULL
        if self._keys:
            _open_files.difference_update(self._keys)
            self._keys = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


cdef dict _stat_dict(MDB_stat *st):
    return {
        "psize": st.ms_psize,
        "depth": st.ms_depth,
        "branch_pages": st.ms_branch_pages,
        "leaf_pages": st.ms_leaf_pages,
        "overflow_pages": st.ms_overflow_pages,
        "entries": st.ms_entries,
    }


cdef struct _PutItem:
    MDB_dbi dbi
    unsigned int flags
    MDB_val key
    MDB_val val


cdef int _put_loop(MDB_txn *txn, _PutItem *arr, Py_ssize_t n, Py_ssize_t *done) noexcept nogil:
    """mdb_put every item in order; stop at the first error (``done``: its index)."""
    cdef Py_ssize_t i
    cdef int rc
    for i in range(n):
        rc = mdb_put(txn, arr[i].dbi, &arr[i].key, &arr[i].val, arr[i].flags)
        if rc == MDB_KEYEXIST and arr[i].flags & MDB_APPEND:
            # LMDB refuses an append whose key does not sort after the last one with
            # KEYEXIST: put it plainly (that can still be a real NOOVERWRITE duplicate)
            rc = mdb_put(
                txn, arr[i].dbi, &arr[i].key, &arr[i].val, arr[i].flags & ~(<unsigned int>MDB_APPEND)
            )
        if rc:
            done[0] = i
            return rc
    return 0


cdef int _del_loop(MDB_txn *txn, _PutItem *arr, Py_ssize_t n, Py_ssize_t *found) noexcept nogil:
    """mdb_del every key in order, counting those that existed; stop at a real error."""
    cdef Py_ssize_t i
    cdef int rc
    for i in range(n):
        rc = mdb_del(txn, arr[i].dbi, &arr[i].key, NULL)
        if rc == 0:
            found[0] += 1
        elif rc != MDB_NOTFOUND:
            return rc
    return 0


cdef class Transaction:
    """A transaction (``lmdb.Transaction``'s subset) plus the GIL-free bulk calls."""

    cdef MDB_txn *_txn
    cdef readonly Environment env
    cdef MDB_dbi _db
    cdef bint _write
    cdef bint _busy
    cdef list _cursors  # weak references to cursors opened in this transaction
    cdef object __weakref__

    @staticmethod
    cdef Transaction _begin(Environment env, object db, bint write):
        cdef Transaction self = Transaction.__new__(Transaction)
        cdef MDB_txn *txn = NULL
        cdef unsigned int flags = 0 if write else MDB_RDONLY
        cdef int rc
        cdef MDB_env *cenv = env._env
        if env._readonly and write:
            raise _error("mdb_txn_begin", _errno.EACCES)
        self.env = env
        self._write = write
        self._cursors = []
        self._db = env._main if db is None else _dbi_of(env, db)
        env._busy += 1
        try:
            if _release_begin:
                with nogil:  # a writer may wait here for another thread's transaction
                    rc = mdb_txn_begin(cenv, NULL, flags, &txn)
            else:
                rc = mdb_txn_begin(cenv, NULL, flags, &txn)
        finally:
            env._busy -= 1
        if rc:
            raise _error("mdb_txn_begin", rc)
        self._txn = txn
        env._txns.add(self)
        return self

    def __dealloc__(self):
        # cursors hold a reference to their transaction: none can be alive here
        if self._txn != NULL:
            mdb_txn_abort(self._txn)
            self._txn = NULL

    cdef inline int _check(self) except -1:
        if self._txn == NULL:
            raise _closed()
        if self._busy:
            raise _pylmdb.Error("transaction is in use by another thread")
        return 0

    cdef inline MDB_dbi _dbi(self, object db) except? 0:
        if db is None:
            return self._db
        return _dbi_of(self.env, db)

    cdef void _end_cursors(self):
        """Invalidate this transaction's cursors before it ends (read ones must be closed)."""
        cdef Cursor cur
        for ref in self._cursors:
            obj = ref()
            if obj is not None:
                cur = <Cursor>obj
                if cur._cur != NULL:
                    if not self._write:
                        mdb_cursor_close(cur._cur)
                    cur._cur = NULL
                    cur._positioned = False
        self._cursors = []

    cdef void _invalidate(self):
        """Abort (if live) and mark finished; used by abort() and Environment.close()."""
        if self._txn != NULL:
            self._end_cursors()
            mdb_txn_abort(self._txn)
            self._txn = NULL
            self.env._txns.discard(self)

    def get(self, key, default=None, db=None):
        """The value of ``key`` (bytes), or ``default`` if absent."""
        cdef MDB_val k, v
        cdef int rc
        cdef bytes bkey
        self._check()
        bkey = _as_bytes(key)
        _setval(&k, bkey)
        rc = mdb_get(self._txn, self._dbi(db), &k, &v)
        if rc == MDB_NOTFOUND:
            return default
        if rc:
            raise _error("mdb_get", rc)
        return _tobytes(&v)

    def put(self, key, value, dupdata=True, overwrite=True, append=False, db=None):
        """Store ``value`` at ``key``; False if ``overwrite=False`` and the key exists."""
        cdef MDB_val k, v
        cdef int rc
        cdef unsigned int flags = 0
        cdef bytes bkey, bval
        self._check()
        bkey = _as_bytes(key)
        bval = _as_bytes(value)
        _setval(&k, bkey)
        _setval(&v, bval)
        if not dupdata:
            flags |= MDB_NODUPDATA
        if not overwrite:
            flags |= MDB_NOOVERWRITE
        if append:
            flags |= MDB_APPEND
        rc = mdb_put(self._txn, self._dbi(db), &k, &v, flags)
        if rc == MDB_KEYEXIST:
            return False
        if rc:
            raise _error("mdb_put", rc)
        return True

    def delete(self, key, value=b"", db=None):
        """Delete ``key`` (and only that value, if given); whether it existed."""
        cdef MDB_val k, v
        cdef int rc
        cdef bytes bkey, bval
        self._check()
        bkey = _as_bytes(key)
        bval = _as_bytes(value)
        _setval(&k, bkey)
        _setval(&v, bval)
        rc = mdb_del(self._txn, self._dbi(db), &k, &v if v.mv_size else NULL)
        if rc == MDB_NOTFOUND:
            return False
        if rc:
            raise _error("mdb_del", rc)
        return True

    def cursor(self, db=None):
        self._check()
        return Cursor._open(self, self._dbi(db))

    def commit(self):
        """Commit (GIL released: a durable commit is two fsyncs); the transaction ends."""
        self._commit(-1)

    cdef _commit(self, int wake_fd):
        cdef MDB_txn *txn
        cdef int rc
        cdef char byte = 0
        self._check()
        self._end_cursors()
        txn = self._txn
        self._txn = NULL
        self.env._txns.discard(self)
        self.env._busy += 1
        try:
            with nogil:
                if wake_fd >= 0:
                    # wake another thread (an event loop) in the same GIL-free stretch, so
                    # it runs while we sync instead of us queueing for the GIL after a wake
                    write(wake_fd, &byte, 1)
                rc = mdb_txn_commit(txn)
        finally:
            self.env._busy -= 1
        if rc:
            raise _error("mdb_txn_commit", rc)

    def abort(self):
        """Discard the transaction's changes; a no-op on a finished transaction."""
        if self._busy:
            raise _pylmdb.Error("transaction is in use by another thread")
        self._invalidate()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def put_many(self, items):
        """See :func:`put_many`."""
        cdef Py_ssize_t n, i, done
        cdef _PutItem *arr
        cdef MDB_txn *txn
        cdef int rc = 0
        cdef bytes bkey, bval
        cdef unsigned int flags
        self._check()
        if not isinstance(items, list):
            items = list(items)
        n = len(items)
        if n == 0:
            return 0
        arr = <_PutItem *>malloc(n * sizeof(_PutItem))
        if arr == NULL:
            raise MemoryError()
        keep = []  # the bytes the C array points into, alive until the loop is done
        try:
            for i in range(n):
                db, key, value, flag = items[i]
                flags = flag
                if flags & ~(<unsigned int>(MDB_NOOVERWRITE | MDB_APPEND)):
                    raise ValueError(
                        f"put_many: unsupported flags {flag!r} (NOOVERWRITE and/or APPEND, or 0)"
                    )
                bkey = _as_bytes(key)
                bval = _as_bytes(value)
                keep.append(bkey)
                keep.append(bval)
                arr[i].dbi = self._dbi(db)
                arr[i].flags = flags
                _setval(&arr[i].key, bkey)
                _setval(&arr[i].val, bval)
            txn = self._txn
            done = n
            self._busy = True
            self.env._busy += 1
            if _release_bulk:
                with nogil:
                    rc = _put_loop(txn, arr, n, &done)
            else:
                rc = _put_loop(txn, arr, n, &done)
            self._busy = False
            self.env._busy -= 1
        finally:
            free(arr)
        if rc == 0:
            return n
        if rc == MDB_KEYEXIST:
            return done
        raise _error("mdb_put", rc)

    def delete_many(self, items):
        """See :func:`delete_many`."""
        cdef Py_ssize_t n, i, found = 0
        cdef _PutItem *arr
        cdef MDB_txn *txn
        cdef int rc = 0
        cdef bytes bkey
        self._check()
        if not isinstance(items, list):
            items = list(items)
        n = len(items)
        if n == 0:
            return 0
        arr = <_PutItem *>malloc(n * sizeof(_PutItem))
        if arr == NULL:
            raise MemoryError()
        keep = []
        try:
            for i in range(n):
                db, key = items[i]
                bkey = _as_bytes(key)
                keep.append(bkey)
                arr[i].dbi = self._dbi(db)
                _setval(&arr[i].key, bkey)
            txn = self._txn
            self._busy = True
            self.env._busy += 1
            if _release_bulk:
                with nogil:
                    rc = _del_loop(txn, arr, n, &found)
            else:
                rc = _del_loop(txn, arr, n, &found)
            self._busy = False
            self.env._busy -= 1
        finally:
            free(arr)
        if rc:
            raise _error("mdb_del", rc)
        return found


cdef MDB_dbi _dbi_of(Environment env, object db) except? 0:
    if type(db) is not Database:
        raise TypeError(f"db must be a lmdbfast.Database, not {type(db).__name__}")
    if (<Database>db).env is not env:
        raise _pylmdb.Error("db belongs to another environment")
    return (<Database>db)._dbi


cdef class Cursor:
    """A cursor (``lmdb.Cursor``'s subset: first/next/set_range/key/value/iternext)."""

    cdef MDB_cursor *_cur
    cdef readonly Transaction txn
    cdef bint _positioned
    cdef object __weakref__

    @staticmethod
    cdef Cursor _open(Transaction txn, MDB_dbi dbi):
        cdef Cursor self = Cursor.__new__(Cursor)
        cdef int rc
        rc = mdb_cursor_open(txn._txn, dbi, &self._cur)
        if rc:
            self._cur = NULL
            raise _error("mdb_cursor_open", rc)
        self.txn = txn
        txn._cursors.append(weakref.ref(self))
        return self

    def __dealloc__(self):
        # the transaction is alive (we hold it); had it ended, _cur would be NULL already
        if self._cur != NULL:
            mdb_cursor_close(self._cur)
            self._cur = NULL

    cdef inline int _check(self) except -1:
        if self._cur == NULL:
            raise _closed()
        if self.txn._busy:
            raise _pylmdb.Error("transaction is in use by another thread")
        return 0

    cdef bint _move(self, MDB_cursor_op op, MDB_val *k, MDB_val *v) except -1:
        cdef int rc = mdb_cursor_get(self._cur, k, v, op)
        if rc == 0:
            self._positioned = True
            return True
        self._positioned = False
        if rc == MDB_NOTFOUND:
            return False
        raise _error("mdb_cursor_get", rc)

    def first(self):
        cdef MDB_val k, v
        self._check()
        return self._move(MDB_FIRST, &k, &v)

    def next(self):
        cdef MDB_val k, v
        self._check()
        return self._move(MDB_NEXT, &k, &v)

    def set_range(self, key):
        """Position at the first key >= ``key`` (an empty key: the first); found anything?"""
        cdef MDB_val k, v
        cdef bytes bkey
        self._check()
        bkey = _as_bytes(key)
        if not PyBytes_GET_SIZE(bkey):
            return self._move(MDB_FIRST, &k, &v)
        _setval(&k, bkey)
        return self._move(MDB_SET_RANGE, &k, &v)

    cdef int _current(self, MDB_val *k, MDB_val *v) except -1:
        cdef int rc = mdb_cursor_get(self._cur, k, v, MDB_GET_CURRENT)
        if rc:
            raise _error("mdb_cursor_get", rc)
        return 0

    def key(self):
        cdef MDB_val k, v
        self._check()
        if not self._positioned:
            return b""
        self._current(&k, &v)
        return _tobytes(&k)

    def value(self):
        cdef MDB_val k, v
        self._check()
        if not self._positioned:
            return b""
        self._current(&k, &v)
        return _tobytes(&v)

    def item(self):
        cdef MDB_val k, v
        self._check()
        if not self._positioned:
            return (b"", b"")
        self._current(&k, &v)
        return (_tobytes(&k), _tobytes(&v))

    def iternext(self, keys=True, values=True):
        """Yield from the current item on (from the first if unpositioned), as py-lmdb."""
        cdef MDB_val k, v
        cdef bint want_k = keys, want_v = values
        self._check()
        if not self._positioned:
            if not self._move(MDB_FIRST, &k, &v):
                return
        else:
            self._current(&k, &v)
        while True:
            if want_k and want_v:
                yield (_tobytes(&k), _tobytes(&v))
            elif want_k:
                yield _tobytes(&k)
            else:
                yield _tobytes(&v)
            self._check()
            if not self._move(MDB_NEXT, &k, &v):
                return

    def __iter__(self):
        return self.iternext()

    def close(self):
        if self._cur != NULL:
            mdb_cursor_close(self._cur)
            self._cur = NULL
            self._positioned = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _tune(begin=None, bulk=None):
    """Experiment knob: which calls release the GIL; returns the current (begin, bulk)."""
    global _release_begin, _release_bulk
    if begin is not None:
        _release_begin = bool(begin)
    if bulk is not None:
        _release_bulk = bool(bulk)
    return (_release_begin, _release_bulk)


def open(path, **kwargs):
    """Open an environment: ``lmdb.open``'s keyword arguments (``lmdb.Environment``)."""
    return Environment(path, **kwargs)


def put_many(Transaction txn, items):
    """Insert ``items`` = ``[(db, key, value, flags), ...]`` in order, GIL released once.

    ``flags`` is 0, or :data:`NOOVERWRITE` and/or :data:`APPEND` (a hint that never changes
    the outcome). Returns ``len(items)``, or the index of the first
    NOOVERWRITE item whose key existed (``MDB_KEYEXIST``); items after it are not applied, and
    the caller should abort the transaction (its contents past that index are unspecified in
    the pure-Python twin). Any other error raises the py-lmdb exception (the transaction must
    then be aborted, as LMDB requires).
    """
    return txn.put_many(items)


def commit(Transaction txn, wake_fd=None):
    """``txn.commit()``; first write one byte to ``wake_fd`` (if given) without the GIL.

    The group-commit writer wakes the event loop this way to hand it the previous batch's
    results: the loop works while this commit syncs. Errors writing ``wake_fd`` are ignored
    (a full pipe already holds a wake-up).
    """
    txn._commit(-1 if wake_fd is None else wake_fd)


def delete_many(Transaction txn, items):
    """Delete ``items`` = ``[(db, key), ...]`` in order, GIL released once; how many existed."""
    return txn.delete_many(items)

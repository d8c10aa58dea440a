# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :mod:`waystation.store.pyrecords` (the custody store's per-bundle records).

The pure-Python module is the specification: this module has the same public names
(``pyrecords.__all__``) and gives byte-identical records, equal index entries and the same
exceptions. It only handles the shapes a node actually stores (exact ``int``/``str``/``bytes``
fields, ``CustodyState``/``Priority`` enums, a ``dict`` extra); anything else -- and every
error -- is handed to the reference function, so error classes and messages match by
construction. ``tests/store/test_store_records_differential.py`` checks it with hypothesis.

Why it is faster (docs/store.md has the figures): the metadata's fields are read straight from
the ``__slots__`` of :class:`BundleMeta` (no ``to_cbor_obj`` list), validated with C
comparisons, and the CBOR array is sized first and written into one ``bytes`` object; index
keys are assembled with ``memcpy`` and the BLAKE2b prefixes come from a dict cache.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)
    object PyLong_FromUnsignedLongLong(unsigned long long v)
    unsigned long long PyLong_AsUnsignedLongLong(object o) except? -1
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1

cdef extern from "ws_pyslots.h":
    Py_ssize_t ws_slot_offset(object descr)
    PyObject *ws_slot_get(object obj, Py_ssize_t offset)
    void ws_slot_set(object obj, Py_ssize_t offset, object value)
    object ws_alloc(object type)

import zlib

import cbor2

from waystation.store import pyrecords as _ref
from waystation.store._common import check_reason as _check_reason
from waystation.store._common import dtn_now_ms as _dtn_now_ms
from waystation.store.api import (
    BundleMeta,
    BundleNotFound,
    CustodyState,
    DeletionRecord,
    Disposition,
    InvalidMeta,
    Priority,
    StoreError,
)

__all__ = [
    "fill_in",
    "fill_in_run",
    "h8",
    "index_keys",
    "pack_deletion",
    "pack_put",
    "stage_deletes",
    "stage_puts",
    "unpack_meta",
]

# Field order of BundleMeta (= to_cbor_obj order after the version); checked at import.
_EXPECTED = (
    "received_ms", "expiry_ms", "destination", "source", "state", "queue", "priority",
    "local_endpoint", "retries", "adu_key", "fragment_offset", "total_adu_length", "report_to",
    "deletion_reason", "extra", "size", "seq", "checksum",
)

cdef enum:
    NF = 18
    F_RECEIVED = 0
    F_EXPIRY = 1
    F_DEST = 2
    F_SOURCE = 3
    F_STATE = 4
    F_QUEUE = 5
    F_PRIO = 6
    F_LOCAL = 7
    F_RETRIES = 8
    F_ADU = 9
    F_FRAGOFF = 10
    F_TOTAL = 11
    F_REPORT = 12
    F_DELREASON = 13
    F_EXTRA = 14
    F_SIZE = 15
    F_SEQ = 16
    F_CHECKSUM = 17
    MAX_TEXT = 256
    META_VERSION = 1

cdef Py_ssize_t _OFF[NF]
cdef bint _FAST = False
# DeletionRecord's slots (seq, key, disposition, reason, time_ms, meta), if plain slots
cdef Py_ssize_t _DOFF[6]
cdef bint _DFAST = False


def _init_offsets():
    global _FAST
    from waystation.store import api
    if tuple(api._FIELD_NAMES) != _EXPECTED or api._META_VERSION != META_VERSION:
        return
    if api._MAX_TEXT != MAX_TEXT:
        return
    cdef int i
    for i in range(NF):
        _OFF[i] = ws_slot_offset(BundleMeta.__dict__[_EXPECTED[i]])
        if _OFF[i] < 0:
            return
    _FAST = True


_init_offsets()


def _init_deletion_offsets():
    global _DFAST
    names = ("seq", "key", "disposition", "reason", "time_ms", "meta")
    from dataclasses import fields
    if tuple(f.name for f in fields(DeletionRecord)) != names or hasattr(
        DeletionRecord, "__post_init__"
    ):
        return
    cdef int i
    for i in range(6):
        _DOFF[i] = ws_slot_offset(DeletionRecord.__dict__[names[i]])
        if _DOFF[i] < 0:
            return
    _DFAST = True


_init_deletion_offsets()
#: True when the slot layout of BundleMeta is the one this module was written for.
FAST_PATH = _FAST

cdef object _crc32 = zlib.crc32
cdef object _dumps = cbor2.dumps
cdef object _ref_h8 = _ref.h8
cdef object _ref_fill_in = _ref.fill_in
cdef object _ref_unpack_meta = _ref.unpack_meta
cdef dict _STATE_BY_TEXT = {m.value: m for m in CustodyState}
cdef tuple _PRIORITIES = (Priority(0), Priority(1), Priority(2))
cdef dict _h8_cache = {}
cdef object _CustodyState = CustodyState
cdef object _Priority = Priority
cdef object _Disposition = Disposition
cdef object _BundleMeta = BundleMeta
cdef bytes _EMPTY = b""
cdef str IX_DEST = "ix_dest"
cdef str IX_EXP = "ix_exp"
cdef str IX_QUEUE = "ix_queue"
cdef str IX_LOCAL = "ix_local"
cdef str IX_ADU = "ix_adu"


class _Fallback(Exception):
    """Internal: not a shape the fast path handles; use the reference."""


# -- small C helpers ------------------------------------------------------------------------
cdef enum Kind:
    K_UINT = 0
    K_STR = 1  # text (major 3) or bytes (major 2) from ptr/n
    K_NULL = 2
    K_RAW = 3  # already-encoded CBOR from ptr/n

cdef struct Item:
    Kind kind
    uint8_t major
    uint64_t u
    const char *ptr
    Py_ssize_t n


cdef inline Py_ssize_t _head_len(uint64_t v) noexcept nogil:
    if v < 24:
        return 1
    if v < 0x100:
        return 2
    if v < 0x10000:
        return 3
    if (v >> 32) == 0:
        return 5
    return 9


cdef inline uint8_t *_head(uint8_t *p, uint8_t major, uint64_t v) noexcept nogil:
    cdef uint8_t m = major << 5
    cdef int i
    if v < 24:
        p[0] = m | <uint8_t>v
        return p + 1
    if v < 0x100:
        p[0] = m | 24
        p[1] = <uint8_t>v
        return p + 2
    if v < 0x10000:
        p[0] = m | 25
        p[1] = <uint8_t>(v >> 8)
        p[2] = <uint8_t>v
        return p + 3
    if (v >> 32) == 0:
        p[0] = m | 26
        for i in range(4):
            p[1 + i] = <uint8_t>(v >> (24 - 8 * i))
        return p + 5
    p[0] = m | 27
    for i in range(8):
        p[1 + i] = <uint8_t>(v >> (56 - 8 * i))
    return p + 9


cdef inline Py_ssize_t _item_len(Item *it) noexcept nogil:
    if it.kind == K_UINT:
        return _head_len(it.u)
    if it.kind == K_STR:
        return _head_len(<uint64_t>it.n) + it.n
    if it.kind == K_NULL:
        return 1
    return it.n


cdef inline uint8_t *_item_write(uint8_t *p, Item *it) noexcept nogil:
    if it.kind == K_UINT:
        return _head(p, 0, it.u)
    if it.kind == K_STR:
        p = _head(p, it.major, <uint64_t>it.n)
        memcpy(p, it.ptr, it.n)
        return p + it.n
    if it.kind == K_NULL:
        p[0] = 0xF6
        return p + 1
    memcpy(p, it.ptr, it.n)
    return p + it.n


cdef inline void _be64(uint8_t *p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[i] = <uint8_t>(v >> (56 - 8 * i))


cdef inline object _slot(object meta, int i):
    cdef PyObject *v = ws_slot_get(meta, _OFF[i])
    if v == NULL:
        raise _Fallback
    return <object>v


cdef inline uint64_t _u64(object v) except? 0xFFFFFFFFFFFFFFFF:
    """An exact, non-negative int below 2**64 (else _Fallback)."""
    if type(v) is not int or v < 0:
        raise _Fallback
    try:
        return PyLong_AsUnsignedLongLong(v)
    except OverflowError:
        raise _Fallback


cdef inline void _set_uint(Item *it, uint64_t v) noexcept nogil:
    it.kind = K_UINT
    it.u = v


cdef inline int _set_text(Item *it, object s, bint nonempty) except -1:
    """An exact str of at most MAX_TEXT UTF-8 bytes (non-empty if asked)."""
    cdef Py_ssize_t n
    if type(s) is not str:
        raise _Fallback
    try:
        it.ptr = PyUnicode_AsUTF8AndSize(s, &n)
    except UnicodeEncodeError:  # lone surrogates: the reference names the problem
        raise _Fallback
    if n > MAX_TEXT or (nonempty and n == 0):
        raise _Fallback
    it.kind = K_STR
    it.major = 3
    it.n = n
    return 0


cdef inline int _set_opt_text(Item *it, object s) except -1:
    if s is None:
        it.kind = K_NULL
        return 0
    return _set_text(it, s, True)


cdef inline int _set_opt_uint(Item *it, object v) except -1:
    if v is None:
        it.kind = K_NULL
    else:
        _set_uint(it, _u64(v))
    return 0


cdef inline int _set_state(Item *it, object state, bint strict) except -1:
    # A CustodyState member is a str subclass whose text is its value (= str(state)).
    cdef Py_ssize_t n
    if state.__class__ is not _CustodyState and (strict or type(state) is not str):
        raise _Fallback
    try:
        it.ptr = PyUnicode_AsUTF8AndSize(state, &n)
    except UnicodeEncodeError:
        raise _Fallback
    it.kind = K_STR
    it.major = 3
    it.n = n
    return 0


cdef object _meta_items(object meta, Item *items, bint validate):
    """Fill items[1..18] from ``meta``'s slots (items[0] is the version). ``validate``: also
    insist on everything BundleMeta.validate() insists on (else _Fallback). Returns an object
    that must stay alive while the items are used (the encoded extra, or None)."""
    cdef object v
    cdef object keep = None
    cdef uint64_t prio
    items[0].kind = K_UINT
    items[0].u = META_VERSION
    _set_uint(&items[1 + F_RECEIVED], _u64(_slot(meta, F_RECEIVED)))
    _set_uint(&items[1 + F_EXPIRY], _u64(_slot(meta, F_EXPIRY)))
    _set_text(&items[1 + F_DEST], _slot(meta, F_DEST), False)
    _set_text(&items[1 + F_SOURCE], _slot(meta, F_SOURCE), False)
    _set_state(&items[1 + F_STATE], _slot(meta, F_STATE), validate)
    _set_opt_text(&items[1 + F_QUEUE], _slot(meta, F_QUEUE))
    v = _slot(meta, F_PRIO)
    if v.__class__ is not _Priority and (validate or type(v) is not int):
        raise _Fallback
    prio = PyLong_AsUnsignedLongLong(v) if v >= 0 else 99
    if prio > 2:
        raise _Fallback
    _set_uint(&items[1 + F_PRIO], prio)
    _set_opt_text(&items[1 + F_LOCAL], _slot(meta, F_LOCAL))
    _set_uint(&items[1 + F_RETRIES], _u64(_slot(meta, F_RETRIES)))
    v = _slot(meta, F_ADU)
    if v is None:
        items[1 + F_ADU].kind = K_NULL
    else:
        if type(v) is not bytes or PyBytes_GET_SIZE(v) == 0 or PyBytes_GET_SIZE(v) > MAX_TEXT:
            raise _Fallback
        items[1 + F_ADU].kind = K_STR
        items[1 + F_ADU].major = 2
        items[1 + F_ADU].ptr = PyBytes_AS_STRING(v)
        items[1 + F_ADU].n = PyBytes_GET_SIZE(v)
    _set_opt_uint(&items[1 + F_FRAGOFF], _slot(meta, F_FRAGOFF))
    _set_opt_uint(&items[1 + F_TOTAL], _slot(meta, F_TOTAL))
    _set_opt_text(&items[1 + F_REPORT], _slot(meta, F_REPORT))
    _set_opt_uint(&items[1 + F_DELREASON], _slot(meta, F_DELREASON))
    v = _slot(meta, F_EXTRA)
    if type(v) is not dict:
        raise _Fallback
    if not v:
        items[1 + F_EXTRA].kind = K_RAW
        items[1 + F_EXTRA].ptr = b"\xa0"
        items[1 + F_EXTRA].n = 1
    else:
        enc = _plain_cbor(v)
        if enc is None:
            try:  # nested values encode exactly as they would inside the list
                enc = _dumps(v)
            except Exception:
                raise _Fallback
        keep = enc
        items[1 + F_EXTRA].kind = K_RAW
        items[1 + F_EXTRA].ptr = PyBytes_AS_STRING(enc)
        items[1 + F_EXTRA].n = PyBytes_GET_SIZE(enc)
    _set_uint(&items[1 + F_SIZE], _u64(_slot(meta, F_SIZE)))
    _set_uint(&items[1 + F_SEQ], _u64(_slot(meta, F_SEQ)))
    _set_uint(&items[1 + F_CHECKSUM], _u64(_slot(meta, F_CHECKSUM)))
    return keep


cdef object _plain_cbor(object value):
    """``cbor2.dumps(value)`` for the plain values ``extra`` holds (the kinds ``_rd_any``
    reads: ints within 64 bits, text, bytes, lists, tuples, dicts, booleans, None), sized
    first and written into one bytes object; None for anything else (the caller then asks
    cbor2). The node stores a small ``extra`` map with every bundle, and cbor2's call costs
    more than the rest of the record's encoding."""
    cdef Py_ssize_t size = _plain_len(value, 0)
    if size < 0:
        return None
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    _plain_write(<uint8_t *>PyBytes_AS_STRING(out), value)
    return out


cdef Py_ssize_t _plain_len(object v, int depth) except -2:
    """Encoded length of ``v``, or -1 if it is not plain (see ``_plain_cbor``)."""
    cdef int overflow = 0
    cdef long long x
    cdef Py_ssize_t n, total, part
    if depth > 16:
        return -1
    t = type(v)
    if t is int:
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow:
            return -1
        return _head_len(<uint64_t>x if x >= 0 else <uint64_t>(-1 - x))
    if t is str:
        try:
            PyUnicode_AsUTF8AndSize(v, &n)
        except UnicodeEncodeError:
            return -1
        return _head_len(<uint64_t>n) + n
    if t is bytes:
        n = PyBytes_GET_SIZE(v)
        return _head_len(<uint64_t>n) + n
    if v is None or t is bool:
        return 1
    if t is list or t is tuple:
        total = _head_len(<uint64_t>len(v))
        for item in v:
            part = _plain_len(item, depth + 1)
            if part < 0:
                return -1
            total += part
        return total
    if t is dict:
        total = _head_len(<uint64_t>len(v))
        for k, item in (<dict>v).items():
            part = _plain_len(k, depth + 1)
            if part < 0:
                return -1
            total += part
            part = _plain_len(item, depth + 1)
            if part < 0:
                return -1
            total += part
        return total
    return -1


cdef uint8_t *_plain_write(uint8_t *p, object v) except NULL:
    """Write ``v`` (already sized by ``_plain_len``) at ``p``; returns the end."""
    cdef int overflow = 0
    cdef long long x
    cdef Py_ssize_t n
    cdef const char *u
    t = type(v)
    if t is int:
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        return _head(p, 0, <uint64_t>x) if x >= 0 else _head(p, 1, <uint64_t>(-1 - x))
    if t is str:
        u = PyUnicode_AsUTF8AndSize(v, &n)
        p = _head(p, 3, <uint64_t>n)
        memcpy(p, u, n)
        return p + n
    if t is bytes:
        n = PyBytes_GET_SIZE(v)
        p = _head(p, 2, <uint64_t>n)
        memcpy(p, PyBytes_AS_STRING(v), n)
        return p + n
    if v is None:
        p[0] = 0xF6
        return p + 1
    if t is bool:
        p[0] = 0xF5 if v else 0xF4
        return p + 1
    if t is list or t is tuple:
        p = _head(p, 4, <uint64_t>len(v))
        for item in v:
            p = _plain_write(p, item)
        return p
    p = _head(p, 5, <uint64_t>len(v))
    for k, item in (<dict>v).items():
        p = _plain_write(p, k)
        p = _plain_write(p, item)
    return p


cdef bytes _encode(Item *items, int n):
    """A CBOR array of ``n`` items, sized first and written into one bytes object."""
    cdef Py_ssize_t size = _head_len(<uint64_t>n)
    cdef int i
    for i in range(n):
        size += _item_len(&items[i])
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
    p = _head(p, 4, <uint64_t>n)
    for i in range(n):
        p = _item_write(p, &items[i])
    return out


# -- index keys -----------------------------------------------------------------------------
cpdef bytes h8(object text):
    """8-byte BLAKE2b of a text (UTF-8) or bytes (cached, like the reference)."""
    r = _h8_cache.get(text)
    if r is None:
        r = _ref_h8(text)
        if len(_h8_cache) >= 8192:
            _h8_cache.clear()
        _h8_cache[text] = r
    return <bytes>r


cdef bytes _ix(bytes prefix, int extra_byte, bint with_u1, uint64_t u1, bint with_u2,
               uint64_t u2, bytes key):
    """prefix | [extra byte] | [u1 as 8 bytes] | [u2 as 8 bytes] | key"""
    cdef Py_ssize_t plen = PyBytes_GET_SIZE(prefix) if prefix is not None else 0
    cdef Py_ssize_t klen = PyBytes_GET_SIZE(key)
    cdef Py_ssize_t size = plen + (1 if extra_byte >= 0 else 0) + (8 if with_u1 else 0) + (
        8 if with_u2 else 0) + klen
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
    if plen:
        memcpy(p, PyBytes_AS_STRING(prefix), plen)
        p += plen
    if extra_byte >= 0:
        p[0] = <uint8_t>extra_byte
        p += 1
    if with_u1:
        _be64(p, u1)
        p += 8
    if with_u2:
        _be64(p, u2)
        p += 8
    memcpy(p, PyBytes_AS_STRING(key), klen)
    return out


cdef list _index_fast(bytes key, object meta, uint64_t seq):
    """index_keys for a BundleMeta whose slots have the stored shape (else _Fallback)."""
    cdef object dest = _slot(meta, F_DEST)
    cdef object queue = _slot(meta, F_QUEUE)
    cdef object local = _slot(meta, F_LOCAL)
    cdef object adu = _slot(meta, F_ADU)
    cdef uint64_t expiry = _u64(_slot(meta, F_EXPIRY))
    cdef uint64_t prio = 0
    cdef uint64_t offset = 0
    cdef object v
    if type(dest) is not str:
        raise _Fallback
    out = [
        (IX_DEST, _ix(h8(dest), -1, True, seq, False, 0, key), _EMPTY),
        (IX_EXP, _ix(None, -1, True, expiry, False, 0, key), _EMPTY),
    ]
    if queue is not None:
        if type(queue) is not str:
            raise _Fallback
        v = _slot(meta, F_PRIO)
        if not isinstance(v, int) or v.__class__ is bool or not 0 <= v <= 2:
            raise _Fallback
        prio = PyLong_AsUnsignedLongLong(v)
        try:
            qname = queue.encode("utf-8")
        except UnicodeEncodeError:
            raise _Fallback
        out.append((IX_QUEUE, _ix(h8(queue), <int>(2 - prio), True, seq, False, 0, key), qname))
    if local is not None:
        if type(local) is not str:
            raise _Fallback
        out.append((IX_LOCAL, _ix(h8(local), -1, True, seq, False, 0, key), _EMPTY))
    if adu is not None:
        if type(adu) is not bytes:
            raise _Fallback
        v = _slot(meta, F_FRAGOFF)
        if v is not None:
            offset = _u64(v)
        out.append((IX_ADU, _ix(h8(adu), -1, True, offset, True, seq, key), _EMPTY))
    return out


def index_keys(key, m, seq_no=None):
    """Every index entry of one bundle (see ``pyrecords.index_keys``)."""
    return _index_keys(key, m, seq_no)


cdef list _index_keys(object key, object m, object seq_no):
    if _FAST and type(key) is bytes and type(m) is _BundleMeta:
        try:
            return _index_fast(key, m, _u64(_slot(m, F_SEQ) if seq_no is None else seq_no))
        except _Fallback:
            pass
    return _ref.index_keys(key, m, seq_no)


# -- records --------------------------------------------------------------------------------
def pack_put(key, wire, meta, seq):
    """(stored meta record, CRC-32 of ``wire``, index entries); see ``pyrecords.pack_put``."""
    return _pack_put(key, wire, meta, seq)


cdef tuple _pack_put(object key, object wire, object meta, object seq):
    cdef Item items[NF + 1]
    cdef object keep = None
    cdef uint64_t useq, checksum
    if _FAST and type(meta) is _BundleMeta and type(key) is bytes and type(wire) is bytes:
        try:
            useq = _u64(seq)
            keep = _meta_items(meta, items, True)
            checksum = PyLong_AsUnsignedLongLong(_crc32(wire))
            items[1 + F_DELREASON].kind = K_NULL
            _set_uint(&items[1 + F_SIZE], <uint64_t>PyBytes_GET_SIZE(wire))
            _set_uint(&items[1 + F_SEQ], useq)
            _set_uint(&items[1 + F_CHECKSUM], checksum)
            packed = _encode(items, NF + 1)
            return packed, checksum, _index_fast(key, meta, useq)
        except _Fallback:
            pass
    return _ref.pack_put(key, wire, meta, seq)


def stage_puts(run, Py_ssize_t start, list counters, tuple limits, dict dbs, tuple flags,
               tuple out):
    """Stage a run of puts for one bulk insert; see ``pyrecords.stage_puts``."""
    cdef Py_ssize_t i = start, n = len(run), size
    cdef list meta_items = out[0], data_items = out[1], accepted = out[3], lst
    cdef dict ix_items = out[2]
    cdef tuple entry
    cdef object seq = counters[0], count = counters[1], used = counters[2]
    cdef object max_count = limits[0], max_bytes = limits[1]
    cdef object meta_flags = flags[0], other_flags = flags[1]
    cdef object db_meta = dbs["meta"], db_data = dbs["data"]
    while i < n:
        op = run[i]
        key = op.key
        wire = op.wire
        meta = op.meta
        if type(key) is not bytes or type(wire) is not bytes:
            break
        size = PyBytes_GET_SIZE(wire)
        if not 0 < PyBytes_GET_SIZE(key) <= 400 or size == 0:
            break
        if max_count is not None and count >= max_count:
            break
        if max_bytes is not None and used + size > max_bytes:
            break
        try:
            packed, checksum, entries = _pack_put(key, wire, meta, seq + 1)
        except (StoreError, TypeError):
            break
        seq += 1
        count += 1
        used += size
        meta_items.append((db_meta, key, packed, meta_flags))
        data_items.append((db_data, key, wire, other_flags))
        for entry in entries:
            name = entry[0]
            lst = ix_items.get(name)
            if lst is None:
                lst = ix_items[name] = []
            lst.append((dbs[name], entry[1], entry[2], other_flags))
        accepted.append((i, meta, size, seq, checksum))
        i += 1
    counters[0] = seq
    counters[1] = count
    counters[2] = used
    return i


def fill_in_run(accepted, list results):
    """``results[i] = fill_in(...)`` for each accepted put; see ``pyrecords.fill_in_run``."""
    cdef tuple a
    for a in accepted:
        results[a[0]] = fill_in(a[1], a[2], a[3], a[4])


def pack_deletion(seq, key, disposition, reason, time_ms, meta):
    """A deletion-log record without copying ``meta``; see ``pyrecords.pack_deletion``."""
    return _pack_deletion(seq, key, disposition, reason, time_ms, meta)


cdef bytes _pack_deletion(object seq, object key, object disposition, object reason,
                          object time_ms, object meta):
    cdef Item items[6 + NF + 1]
    cdef object keep = None
    cdef Py_ssize_t n
    if _FAST and type(meta) is _BundleMeta and type(key) is bytes:
        try:
            _set_uint(&items[0], _u64(seq))
            items[1].kind = K_STR
            items[1].major = 2
            items[1].ptr = PyBytes_AS_STRING(key)
            items[1].n = PyBytes_GET_SIZE(key)
            if disposition.__class__ is not _Disposition and type(disposition) is not str:
                raise _Fallback
            try:  # a Disposition member's text is its value (= str(disposition))
                items[2].ptr = PyUnicode_AsUTF8AndSize(disposition, &n)
            except UnicodeEncodeError:
                raise _Fallback
            items[2].kind = K_STR
            items[2].major = 3
            items[2].n = n
            _set_uint(&items[3], _u64(reason))
            _set_uint(&items[4], _u64(time_ms))
            keep = _meta_items(meta, &items[6], False)
            _set_uint(&items[6 + 1 + F_DELREASON], items[3].u)
            # the outer array: 6 items, the last of which is the meta array
            head = _encode(items, 5)  # 0x85 + five items; patched to 0x86 below
            body = _encode(&items[6], NF + 1)
            out = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(body))
            memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head))
            (<uint8_t *>PyBytes_AS_STRING(out))[0] = 0x86
            memcpy(PyBytes_AS_STRING(out) + PyBytes_GET_SIZE(head), PyBytes_AS_STRING(body),
                   PyBytes_GET_SIZE(body))
            return out
        except _Fallback:
            pass
    return _ref.pack_deletion(seq, key, disposition, reason, time_ms, meta)


def fill_in(meta, size, seq, checksum):
    """The store-owned fields into the caller's meta after a put; see ``_common.fill_in``."""
    cdef PyObject *state
    cdef PyObject *prio
    if _FAST and type(meta) is _BundleMeta:
        state = ws_slot_get(meta, _OFF[F_STATE])
        prio = ws_slot_get(meta, _OFF[F_PRIO])
        if (state != NULL and (<object>state).__class__ is _CustodyState
                and prio != NULL and (<object>prio).__class__ is _Priority):
            ws_slot_set(meta, _OFF[F_SIZE], size)
            ws_slot_set(meta, _OFF[F_SEQ], seq)
            ws_slot_set(meta, _OFF[F_CHECKSUM], checksum)
            ws_slot_set(meta, _OFF[F_DELREASON], None)
            return meta
    return _ref_fill_in(meta, size, seq, checksum)


# -- decoding the stored record -------------------------------------------------------------
cdef struct Reader:
    const uint8_t *p
    Py_ssize_t n
    Py_ssize_t pos


cdef inline uint64_t _rd_head(Reader *r, uint8_t *major) except? 0xFFFFFFFFFFFFFFFF:
    """A definite-length CBOR head (major type into ``major``); anything else: _Fallback."""
    cdef uint8_t b, info
    cdef uint64_t v = 0
    cdef int k, i
    if r.pos >= r.n:
        raise _Fallback
    b = r.p[r.pos]
    r.pos += 1
    major[0] = b >> 5
    info = b & 31
    if info < 24:
        return info
    if info == 24:
        k = 1
    elif info == 25:
        k = 2
    elif info == 26:
        k = 4
    elif info == 27:
        k = 8
    else:
        raise _Fallback
    if r.n - r.pos < k:
        raise _Fallback
    for i in range(k):
        v = (v << 8) | r.p[r.pos + i]
    r.pos += k
    return v


cdef inline bint _rd_null(Reader *r) noexcept:
    if r.pos < r.n and r.p[r.pos] == 0xF6:
        r.pos += 1
        return True
    return False


cdef inline object _rd_uint(Reader *r):
    cdef uint8_t major
    cdef uint64_t v = _rd_head(r, &major)
    if major != 0:
        raise _Fallback
    return PyLong_FromUnsignedLongLong(v)


cdef inline object _rd_opt_uint(Reader *r):
    if _rd_null(r):
        return None
    return _rd_uint(r)


cdef object _rd_text(Reader *r, bint nonempty):
    """A text of at most MAX_TEXT UTF-8 bytes (BundleMeta.validate's limit)."""
    cdef uint8_t major
    cdef uint64_t n = _rd_head(r, &major)
    if major != 3 or n > MAX_TEXT or <Py_ssize_t>n > r.n - r.pos or (nonempty and n == 0):
        raise _Fallback
    try:
        out = PyUnicode_DecodeUTF8(<const char *>(r.p + r.pos), <Py_ssize_t>n, "strict")
    except UnicodeDecodeError:
        raise _Fallback
    r.pos += <Py_ssize_t>n
    return out


cdef object _rd_any(Reader *r, int depth):
    """One CBOR item of the plain kind ``extra`` holds: ints, strings, arrays, maps with int or
    string keys, booleans and null -- what ``cbor2.loads`` gives for it. Anything else (tags,
    floats, indefinite lengths, other keys, deep nesting) is left to the reference."""
    cdef uint8_t major
    cdef uint64_t v
    cdef Py_ssize_t i
    cdef dict d
    cdef list lst
    if depth > 16:
        raise _Fallback
    v = _rd_head(r, &major)
    if major == 0:
        return PyLong_FromUnsignedLongLong(v)
    if major == 1:
        return -1 - PyLong_FromUnsignedLongLong(v)
    if major == 2 or major == 3:
        if <Py_ssize_t>v > r.n - r.pos or v > 0x7FFFFFFF:
            raise _Fallback
        if major == 2:
            out = PyBytes_FromStringAndSize(<const char *>(r.p + r.pos), <Py_ssize_t>v)
        else:
            try:
                out = PyUnicode_DecodeUTF8(<const char *>(r.p + r.pos), <Py_ssize_t>v, "strict")
            except UnicodeDecodeError:
                raise _Fallback
        r.pos += <Py_ssize_t>v
        return out
    if major == 4:
        if <Py_ssize_t>v > r.n - r.pos:  # each item takes at least one byte
            raise _Fallback
        lst = []
        for i in range(<Py_ssize_t>v):
            lst.append(_rd_any(r, depth + 1))
        return lst
    if major == 5:
        if <Py_ssize_t>v > r.n - r.pos:
            raise _Fallback
        d = {}
        for i in range(<Py_ssize_t>v):
            key = _rd_any(r, depth + 1)
            if type(key) is not str and type(key) is not int:
                raise _Fallback
            d[key] = _rd_any(r, depth + 1)
        return d
    if major == 7:
        if v == 20:
            return False
        if v == 21:
            return True
        if v == 22:
            return None
    raise _Fallback


cdef inline object _rd_opt_text(Reader *r):
    if _rd_null(r):
        return None
    return _rd_text(r, True)


def unpack_meta(raw):
    """``BundleMeta.from_cbor(raw)`` for records in the shape the store writes (else the
    reference decodes it, and raises StoreCorrupt exactly as it would)."""
    return _unpack_meta(raw)


cdef object _unpack_meta(object raw):
    cdef Reader r
    cdef uint8_t major
    cdef uint64_t v
    cdef object meta, state, adu
    if _FAST and type(raw) is bytes:
        r.p = <const uint8_t *>PyBytes_AS_STRING(raw)
        r.n = PyBytes_GET_SIZE(raw)
        r.pos = 0
        try:
            if _rd_head(&r, &major) != NF + 1 or major != 4:
                raise _Fallback
            if _rd_head(&r, &major) != META_VERSION or major != 0:
                raise _Fallback
            meta = ws_alloc(_BundleMeta)
            ws_slot_set(meta, _OFF[F_RECEIVED], _rd_uint(&r))
            ws_slot_set(meta, _OFF[F_EXPIRY], _rd_uint(&r))
            ws_slot_set(meta, _OFF[F_DEST], _rd_text(&r, False))
            ws_slot_set(meta, _OFF[F_SOURCE], _rd_text(&r, False))
            state = _STATE_BY_TEXT.get(_rd_text(&r, False))
            if state is None:
                raise _Fallback
            ws_slot_set(meta, _OFF[F_STATE], state)
            ws_slot_set(meta, _OFF[F_QUEUE], _rd_opt_text(&r))
            v = _rd_head(&r, &major)
            if major != 0 or v > 2:
                raise _Fallback
            ws_slot_set(meta, _OFF[F_PRIO], _PRIORITIES[v])
            ws_slot_set(meta, _OFF[F_LOCAL], _rd_opt_text(&r))
            ws_slot_set(meta, _OFF[F_RETRIES], _rd_uint(&r))
            if _rd_null(&r):
                adu = None
            else:
                v = _rd_head(&r, &major)
                if major != 2 or v == 0 or v > MAX_TEXT or <Py_ssize_t>v > r.n - r.pos:
                    raise _Fallback
                adu = PyBytes_FromStringAndSize(<const char *>(r.p + r.pos), <Py_ssize_t>v)
                r.pos += <Py_ssize_t>v
            ws_slot_set(meta, _OFF[F_ADU], adu)
            ws_slot_set(meta, _OFF[F_FRAGOFF], _rd_opt_uint(&r))
            ws_slot_set(meta, _OFF[F_TOTAL], _rd_opt_uint(&r))
            ws_slot_set(meta, _OFF[F_REPORT], _rd_opt_text(&r))
            ws_slot_set(meta, _OFF[F_DELREASON], _rd_opt_uint(&r))
            if r.pos >= r.n or r.p[r.pos] >> 5 != 5:  # extra is a map, or the reference decides
                raise _Fallback
            ws_slot_set(meta, _OFF[F_EXTRA], _rd_any(&r, 0))
            ws_slot_set(meta, _OFF[F_SIZE], _rd_uint(&r))
            ws_slot_set(meta, _OFF[F_SEQ], _rd_uint(&r))
            ws_slot_set(meta, _OFF[F_CHECKSUM], _rd_uint(&r))
            if r.pos != r.n:
                raise _Fallback
            return meta
        except _Fallback:
            pass
    return _ref_unpack_meta(raw)


# -- a run of deletes -----------------------------------------------------------------------
cdef object _plain_reason(object reason):
    """``check_reason(reason)``: an int subclass in range (the node passes ``ReasonCode``
    members) becomes its plain int here, without the Python call; anything else goes to
    ``check_reason``, which returns or raises exactly as the reference."""
    cdef int overflow = 0
    cdef long long x
    if isinstance(reason, int) and type(reason) is not bool:
        x = PyLong_AsLongLongAndOverflow(reason, &overflow)
        if not overflow and 0 <= x <= 255:
            return int(x)
    return _check_reason(reason)


def stage_deletes(specs, get_meta, del_seq, dict dbs, tuple out):
    """Stage a run of deletes; see ``pyrecords.stage_deletes``."""
    cdef list results = out[0], deletes = out[1], records = out[2], packed_log = out[3]
    cdef object db_meta = dbs["meta"], db_data = dbs["data"]
    cdef set gone = set()
    cdef Py_ssize_t removed = 0
    cdef object freed = 0
    cdef tuple entry
    for spec in specs:
        if type(spec) is not tuple:
            if isinstance(spec, BaseException):
                results.append(spec)
                continue
        key, reason, disposition, now_ms = spec
        try:
            if type(reason) is not int or not 0 <= reason <= 255:
                reason = _plain_reason(reason)
            if disposition.__class__ is not _Disposition:
                try:
                    disposition = _Disposition(disposition)
                except ValueError:
                    raise InvalidMeta(f"unknown disposition {disposition!r}") from None
            raw = None if key in gone else get_meta(key)
            if raw is None:
                raise BundleNotFound(key)
            meta = _unpack_meta(raw)
        except (StoreError, TypeError) as exc:
            results.append(exc)
            continue
        gone.add(key)
        for entry in _index_keys(key, meta, None):
            deletes.append((dbs[entry[0]], entry[1]))
        deletes.append((db_meta, key))
        deletes.append((db_data, key))
        removed += 1
        freed += meta.size
        del_seq += 1
        time_ms = _dtn_now_ms() if now_ms is None else now_ms
        packed_log.append(_pack_deletion(del_seq, key, disposition, reason, time_ms, meta))
        meta.deletion_reason = reason
        record = _deletion_record(del_seq, key, disposition, reason, time_ms, meta)
        records.append(record)
        results.append(record)
    return del_seq, removed, freed


cdef object _deletion_record(object seq, object key, object disposition, object reason,
                             object time_ms, object meta):
    """``DeletionRecord(...)`` without its frozen dataclass ``__init__`` (slot stores)."""
    if not _DFAST:
        return DeletionRecord(seq, key, disposition, reason, time_ms, meta)
    rec = ws_alloc(DeletionRecord)
    ws_slot_set(rec, _DOFF[0], seq)
    ws_slot_set(rec, _DOFF[1], key)
    ws_slot_set(rec, _DOFF[2], disposition)
    ws_slot_set(rec, _DOFF[3], reason)
    ws_slot_set(rec, _DOFF[4], time_ms)
    ws_slot_set(rec, _DOFF[5], meta)
    return rec

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :mod:`waystation.bundle.pycodec` (RFC 9171 BPv7 bundle codec).

The pure-Python module is the specification: this module exposes exactly the names in
``pycodec.__all__`` with the same behaviour -- the same bytes out of the encoder, equal model
objects out of the decoder (the *same* classes, imported from ``waystation.bundle``), and the same
exception classes (and DecodeError offsets) on bad input. ``tests/ext`` checks that differentially.

What makes it fast (see docs/cython-codec.md for the measurements):

* CBOR heads are read and written in C straight on the input buffer.
* CRC-16/X.25 and CRC-32C run in C (``ws_crc.h``): slicing-by-8, and for CRC-32C the SSE4.2
  ``crc32`` instruction (three interleaved streams) and PCLMULQDQ folding when the CPU has them.
* Decoded endpoint IDs are immutable, so they are cached by their raw CBOR bytes.
* Model objects (``__slots__`` dataclasses) are allocated with ``tp_alloc`` and their slots are
  filled directly, skipping the dataclass ``__init__``; if the model ever stops being plain
  slots dataclasses with the expected fields, the constructors are called instead (checked at
  import; ``FAST_PATHS`` reports it).
* The encoder computes the exact size first and fills one ``bytes`` object in place.

Anything unusual (an error, or a structure the fast paths do not recognise) is handed to the
very same Python helpers the reference uses, so error classes, offsets and messages match.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_Check
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_Check, PyBytes_CheckExact,
                            PyBytes_FromStringAndSize, PyBytes_GET_SIZE)
from cpython.list cimport PyList_Append, PyList_GET_ITEM, PyList_GET_SIZE, PyList_CheckExact
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_Check
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcmp, memcpy, memset

cdef extern from "Python.h":
    bint PyMemoryView_Check(object o)
    object PyMemoryView_FromObject(object o)

cdef extern from "ws_crc.h" nogil:
    void ws_crc_init()
    uint16_t ws_crc16_update(uint16_t crc, const unsigned char *p, size_t n)
    uint32_t ws_crc32c_update(uint32_t crc, const unsigned char *p, size_t n)
    uint32_t ws_crc32c_update_sw(uint32_t crc, const unsigned char *p, size_t n)
    uint32_t ws_crc32c_update_insn(uint32_t crc, const unsigned char *p, size_t n)
    int ws_crc_have_sse42
    int ws_crc_have_pclmul

cdef extern from "ws_pyslots.h":
    Py_ssize_t ws_slot_offset(object descr)
    void ws_slot_set(object obj, Py_ssize_t offset, object value)
    PyObject *ws_slot_get(object obj, Py_ssize_t offset)
    object ws_tuple2_new(object type, object a, object b)
    object ws_alloc(object type)
    int ws_memoryview_narrow(object mv, Py_ssize_t start, Py_ssize_t length)

import dataclasses

from waystation.bundle import crc as _pycrc
from waystation.bundle import pycodec as _py
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import DtnEID, DtnNoneEID, IpnEID, decode_eid_cbor
from waystation.bundle.errors import BundleError, BundleTooLarge, CRCError, DecodeError
from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock
from waystation.bundle.validate import validate_bundle

# Module-level C variables: no dict lookup per use on the hot paths.
cdef type _T_PRIMARY = PrimaryBlock
cdef type _T_CANONICAL = CanonicalBlock
cdef type _T_BUNDLE = Bundle
cdef type _T_TIMESTAMP = CreationTimestamp
cdef type _T_IPN = IpnEID
cdef type _T_DTN = DtnEID
cdef type _T_DTN_NONE = DtnNoneEID
cdef object _decode_eid_cbor = decode_eid_cbor
cdef object _validate_bundle = validate_bundle

__all__ = list(_py.__all__)

DEFAULT_MAX_BUNDLE_SIZE = _py.DEFAULT_MAX_BUNDLE_SIZE
cdef Py_ssize_t _DEFAULT_MAX_SIZE = DEFAULT_MAX_BUNDLE_SIZE
cdef object _DEFAULT_MAX_OBJ = DEFAULT_MAX_BUNDLE_SIZE

ws_crc_init()

#: True when CRC-32C runs on the SSE4.2 crc32 instruction (else slicing-by-8).
CRC32C_HARDWARE = bool(ws_crc_have_sse42)
#: True when CRC-32C of 512 bytes and more uses carry-less-multiply (PCLMULQDQ) folding.
CRC32C_CLMUL = bool(ws_crc_have_pclmul)


# ---- CRCs (RFC 9171 §4.2.1) --------------------------------------------------------------------

cdef inline bint _get_bytes_buffer(object data, Py_buffer *view) except -1:
    """Borrow ``data``'s bytes; False if it is not a contiguous byte buffer."""
    try:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    except (TypeError, BufferError):  # not a buffer, or a strided one
        return False
    return True


def crc16_x25(data, value=0):
    """CRC-16/X.25 of ``data``; pass a previous result as ``value`` to continue it."""
    cdef Py_buffer view
    cdef uint16_t crc
    # Anything but a byte buffer and an in-range start value: the reference defines the result.
    if type(value) is not int or not 0 <= value <= 0xFFFF or not _get_bytes_buffer(data, &view):
        return _pycrc.crc16_x25(data, value)
    crc = <uint16_t>(value ^ 0xFFFF)
    try:
        with nogil:
            crc = ws_crc16_update(crc, <const unsigned char *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc ^ 0xFFFF


def crc32c(data, value=0):
    """CRC-32C of ``data``; pass a previous result as ``value`` to continue it."""
    cdef Py_buffer view
    cdef uint32_t crc
    if type(value) is not int or not 0 <= value <= 0xFFFFFFFF or not _get_bytes_buffer(data, &view):
        return _pycrc.crc32c(data, value)
    crc = <uint32_t>(value ^ 0xFFFFFFFF)
    try:
        if view.len > 65536:  # release the GIL only where it is worth its cost
            with nogil:
                crc = ws_crc32c_update(crc, <const unsigned char *>view.buf, <size_t>view.len)
        else:
            crc = ws_crc32c_update(crc, <const unsigned char *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc ^ 0xFFFFFFFF


def crc32c_software(data, value=0):
    """CRC-32C by slicing-by-8 only (tests the fallback on machines that have SSE4.2)."""
    cdef Py_buffer view
    cdef uint32_t crc = <uint32_t>(value ^ 0xFFFFFFFF)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        crc = ws_crc32c_update_sw(crc, <const unsigned char *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc ^ 0xFFFFFFFF


def crc32c_instruction(data, value=0):
    """CRC-32C by the crc32 instruction only, three streams (tests that path on CPUs where
    long buffers take the carry-less-multiply path); slicing-by-8 without SSE4.2."""
    cdef Py_buffer view
    cdef uint32_t crc = <uint32_t>(value ^ 0xFFFFFFFF)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        crc = ws_crc32c_update_insn(crc, <const unsigned char *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc ^ 0xFFFFFFFF


# ---- CBOR heads (RFC 8949 §3), mirroring waystation.bundle.cborhead ------------------------------

cdef struct Head:
    int major
    bint indef       # additional information 31 (indefinite length / break)
    uint64_t arg
    Py_ssize_t end   # position just after the head

# Status codes of _head(); _raise_head() turns them into the reference's DecodeErrors.
DEF H_OK = 0
DEF H_EOF = 1
DEF H_TRUNC = 2
DEF H_RESERVED = 3

cdef inline uint64_t _be(const uint8_t *p, int size) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(size):
        v = (v << 8) | p[i]
    return v


cdef inline int _head(const uint8_t *b, Py_ssize_t n, Py_ssize_t pos, Head *h) noexcept nogil:
    """Read one CBOR head at ``pos`` (any valid argument length) without raising."""
    cdef uint8_t ib, ai
    cdef int size
    h.major = 0  # defined even on failure (and no -Wmaybe-uninitialized noise)
    h.indef = False
    h.arg = 0
    h.end = pos
    if pos >= n:
        return H_EOF
    ib = b[pos]
    h.major = ib >> 5
    ai = ib & 0x1F
    h.indef = False
    if ai < 24:
        h.arg = ai
        h.end = pos + 1
        return H_OK
    if ai <= 27:
        size = 1 << (ai - 24)
        if pos + 1 + size > n:
            return H_TRUNC
        h.arg = _be(b + pos + 1, size)
        h.end = pos + 1 + size
        return H_OK
    if ai == 31:
        h.indef = True
        h.arg = 0
        h.end = pos + 1
        return H_OK
    return H_RESERVED


cdef int _raise_head(int status, const uint8_t *b, Py_ssize_t pos) except -1:
    if status == H_EOF:
        raise DecodeError(pos, "unexpected end of input")
    cdef int ai = b[pos] & 0x1F
    if status == H_TRUNC:
        raise DecodeError(pos, f"truncated {1 << (ai - 24)}-byte CBOR argument")
    raise DecodeError(pos, f"reserved CBOR additional information {ai}")


cdef inline int _read_head(const uint8_t *b, Py_ssize_t n, Py_ssize_t pos, Head *h) except -1:
    cdef int status = _head(b, n, pos, h)
    if status != H_OK:
        _raise_head(status, b, pos)
    return 0


_MAJOR_NAMES = ("uint", "negint", "bytes", "text", "array", "map", "tag", "simple/float")


cdef str _describe(Head *h):
    if h.indef:
        return "break" if h.major == 7 else f"indefinite {_MAJOR_NAMES[h.major]}"
    return _MAJOR_NAMES[h.major]


cdef inline uint64_t _read_array_head(const uint8_t *b, Py_ssize_t n, Py_ssize_t *pos, str what) except? 0xFFFFFFFFFFFFFFFF:
    cdef Py_ssize_t p = pos[0]
    if p < n and 0x80 <= b[p] <= 0x97:  # definite array of 0..23 items: inlined
        pos[0] = p + 1
        return b[p] - 0x80
    return _read_array_head_slow(b, n, pos, what)


cdef uint64_t _read_array_head_slow(const uint8_t *b, Py_ssize_t n, Py_ssize_t *pos, str what) except? 0xFFFFFFFFFFFFFFFF:
    cdef Head h
    _read_head(b, n, pos[0], &h)
    if h.major != 4:
        raise DecodeError(pos[0], f"{what}: expected array, got CBOR {_describe(&h)}")
    if h.indef:
        raise DecodeError(pos[0], f"{what}: indefinite-length array not allowed here")
    pos[0] = h.end
    return h.arg


cdef inline uint64_t _uint(const uint8_t *b, Py_ssize_t n, Py_ssize_t *pos, str what) except? 0xFFFFFFFFFFFFFFFF:
    """pycodec._uint: an unsigned integer in any valid length."""
    cdef Py_ssize_t p = pos[0]
    cdef uint8_t ib
    cdef int size
    if p < n:
        ib = b[p]
        if ib < 24:  # small ints: inlined, no error check needed
            pos[0] = p + 1
            return ib
        if ib <= 27:  # 1/2/4/8-byte argument, complete: also inlined
            size = 1 << (ib - 24)
            if p + 1 + size <= n:
                pos[0] = p + 1 + size
                return _be(b + p + 1, size)
    return _uint_slow(b, n, pos, what)


cdef uint64_t _uint_slow(const uint8_t *b, Py_ssize_t n, Py_ssize_t *pos, str what) except? 0xFFFFFFFFFFFFFFFF:
    cdef Head h
    cdef Py_ssize_t p = pos[0]
    _read_head(b, n, p, &h)
    if h.major != 0 or h.indef:
        raise DecodeError(p, f"{what}: expected an unsigned integer")
    pos[0] = h.end
    return h.arg


# ---- endpoint IDs (RFC 9171 §4.2.5.1): a cache keyed by the raw CBOR bytes ------------------------
#
# EIDs are immutable, and a node sees the same few EIDs over and over, so decoding one is mostly
# a lookup. The cache is direct-mapped (a collision simply replaces the entry). A miss, and every
# EID the scanner below does not recognise, goes through the reference decode_eid_cbor(), so
# errors (DecodeError/EIDError, offsets, messages) are the reference's by construction.

DEF EID_KEY_MAX = 56
DEF EID_CACHE_SIZE = 1024

cdef struct EidEntry:
    Py_ssize_t length
    uint8_t key[EID_KEY_MAX]
    PyObject *eid
    bint is_null

cdef EidEntry _eid_cache[EID_CACHE_SIZE]
memset(_eid_cache, 0, sizeof(_eid_cache))


cdef inline Py_ssize_t _skip_uint(const uint8_t *b, Py_ssize_t n, Py_ssize_t pos) noexcept nogil:
    """End of a major-0 head at ``pos``, or -1."""
    cdef uint8_t ib
    if pos >= n:
        return -1
    ib = b[pos]
    if ib < 24:
        return pos + 1
    if ib <= 27:
        pos += 1 + (1 << (ib - 24))
        return pos if pos <= n else -1
    return -1


cdef Py_ssize_t _scan_eid(const uint8_t *b, Py_ssize_t n, Py_ssize_t pos) noexcept nogil:
    """End of a plainly encoded dtn/ipn EID at ``pos`` (shortest-form heads), or -1."""
    cdef uint8_t ib
    cdef uint64_t length
    cdef int i, count
    if pos + 3 > n or b[pos] != 0x82:
        return -1
    if b[pos + 1] == 0x01:  # dtn: 0 (dtn:none) or a text string
        ib = b[pos + 2]
        if ib == 0x00:
            return pos + 3
        pos += 2
        if 0x60 <= ib <= 0x77:
            length = ib - 0x60
            pos += 1
        elif ib == 0x78 and pos + 2 <= n:
            length = b[pos + 1]
            pos += 2
        elif ib == 0x79 and pos + 3 <= n:
            length = (<uint64_t>b[pos + 1] << 8) | b[pos + 2]
            pos += 3
        else:
            return -1
        if length > <uint64_t>(n - pos):
            return -1
        return pos + <Py_ssize_t>length
    if b[pos + 1] == 0x02:  # ipn: [node, service] or [authority, node, service]
        ib = b[pos + 2]
        if ib != 0x82 and ib != 0x83:
            return -1
        count = ib - 0x80
        pos += 3
        for i in range(count):
            pos = _skip_uint(b, n, pos)
            if pos < 0:
                return -1
        return pos
    return -1


cdef inline uint32_t _fnv1a(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    cdef uint32_t h = 2166136261u
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * 16777619u
    return h


cdef inline EidEntry *_eid_cached(const uint8_t *b, Py_ssize_t n, Py_ssize_t start,
                                   Py_ssize_t *end) noexcept:
    """The cache entry holding the EID encoded at ``start`` (``end`` set), or NULL."""
    cdef Py_ssize_t stop = _scan_eid(b, n, start)
    cdef Py_ssize_t length = stop - start
    cdef EidEntry *entry
    if stop <= 0 or length > EID_KEY_MAX:
        return NULL
    entry = &_eid_cache[_fnv1a(b + start, length) & (EID_CACHE_SIZE - 1)]
    if entry.length == length and entry.eid != NULL and memcmp(entry.key, b + start, length) == 0:
        end[0] = stop
        return entry
    return NULL


# The last EID decoded in each primary-block field (destination, source, report-to): bundles
# in a row mostly share them. A CBOR item delimits itself, so input that starts with the whole
# encoding of a cached EID holds exactly that EID there -- no scan or hash needed.
cdef EidEntry _eid_last[3]
memset(_eid_last, 0, sizeof(_eid_last))


cdef inline void _remember_eid(EidEntry *last, EidEntry *entry) noexcept:
    """Make ``last`` a copy of ``entry`` (holding its own reference)."""
    if last == NULL or last.eid == entry.eid:
        return
    Py_INCREF(<object>entry.eid)
    Py_XDECREF(last.eid)
    last.eid = entry.eid
    last.length = entry.length
    last.is_null = entry.is_null
    memcpy(last.key, entry.key, entry.length)


cdef object _decode_eid(object buf, const uint8_t *b, Py_ssize_t n, Py_ssize_t *pos,
                        bint *is_null, EidEntry *last):
    """Decode the EID at ``pos[0]`` (advancing it), like eid.decode_eid_cbor.

    ``last``, if not NULL, is the per-field memo tried first (see ``_eid_last``).
    """
    cdef Py_ssize_t start = pos[0]
    cdef Py_ssize_t end, length
    cdef EidEntry *entry = NULL
    if (last != NULL and last.eid != NULL and last.length <= n - start
            and memcmp(last.key, b + start, last.length) == 0):
        pos[0] = start + last.length
        is_null[0] = last.is_null
        return <object>last.eid
    end = _scan_eid(b, n, start)
    length = end - start
    if end > 0 and length <= EID_KEY_MAX:
        entry = &_eid_cache[_fnv1a(b + start, length) & (EID_CACHE_SIZE - 1)]
        if entry.length == length and entry.eid != NULL and memcmp(entry.key, b + start, length) == 0:
            pos[0] = end
            is_null[0] = entry.is_null
            _remember_eid(last, entry)
            return <object>entry.eid
    if PyBytes_Check(buf) or PyByteArray_Check(buf):
        # The reference hands decode_eid_cbor a memoryview of the input: so do we (on a miss).
        buf = PyMemoryView_FromObject(buf)
    eid, after = _decode_eid_cbor(buf, start)
    pos[0] = after
    null = bool(eid.is_null)
    is_null[0] = null
    if entry != NULL and after == end:
        Py_INCREF(eid)
        Py_XDECREF(entry.eid)
        entry.eid = <PyObject *>eid
        entry.length = length
        entry.is_null = null
        memcpy(entry.key, b + start, length)
        _remember_eid(last, entry)
    return eid


# ---- model objects: direct slot stores (see ws_pyslots.h) ---------------------------------------

_PRIMARY_FIELDS = ("flags", "crc_type", "destination", "source", "report_to", "creation",
                   "lifetime_ms", "fragment_offset", "total_adu_length", "version")
_CANONICAL_FIELDS = ("block_type", "number", "flags", "crc_type", "data")
_BUNDLE_FIELDS = ("primary", "blocks")

cdef Py_ssize_t _OFF_P[10]
cdef Py_ssize_t _OFF_C[5]
cdef Py_ssize_t _OFF_B[2]


cdef bint _slots_usable(type cls, tuple names, Py_ssize_t *offsets):
    """True if ``cls`` is a plain __slots__ dataclass whose fields are exactly ``names``."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return False
    if tuple(f.name for f in dataclasses.fields(cls)) != names:
        return False
    if (<PyTypeObject *>cls).tp_dictoffset != 0:  # has a __dict__: not slots-only
        return False
    for i, name in enumerate(names):
        descr = cls.__dict__.get(name)
        if descr is None:
            return False
        offsets[i] = ws_slot_offset(descr)
        if offsets[i] < 0:
            return False
    return True


cdef bint _FAST_PRIMARY = _slots_usable(_T_PRIMARY, _PRIMARY_FIELDS, _OFF_P)
cdef bint _FAST_CANONICAL = _slots_usable(_T_CANONICAL, _CANONICAL_FIELDS, _OFF_C)
cdef bint _FAST_BUNDLE = _slots_usable(_T_BUNDLE, _BUNDLE_FIELDS, _OFF_B)
# A NamedTuple is a tuple subclass with no extra storage: build it like tuple.__new__ does.
cdef bint _FAST_TIMESTAMP = (
    issubclass(_T_TIMESTAMP, tuple)
    and (<PyTypeObject *>_T_TIMESTAMP).tp_basicsize == (<PyTypeObject *>tuple).tp_basicsize
    and (<PyTypeObject *>_T_TIMESTAMP).tp_dictoffset == 0
    and _T_TIMESTAMP.__new__ is not tuple.__new__  # the generated __new__ only packs
)

#: Which model constructors take the fast path (for tests and the benchmark's report).
FAST_PATHS = {
    "PrimaryBlock": _FAST_PRIMARY,
    "CanonicalBlock": _FAST_CANONICAL,
    "Bundle": _FAST_BUNDLE,
    "CreationTimestamp": _FAST_TIMESTAMP,
}

cdef object _BP_VERSION = 7


cdef object _new_primary(object flags, object crc_type, object dest, object src, object rpt,
                         object creation, object lifetime, object frag, object adu):
    if not _FAST_PRIMARY:
        return _T_PRIMARY(flags, crc_type, dest, src, rpt, creation, lifetime, frag, adu)
    p = ws_alloc(_T_PRIMARY)
    ws_slot_set(p, _OFF_P[0], flags)
    ws_slot_set(p, _OFF_P[1], crc_type)
    ws_slot_set(p, _OFF_P[2], dest)
    ws_slot_set(p, _OFF_P[3], src)
    ws_slot_set(p, _OFF_P[4], rpt)
    ws_slot_set(p, _OFF_P[5], creation)
    ws_slot_set(p, _OFF_P[6], lifetime)
    ws_slot_set(p, _OFF_P[7], frag)
    ws_slot_set(p, _OFF_P[8], adu)
    ws_slot_set(p, _OFF_P[9], _BP_VERSION)
    return p


cdef object _new_canonical(object block_type, object number, object flags, object crc_type,
                           object data):
    if not _FAST_CANONICAL:
        return _T_CANONICAL(block_type, number, flags, crc_type, data)
    c = ws_alloc(_T_CANONICAL)
    ws_slot_set(c, _OFF_C[0], block_type)
    ws_slot_set(c, _OFF_C[1], number)
    ws_slot_set(c, _OFF_C[2], flags)
    ws_slot_set(c, _OFF_C[3], crc_type)
    ws_slot_set(c, _OFF_C[4], data)
    return c


cdef object _new_bundle(object primary, object blocks):
    if not _FAST_BUNDLE:
        return _T_BUNDLE(primary, blocks)
    b = ws_alloc(_T_BUNDLE)
    ws_slot_set(b, _OFF_B[0], primary)
    ws_slot_set(b, _OFF_B[1], blocks)
    return b


cdef inline object _new_timestamp(object t, object seq):
    if _FAST_TIMESTAMP:
        return ws_tuple2_new(_T_TIMESTAMP, t, seq)
    return _T_TIMESTAMP(t, seq)


# ---- decoding (mirrors pycodec.decode_bundle step by step) --------------------------------------

cdef struct PrimaryInfo:
    uint64_t flags
    uint64_t crc_type
    uint64_t ctime
    uint64_t frag_offset
    uint64_t adu_length
    bint source_is_null

DEF MAX_TRACKED_BLOCKS = 32

cdef struct BlockInfo:
    uint64_t block_type
    uint64_t number
    const uint8_t *data
    Py_ssize_t length

cdef struct DecodeState:
    bint base_is_input   # `buf` is the input bytes/bytearray itself, not a memoryview
    PrimaryInfo p
    BlockInfo blocks[MAX_TRACKED_BLOCKS]
    Py_ssize_t nblocks


cdef str _block_what(uint64_t number, bint primary):
    return "primary block" if primary else f"block {number}"


cdef int _crc_field_error(const uint8_t *b, Py_ssize_t n, Py_ssize_t pos, uint64_t crc_type,
                          uint64_t number, bint primary) except -1:
    """Raise the reference's error for a malformed CRC field at ``pos``."""
    cdef Head h
    cdef int size = 2 if crc_type == 1 else 4
    what = _block_what(number, primary)
    _read_head(b, n, pos, &h)
    if h.major != 2 or h.indef:
        raise DecodeError(pos, f"{what}: CRC must be a byte string")
    if h.arg != <uint64_t>size:
        raise DecodeError(pos, f"{what}: CRC type {crc_type} needs {size} bytes, got {h.arg}")
    raise DecodeError(pos, f"{what}: CRC runs past end of input")


cdef Py_ssize_t _check_crc(const uint8_t *b, Py_ssize_t n, Py_ssize_t start, Py_ssize_t pos,
                           uint64_t crc_type, uint64_t number, bint primary) except -1:
    """pycodec._check_crc: verify the CRC at ``pos`` of the block at ``start``; return its end.

    ``number`` / ``primary`` name the block, in error messages only.
    """
    cdef Head h
    cdef int size = 2 if crc_type == 1 else 4
    cdef Py_ssize_t cstart, end
    cdef uint64_t stored, computed
    cdef const uint8_t *zeros = b"\0\0\0\0"
    cdef int status
    if pos < n and b[pos] == 0x40 + size and pos + 1 + size <= n:
        cstart = pos + 1  # the shortest-form head of a 2/4-byte string: the usual case
    else:
        status = _head(b, n, pos, &h)
        if (status != H_OK or h.major != 2 or h.indef or h.arg != <uint64_t>size
                or h.end + size > n):
            _crc_field_error(b, n, pos, crc_type, number, primary)
        cstart = h.end
    end = cstart + size
    if crc_type == 1:
        computed = ws_crc16_update(
            ws_crc16_update(0xFFFF, b + start, cstart - start), zeros, 2) ^ 0xFFFF
    else:
        if cstart - start > 65536:
            with nogil:
                computed = ws_crc32c_update(0xFFFFFFFFu, b + start, cstart - start)
        else:
            computed = ws_crc32c_update(0xFFFFFFFFu, b + start, cstart - start)
        computed = ws_crc32c_update(<uint32_t>computed, zeros, 4) ^ 0xFFFFFFFFu
    stored = _be(b + cstart, size)
    if computed != stored:
        what = _block_what(number, primary)
        raise CRCError(
            start,
            f"{what}: CRC mismatch (stored {stored:0{size * 2}x}, computed {computed:0{size * 2}x})",
        )
    return end


# Ints are immutable, and consecutive bundles tend to repeat their lifetime and (within a
# millisecond burst) creation time: reuse the last int object of each such field.
cdef struct IntMemo:
    uint64_t value
    PyObject *obj

cdef IntMemo _memo_ctime, _memo_seq, _memo_lifetime
memset(&_memo_ctime, 0, sizeof(IntMemo))
memset(&_memo_seq, 0, sizeof(IntMemo))
memset(&_memo_lifetime, 0, sizeof(IntMemo))


# The ints 0..255 as objects (CPython's small ints), indexed directly: no PyLong_From* call
# for flags, CRC types, block types and numbers.
cdef PyObject *_SMALL_INTS[256]


cdef int _init_small_ints() except -1:
    cdef int i
    cdef object obj
    for i in range(256):
        obj = i
        Py_INCREF(obj)  # a strong reference held by the table for the module's lifetime
        _SMALL_INTS[i] = <PyObject *>obj
    return 0


_init_small_ints()


cdef inline object _small(uint64_t value):
    """``value`` as an int object; ``value < 256`` from the table above."""
    if value < 256:
        return <object>_SMALL_INTS[value]
    return value


cdef inline object _int(uint64_t value, IntMemo *memo):
    if value < 256:
        return <object>_SMALL_INTS[value]
    cdef object obj
    if memo.obj != NULL and memo.value == value:
        return <object>memo.obj
    obj = value  # (typed as object: an inferred C local would store a temporary)
    Py_INCREF(obj)
    Py_XDECREF(memo.obj)
    memo.obj = <PyObject *>obj
    memo.value = value
    return obj


cdef object _decode_primary(object buf, const uint8_t *b, Py_ssize_t n, Py_ssize_t *pos,
                            PrimaryInfo *info):
    cdef Py_ssize_t start = pos[0]
    cdef Py_ssize_t at
    cdef uint64_t count, version, flags, crc_type, expected, items, ctime, seq, lifetime
    cdef uint64_t frag_offset = 0, adu_length = 0
    cdef bint null_dest, null_rpt
    count = _read_array_head(b, n, pos, "primary block")
    if not 8 <= count <= 11:
        raise DecodeError(start, f"primary block has {count} items, expected 8 to 11")
    version = _uint(b, n, pos, "primary block version")
    if version != 7:
        raise DecodeError(pos[0] - 1, f"unsupported bundle protocol version {version}")
    flags = _uint(b, n, pos, "bundle processing control flags")
    at = pos[0]
    crc_type = _uint(b, n, pos, "primary block CRC type")
    if crc_type > 2:
        raise DecodeError(at, f"unknown CRC type {crc_type}")
    expected = 8 + (2 if flags & 1 else 0) + (1 if crc_type else 0)
    if count != expected:
        raise DecodeError(
            start, f"primary block has {count} items, but its flags and CRC type imply {expected}"
        )
    destination = _decode_eid(buf, b, n, pos, &null_dest, &_eid_last[0])
    source = _decode_eid(buf, b, n, pos, &info.source_is_null, &_eid_last[1])
    report_to = _decode_eid(buf, b, n, pos, &null_rpt, &_eid_last[2])
    at = pos[0]
    items = _read_array_head(b, n, pos, "creation timestamp")
    if items != 2:
        raise DecodeError(at, f"creation timestamp must have 2 items, not {items}")
    ctime = _uint(b, n, pos, "creation time")
    seq = _uint(b, n, pos, "creation sequence number")
    lifetime = _uint(b, n, pos, "lifetime")
    py_frag = py_adu = None
    if flags & 1:
        frag_offset = _uint(b, n, pos, "fragment offset")
        adu_length = _uint(b, n, pos, "total ADU length")
        py_frag = frag_offset
        py_adu = adu_length
    if crc_type:
        pos[0] = _check_crc(b, n, start, pos[0], crc_type, 0, True)
    info.flags = flags
    info.crc_type = crc_type
    info.ctime = ctime
    info.frag_offset = frag_offset
    info.adu_length = adu_length
    return _new_primary(_small(flags), _small(crc_type), destination, source, report_to,
                        _new_timestamp(_int(ctime, &_memo_ctime), _int(seq, &_memo_seq)),
                        _int(lifetime, &_memo_lifetime), py_frag, py_adu)


cdef object _decode_canonical(object buf, const uint8_t *b, Py_ssize_t n, Py_ssize_t *pos,
                              DecodeState *st):
    cdef Py_ssize_t start = pos[0]
    cdef Py_ssize_t at, dstart, dend
    cdef uint64_t count, block_type, number, flags, crc_type
    cdef Head h
    cdef BlockInfo *info
    count = _read_array_head(b, n, pos, "canonical block")
    if count != 5 and count != 6:
        raise DecodeError(start, f"canonical block has {count} items, expected 5 or 6")
    block_type = _uint(b, n, pos, "block type")
    number = _uint(b, n, pos, "block number")
    flags = _uint(b, n, pos, "block processing control flags")
    at = pos[0]
    crc_type = _uint(b, n, pos, "block CRC type")
    if crc_type > 2:
        raise DecodeError(at, f"unknown CRC type {crc_type}")
    if count != (6 if crc_type else 5):
        raise DecodeError(start, f"block has {count} items but CRC type {crc_type}")
    at = pos[0]
    _read_head(b, n, at, &h)
    if h.major != 2 or h.indef:
        raise DecodeError(at, "block-type-specific data must be a definite-length byte string")
    dstart = h.end
    if h.arg > <uint64_t>(n - dstart):
        raise DecodeError(at, f"block data of {h.arg} bytes runs past end of input")
    dend = dstart + <Py_ssize_t>h.arg
    pos[0] = dend
    # Zero-copy for the payload; small extension blocks are copied so they outlive the input.
    if block_type == 1:
        if st.base_is_input:
            # `buf` is the caller's bytes/bytearray: one view of it, narrowed to the payload.
            data = PyMemoryView_FromObject(buf)
            if ws_memoryview_narrow(data, dstart, dend - dstart) < 0:
                data = data[dstart:dend]
        else:
            data = buf[dstart:dend]
    else:
        data = PyBytes_FromStringAndSize(<const char *>b + dstart, dend - dstart)
    if crc_type:
        pos[0] = _check_crc(b, n, start, dend, crc_type, number, False)
    if st.nblocks < MAX_TRACKED_BLOCKS:
        info = &st.blocks[st.nblocks]
        info.block_type = block_type
        info.number = number
        info.data = b + dstart
        info.length = dend - dstart
    st.nblocks += 1
    return _new_canonical(_small(block_type), _small(number), _small(flags), _small(crc_type),
                          data)


cdef object _decode(object buf, const uint8_t *b, Py_ssize_t n, bint validate,
                    bint base_is_input):
    cdef Py_ssize_t pos = 0
    cdef DecodeState st
    st.base_is_input = base_is_input
    if n == 0:
        raise DecodeError(0, "empty input")
    if n >= 3 and b[0] == 0xD9 and b[1] == 0xD9 and b[2] == 0xF7:
        pos = 3  # RFC 9171 Appendix B: bpv7_start = bundle / #6.55799(bundle)
    if pos >= n or b[pos] != 0x9F:
        if pos < n and b[pos] >> 5 == 4:
            raise DecodeError(pos, "a bundle must be an indefinite-length array (RFC 9171 §4.1)")
        raise DecodeError(pos, "input is not a bundle (expected an indefinite-length CBOR array)")
    pos += 1
    st.nblocks = 0
    primary = _decode_primary(buf, b, n, &pos, &st.p)
    blocks = []
    while True:
        if pos >= n:
            raise DecodeError(pos, "bundle ends without the CBOR break byte")
        if b[pos] == 0xFF:
            pos += 1
            break
        PyList_Append(blocks, _decode_canonical(buf, b, n, &pos, &st))
    if pos != n:
        raise DecodeError(pos, f"{n - pos} trailing bytes after the bundle")
    bundle = _new_bundle(primary, blocks)
    if validate and not _surely_valid(&st):
        # Something looks wrong (or is beyond the fast check): the reference rules decide, and
        # raise the reference's error.
        _validate_bundle(bundle)
    return bundle


def decode_bundle(data, *, max_size=DEFAULT_MAX_BUNDLE_SIZE, validate=True):
    """Decode one complete bundle from ``data`` (see pycodec.decode_bundle)."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef bint base_is_input = False
    if PyBytes_CheckExact(data):
        # The common case, straight on the (immutable) bytes: no buffer export to take and
        # release. The caller's reference keeps `data` alive for the whole call.
        n = PyBytes_GET_SIZE(data)
        if max_size is not None and (max_size is not _DEFAULT_MAX_OBJ or
                                     n > _DEFAULT_MAX_SIZE) and n > max_size:
            raise BundleTooLarge(f"bundle of {n} bytes exceeds the maximum of {max_size} bytes")
        return _decode(data, <const uint8_t *>PyBytes_AS_STRING(data), n, validate, True)
    if PyBytes_Check(data) or PyByteArray_Check(data):
        # The reference wraps these in a memoryview; we read them directly and make a view only
        # for the payload (same content, same read-only flag, same owner).
        buf = data
        base_is_input = True
    elif isinstance(data, memoryview):
        buf = data if data.format == "B" and data.ndim == 1 else data.cast("B")
    else:
        raise TypeError(f"decode_bundle needs a bytes-like object, not {type(data).__name__}")
    n = len(buf)
    # (the common default is compared in C; anything else with the reference's semantics)
    if max_size is not None and (max_size is not _DEFAULT_MAX_OBJ or
                                 n > _DEFAULT_MAX_SIZE) and n > max_size:
        raise BundleTooLarge(f"bundle of {n} bytes exceeds the maximum of {max_size} bytes")
    try:
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    except BufferError:
        # A strided (non-contiguous) view: rare enough to leave to the reference.
        return _py.decode_bundle(data, max_size=max_size, validate=validate)
    try:
        return _decode(buf, <const uint8_t *>view.buf, view.len, validate, base_is_input)
    finally:
        PyBuffer_Release(&view)


# ---- validation fast path -------------------------------------------------------------------------
#
# validate.validate_bundle() costs more than the whole decode. Most of its rules hold by
# construction for a decoded bundle (types, ranges, CRC types, fragment fields); the rest are
# checked here on the C-level summary collected while decoding. This check only ever says
# "surely valid" or "not sure": in the second case the reference validator runs, so the outcome
# and the error are always the reference's.

DEF REPORT_FLAGS = 0x004000 | 0x010000 | 0x020000 | 0x040000


cdef bint _age_ok(const uint8_t *d, Py_ssize_t n) noexcept:
    """model.parse_bundle_age would succeed."""
    cdef Head h
    if _head(d, n, 0, &h) != H_OK or h.major != 0 or h.indef:
        return False
    return h.end == n


cdef bint _hop_count_ok(const uint8_t *d, Py_ssize_t n) noexcept:
    """model.parse_hop_count would succeed and the limit is 1..255 (validate._check_extension)."""
    cdef Head h
    cdef uint64_t limit
    if _head(d, n, 0, &h) != H_OK or h.major != 4 or h.indef or h.arg != 2:
        return False
    if _head(d, n, h.end, &h) != H_OK or h.major != 0 or h.indef:
        return False
    limit = h.arg
    if _head(d, n, h.end, &h) != H_OK or h.major != 0 or h.indef:
        return False
    return h.end == n and 1 <= limit <= 255


cdef bint _previous_node_ok(const uint8_t *d, Py_ssize_t n):
    """model.parse_previous_node would succeed (a whole, valid EID)."""
    cdef Py_ssize_t pos = 0
    cdef bint is_null
    if _eid_cached(d, n, 0, &pos) != NULL:  # seen (and decoded without error) before
        return pos == n
    data = memoryview(PyBytes_FromStringAndSize(<const char *>d, n))
    try:
        _decode_eid(data, d, n, &pos, &is_null, NULL)
    except BundleError:
        return False
    return pos == n


cdef bint _targets_primary(const uint8_t *d, Py_ssize_t n) noexcept:
    """validate.bib_targets(data) would list block 0."""
    cdef Head h
    cdef uint64_t count, i
    if _head(d, n, 0, &h) != H_OK or h.major != 4 or h.indef or h.arg > <uint64_t>n:
        return False
    count = h.arg
    found = False
    for i in range(count):
        if _head(d, n, h.end, &h) != H_OK or h.major != 0 or h.indef:
            return False
        if h.arg == 0:
            found = True
    return found


cdef bint _surely_valid(DecodeState *st):
    cdef PrimaryInfo *p = &st.p
    cdef BlockInfo *blk
    cdef Py_ssize_t i, j
    cdef int payloads = 0
    cdef bint seen_age = False, seen_hop = False, seen_prev = False, protected = False
    cdef uint64_t flags = p.flags
    if st.nblocks == 0 or st.nblocks > MAX_TRACKED_BLOCKS:
        return False
    if flags & 2 and flags & REPORT_FLAGS:
        return False
    if p.source_is_null and (not flags & 4 or flags & (REPORT_FLAGS | 0x40)):
        return False
    for i in range(st.nblocks):
        blk = &st.blocks[i]
        if blk.number == 0:
            return False
        for j in range(i):
            if st.blocks[j].number == blk.number:
                return False
        if blk.block_type == 1:
            payloads += 1
            if blk.number != 1:
                return False
        elif blk.number == 1:
            return False
        elif blk.block_type == 6:
            if seen_prev or not _previous_node_ok(blk.data, blk.length):
                return False
            seen_prev = True
        elif blk.block_type == 7:
            if seen_age or not _age_ok(blk.data, blk.length):
                return False
            seen_age = True
        elif blk.block_type == 10:
            if seen_hop or not _hop_count_ok(blk.data, blk.length):
                return False
            seen_hop = True
        elif blk.block_type == 11 and not protected:
            protected = _targets_primary(blk.data, blk.length)
    if payloads != 1 or st.blocks[st.nblocks - 1].block_type != 1:
        return False
    if p.crc_type == 0 and not protected:
        return False
    if p.ctime == 0 and not seen_age:
        return False
    if flags & 1:
        blk = &st.blocks[st.nblocks - 1]
        if p.frag_offset > p.adu_length or <uint64_t>blk.length > p.adu_length - p.frag_offset:
            return False
    return True


# ---- encoding (mirrors pycodec's encoders) ---------------------------------------------------------
#
# The fast path handles model objects of the exact model classes whose fields are plain ints in
# range, exact dtn/ipn EIDs and contiguous bytes-like data. It computes the exact size, allocates
# the result once and writes it in place, CRCs included. Anything else -- including everything
# the reference would reject -- is handed to the reference encoder, which then produces the
# reference's bytes or raises the reference's error (encoding has no side effects, so handing
# over at any point is safe).

cdef class _Defer(Exception):
    """Internal: this input is for the reference encoder."""


DEF EID_ENC_CACHE_SIZE = 256

cdef struct EidEnc:
    PyObject *eid       # strong reference: keeps the id() from being reused while cached
    PyObject *encoded   # its to_cbor() bytes

cdef EidEnc _eid_enc_cache[EID_ENC_CACHE_SIZE]
memset(_eid_enc_cache, 0, sizeof(_eid_enc_cache))


# The last EID encoded in each primary-block field, and its encoding: bundles in a row mostly
# share them, and two of a node's few EIDs landing in the same slot of the direct-mapped cache
# above would otherwise miss on every bundle (to_cbor() in Python each time: seen at a few %
# of a forwarding node's CPU).
cdef EidEnc _eid_enc_last[3]
memset(_eid_enc_last, 0, sizeof(_eid_enc_last))


cdef object _eid_cbor_field(object eid, int field):
    """``_eid_cbor`` with the per-field memo ``_eid_enc_last[field]`` tried first."""
    cdef EidEnc *last = &_eid_enc_last[field]
    if last.eid == <PyObject *>eid:
        return <object>last.encoded
    encoded = _eid_cbor(eid)
    _enc_keep(last, eid, encoded)
    return encoded


cdef inline void _enc_keep(EidEnc *entry, object eid, object encoded):
    """Make ``entry`` hold ``eid`` and its encoding (strong references, replacing its own)."""
    Py_INCREF(eid)
    Py_INCREF(encoded)
    Py_XDECREF(entry.eid)
    Py_XDECREF(entry.encoded)
    entry.eid = <PyObject *>eid
    entry.encoded = <PyObject *>encoded


cdef object _eid_cbor(object eid):
    """``eid.to_cbor()`` for exact dtn/ipn EID objects, cached by identity; else _Defer."""
    cdef EidEnc *entry = &_eid_enc_cache[(<uintptr_t><PyObject *>eid >> 4) & (EID_ENC_CACHE_SIZE - 1)]
    if entry.eid == <PyObject *>eid:
        return <object>entry.encoded
    cls = type(eid)
    if cls is not _T_IPN and cls is not _T_DTN and cls is not _T_DTN_NONE:
        raise _Defer()
    encoded = eid.to_cbor()
    if not PyBytes_Check(encoded):
        raise _Defer()
    _enc_keep(entry, eid, encoded)
    return encoded


cdef inline uint64_t _u64(object value) except? 0xFFFFFFFFFFFFFFFF:
    """An int in 0..2^64-1 (what pycodec._enc_uint accepts), else _Defer."""
    if not PyLong_Check(value):
        raise _Defer()
    try:
        return PyLong_AsUnsignedLongLong(value)
    except OverflowError:  # negative, or above 2^64-1
        raise _Defer()


cdef inline int _head_size(uint64_t v) noexcept nogil:
    if v < 24:
        return 1
    if v < 0x100:
        return 2
    if v < 0x10000:
        return 3
    if v <= 0xFFFFFFFFU:
        return 5
    return 9


cdef inline uint8_t *_put_head(uint8_t *p, uint8_t major, uint64_t v) noexcept nogil:
    """Shortest-form head (RFC 8949 §4.2.1), as cborhead.encode_head / pycodec._head."""
    cdef uint8_t mt = major << 5
    cdef int size, i
    if v < 24:
        p[0] = mt | <uint8_t>v
        return p + 1
    if v < 0x100:
        p[0] = mt | 24
        size = 1
    elif v < 0x10000:
        p[0] = mt | 25
        size = 2
    elif v <= 0xFFFFFFFFU:
        p[0] = mt | 26
        size = 4
    else:
        p[0] = mt | 27
        size = 8
    for i in range(size):
        p[size - i] = <uint8_t>(v >> (8 * i))
    return p + 1 + size


cdef inline uint8_t *_finish_crc(uint8_t *start, uint8_t *p, uint64_t crc_type) noexcept nogil:
    """Append the CRC byte string of the block ``start..p`` (§4.2.1); return the new end."""
    cdef uint32_t c32
    cdef uint16_t c16
    if crc_type == 1:
        p[0] = 0x42
        p[1] = 0
        p[2] = 0
        c16 = ws_crc16_update(0xFFFF, start, p + 3 - start) ^ 0xFFFF
        p[1] = <uint8_t>(c16 >> 8)
        p[2] = <uint8_t>c16
        return p + 3
    p[0] = 0x44
    memset(p + 1, 0, 4)
    c32 = ws_crc32c_update(0xFFFFFFFFu, start, p + 5 - start) ^ 0xFFFFFFFFu
    p[1] = <uint8_t>(c32 >> 24)
    p[2] = <uint8_t>(c32 >> 16)
    p[3] = <uint8_t>(c32 >> 8)
    p[4] = <uint8_t>c32
    return p + 5


cdef struct PrimaryEnc:
    uint64_t flags, crc_type, ctime, seq, lifetime, frag_offset, adu_length
    bint is_frag
    PyObject *eid_obj[3]     # strong references to the EID encodings (see _release_primary)
    const char *eid_ptr[3]
    Py_ssize_t eid_len[3]
    Py_ssize_t size


cdef inline object _field(object obj, Py_ssize_t offset):
    """A slot's value (borrowed -> new reference), _Defer if unset (the reference would raise)."""
    cdef PyObject *v = ws_slot_get(obj, offset)
    if v == NULL:
        raise _Defer()
    return <object>v


cdef inline void _release_primary(PrimaryEnc *e) noexcept:
    cdef int i
    for i in range(3):
        Py_XDECREF(e.eid_obj[i])
        e.eid_obj[i] = NULL


cdef int _prepare_primary(object p, PrimaryEnc *e) except -1:
    """Collect and check the primary block's fields; compute its encoded size.

    The caller must call _release_primary(e) afterwards, whether this raised or not.
    """
    cdef int i
    cdef Py_ssize_t size
    if type(p) is not _T_PRIMARY or not _FAST_PRIMARY:
        raise _Defer()
    crc_type = _field(p, _OFF_P[1])
    e.crc_type = _u64(crc_type)
    if e.crc_type > 2 or _u64(_field(p, _OFF_P[9])) != 7:
        raise _Defer()
    e.flags = _u64(_field(p, _OFF_P[0]))
    e.is_frag = e.flags & 1
    frag = _field(p, _OFF_P[7])
    adu = _field(p, _OFF_P[8])
    if e.is_frag:
        e.frag_offset = _u64(frag)
        e.adu_length = _u64(adu)
    elif frag is not None or adu is not None:
        raise _Defer()
    size = 1 + 1 + _head_size(e.flags) + 1 + 1  # array head, version, flags, crc type, [..]
    for i in range(3):
        encoded = _eid_cbor_field(_field(p, _OFF_P[2 + i]), i)
        Py_INCREF(encoded)  # the cache entry may be replaced by the next EID
        e.eid_obj[i] = <PyObject *>encoded
        e.eid_ptr[i] = PyBytes_AS_STRING(encoded)
        e.eid_len[i] = len(<bytes>encoded)
        size += e.eid_len[i]
    creation = _field(p, _OFF_P[5])
    if type(creation) is not _T_TIMESTAMP and type(creation) is not tuple:
        raise _Defer()
    if len(<tuple>creation) != 2:
        raise _Defer()
    e.ctime = _u64((<tuple>creation)[0])
    e.seq = _u64((<tuple>creation)[1])
    e.lifetime = _u64(_field(p, _OFF_P[6]))
    size += _head_size(e.ctime) + _head_size(e.seq) + _head_size(e.lifetime)
    if e.is_frag:
        size += _head_size(e.frag_offset) + _head_size(e.adu_length)
    if e.crc_type:
        size += 3 if e.crc_type == 1 else 5
    e.size = size
    return 0


cdef uint8_t *_write_primary(uint8_t *out, PrimaryEnc *e) noexcept:
    cdef uint8_t *p = out
    cdef int i
    p[0] = 0x88 + (2 if e.is_frag else 0) + (1 if e.crc_type else 0)
    p[1] = 7
    p = _put_head(p + 2, 0, e.flags)
    p[0] = <uint8_t>e.crc_type
    p += 1
    for i in range(3):
        memcpy(p, e.eid_ptr[i], e.eid_len[i])
        p += e.eid_len[i]
    p[0] = 0x82
    p = _put_head(p + 1, 0, e.ctime)
    p = _put_head(p, 0, e.seq)
    p = _put_head(p, 0, e.lifetime)
    if e.is_frag:
        p = _put_head(p, 0, e.frag_offset)
        p = _put_head(p, 0, e.adu_length)
    if e.crc_type:
        p = _finish_crc(out, p, e.crc_type)
    return p


cdef struct CanonicalEnc:
    uint64_t block_type, number, flags, crc_type
    Py_buffer view
    bint have_view
    Py_ssize_t size


cdef int _prepare_canonical(object b, CanonicalEnc *e) except -1:
    if type(b) is not _T_CANONICAL or not _FAST_CANONICAL:
        raise _Defer()
    e.crc_type = _u64(_field(b, _OFF_C[3]))
    if e.crc_type > 2:
        raise _Defer()
    data = _field(b, _OFF_C[4])
    if not (PyBytes_Check(data) or PyByteArray_Check(data) or PyMemoryView_Check(data)):
        raise _Defer()
    e.block_type = _u64(_field(b, _OFF_C[0]))
    e.number = _u64(_field(b, _OFF_C[1]))
    e.flags = _u64(_field(b, _OFF_C[2]))
    try:
        PyObject_GetBuffer(data, &e.view, PyBUF_SIMPLE)
    except BufferError:  # non-contiguous view: the reference decides what happens
        raise _Defer()
    e.have_view = True
    e.size = (1 + _head_size(e.block_type) + _head_size(e.number) + _head_size(e.flags) + 1
              + _head_size(<uint64_t>e.view.len) + e.view.len)
    if e.crc_type:
        e.size += 3 if e.crc_type == 1 else 5
    return 0


cdef uint8_t *_write_canonical(uint8_t *out, CanonicalEnc *e) noexcept:
    cdef uint8_t *p = out
    p[0] = 0x86 if e.crc_type else 0x85
    p = _put_head(p + 1, 0, e.block_type)
    p = _put_head(p, 0, e.number)
    p = _put_head(p, 0, e.flags)
    p[0] = <uint8_t>e.crc_type
    p = _put_head(p + 1, 2, <uint64_t>e.view.len)
    if e.view.len > 65536:
        with nogil:
            memcpy(p, e.view.buf, e.view.len)
            p += e.view.len
            if e.crc_type:
                p = _finish_crc(out, p, e.crc_type)
        return p
    memcpy(p, e.view.buf, e.view.len)
    p += e.view.len
    if e.crc_type:
        p = _finish_crc(out, p, e.crc_type)
    return p


cdef bytes _fast_encode_bundle(object bundle):
    cdef PrimaryEnc pe
    cdef CanonicalEnc small[8]
    cdef CanonicalEnc *ce = small
    cdef Py_ssize_t nblocks, i, total
    cdef Py_ssize_t prepared = 0
    cdef uint8_t *p
    if type(bundle) is not _T_BUNDLE or not _FAST_BUNDLE:
        raise _Defer()
    blocks = _field(bundle, _OFF_B[1])
    if not PyList_CheckExact(blocks) or PyList_GET_SIZE(blocks) == 0:
        raise _Defer()
    # The reference checks "payload block last" before anything else: so must we, before any
    # error that is raised here directly rather than by the reference (a released memoryview).
    last = <object>PyList_GET_ITEM(blocks, PyList_GET_SIZE(blocks) - 1)
    if type(last) is not _T_CANONICAL or _u64(_field(last, _OFF_C[0])) != 1:
        raise _Defer()
    memset(pe.eid_obj, 0, sizeof(pe.eid_obj))
    try:
        _prepare_primary(_field(bundle, _OFF_B[0]), &pe)
        # From here on no Python code runs until the result is complete, so the borrowed list
        # items and the buffers below stay valid.
        nblocks = PyList_GET_SIZE(blocks)
        if nblocks > 8:
            ce = <CanonicalEnc *>PyMem_Malloc(nblocks * sizeof(CanonicalEnc))
            if ce == NULL:
                raise MemoryError()
        total = 2 + pe.size
        for i in range(nblocks):
            ce[i].have_view = False
            prepared = i + 1
            _prepare_canonical(<object>PyList_GET_ITEM(blocks, i), &ce[i])
            total += ce[i].size
        if ce[nblocks - 1].block_type != 1:
            raise _Defer()
        result = PyBytes_FromStringAndSize(NULL, total)
        p = <uint8_t *>PyBytes_AS_STRING(result)
        p[0] = 0x9F
        p = _write_primary(p + 1, &pe)
        for i in range(nblocks):
            p = _write_canonical(p, &ce[i])
        p[0] = 0xFF
        return result
    finally:
        _release_primary(&pe)
        for i in range(prepared):
            if ce[i].have_view:
                PyBuffer_Release(&ce[i].view)
        if ce != small:
            PyMem_Free(ce)


def encode_bundle(bundle):
    """Encode ``bundle`` as canonical CBOR (§4.1): ``9f primary block... ff``."""
    try:
        return _fast_encode_bundle(bundle)
    except _Defer:
        return _py.encode_bundle(bundle)


def encode_primary_block(primary):
    """Canonical CBOR encoding of a primary block, CRC included (§4.3.1)."""
    cdef PrimaryEnc pe
    memset(pe.eid_obj, 0, sizeof(pe.eid_obj))
    try:
        _prepare_primary(primary, &pe)
        result = PyBytes_FromStringAndSize(NULL, pe.size)
        _write_primary(<uint8_t *>PyBytes_AS_STRING(result), &pe)
        return result
    except _Defer:
        return _py.encode_primary_block(primary)
    finally:
        _release_primary(&pe)


def encode_canonical_block(block):
    """Canonical CBOR encoding of a canonical block, CRC included (§4.3.2)."""
    cdef CanonicalEnc ce
    ce.have_view = False
    try:
        _prepare_canonical(block, &ce)
        result = PyBytes_FromStringAndSize(NULL, ce.size)
        _write_canonical(<uint8_t *>PyBytes_AS_STRING(result), &ce)
        return result
    except _Defer:
        return _py.encode_canonical_block(block)
    finally:
        if ce.have_view:
            PyBuffer_Release(&ce.view)

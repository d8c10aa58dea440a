"""The reference BPv7 codec (RFC 9171 §4.1-§4.3), in pure Python.

This module *is* the specification of the wire format for waystation; ``waystation.ext.fastcodec``
is its compiled twin and must behave identically for every name in ``__all__``: the same bytes
from :func:`encode_bundle`, equal objects from :func:`decode_bundle`, and the same exception
classes on bad input.

Decoding (:func:`decode_bundle`)
    * The bundle must be an indefinite-length CBOR array (§4.1) ending in a break byte, with no
      trailing bytes, optionally preceded by the self-described CBOR tag 55799 (Appendix B); each block a definite-length array (§4.3). Integers may use any valid
      CBOR length (the shortest form is only preferred); strings and arrays inside blocks must
      be definite-length.
    * Every CRC present is verified over the block's exact input bytes with the CRC field zeroed
      (§4.2.1) -> :class:`CRCError`.
    * Layout problems raise :class:`DecodeError` carrying the byte offset; RFC rules checked on
      the decoded result (:func:`waystation.bundle.validate.validate_bundle`) raise
      :class:`ValidationError`. Only :class:`BundleError` subclasses ever escape, for any input.
    * Zero-copy rule: the payload block's ``data`` is a read-only ``memoryview`` into the input
      buffer. It keeps the input alive; do not mutate a ``bytearray`` input while the bundle is in
      use (``bytes(bundle.payload)`` takes a private copy). Other blocks' data are ``bytes``.
    * Unknown block types are kept with their data byte-for-byte.

Encoding (:func:`encode_bundle`)
    Canonical, deterministic CBOR: shortest-form heads everywhere, blocks in the model's order,
    CRCs computed afresh for the CRC type of each block. It checks only what is needed to produce
    a well-formed encoding (types and ranges, CRC types, fragment fields iff IS_FRAGMENT, payload
    block last); whether the bundle obeys every RFC rule is :func:`validate_bundle`'s job.
"""

from __future__ import annotations

from .cborhead import (
    INDEFINITE,
    MAJOR_BYTES,
    MAJOR_UINT,
    encode_head,
    read_array_head,
    read_head,
)
from .crc import crc16_x25, crc32c
from .dtntime import CreationTimestamp
from .eid import EndpointID, decode_eid_cbor
from .errors import BundleTooLarge, CRCError, DecodeError, ValidationError
from .model import BP_VERSION, Bundle, BundleFlags, CanonicalBlock, PrimaryBlock
from .validate import validate_bundle

__all__ = [
    "DEFAULT_MAX_BUNDLE_SIZE",
    "crc16_x25",
    "crc32c",
    "decode_bundle",
    "encode_bundle",
    "encode_canonical_block",
    "encode_primary_block",
]

#: Bundles larger than this are refused by :func:`decode_bundle` unless told otherwise (64 MiB).
DEFAULT_MAX_BUNDLE_SIZE = 64 * 1024 * 1024

_U64 = 0xFFFFFFFFFFFFFFFF
_CRC_SIZE = (0, 2, 4)
_CRC_ZEROS = (b"", b"\x00\x00", b"\x00\x00\x00\x00")
_CRC_BSTR_HEAD = (0, 0x42, 0x44)  # CBOR byte-string heads for 2 and 4 bytes
_SELF_DESCRIBED = b"\xd9\xd9\xf7"  # CBOR tag 55799 (RFC 8949 §3.4.6)
# plain ints: `int & IntFlag` goes through enum machinery, ~10x slower on this hot path
_IS_FRAGMENT = int(BundleFlags.IS_FRAGMENT)


# --------------------------------------------------------------------------------------------
# decoding


def decode_bundle(
    data: bytes | bytearray | memoryview,
    *,
    max_size: int | None = DEFAULT_MAX_BUNDLE_SIZE,
    validate: bool = True,
) -> Bundle:
    """Decode one complete bundle from ``data``.

    ``max_size`` (bytes, ``None`` = unlimited) bounds the input -> :class:`BundleTooLarge`.
    ``validate=False`` skips the RFC rule checks of :func:`validate_bundle` (CBOR layout and
    CRCs are always checked); it exists to inspect non-conforming bundles, e.g. test vectors.
    """
    if isinstance(data, memoryview):
        buf = data if data.format == "B" and data.ndim == 1 else data.cast("B")
    elif isinstance(data, bytes | bytearray):
        buf = memoryview(data)
    else:
        raise TypeError(f"decode_bundle needs a bytes-like object, not {type(data).__name__}")
    n = len(buf)
    if max_size is not None and n > max_size:
        raise BundleTooLarge(f"bundle of {n} bytes exceeds the maximum of {max_size} bytes")
    if n == 0:
        raise DecodeError(0, "empty input")
    pos = 0
    if buf[:3] == _SELF_DESCRIBED:
        pos = 3  # RFC 9171 Appendix B: bpv7_start = bundle / #6.55799(bundle)
    if pos >= n or buf[pos] != 0x9F:
        if pos < n and buf[pos] >> 5 == 4:
            raise DecodeError(pos, "a bundle must be an indefinite-length array (RFC 9171 §4.1)")
        raise DecodeError(pos, "input is not a bundle (expected an indefinite-length CBOR array)")
    primary, pos = _decode_primary(buf, pos + 1)
    blocks: list[CanonicalBlock] = []
    while True:
        if pos >= n:
            raise DecodeError(pos, "bundle ends without the CBOR break byte")
        if buf[pos] == 0xFF:
            pos += 1
            break
        block, pos = _decode_canonical(buf, pos)
        blocks.append(block)
    if pos != n:
        raise DecodeError(pos, f"{n - pos} trailing bytes after the bundle")
    bundle = Bundle(primary, blocks)
    if validate:
        validate_bundle(bundle)
    return bundle


def _uint(buf: memoryview, pos: int, what: str) -> tuple[int, int]:
    b = buf[pos] if pos < len(buf) else -1
    if 0 <= b < 24:  # fast path: small integers are by far the most common
        return b, pos + 1
    major, value, end = read_head(buf, pos)
    if major != MAJOR_UINT or value == INDEFINITE:
        raise DecodeError(pos, f"{what}: expected an unsigned integer")
    return value, end


def _check_crc(buf: memoryview, start: int, pos: int, crc_type: int, what: str) -> int:
    """Verify the CRC byte string at ``pos`` of the block starting at ``start``; return its end."""
    size = _CRC_SIZE[crc_type]
    major, length, cstart = read_head(buf, pos)
    if major != MAJOR_BYTES or length == INDEFINITE:
        raise DecodeError(pos, f"{what}: CRC must be a byte string")
    if length != size:
        raise DecodeError(pos, f"{what}: CRC type {crc_type} needs {size} bytes, got {length}")
    end = cstart + size
    if end > len(buf):
        raise DecodeError(pos, f"{what}: CRC runs past end of input")
    func = crc16_x25 if crc_type == 1 else crc32c
    computed = func(_CRC_ZEROS[crc_type], func(buf[start:cstart]))
    stored = int.from_bytes(buf[cstart:end], "big")
    if computed != stored:
        raise CRCError(
            start,
            f"{what}: CRC mismatch (stored {stored:0{size * 2}x}, computed {computed:0{size * 2}x})",
        )
    return end


def _decode_primary(buf: memoryview, start: int) -> tuple[PrimaryBlock, int]:
    count, pos = read_array_head(buf, start, "primary block")
    if not 8 <= count <= 11:
        raise DecodeError(start, f"primary block has {count} items, expected 8 to 11")
    version, pos = _uint(buf, pos, "primary block version")
    if version != BP_VERSION:
        raise DecodeError(pos - 1, f"unsupported bundle protocol version {version}")
    flags, pos = _uint(buf, pos, "bundle processing control flags")
    at = pos
    crc_type, pos = _uint(buf, pos, "primary block CRC type")
    if crc_type > 2:
        raise DecodeError(at, f"unknown CRC type {crc_type}")
    expected = 8 + (2 if flags & _IS_FRAGMENT else 0) + (1 if crc_type else 0)
    if count != expected:
        raise DecodeError(
            start, f"primary block has {count} items, but its flags and CRC type imply {expected}"
        )
    destination, pos = decode_eid_cbor(buf, pos)
    source, pos = decode_eid_cbor(buf, pos)
    report_to, pos = decode_eid_cbor(buf, pos)
    at = pos
    n, pos = read_array_head(buf, pos, "creation timestamp")
    if n != 2:
        raise DecodeError(at, f"creation timestamp must have 2 items, not {n}")
    ctime, pos = _uint(buf, pos, "creation time")
    seq, pos = _uint(buf, pos, "creation sequence number")
    lifetime, pos = _uint(buf, pos, "lifetime")
    frag_offset = adu_length = None
    if flags & _IS_FRAGMENT:
        frag_offset, pos = _uint(buf, pos, "fragment offset")
        adu_length, pos = _uint(buf, pos, "total ADU length")
    if crc_type:
        pos = _check_crc(buf, start, pos, crc_type, "primary block")
    primary = PrimaryBlock(
        flags,
        crc_type,
        destination,
        source,
        report_to,
        CreationTimestamp(ctime, seq),
        lifetime,
        frag_offset,
        adu_length,
    )
    return primary, pos


def _decode_canonical(buf: memoryview, start: int) -> tuple[CanonicalBlock, int]:
    count, pos = read_array_head(buf, start, "canonical block")
    if count not in (5, 6):
        raise DecodeError(start, f"canonical block has {count} items, expected 5 or 6")
    block_type, pos = _uint(buf, pos, "block type")
    number, pos = _uint(buf, pos, "block number")
    flags, pos = _uint(buf, pos, "block processing control flags")
    at = pos
    crc_type, pos = _uint(buf, pos, "block CRC type")
    if crc_type > 2:
        raise DecodeError(at, f"unknown CRC type {crc_type}")
    if count != (6 if crc_type else 5):
        raise DecodeError(start, f"block has {count} items but CRC type {crc_type}")
    at = pos
    major, length, dstart = read_head(buf, pos)
    if major != MAJOR_BYTES or length == INDEFINITE:
        raise DecodeError(at, "block-type-specific data must be a definite-length byte string")
    pos = dstart + length
    if pos > len(buf):
        raise DecodeError(at, f"block data of {length} bytes runs past end of input")
    # Zero-copy for the payload; small extension blocks are copied so they outlive the input.
    data = buf[dstart:pos] if block_type == 1 else bytes(buf[dstart:pos])
    if crc_type:
        pos = _check_crc(buf, start, pos, crc_type, f"block {number}")
    return CanonicalBlock(block_type, number, flags, crc_type, data), pos


# --------------------------------------------------------------------------------------------
# encoding


def _enc_uint(value: object, what: str) -> bytes:
    if not isinstance(value, int) or not 0 <= value <= _U64:
        raise ValidationError(f"{what} {value!r} is not an unsigned 64-bit integer")
    return encode_head(MAJOR_UINT, value)


def _finish_crc(out: bytearray, start: int, crc_type: int) -> None:
    """Append the CRC byte string for the block ``out[start:]`` (§4.2.1)."""
    size = _CRC_SIZE[crc_type]
    out.append(_CRC_BSTR_HEAD[crc_type])
    out += _CRC_ZEROS[crc_type]
    func = crc16_x25 if crc_type == 1 else crc32c
    value = func(memoryview(out)[start:])
    out[-size:] = value.to_bytes(size, "big")


def _encode_primary_into(out: bytearray, p: PrimaryBlock) -> None:
    if not isinstance(p, PrimaryBlock):
        raise ValidationError("bundle.primary must be a PrimaryBlock")
    crc_type = p.crc_type
    if crc_type not in (0, 1, 2):
        raise ValidationError(f"unknown primary block CRC type {crc_type!r}")
    if p.version != BP_VERSION:
        raise ValidationError(f"cannot encode bundle protocol version {p.version!r}")
    flags = p.flags
    is_frag = isinstance(flags, int) and bool(flags & _IS_FRAGMENT)
    if is_frag != (p.fragment_offset is not None) or is_frag != (p.total_adu_length is not None):
        raise ValidationError("fragment offset and total ADU length must be set iff IS_FRAGMENT")
    for eid in (p.destination, p.source, p.report_to):
        if not isinstance(eid, EndpointID):
            raise ValidationError(f"{eid!r} is not an EndpointID")
    creation = p.creation
    if not isinstance(creation, tuple) or len(creation) != 2:
        raise ValidationError("creation timestamp must be a (time_ms, sequence) pair")
    start = len(out)
    out.append(0x88 + (2 if is_frag else 0) + (1 if crc_type else 0))
    out.append(BP_VERSION)
    out += _enc_uint(flags, "bundle flags")
    out.append(crc_type)
    out += p.destination.to_cbor()
    out += p.source.to_cbor()
    out += p.report_to.to_cbor()
    out.append(0x82)
    out += _enc_uint(creation[0], "creation time")
    out += _enc_uint(creation[1], "sequence number")
    out += _enc_uint(p.lifetime_ms, "lifetime")
    if is_frag:
        out += _enc_uint(p.fragment_offset, "fragment offset")
        out += _enc_uint(p.total_adu_length, "total ADU length")
    if crc_type:
        _finish_crc(out, start, crc_type)


def _encode_canonical_into(out: bytearray, b: CanonicalBlock) -> None:
    if not isinstance(b, CanonicalBlock):
        raise ValidationError(f"{b!r} is not a CanonicalBlock")
    crc_type = b.crc_type
    if crc_type not in (0, 1, 2):
        raise ValidationError(f"block {b.number!r}: unknown CRC type {crc_type!r}")
    data = b.data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(f"block {b.number!r}: data must be bytes-like")
    start = len(out)
    out.append(0x86 if crc_type else 0x85)
    out += _enc_uint(b.block_type, "block type")
    out += _enc_uint(b.number, "block number")
    out += _enc_uint(b.flags, "block flags")
    out.append(crc_type)
    out += encode_head(MAJOR_BYTES, len(data) if not isinstance(data, memoryview) else data.nbytes)
    out += data
    if crc_type:
        _finish_crc(out, start, crc_type)


def encode_primary_block(primary: PrimaryBlock) -> bytes:
    """Canonical CBOR encoding of a primary block, CRC included (§4.3.1)."""
    out = bytearray()
    _encode_primary_into(out, primary)
    return bytes(out)


def encode_canonical_block(block: CanonicalBlock) -> bytes:
    """Canonical CBOR encoding of a canonical block, CRC included (§4.3.2)."""
    out = bytearray()
    _encode_canonical_into(out, block)
    return bytes(out)


def encode_bundle(bundle: Bundle) -> bytes:
    """Encode ``bundle`` as canonical CBOR (§4.1): ``9f primary block... ff``."""
    if not isinstance(bundle, Bundle):
        raise ValidationError(f"{bundle!r} is not a Bundle")
    blocks = bundle.blocks
    if not blocks or not isinstance(blocks[-1], CanonicalBlock) or blocks[-1].block_type != 1:
        raise ValidationError("the last block of a bundle must be the payload block")
    out = bytearray(b"\x9f")
    _encode_primary_into(out, bundle.primary)
    for block in blocks:
        _encode_canonical_into(out, block)
    out.append(0xFF)
    return bytes(out)

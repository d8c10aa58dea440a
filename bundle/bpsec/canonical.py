"""Canonical (deterministic) encodings that security operations hash (RFC 9173 §3.7, §4.7.2).

The primary block's canonical form is its RFC 9171 §4.3.1 encoding with shortest-form CBOR
heads and the CRC recomputed. This module encodes it itself (a small adapter, so BPSec does not
depend on the codec's internals); tests check it byte for byte against the RFC 9173 and HDTN
vectors and against the codec's own encoding.
"""

from __future__ import annotations

from waystation.bundle.cborhead import MAJOR_ARRAY, MAJOR_BYTES, encode_head, encode_uint
from waystation.bundle.crc import crc16_x25, crc32c
from waystation.bundle.model import CRCType, PrimaryBlock

__all__ = ["encode_primary"]


def _encode_primary_local(p: PrimaryBlock) -> bytes:
    fragment = p.fragment_offset is not None
    n = 8 + (2 if fragment else 0) + (1 if p.crc_type != CRCType.NONE else 0)
    parts = [
        encode_head(MAJOR_ARRAY, n),
        encode_uint(p.version),
        encode_uint(p.flags),
        encode_uint(p.crc_type),
        p.destination.to_cbor(),
        p.source.to_cbor(),
        p.report_to.to_cbor(),
        encode_head(MAJOR_ARRAY, 2),
        encode_uint(p.creation.time_ms),
        encode_uint(p.creation.sequence),
        encode_uint(p.lifetime_ms),
    ]
    if fragment:
        parts.append(encode_uint(p.fragment_offset or 0))
        parts.append(encode_uint(p.total_adu_length or 0))
    body = b"".join(parts)
    if p.crc_type == CRCType.CRC16:
        body += encode_head(MAJOR_BYTES, 2)
        return body + crc16_x25(body + b"\0\0").to_bytes(2, "big")
    if p.crc_type == CRCType.CRC32C:
        body += encode_head(MAJOR_BYTES, 4)
        return body + crc32c(body + b"\0\0\0\0").to_bytes(4, "big")
    return body


def encode_primary(primary: PrimaryBlock) -> bytes:
    """The canonical encoding of ``primary`` (CBOR array head and CRC included)."""
    return _encode_primary_local(primary)

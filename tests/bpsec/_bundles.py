"""Bundle bytes <-> model for the BPSec tests.

Uses the project codec (``waystation.bundle.codec``) when it is importable; until then a small
cbor2-based stand-in that is deliberately lenient (RFC 9173 Appendix A bundles are not strictly
valid RFC 9171 bundles, see refdata/README.md).
"""

from __future__ import annotations

import cbor2
from waystation.bundle.bpsec.canonical import encode_primary
from waystation.bundle.cborhead import (
    MAJOR_ARRAY,
    MAJOR_BYTES,
    encode_bytes,
    encode_head,
    encode_uint,
)
from waystation.bundle.crc import crc16_x25, crc32c
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import EndpointID
from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock


def decode(data: bytes) -> Bundle:
    items = cbor2.loads(data)
    p = items[0]
    primary = PrimaryBlock(
        version=p[0],
        flags=p[1],
        crc_type=p[2],
        destination=EndpointID.from_cbor_obj(p[3]),
        source=EndpointID.from_cbor_obj(p[4]),
        report_to=EndpointID.from_cbor_obj(p[5]),
        creation=CreationTimestamp(p[6][0], p[6][1]),
        lifetime_ms=p[7],
        fragment_offset=p[8] if len(p) in (10, 11) else None,
        total_adu_length=p[9] if len(p) in (10, 11) else None,
    )
    blocks = [CanonicalBlock(b[0], b[1], b[2], b[3], b[4]) for b in items[1:]]
    return Bundle(primary, blocks)


def encode_block(b: CanonicalBlock) -> bytes:
    head = encode_head(MAJOR_ARRAY, 5 if b.crc_type == 0 else 6)
    body = head + encode_uint(b.block_type) + encode_uint(b.number) + encode_uint(b.flags)
    body += encode_uint(b.crc_type) + encode_bytes(bytes(b.data))
    if b.crc_type == 1:
        body += encode_head(MAJOR_BYTES, 2)
        return body + crc16_x25(body + b"\0\0").to_bytes(2, "big")
    if b.crc_type == 2:
        body += encode_head(MAJOR_BYTES, 4)
        return body + crc32c(body + b"\0\0\0\0").to_bytes(4, "big")
    return body


def encode(bundle: Bundle) -> bytes:
    return b"\x9f" + encode_primary(bundle.primary) + b"".join(
        encode_block(b) for b in bundle.blocks
    ) + b"\xff"

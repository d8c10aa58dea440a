"""Small bundles for the BPSec tests."""

from __future__ import annotations

from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import parse_eid
from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock


def make_bundle(
    payload: bytes = b"hello, delay-tolerant world",
    *,
    source: str = "ipn:1.1",
    destination: str = "ipn:3.1",
    extra: tuple[tuple[int, int, bytes], ...] = ((7, 2, b"\x19\x01\x2c"),),
    crc_type: int = 2,
) -> Bundle:
    primary = PrimaryBlock(
        flags=0,
        crc_type=crc_type,
        destination=parse_eid(destination),
        source=parse_eid(source),
        report_to=parse_eid(source),
        creation=CreationTimestamp(813110400000, 7),
        lifetime_ms=3_600_000,
    )
    blocks = [CanonicalBlock(t, n, 0, crc_type, data) for t, n, data in extra]
    blocks.append(CanonicalBlock(1, 1, 0, crc_type, payload))
    return Bundle(primary, blocks)

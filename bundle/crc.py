"""The two CRCs of RFC 9171 §4.2.1, pure Python and table-driven.

* CRC type 1, CRC-16/X.25 (a.k.a. CRC-16/IBM-SDLC): polynomial 0x1021 reflected (0x8408), init
  0xFFFF, reflected in and out, final XOR 0xFFFF. Check value for b"123456789": 0x906E.
* CRC type 2, CRC-32C (Castagnoli, CRC-32/ISCSI): polynomial 0x1EDC6F41 reflected (0x82F63B78),
  init 0xFFFFFFFF, reflected, final XOR 0xFFFFFFFF. Check value: 0xE3069283.

Both functions chain like :func:`zlib.crc32`: ``crc(b, crc(a)) == crc(a + b)``, which lets the
codec run the CRC over a block in pieces (head, zeroed CRC field) without copying it.
These are the reference; the Cython twin in ``waystation.ext`` is the fast path.
"""

from __future__ import annotations

__all__ = ["crc16_x25", "crc32c"]


def _table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_T16 = _table(0x8408)
_T32 = _table(0x82F63B78)


def crc16_x25(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-16/X.25 of ``data``; pass a previous result as ``value`` to continue it."""
    crc = value ^ 0xFFFF
    table = _T16
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFF


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-32C of ``data``; pass a previous result as ``value`` to continue it."""
    crc = value ^ 0xFFFFFFFF
    table = _T32
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

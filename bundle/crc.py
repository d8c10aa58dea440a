"""The two CRCs of RFC 9171 §4.2.1, pure Python and table-driven.

* CRC type 1, CRC-16/X.25 (a.k.a. CRC-16/IBM-SDLC): polynomial 0x1021 reflected (0x8408), init
  0xFFFF, reflected in and out, final XOR 0xFFFF. Check value for b"123456789": 0x906E.
* CRC type 2, CRC-32C (Castagnoli, CRC-32/ISCSI): polynomial 0x1EDC6F41 reflected (0x82F63B78),
  init 0xFFFFFFFF, reflected, final XOR 0xFFFFFFFF. Check value: 0xE3069283.

Both functions chain like :func:`zlib.crc32`: ``crc(b, crc(a)) == crc(a + b)``, which lets the
codec run the CRC over a block in pieces (head, zeroed CRC field) without copying it.
These are the reference; the Cython twin in ``waystation.ext`` is the fast path. CRC-16 is
computed through ``binascii.crc_hqx`` (see below); CRC-32C has no standard-library equivalent
and runs as a pure table loop (a few MB/s).
"""

from __future__ import annotations

import binascii

__all__ = ["crc16_x25", "crc16_x25_table", "crc32c"]


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


def crc16_x25_table(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-16/X.25, the textbook reflected table loop (the definition; slow)."""
    crc = value ^ 0xFFFF
    table = _T16
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFF


# CRC-16/X.25 is the *reflected* form of CRC-16/CCITT, which the standard library computes in C
# (binascii.crc_hqx, MSB-first, no final XOR). A reflected CRC equals the bit-reversed
# non-reflected CRC of the bit-reversed input bytes with a bit-reversed initial register, so
# reversing every byte with bytes.translate gives the same value at C speed, still with nothing
# but the standard library. crc16_x25_table is the reference it is tested against.
_REVERSE_BITS = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _reverse16(x: int) -> int:
    return (_REVERSE_BITS[x & 0xFF] << 8) | _REVERSE_BITS[x >> 8]


def crc16_x25(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-16/X.25 of ``data``; pass a previous result as ``value`` to continue it."""
    raw = data if isinstance(data, bytes) else bytes(data)
    register = binascii.crc_hqx(raw.translate(_REVERSE_BITS), _reverse16(value ^ 0xFFFF))
    return _reverse16(register) ^ 0xFFFF


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-32C of ``data``; pass a previous result as ``value`` to continue it."""
    crc = value ^ 0xFFFFFFFF
    table = _T32
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

"""Hand-assembled bundle bytes for tests that need encodings our encoder never produces
(non-shortest integers, wrong item counts, indefinite strings ...). CRCs are computed with the
reference CRC functions over the block with a zeroed CRC field, as RFC 9171 §4.2.1 specifies."""

from __future__ import annotations

from waystation.bundle.crc import crc16_x25, crc32c

IPN_2_1 = bytes.fromhex("8202820201")
IPN_1_1 = bytes.fromhex("8202820101")
DTN_NONE = bytes.fromhex("820100")


def block(items: list[bytes], crc_type: int, *, head: bytes | None = None) -> bytes:
    """A block array of pre-encoded ``items`` plus a CRC item when ``crc_type`` is 1 or 2."""
    n = len(items) + (1 if crc_type else 0)
    body = (head if head is not None else bytes((0x80 | n,))) + b"".join(items)
    if crc_type == 0:
        return body
    size = 2 if crc_type == 1 else 4
    zeroed = body + bytes((0x40 | size,)) + bytes(size)
    value = (crc16_x25 if crc_type == 1 else crc32c)(zeroed)
    return body + bytes((0x40 | size,)) + value.to_bytes(size, "big")


def primary(
    *,
    flags: bytes = b"\x00",
    crc_type: int = 1,
    dest: bytes = IPN_2_1,
    src: bytes = IPN_1_1,
    report: bytes = DTN_NONE,
    creation: bytes = b"\x82\x1a\x00\x01\x00\x00\x00",
    lifetime: bytes = b"\x1a\x00\x01\x00\x00",
    extra: list[bytes] | None = None,
    version: bytes = b"\x07",
) -> bytes:
    items = [version, flags, bytes((crc_type,)), dest, src, report, creation, lifetime]
    return block(items + (extra or []), crc_type)


def payload(data: bytes = b"hello", *, crc_type: int = 0, number: bytes = b"\x01") -> bytes:
    return block([b"\x01", number, b"\x00", bytes((crc_type,)), bstr(data)], crc_type)


def bstr(data: bytes) -> bytes:
    n = len(data)
    if n < 24:
        return bytes((0x40 | n,)) + data
    if n < 256:
        return bytes((0x58, n)) + data
    return b"\x59" + n.to_bytes(2, "big") + data


def bundle(*blocks: bytes) -> bytes:
    return b"\x9f" + b"".join(blocks) + b"\xff"

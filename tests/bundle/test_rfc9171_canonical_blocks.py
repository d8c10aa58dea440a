"""RFC 9171 §4.3.2-§4.4: canonical blocks, the payload block and the extension blocks."""

from __future__ import annotations

from types import ModuleType

import pytest
from waystation.bundle.cborhead import encode_uint as u
from waystation.bundle.errors import CRCError, DecodeError, ValidationError
from waystation.bundle.model import BlockType, CanonicalBlock

from tests.bundle import rawcbor as raw

PRIMARY = raw.primary()


def ext(btype: int, number: int, data: bytes, *, flags: int = 0, crc_type: int = 0) -> bytes:
    return raw.block(
        [u(btype), u(number), u(flags), u(crc_type), raw.bstr(data)],
        crc_type,
    )


@pytest.mark.parametrize("crc_type", [1, 2])
def test_block_crc_checked_and_offset_reported(impl: ModuleType, crc_type: int) -> None:
    good = raw.bundle(PRIMARY, raw.payload(b"hello", crc_type=crc_type))
    impl.decode_bundle(good)
    bad = bytearray(good)
    bad[-8 if crc_type == 2 else -6] ^= 0x20  # a payload byte
    with pytest.raises(CRCError) as info:
        impl.decode_bundle(bytes(bad))
    assert info.value.offset == 1 + len(PRIMARY)


def test_unknown_block_preserved_byte_for_byte(impl: ModuleType) -> None:
    weird = ext(200, 9, b"\xff\x00 anything at all, not even CBOR", flags=0x55, crc_type=1)
    data = raw.bundle(PRIMARY, weird, raw.payload())
    b = impl.decode_bundle(data)
    block = b.block_by_number(9)
    assert block is not None and block.block_type == 200 and block.flags == 0x55
    assert impl.encode_bundle(b) == data


def test_payload_block_rules(impl: ModuleType) -> None:
    # exactly one payload block, number 1, last (§4.1, §4.3.3)
    with pytest.raises(ValidationError, match="last"):
        impl.decode_bundle(raw.bundle(PRIMARY, raw.payload(), ext(200, 2, b"")))
    with pytest.raises(ValidationError, match="must be 1"):
        impl.decode_bundle(raw.bundle(PRIMARY, raw.payload(number=b"\x02")))
    with pytest.raises(ValidationError, match=r"duplicate|2 payload"):
        impl.decode_bundle(raw.bundle(PRIMARY, raw.payload(), raw.payload()))
    with pytest.raises(ValidationError, match="no payload"):
        impl.decode_bundle(raw.bundle(PRIMARY))


def test_block_numbers_unique_and_nonzero(impl: ModuleType) -> None:
    with pytest.raises(ValidationError, match="duplicate block number 5"):
        impl.decode_bundle(raw.bundle(PRIMARY, ext(200, 5, b""), ext(201, 5, b""), raw.payload()))
    with pytest.raises(ValidationError, match="number 0"):
        impl.decode_bundle(raw.bundle(PRIMARY, ext(200, 0, b""), raw.payload()))
    with pytest.raises(ValidationError, match="reserved for the payload"):
        impl.decode_bundle(raw.bundle(PRIMARY, ext(200, 1, b""), raw.payload(number=b"\x01")))


def test_block_item_count_and_types(impl: ModuleType) -> None:
    four = raw.block([b"\x01", b"\x01", b"\x00", b"\x00"], 0)
    with pytest.raises(DecodeError, match="5 or 6"):
        impl.decode_bundle(raw.bundle(PRIMARY, four))
    crc_without_value = raw.block([b"\x01", b"\x01", b"\x00", b"\x01", raw.bstr(b"x")], 0)
    with pytest.raises(DecodeError, match="CRC type 1"):
        impl.decode_bundle(raw.bundle(PRIMARY, crc_without_value))
    text_data = raw.block([b"\x01", b"\x01", b"\x00", b"\x00", b"\x61x"], 0)
    with pytest.raises(DecodeError, match="byte string"):
        impl.decode_bundle(raw.bundle(PRIMARY, text_data))
    indefinite = raw.block([b"\x01", b"\x01", b"\x00", b"\x00", b"\x5f\x41x\xff"], 0)
    with pytest.raises(DecodeError, match="definite-length"):
        impl.decode_bundle(raw.bundle(PRIMARY, indefinite))
    negative_type = raw.block([b"\x20", b"\x01", b"\x00", b"\x00", raw.bstr(b"")], 0)
    with pytest.raises(DecodeError, match="unsigned"):
        impl.decode_bundle(raw.bundle(PRIMARY, negative_type))


def test_block_data_length_past_end(impl: ModuleType) -> None:
    data = raw.bundle(
        PRIMARY, raw.block([b"\x01", b"\x01", b"\x00", b"\x00", b"\x5a\xff\xff\xff\xff"], 0)
    )
    with pytest.raises(DecodeError, match="past end"):
        impl.decode_bundle(data)


def test_previous_node_block(impl: ModuleType) -> None:
    b = impl.decode_bundle(raw.bundle(PRIMARY, ext(6, 2, raw.IPN_1_1), raw.payload()))
    assert str(b.previous_node) == "ipn:1.1"
    with pytest.raises(ValidationError, match=r"malformed|EID|endpoint"):
        impl.decode_bundle(raw.bundle(PRIMARY, ext(6, 2, b"\x82\x02"), raw.payload()))
    with pytest.raises(ValidationError, match="more than one"):
        impl.decode_bundle(
            raw.bundle(PRIMARY, ext(6, 2, raw.IPN_1_1), ext(6, 3, raw.IPN_1_1), raw.payload())
        )


def test_hop_count_block(impl: ModuleType) -> None:
    b = impl.decode_bundle(raw.bundle(PRIMARY, ext(10, 2, b"\x82\x18\x20\x03"), raw.payload()))
    assert b.hop_count == (32, 3) and not b.hop_count.exceeded
    for bad in (
        b"\x82\x00\x00",
        b"\x82\x19\x01\x00\x00",
        b"\x81\x01",
        b"\x01",
        b"\x82\x01\x00\x00",
    ):
        with pytest.raises(ValidationError):
            impl.decode_bundle(raw.bundle(PRIMARY, ext(10, 2, bad), raw.payload()))


def test_bundle_age_block(impl: ModuleType) -> None:
    b = impl.decode_bundle(raw.bundle(PRIMARY, ext(7, 2, b"\x1a\x00\x01\x4f\xf0"), raw.payload()))
    assert b.bundle_age_ms == 86000
    for bad in (b"", b"\x20", b"\x00\x00", b"\x41\x00"):
        with pytest.raises(ValidationError):
            impl.decode_bundle(raw.bundle(PRIMARY, ext(7, 2, bad), raw.payload()))


def test_typed_block_helpers_roundtrip(impl: ModuleType) -> None:
    from waystation.bundle.eid import parse_eid
    from waystation.bundle.model import Bundle

    good = impl.decode_bundle(raw.bundle(PRIMARY, raw.payload()))
    blocks = [
        CanonicalBlock.previous_node(parse_eid("dtn://relay/"), 2, crc_type=1),
        CanonicalBlock.bundle_age(2**40, 3, crc_type=2),
        CanonicalBlock.hop_count(255, 254, 4),
        good.blocks[-1],
    ]
    b = Bundle(good.primary, blocks)
    back = impl.decode_bundle(impl.encode_bundle(b))
    assert back.previous_node == parse_eid("dtn://relay/")
    assert back.bundle_age_ms == 2**40
    assert back.hop_count == (255, 254)
    assert [x.block_type for x in back.blocks] == [
        BlockType.PREVIOUS_NODE,
        BlockType.BUNDLE_AGE,
        BlockType.HOP_COUNT,
        BlockType.PAYLOAD,
    ]


def test_large_payload_lengths_use_long_heads(impl: ModuleType) -> None:
    from waystation.bundle.builder import build_bundle
    from waystation.bundle.dtntime import CreationTimestamp

    for size in (0, 23, 24, 255, 256, 65535, 65536, 300_000):
        b = build_bundle("ipn:1.1", "ipn:2.1", bytes(size), creation=CreationTimestamp(1, 0))
        data = impl.encode_bundle(b)
        assert impl.decode_bundle(data) == b

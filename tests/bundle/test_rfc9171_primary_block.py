"""RFC 9171 §4.1, §4.2 and §4.3.1: the bundle array and the primary block, byte by byte."""

from __future__ import annotations

from types import ModuleType

import pytest
from waystation.bundle.errors import (
    BundleError,
    BundleTooLarge,
    CRCError,
    DecodeError,
    EIDError,
    ValidationError,
)
from waystation.bundle.model import BundleFlags

from tests.bundle import rawcbor as raw

GOOD = raw.bundle(raw.primary(), raw.payload())


def test_minimal_valid_bundle(impl: ModuleType) -> None:
    b = impl.decode_bundle(GOOD)
    assert b.primary.creation == (65536, 0)
    assert b.primary.lifetime_ms == 65536
    assert bytes(b.payload) == b"hello"
    assert impl.encode_bundle(b) == GOOD


def test_accepts_bytearray_and_memoryview(impl: ModuleType) -> None:
    assert impl.decode_bundle(bytearray(GOOD)) == impl.decode_bundle(memoryview(GOOD))


def test_definite_length_outer_array_rejected(impl: ModuleType) -> None:
    # §4.1: "Each bundle SHALL be a concatenated sequence of at least two blocks, represented
    # as a CBOR indefinite-length array"
    data = b"\x82" + GOOD[1:-1]
    with pytest.raises(DecodeError, match="indefinite-length") as info:
        impl.decode_bundle(data)
    assert info.value.offset == 0


def test_self_described_cbor_tag_accepted(impl: ModuleType) -> None:
    assert impl.decode_bundle(b"\xd9\xd9\xf7" + GOOD) == impl.decode_bundle(GOOD)


def test_indefinite_primary_block_rejected(impl: ModuleType) -> None:
    prim = raw.primary(crc_type=0)
    data = raw.bundle(b"\x9f" + prim[1:] + b"\xff", raw.payload())
    with pytest.raises(DecodeError, match="indefinite") as info:
        impl.decode_bundle(data)
    assert info.value.offset == 1


def test_missing_break_and_trailing_bytes(impl: ModuleType) -> None:
    with pytest.raises(DecodeError, match="break"):
        impl.decode_bundle(GOOD[:-1])
    with pytest.raises(DecodeError, match="trailing") as info:
        impl.decode_bundle(GOOD + b"\x00")
    assert info.value.offset == len(GOOD)


def test_every_truncation_is_a_decode_error(impl: ModuleType) -> None:
    for cut in range(len(GOOD)):
        with pytest.raises(DecodeError):
            impl.decode_bundle(GOOD[:cut])


def test_non_shortest_integers_accepted(impl: ModuleType) -> None:
    # RFC 8949 §4.2 preferred serialisation is not required of the sender; RFC 9171 §4.1 asks
    # only for well-formed CBOR. We accept and re-encode canonically.
    data = raw.bundle(
        raw.primary(version=b"\x18\x07", lifetime=b"\x1b" + (1000).to_bytes(8, "big")),
        raw.payload(),
    )
    b = impl.decode_bundle(data)
    assert b.primary.lifetime_ms == 1000
    assert impl.encode_bundle(b) != data
    assert impl.decode_bundle(impl.encode_bundle(b)) == b


def test_wrong_version_rejected(impl: ModuleType) -> None:
    with pytest.raises(DecodeError, match="version 6"):
        impl.decode_bundle(raw.bundle(raw.primary(version=b"\x06"), raw.payload()))


@pytest.mark.parametrize("crc_type", [1, 2])
def test_primary_crc_checked(impl: ModuleType, crc_type: int) -> None:
    good = raw.bundle(raw.primary(crc_type=crc_type), raw.payload())
    impl.decode_bundle(good)
    bad = bytearray(good)
    bad[-3 - len(raw.payload())] ^= 0x01  # last CRC byte of the primary block
    with pytest.raises(CRCError) as info:
        impl.decode_bundle(bytes(bad))
    assert info.value.offset == 1  # the primary block starts after the 0x9f


def test_primary_crc_bit_flip_anywhere_detected(impl: ModuleType) -> None:
    prim = raw.primary(crc_type=2)
    for i in range(len(prim)):
        for bit in (0x01, 0x80):
            mutated = bytearray(prim)
            mutated[i] ^= bit
            with pytest.raises(BundleError):
                impl.decode_bundle(raw.bundle(bytes(mutated), raw.payload()))


def test_crc_of_wrong_length_rejected(impl: ModuleType) -> None:
    items = [
        b"\x07",
        b"\x00",
        b"\x02",
        raw.IPN_2_1,
        raw.IPN_1_1,
        raw.DTN_NONE,
        b"\x82\x01\x00",
        b"\x01",
    ]
    prim = b"\x89" + b"".join(items) + b"\x42\x00\x00"
    with pytest.raises(DecodeError, match="needs 4 bytes"):
        impl.decode_bundle(raw.bundle(prim, raw.payload()))


def test_unknown_crc_type_rejected(impl: ModuleType) -> None:
    items = [
        b"\x07",
        b"\x00",
        b"\x03",
        raw.IPN_2_1,
        raw.IPN_1_1,
        raw.DTN_NONE,
        b"\x82\x01\x00",
        b"\x01",
    ]
    with pytest.raises(DecodeError, match="CRC type 3"):
        impl.decode_bundle(raw.bundle(raw.block([*items, b"\x41\x00"], 0), raw.payload()))


def test_item_count_must_match_flags_and_crc(impl: ModuleType) -> None:
    # CRC type 1 but only 8 items: the CRC is missing
    items = [
        b"\x07",
        b"\x00",
        b"\x01",
        raw.IPN_2_1,
        raw.IPN_1_1,
        raw.DTN_NONE,
        b"\x82\x01\x00",
        b"\x01",
    ]
    with pytest.raises(DecodeError, match="imply 9"):
        impl.decode_bundle(raw.bundle(raw.block(items, 0), raw.payload()))


def test_no_primary_crc_needs_a_bib_on_the_primary(impl: ModuleType) -> None:
    # §4.3.1: CRC type 0 only when a BIB targets the primary block
    unprotected = raw.bundle(raw.primary(crc_type=0), raw.payload())
    with pytest.raises(ValidationError, match="no CRC"):
        impl.decode_bundle(unprotected)
    impl.decode_bundle(unprotected, validate=False)
    bib = raw.block([b"\x0b", b"\x02", b"\x00", b"\x00", raw.bstr(b"\x81\x00\x01\x00")], 0)
    impl.decode_bundle(raw.bundle(raw.primary(crc_type=0), bib, raw.payload()))
    bib_payload_only = raw.block(
        [b"\x0b", b"\x02", b"\x00", b"\x00", raw.bstr(b"\x81\x01\x01\x00")], 0
    )
    with pytest.raises(ValidationError, match="no CRC"):
        impl.decode_bundle(raw.bundle(raw.primary(crc_type=0), bib_payload_only, raw.payload()))


def test_fragment_fields_present_iff_flag(impl: ModuleType) -> None:
    frag = raw.bundle(raw.primary(flags=b"\x01", extra=[b"\x00", b"\x0a"]), raw.payload())
    b = impl.decode_bundle(frag)
    assert b.is_fragment and b.primary.fragment_offset == 0 and b.primary.total_adu_length == 10
    assert b.bundle_id.fragment_length == 5
    # flag without fields / fields without flag: the item count gives it away
    with pytest.raises(DecodeError):
        impl.decode_bundle(raw.bundle(raw.primary(flags=b"\x01"), raw.payload()))
    with pytest.raises(DecodeError):
        impl.decode_bundle(raw.bundle(raw.primary(extra=[b"\x00", b"\x0a"]), raw.payload()))


def test_fragment_beyond_adu_rejected(impl: ModuleType) -> None:
    frag = raw.bundle(raw.primary(flags=b"\x01", extra=[b"\x08", b"\x0a"]), raw.payload())
    with pytest.raises(ValidationError, match="past the total ADU length"):
        impl.decode_bundle(frag)


def test_admin_record_must_not_request_reports(impl: ModuleType) -> None:
    flags = (BundleFlags.ADMIN_RECORD | BundleFlags.REPORT_DELIVERY).to_bytes(3, "big")
    with pytest.raises(ValidationError, match="administrative record"):
        impl.decode_bundle(raw.bundle(raw.primary(flags=b"\x1a\x00" + flags), raw.payload()))


def test_anonymous_bundle_rules(impl: ModuleType) -> None:
    # §4.2.3: null source -> must-not-fragment set, no status reports
    with pytest.raises(ValidationError, match="MUST_NOT_FRAGMENT"):
        impl.decode_bundle(raw.bundle(raw.primary(src=raw.DTN_NONE), raw.payload()))
    impl.decode_bundle(raw.bundle(raw.primary(src=raw.DTN_NONE, flags=b"\x04"), raw.payload()))
    with pytest.raises(ValidationError, match="status reports"):
        impl.decode_bundle(
            raw.bundle(raw.primary(src=raw.DTN_NONE, flags=b"\x19\x40\x04"), raw.payload())
        )


def test_creation_time_zero_requires_bundle_age(impl: ModuleType) -> None:
    no_clock = raw.primary(creation=b"\x82\x00\x05")
    with pytest.raises(ValidationError, match="Bundle Age"):
        impl.decode_bundle(raw.bundle(no_clock, raw.payload()))
    age = raw.block([b"\x07", b"\x02", b"\x00", b"\x00", raw.bstr(b"\x19\x01\x2c")], 0)
    b = impl.decode_bundle(raw.bundle(no_clock, age, raw.payload()))
    assert b.bundle_age_ms == 300
    assert b.expiry_ms() is None
    assert b.expiry_ms(received_ms=10_000) == 10_000 - 300 + 65536


@pytest.mark.parametrize(
    "eid,exc",
    [
        (b"\x82\x03\x00", EIDError),  # unknown scheme
        (b"\x82\x01\x01", EIDError),  # dtn with integer SSP other than 0
        (b"\x82\x01\x63abc", EIDError),  # dtn SSP without //
        (b"\x82\x02\x81\x01", EIDError),  # ipn with 1 element
        (b"\x82\x02\x83\x01\x1b" + (2**33).to_bytes(8, "big") + b"\x01", EIDError),  # node >= 2^32
        (b"\x83\x01\x00\x00", EIDError),  # 3-item EID array
        (b"\x82\x01\x42ab", DecodeError),  # SSP as a byte string
        (b"\x82\x01\x62\xff\xfe", DecodeError),  # invalid UTF-8
    ],
)
def test_bad_destination_eids(impl: ModuleType, eid: bytes, exc: type) -> None:
    with pytest.raises(exc):
        impl.decode_bundle(raw.bundle(raw.primary(dest=eid), raw.payload()))


def test_two_element_ipn_with_64_bit_fqnn(impl: ModuleType) -> None:
    # RFC 9758: the first element is the fully-qualified node number (authority << 32 | node)
    eid = b"\x82\x02\x82\x1b" + (2**33 + 7).to_bytes(8, "big") + b"\x01"
    b = impl.decode_bundle(raw.bundle(raw.primary(dest=eid), raw.payload()))
    assert str(b.primary.destination) == "ipn:2.7.1"


def test_max_size(impl: ModuleType) -> None:
    with pytest.raises(BundleTooLarge):
        impl.decode_bundle(GOOD, max_size=len(GOOD) - 1)
    impl.decode_bundle(GOOD, max_size=len(GOOD))
    impl.decode_bundle(GOOD, max_size=None)
    assert issubclass(BundleTooLarge, ValidationError)


def test_empty_and_garbage_input(impl: ModuleType) -> None:
    for data in (b"", b"\x00", b"\xff", b"\x9f", b"\x9f\xff", b"\x9f\x80\xff", b"\x1c"):
        with pytest.raises(DecodeError):
            impl.decode_bundle(data)


def test_non_bytes_input_is_a_type_error(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.decode_bundle("9f88")  # type: ignore[arg-type]


def test_reserved_bundle_flags_preserved(impl: ModuleType) -> None:
    data = raw.bundle(raw.primary(flags=b"\x19\x01\x08"), raw.payload())
    b = impl.decode_bundle(data)
    assert b.primary.flags == 0x108
    assert impl.encode_bundle(b) == data

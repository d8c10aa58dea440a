"""Interoperability with pyD3TN's BPv7 codec (``pyd3tn.bundle7``, the µD3TN Python library),
in both directions.

pyD3TN's parser does not verify CRCs, so for bundles *we* encode, every CRC we wrote is checked
against pyD3TN's own ``calculate_crc()`` (which re-encodes the block with its CBOR library: equal
CRCs also show that our encoding is the canonical one). For bundles *pyD3TN* encodes, our decoder
checks the CRCs and we re-encode to the identical bytes.

Notes on pyD3TN: its block-flag enum uses pre-RFC values (DISCARD 0x02, REPORT 0x04), so flags are
compared as numbers; its EIDs know only the two-element ipn form; it rejects unknown block types.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pyd3tn_bundle7 = pytest.importorskip("pyd3tn.bundle7")

from waystation.bundle.builder import build_bundle  # noqa: E402
from waystation.bundle.dtntime import DTN_EPOCH_UNIX_S, CreationTimestamp  # noqa: E402
from waystation.bundle.eid import DTN_NONE, DtnEID, EndpointID, IpnEID  # noqa: E402
from waystation.bundle.model import BlockType, Bundle, CanonicalBlock  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

ipn = st.builds(IpnEID, st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1))
dtn = st.builds(
    DtnEID,
    st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=12),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/~-", max_size=12),
)
endpoint = st.one_of(ipn, dtn)
# realistic DTN times: pyD3TN converts through float seconds, exact for whole seconds
creation_times = st.integers(1, 2_000_000_000).map(lambda s: s * 1000)


def assert_same(ours: Bundle, theirs: object) -> None:
    """Field-by-field comparison of our bundle with a parsed pyD3TN bundle."""
    pb = theirs.primary_block  # type: ignore[attr-defined]
    p = ours.primary
    assert int(pb.bundle_proc_flags) == p.flags
    assert int(pb.crc_type) == p.crc_type
    assert str(pb.destination) == str(p.destination)
    assert str(pb.source) == str(p.source)
    assert str(pb.report_to) == str(p.report_to)
    assert list(pb.creation_time) == list(p.creation)
    assert pb.lifetime == p.lifetime_ms
    assert pb.fragment_offset == p.fragment_offset
    assert pb.total_payload_length == p.total_adu_length
    their_blocks = list(theirs)[1:]  # type: ignore[call-overload]
    assert len(their_blocks) == len(ours.blocks)
    for mine, other in zip(ours.blocks, their_blocks, strict=True):
        assert int(other.block_type) == mine.block_type
        assert other.block_number == mine.number
        assert int(other.block_proc_flags) == mine.flags
        assert int(other.crc_type) == mine.crc_type
        assert bytes(other.data) == bytes(mine.data)


def assert_crcs_match_pyd3tn(theirs: object) -> None:
    for block in theirs:  # type: ignore[attr-defined]
        if int(block.crc_type):
            assert block.crc_provided == block.calculate_crc(), f"CRC of {block!r}"


@SETTINGS
@given(
    src=endpoint,
    dst=endpoint,
    report_to=st.one_of(st.just(DTN_NONE), endpoint),
    payload=st.binary(max_size=2000),
    t=creation_times,
    seq=st.integers(0, 2**32),
    lifetime=st.integers(0, 2**40),
    crc_type=st.sampled_from([1, 2]),
    hop_limit=st.one_of(st.none(), st.integers(1, 255)),
    previous=st.one_of(st.none(), endpoint),
    flags=st.sampled_from([0, 0x4, 0x40, 0x4000 | 0x40000]),
)
def test_pyd3tn_parses_what_we_encode(
    impl: ModuleType,
    src: EndpointID,
    dst: EndpointID,
    report_to: EndpointID,
    payload: bytes,
    t: int,
    seq: int,
    lifetime: int,
    crc_type: int,
    hop_limit: int | None,
    previous: EndpointID | None,
    flags: int,
) -> None:
    ours = build_bundle(
        src,
        dst,
        payload,
        creation=CreationTimestamp(t, seq),
        report_to=report_to,
        lifetime_ms=lifetime,
        crc_type=crc_type,
        hop_limit=hop_limit,
        previous_node=previous,
        flags=flags,
    )
    data = impl.encode_bundle(ours)
    theirs = pyd3tn_bundle7.Bundle.parse(data)
    assert_same(ours, theirs)
    assert_crcs_match_pyd3tn(theirs)
    if hop_limit is not None:
        hop = next(b for b in ours.blocks if b.block_type == BlockType.HOP_COUNT)
        assert hop.data == bytes([0x82]) + bytes(pyd3tn_bundle7.cbor.dumps(hop_limit)) + b"\x00"


def test_pyd3tn_parses_our_fragment(impl: ModuleType) -> None:
    from waystation.bundle.fragment import split_bundle

    whole = build_bundle(
        "ipn:1.1", "ipn:2.1", bytes(range(100)), creation=CreationTimestamp(5000, 1)
    )
    for frag in split_bundle(whole, 40):
        theirs = pyd3tn_bundle7.Bundle.parse(impl.encode_bundle(frag))
        assert_same(frag, theirs)
        assert_crcs_match_pyd3tn(theirs)


@SETTINGS
@given(
    src=st.one_of(ipn, dtn),
    dst=st.one_of(ipn, dtn),
    payload=st.binary(max_size=2000),
    unix_s=st.integers(DTN_EPOCH_UNIX_S + 1, DTN_EPOCH_UNIX_S + 2_000_000_000),
    seq=st.integers(0, 2**32),
    lifetime_s=st.integers(0, 10**6),
    crc_primary=st.sampled_from([1, 2]),
    crc_canonical=st.sampled_from([0, 1, 2]),
    hop_limit=st.one_of(st.none(), st.integers(1, 255)),
    bundle_age_s=st.one_of(st.none(), st.integers(0, 10**5)),
    previous=st.one_of(st.none(), ipn),
)
def test_we_decode_what_pyd3tn_encodes(
    impl: ModuleType,
    src: EndpointID,
    dst: EndpointID,
    payload: bytes,
    unix_s: int,
    seq: int,
    lifetime_s: int,
    crc_primary: int,
    crc_canonical: int,
    hop_limit: int | None,
    bundle_age_s: int | None,
    previous: EndpointID | None,
) -> None:
    data = pyd3tn_bundle7.serialize_bundle7(
        str(src),
        str(dst),
        payload,
        crc_type_primary=crc_primary,
        creation_timestamp=unix_s,
        sequence_number=seq,
        lifetime=lifetime_s,
        hop_limit=hop_limit,
        bundle_age=bundle_age_s,
        previous_node_eid=None if previous is None else str(previous),
        crc_type_canonical=crc_canonical,
    )
    ours = impl.decode_bundle(data)  # checks every CRC pyD3TN wrote
    theirs = pyd3tn_bundle7.Bundle.parse(data)
    assert_same(ours, theirs)
    assert ours.primary.creation == ((unix_s - DTN_EPOCH_UNIX_S) * 1000, seq)
    assert ours.primary.lifetime_ms == lifetime_s * 1000
    assert bytes(ours.payload) == payload
    if hop_limit is not None:
        assert ours.hop_count == (hop_limit, 0)
    if bundle_age_s is not None:
        assert ours.bundle_age_ms == bundle_age_s * 1000
    if previous is not None:
        assert ours.previous_node == previous
    assert impl.encode_bundle(ours) == data  # byte-identical re-encoding


def test_pyd3tn_fragment_and_admin_flags(impl: ModuleType) -> None:
    data = pyd3tn_bundle7.serialize_bundle7(
        "ipn:1.1",
        "ipn:2.1",
        b"fragment-bytes",
        creation_timestamp=DTN_EPOCH_UNIX_S + 100,
        sequence_number=3,
        flags=0x1,
        fragment_offset=10,
        total_adu_length=100,
    )
    ours = impl.decode_bundle(data)
    assert ours.is_fragment
    assert ours.bundle_id.fragment_offset == 10 and ours.bundle_id.fragment_length == 14
    assert impl.encode_bundle(ours) == data


def test_pyd3tn_corrupted_crc_detected(impl: ModuleType) -> None:
    from waystation.bundle.errors import CRCError

    data = bytearray(
        pyd3tn_bundle7.serialize_bundle7(
            "dtn://a/src", "dtn://b/sink", b"payload", creation_timestamp=DTN_EPOCH_UNIX_S + 1
        )
    )
    data[-5] ^= 0xFF  # inside the payload, whose CRC-16 follows
    pyd3tn_bundle7.Bundle.parse(bytes(data))  # pyD3TN does not notice ...
    with pytest.raises(CRCError):  # ... we do
        impl.decode_bundle(bytes(data))


def test_dtn_none_report_to_and_blocks_unknown_to_pyd3tn_stay_ours(impl: ModuleType) -> None:
    # unknown block types are preserved by us; pyD3TN cannot represent them (its BlockType enum)
    ours = build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        b"x",
        creation=CreationTimestamp(1000, 0),
        extension_blocks=[CanonicalBlock(200, 2, 0, 1, b"opaque")],
    )
    data = impl.encode_bundle(ours)
    assert impl.decode_bundle(data) == ours
    with pytest.raises(ValueError):
        pyd3tn_bundle7.Bundle.parse(data)

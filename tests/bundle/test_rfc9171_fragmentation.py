"""Fragmentation (RFC 9171 §5.8) and reassembly (§5.9)."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.bundle.builder import build_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.errors import ReassemblyError, ValidationError
from waystation.bundle.fragment import Reassembler, fragment_bundle, reassemble, split_bundle
from waystation.bundle.model import (
    BlockFlags,
    BlockType,
    Bundle,
    BundleFlags,
    CanonicalBlock,
    CRCType,
)

from tests.strategies import bundles


def original(payload: bytes = bytes(range(200)) * 5) -> Bundle:
    return build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        payload,
        creation=CreationTimestamp(42, 3),
        hop_limit=9,  # replicated (default extension flags)
        extension_blocks=[CanonicalBlock(200, 7, 0, 0, b"only-in-first")],
    )


def test_split_follows_5_8(impl: ModuleType) -> None:
    b = original()
    first, second = split_bundle(b, 300)
    assert bytes(first.payload) + bytes(second.payload) == bytes(b.payload)
    for f, offset in ((first, 0), (second, 300)):
        assert f.is_fragment
        assert f.primary.fragment_offset == offset
        assert f.primary.total_adu_length == 1000
        assert f.bundle_id.source == b.primary.source and f.bundle_id.creation == b.primary.creation
        assert impl.decode_bundle(impl.encode_bundle(f)) == f
    assert {blk.block_type for blk in first.blocks} == {200, BlockType.HOP_COUNT, BlockType.PAYLOAD}
    assert {blk.block_type for blk in second.blocks} == {BlockType.HOP_COUNT, BlockType.PAYLOAD}
    # blocks are copies: changing one fragment's block does not change the other's
    first.blocks[1].data = b"changed"
    assert second.blocks[0].data != b"changed"


def test_a_fragment_without_the_bib_over_the_primary_gets_a_crc(impl: ModuleType) -> None:
    """§4.3.1: a primary block has no CRC only while a BIB targets it. The BIB is not
    replicated, so the later fragments' primaries must carry a CRC (found by hypothesis:
    the fragment decoded as invalid)."""
    b = original()
    b.primary.crc_type = CRCType.NONE
    bib = CanonicalBlock(BlockType.BLOCK_INTEGRITY, 2, 0, 0, b"\x82\x00\x01")  # targets 0
    b.blocks.insert(0, bib)
    assert impl.decode_bundle(impl.encode_bundle(b)) == b
    first, second = split_bundle(b, 300)
    assert first.primary.crc_type == CRCType.NONE  # still under the BIB
    assert second.primary.crc_type == CRCType.CRC32C
    for f in (first, second, *fragment_bundle(b, 700)):
        assert impl.decode_bundle(impl.encode_bundle(f)) == f
    assert reassemble([second, first]) == b


def test_refragmenting_keeps_offsets_relative_to_original() -> None:
    first, second = split_bundle(original(), 300)
    a, c = split_bundle(second, 100)
    assert (a.primary.fragment_offset, c.primary.fragment_offset) == (300, 400)
    assert reassemble([c, first, a]) == original()


def test_must_not_fragment_respected() -> None:
    b = build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        bytes(100),
        creation=CreationTimestamp(1, 0),
        flags=BundleFlags.MUST_NOT_FRAGMENT,
    )
    with pytest.raises(ValidationError, match="must not be fragmented"):
        split_bundle(b, 10)
    with pytest.raises(ValidationError):
        fragment_bundle(b, 50)


def test_split_point_bounds() -> None:
    for n in (0, 1000, 2000, -1):
        with pytest.raises(ValidationError):
            split_bundle(original(), n)


@pytest.mark.parametrize("limit", [90, 128, 333, 999])
def test_fragment_to_size(impl: ModuleType, limit: int) -> None:
    b = original()
    frags = fragment_bundle(b, limit)
    assert len(frags) > 1
    for f in frags:
        assert len(impl.encode_bundle(f)) <= limit
        impl.decode_bundle(impl.encode_bundle(f))
    assert reassemble(frags) == b


def test_fits_already_and_too_small() -> None:
    b = original(b"small")
    assert fragment_bundle(b, 10_000) == [b]
    with pytest.raises(ValidationError, match="cannot fragment"):
        fragment_bundle(original(), 40)


def test_reassembly_errors() -> None:
    first, second = split_bundle(original(), 300)
    with pytest.raises(ReassemblyError, match=r"incomplete|gap"):
        reassemble([first])
    with pytest.raises(ReassemblyError, match="gap"):
        reassemble([second])
    with pytest.raises(ReassemblyError):
        reassemble([])
    with pytest.raises(ReassemblyError, match="not a fragment"):
        reassemble([original()])
    other = split_bundle(original(bytes(1000)), 300)[1]
    other.primary.creation = CreationTimestamp(43, 0)
    with pytest.raises(ReassemblyError, match="different bundles"):
        reassemble([first, other])
    corrupt = split_bundle(original(), 200)[1]
    corrupt.blocks[-1].data = b"\xff" * len(corrupt.payload)
    with pytest.raises(ReassemblyError, match="disagree"):
        reassemble([first, second, corrupt])


def test_overlapping_fragments_from_different_episodes() -> None:
    b = original()
    a1, a2 = split_bundle(b, 600)
    b1, b2 = split_bundle(b, 200)
    assert reassemble([b2, a1]) == b
    assert reassemble([a1, a2, b1, b2]) == b


def test_reassembler_incremental() -> None:
    frags = fragment_bundle(original(), 200)
    r = Reassembler()
    results = [r.add(f) for f in reversed(frags)]
    assert results[:-1] == [None] * (len(frags) - 1)
    assert results[-1] == original()
    assert r.pending() == []
    r.add(frags[0])
    assert len(r.pending()) == 1
    assert r.discard(frags[0].primary.source, frags[0].primary.creation) == [frags[0]]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(bundle=bundles(max_payload=400, allow_fragments=False), data=st.data())
def test_fragment_reassemble_roundtrip(
    impl: ModuleType, bundle: Bundle, data: st.DataObject
) -> None:
    if bundle.primary.flags & BundleFlags.MUST_NOT_FRAGMENT or len(bundle.payload) < 2:
        return
    size = len(impl.encode_bundle(bundle))
    low = size - len(bundle.payload) + 40  # room for the fragment fields and a little payload
    limit = data.draw(st.integers(low, max(low, size - 1)))
    try:
        frags = fragment_bundle(bundle, limit)
    except ValidationError:
        return  # the first fragment's blocks alone do not fit
    if frags == [bundle]:
        assert size <= limit
        return
    for f in frags:
        assert len(impl.encode_bundle(f)) <= limit
        assert impl.decode_bundle(impl.encode_bundle(f)) == f
    order = data.draw(st.permutations(frags))
    assert reassemble(order) == bundle
    replicated = [b for b in bundle.blocks if b.flags & BlockFlags.REPLICATE_IN_EVERY_FRAGMENT]
    for f in frags[1:]:
        assert len(f.blocks) == len([b for b in replicated if b.block_type != 1]) + 1

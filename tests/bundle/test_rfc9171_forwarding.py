"""Per-hop updates of the extension blocks when forwarding (RFC 9171 §5.4 step 4, §4.4)."""

from __future__ import annotations

from types import ModuleType

import pytest
from waystation.bundle.builder import build_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import parse_eid
from waystation.bundle.errors import ValidationError
from waystation.bundle.forwarding import hop_limit_exceeded, is_expired, prepare_for_forwarding
from waystation.bundle.model import BlockType


def test_updates_blocks_without_touching_the_original(impl: ModuleType) -> None:
    b = build_bundle(
        "ipn:1.1",
        "ipn:9.1",
        b"payload",
        creation=CreationTimestamp(0, 4),
        hop_limit=2,
        previous_node="ipn:1.0",
    )
    assert b.bundle_age_ms == 0
    out = prepare_for_forwarding(b, residence_ms=250, local_node=parse_eid("ipn:5.3"))
    assert out.bundle_age_ms == 250
    assert out.hop_count == (2, 1)
    assert out.previous_node == parse_eid("ipn:5.0")
    assert out.blocks[0].block_type == BlockType.PREVIOUS_NODE
    assert out.blocks[0].number == b.block_by_type(BlockType.PREVIOUS_NODE).number
    assert b.hop_count == (2, 0) and b.previous_node == parse_eid("ipn:1.0")  # original unchanged
    assert impl.decode_bundle(impl.encode_bundle(out)) == out
    again = prepare_for_forwarding(out, residence_ms=10)
    assert again.previous_node is None  # removed; this node does not attach one
    assert again.hop_count == (2, 2)
    assert not hop_limit_exceeded(again)
    assert hop_limit_exceeded(prepare_for_forwarding(again, residence_ms=0))


def test_adds_previous_node_block_when_missing(impl: ModuleType) -> None:
    b = build_bundle("ipn:1.1", "ipn:9.1", b"x", creation=CreationTimestamp(5, 0))
    out = prepare_for_forwarding(b, residence_ms=0, local_node=parse_eid("dtn://relay/app"))
    assert out.previous_node == parse_eid("dtn://relay/")
    assert len({blk.number for blk in out.blocks}) == len(out.blocks)
    impl.decode_bundle(impl.encode_bundle(out))


def test_expiry() -> None:
    b = build_bundle(
        "ipn:1.1", "ipn:9.1", b"x", creation=CreationTimestamp(1000, 0), lifetime_ms=500
    )
    assert not is_expired(b, 1499) and is_expired(b, 1500)
    no_clock = build_bundle(
        "ipn:1.1",
        "ipn:9.1",
        b"x",
        creation=CreationTimestamp(0, 0),
        lifetime_ms=500,
        bundle_age_ms=100,
    )
    assert not is_expired(no_clock, 10_000)  # unknown without the reception time
    assert is_expired(no_clock, 10_400, received_ms=10_000)
    assert not is_expired(no_clock, 10_399, received_ms=10_000)
    with pytest.raises(ValidationError):
        prepare_for_forwarding(b, residence_ms=-1)

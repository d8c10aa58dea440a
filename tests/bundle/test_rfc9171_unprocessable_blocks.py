"""Handling of blocks the node cannot process (RFC 9171 §4.2.4, §5.6 step 4)."""

from __future__ import annotations

from waystation.bundle.blockproc import apply_verdict, unprocessable_block_verdict
from waystation.bundle.builder import build_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.model import BlockFlags, Bundle, CanonicalBlock


def bundle_with(*blocks: CanonicalBlock) -> Bundle:
    return build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        b"x",
        creation=CreationTimestamp(1, 0),
        extension_blocks=blocks,
        hop_limit=3,
    )


def test_known_blocks_need_nothing() -> None:
    v = unprocessable_block_verdict(bundle_with())
    assert v.keep_unchanged and not v.report_requested and v.unprocessable == ()


def test_unknown_block_kept_by_default() -> None:
    v = unprocessable_block_verdict(bundle_with(CanonicalBlock(200, 5, 0, 0, b"")))
    assert v.keep_unchanged and v.unprocessable == (5,)


def test_discard_and_report() -> None:
    flags = BlockFlags.DISCARD_IF_UNPROCESSABLE | BlockFlags.REPORT_IF_UNPROCESSABLE
    b = bundle_with(CanonicalBlock(200, 5, flags, 0, b""), CanonicalBlock(201, 6, 0, 0, b""))
    v = unprocessable_block_verdict(b)
    assert v.remove_blocks == (5,) and v.report_requested and not v.delete_bundle
    after = apply_verdict(b, v)
    assert [blk.number for blk in after.blocks] == [6, 7, 1]
    assert len(b.blocks) == 4  # input untouched


def test_delete_wins_over_discard() -> None:
    b = bundle_with(
        CanonicalBlock(200, 5, BlockFlags.DISCARD_IF_UNPROCESSABLE, 0, b""),
        CanonicalBlock(
            201,
            6,
            BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE | BlockFlags.DISCARD_IF_UNPROCESSABLE,
            0,
            b"",
        ),
    )
    v = unprocessable_block_verdict(b)
    assert v.delete_bundle and v.remove_blocks == () and not v.report_requested


def test_known_types_are_configurable() -> None:
    b = bundle_with(CanonicalBlock(200, 5, BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE, 0, b""))
    assert unprocessable_block_verdict(b, known_types={200}).keep_unchanged
    # a node without BPSec support treats BIB/BCB (11, 12) as unprocessable
    bib = bundle_with(
        CanonicalBlock(11, 5, BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE, 0, b"\x81\x01")
    )
    assert unprocessable_block_verdict(bib, known_types={6, 7, 10}).delete_bundle

"""Originating bundles (RFC 9171 §5.2) with build_bundle."""

from __future__ import annotations

from types import ModuleType

import pytest
from waystation.bundle.builder import build_bundle
from waystation.bundle.dtntime import CreationTimestamp, ManualClock, TimestampSource
from waystation.bundle.eid import DTN_NONE, IpnEID, parse_eid
from waystation.bundle.errors import ValidationError
from waystation.bundle.model import BlockType, BundleFlags, CRCType


def test_defaults(impl: ModuleType) -> None:
    ts = TimestampSource(ManualClock(1_000))
    b = build_bundle("ipn:1.1", "ipn:2.1", b"data", timestamps=ts)
    assert b.primary.crc_type == CRCType.CRC32C
    assert b.blocks[-1].crc_type == CRCType.CRC32C
    assert b.primary.creation == (1_000, 0)
    assert b.primary.report_to == DTN_NONE
    assert b.expiry_ms() == 1_000 + 24 * 3600 * 1000
    assert [blk.block_type for blk in b.blocks] == [BlockType.PAYLOAD]
    assert impl.decode_bundle(impl.encode_bundle(b)) == b
    assert build_bundle("ipn:1.1", "ipn:2.1", b"", timestamps=ts).primary.creation == (1_000, 1)


def test_no_clock_adds_bundle_age_block(impl: ModuleType) -> None:
    ts = TimestampSource(ManualClock(0), accurate_clock=False)
    b = build_bundle("ipn:1.1", "ipn:2.1", b"x", timestamps=ts)
    assert b.primary.creation.time_ms == 0
    assert b.bundle_age_ms == 0
    impl.decode_bundle(impl.encode_bundle(b))


def test_optional_blocks_and_report_to(impl: ModuleType) -> None:
    b = build_bundle(
        "dtn://a/app",
        "dtn://b/app",
        b"x",
        creation=CreationTimestamp(5, 0),
        flags=BundleFlags.REPORT_DELIVERY | BundleFlags.STATUS_TIME_REQUESTED,
        hop_limit=16,
        previous_node="dtn://a/app",
        bundle_age_ms=12,
        crc_type=CRCType.CRC16,
    )
    assert b.primary.report_to == parse_eid("dtn://a/")
    assert b.hop_count == (16, 0)
    assert b.previous_node == parse_eid("dtn://a/")
    assert b.bundle_age_ms == 12
    numbers = [blk.number for blk in b.blocks]
    assert numbers[-1] == 1 and len(set(numbers)) == len(numbers)
    assert impl.decode_bundle(impl.encode_bundle(b)) == b


def test_anonymous_bundles(impl: ModuleType) -> None:
    b = build_bundle(DTN_NONE, IpnEID(2, 1), b"x", creation=CreationTimestamp(5, 0))
    assert b.primary.flags & BundleFlags.MUST_NOT_FRAGMENT
    with pytest.raises(ValidationError):
        build_bundle(
            DTN_NONE,
            IpnEID(2, 1),
            b"x",
            creation=CreationTimestamp(5, 0),
            flags=BundleFlags.REPORT_DELIVERY,
        )


def test_invalid_requests_rejected() -> None:
    with pytest.raises(ValidationError):
        build_bundle("ipn:1.1", "ipn:2.1", b"x")  # no timestamp
    with pytest.raises(ValidationError):
        build_bundle("ipn:1.1", "ipn:2.1", b"x", creation=CreationTimestamp(1, 0), hop_limit=0)
    with pytest.raises(ValidationError):
        build_bundle("ipn:1.1", "ipn:2.1", b"x", creation=CreationTimestamp(1, 0), lifetime_ms=-1)

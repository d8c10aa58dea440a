"""The bundle model: equality, bundle IDs and their sortable keys, convenience accessors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import IpnEID
from waystation.bundle.errors import BundleError
from waystation.bundle.model import (
    BlockFlags,
    BundleFlags,
    BundleId,
    CanonicalBlock,
    CRCType,
)

from tests.strategies import eids, uints64

bundle_ids = st.builds(
    BundleId,
    eids,
    st.builds(CreationTimestamp, uints64, uints64),
    st.one_of(st.none(), st.integers(0, 2**40)),
).map(
    lambda b: (
        b
        if b.fragment_offset is None
        else BundleId(b.source, b.creation, b.fragment_offset, b.fragment_offset + 7)
    )
)


def test_flag_values_match_rfc9171() -> None:
    assert BundleFlags.IS_FRAGMENT == 1 << 0
    assert BundleFlags.ADMIN_RECORD == 1 << 1
    assert BundleFlags.MUST_NOT_FRAGMENT == 1 << 2
    assert BundleFlags.ACK_REQUESTED == 1 << 5
    assert BundleFlags.STATUS_TIME_REQUESTED == 1 << 6
    assert BundleFlags.REPORT_RECEPTION == 1 << 14
    assert BundleFlags.REPORT_FORWARDING == 1 << 16
    assert BundleFlags.REPORT_DELIVERY == 1 << 17
    assert BundleFlags.REPORT_DELETION == 1 << 18
    assert BlockFlags.REPLICATE_IN_EVERY_FRAGMENT == 1
    assert BlockFlags.REPORT_IF_UNPROCESSABLE == 2
    assert BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE == 4
    assert BlockFlags.DISCARD_IF_UNPROCESSABLE == 16
    assert CRCType.CRC32C.size == 4


def test_bytes_and_memoryview_data_compare_equal() -> None:
    a = CanonicalBlock(1, 1, 0, 0, b"abc")
    b = CanonicalBlock(1, 1, 0, 0, memoryview(b"xabc")[1:])
    assert a == b
    assert "3 B" in repr(b)


@settings(max_examples=200, deadline=None)
@given(bid=bundle_ids)
def test_bundle_id_key_roundtrip(bid: BundleId) -> None:
    assert BundleId.from_key(bid.key()) == bid
    assert hash(BundleId.from_key(bid.key())) == hash(bid)


@settings(max_examples=100, deadline=None)
@given(t1=uints64, t2=uints64, s1=uints64, s2=uints64)
def test_bundle_id_keys_sort_by_time_then_sequence(t1: int, t2: int, s1: int, s2: int) -> None:
    src = IpnEID(1, 1)
    k1 = BundleId(src, CreationTimestamp(t1, s1)).key()
    k2 = BundleId(src, CreationTimestamp(t2, s2)).key()
    assert (k1 < k2) == ((t1, s1) < (t2, s2))


def test_whole_bundle_key_sorts_before_its_fragments() -> None:
    whole = BundleId(IpnEID(1, 1), CreationTimestamp(5, 0))
    frag = BundleId(IpnEID(1, 1), CreationTimestamp(5, 0), 0, 10)
    assert whole.key() < frag.key()
    assert whole != frag and frag.is_fragment


def test_bad_keys_raise_bundle_errors() -> None:
    for key in (b"", b"\x82\x02", IpnEID(1, 1).to_cbor() + b"\x00" * 5):
        try:
            BundleId.from_key(key)
        except BundleError:
            pass
        else:
            raise AssertionError(f"{key!r} accepted")

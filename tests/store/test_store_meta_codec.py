"""BundleMeta's CBOR record: round trips exactly, and garbage gives StoreCorrupt, nothing else."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.store.api import (
    BundleMeta,
    CustodyState,
    DeletionRecord,
    Disposition,
    InvalidMeta,
    Priority,
    StoreCorrupt,
)

u64 = st.integers(0, 2**64 - 1)
text = st.text(min_size=1, max_size=40).filter(lambda t: len(t.encode("utf-8", "replace")) <= 256)
metas = st.builds(
    BundleMeta,
    received_ms=u64,
    expiry_ms=u64,
    destination=st.text(max_size=40),
    source=st.text(max_size=40),
    state=st.sampled_from(list(CustodyState)),
    queue=st.none() | text,
    priority=st.sampled_from(list(Priority)),
    local_endpoint=st.none() | text,
    retries=st.integers(0, 1000),
    adu_key=st.none() | st.binary(min_size=1, max_size=64),
    fragment_offset=st.none() | u64,
    total_adu_length=st.none() | u64,
    report_to=st.none() | text,
    deletion_reason=st.none() | st.integers(0, 255),
    extra=st.dictionaries(st.text(max_size=8), st.integers() | st.binary(max_size=8), max_size=4),
    size=u64,
    seq=u64,
    checksum=st.integers(0, 2**32 - 1),
)


def _clean(meta: BundleMeta) -> bool:
    try:
        meta.to_cbor()
        meta.validate()
    except InvalidMeta:
        return False
    return True


@settings(max_examples=80, deadline=None)
@given(metas.filter(_clean))
def test_round_trip(meta: BundleMeta) -> None:
    assert BundleMeta.from_cbor(meta.to_cbor()) == meta


@settings(max_examples=60, deadline=None)
@given(metas.filter(_clean), st.integers(0, 2**31), st.sampled_from(list(Disposition)))
def test_deletion_record_round_trip(meta: BundleMeta, seq: int, disposition: Disposition) -> None:
    record = DeletionRecord(seq, b"k", disposition, 4, 99, meta)
    assert DeletionRecord.from_cbor(record.to_cbor()) == record


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_is_store_corrupt(data: bytes) -> None:
    try:
        BundleMeta.from_cbor(data)
    except StoreCorrupt:
        pass
    try:
        DeletionRecord.from_cbor(data)
    except StoreCorrupt:
        pass


@settings(max_examples=100, deadline=None)
@given(
    metas.filter(_clean), st.integers(0, 18), st.sampled_from([None, -1, "x", b"x", 2**70, [], 3.5])
)
def test_mutated_records_are_store_corrupt(meta: BundleMeta, at: int, value: Any) -> None:
    obj = meta.to_cbor_obj()
    obj[at] = value
    try:
        decoded = BundleMeta.from_cbor(cbor2.dumps(obj))
    except StoreCorrupt:
        return
    decoded.validate()  # if it decoded, it must be a valid meta


def test_validate_names_the_field() -> None:
    with pytest.raises(InvalidMeta, match="expiry_ms"):
        BundleMeta(1, -1, "a", "b").validate()
    with pytest.raises(InvalidMeta, match="destination"):
        BundleMeta(1, 1, "a" * 300, "b").validate()
    with pytest.raises(InvalidMeta, match="priority"):
        BundleMeta(1, 1, "a", "b", priority=True).validate()  # type: ignore[arg-type]
    with pytest.raises(InvalidMeta, match="state"):
        BundleMeta(1, 1, "a", "b", state="nope").validate()  # type: ignore[arg-type]

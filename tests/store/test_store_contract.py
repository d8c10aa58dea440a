"""The BundleStore contract, run against both backends (memory reference and LMDB).

What the node relies on: byte-identical round trips keyed by ``BundleId.key()``, duplicate
detection (RFC 9171 §5.6), deletion with a recorded §6.1.1 reason code, the indexes
(destination, expiry, per-neighbour priority queues, pending local delivery, fragments of one
ADU, §5.9) kept in step with every change, and a quota that refuses without side effects.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.bundle.model import BundleId
from waystation.store.api import (
    BundleMeta,
    BundleNotFound,
    BundleStore,
    CustodyState,
    Disposition,
    DuplicateBundle,
    InvalidMeta,
    Priority,
    ReasonCode,
    StoreFull,
    iter_all,
)

from tests.store.bundles import make_wire, meta_for


def put_bundle(store: Any, seq: int, **changes: Any) -> tuple[BundleId, bytes, BundleMeta]:
    kwargs = {
        k: changes.pop(k)
        for k in ("payload_size", "dest_node", "fragment", "lifetime_ms")
        if k in changes
    }
    bid, wire, bundle = make_wire(seq, **kwargs)
    stored = store.put(bid, wire, meta_for(bundle, **changes))
    return bid, wire, stored


def test_backend_satisfies_protocol(store: Any) -> None:
    assert isinstance(store, BundleStore)


def test_put_get_round_trip_is_byte_identical(store: Any) -> None:
    bid, wire, stored = put_bundle(store, 1, payload_size=5000)
    assert store.get(bid) == wire
    assert store.get(bid.key()) == wire  # keyed by BundleId.key() bytes
    assert store.contains(bid)
    assert stored.size == len(wire) and stored.seq > 0
    meta = store.get_meta(bid)
    assert meta == stored
    assert meta.destination == "ipn:2.1" and meta.source == "ipn:1.1"
    assert meta.report_to == "ipn:1.0"


def test_put_does_not_alias_callers_meta(store: Any) -> None:
    bid, wire, bundle = make_wire(1)
    meta = meta_for(bundle, extra={"k": 1})
    store.put(bid, wire, meta)
    meta.extra["k"] = 2
    meta.queue = "ipn:9.0"
    assert store.get_meta(bid).extra == {"k": 1}
    assert store.get_meta(bid).queue is None


def test_duplicate_is_refused_and_original_kept(store: Any) -> None:
    bid, wire, _ = put_bundle(store, 1)
    with pytest.raises(DuplicateBundle) as info:
        store.put(bid, b"other bytes", store.get_meta(bid))
    assert info.value.key == bid.key()
    assert store.get(bid) == wire
    assert store.stats().count == 1


def test_fragments_are_distinct_bundles(store: Any) -> None:
    """§5.9: a fragment's ID includes offset and length, so fragments are not duplicates."""
    a, _, _ = put_bundle(store, 7, fragment=(0, 128))
    b, _, _ = put_bundle(store, 7, fragment=(64, 128))
    whole, _, _ = put_bundle(store, 7)
    assert len({a.key(), b.key(), whole.key()}) == 3
    assert store.stats().count == 3


def test_missing_bundle(store: Any) -> None:
    missing = b"\x00nothing"
    with pytest.raises(BundleNotFound):
        store.get(missing)
    with pytest.raises(BundleNotFound):
        store.get_meta(missing)
    with pytest.raises(BundleNotFound):
        store.update_meta(missing, retries=1)
    with pytest.raises(BundleNotFound):
        store.delete(missing, ReasonCode.TRANSMISSION_CANCELED)
    assert not store.contains(missing)
    with pytest.raises(KeyError):  # BundleNotFound is also a KeyError
        store.get(missing)


def test_delete_records_reason_code_and_disposition(store: Any) -> None:
    bid, _, _ = put_bundle(store, 1)
    record = store.delete(bid, ReasonCode.NO_KNOWN_ROUTE, now_ms=123)
    assert record.reason == 6 and record.disposition is Disposition.DELETED
    assert record.key == bid.key() and record.time_ms == 123
    assert record.meta.deletion_reason == 6 and record.meta.destination == "ipn:2.1"
    assert not store.contains(bid)
    assert store.stats().count == 0 and store.stats().bytes == 0
    assert store.deletions() == [record]

    bid2, _, _ = put_bundle(store, 2)
    fwd = store.delete(bid2, disposition=Disposition.FORWARDED, now_ms=5)
    assert fwd.reason == ReasonCode.NO_ADDITIONAL_INFORMATION
    assert [r.seq for r in store.deletions()] == [record.seq, fwd.seq]
    assert store.deletions(since_seq=record.seq) == [fwd]


def test_deletion_log_is_bounded(make_store: Any) -> None:
    store = make_store(deletion_log=5)
    for i in range(12):
        bid, _, _ = put_bundle(store, i)
        store.delete(bid, ReasonCode.TRAFFIC_PARED, now_ms=i)
    log = store.deletions()
    assert len(log) == 5
    assert [r.time_ms for r in log] == [7, 8, 9, 10, 11]
    assert store.stats().deletions_logged == 5


@pytest.mark.parametrize("reason", [-1, 256, "1", None, True])
def test_bad_reason_code_is_refused_without_deleting(store: Any, reason: Any) -> None:
    bid, _, _ = put_bundle(store, 1)
    with pytest.raises(InvalidMeta):
        store.delete(bid, reason)
    assert store.contains(bid)


def test_by_destination_in_arrival_order(store: Any) -> None:
    ids = [put_bundle(store, i, dest_node=2 if i % 2 else 3)[0] for i in range(10)]
    to2 = store.by_destination("ipn:2.1")
    assert [e.key for e in to2] == [b.key() for b in ids[1::2]]
    assert [e.key for e in store.by_destination("ipn:3.1", limit=2)] == [
        b.key() for b in ids[0:4:2]
    ]
    assert store.by_destination("ipn:4.1") == []


def test_queue_orders_by_priority_then_arrival(store: Any) -> None:
    prios = [Priority.BULK, Priority.EXPEDITED, Priority.NORMAL, Priority.EXPEDITED, Priority.BULK]
    ids = [put_bundle(store, i, queue="ipn:5.0", priority=p)[0] for i, p in enumerate(prios)]
    put_bundle(store, 99, queue="ipn:6.0")
    order = [e.key for e in store.queue("ipn:5.0")]
    assert order == [ids[1].key(), ids[3].key(), ids[2].key(), ids[0].key(), ids[4].key()]
    assert len(store.queue("ipn:5.0", limit=2)) == 2
    assert store.queues() == {"ipn:5.0": 5, "ipn:6.0": 1}


def test_update_meta_moves_indexes_atomically(store: Any) -> None:
    bid, _, _ = put_bundle(store, 1, queue="ipn:5.0")
    new = store.update_meta(bid, queue="ipn:6.0", state=CustodyState.QUEUED, retries=2)
    assert new.queue == "ipn:6.0" and new.retries == 2 and new.state is CustodyState.QUEUED
    assert store.queue("ipn:5.0") == []
    assert [e.key for e in store.queue("ipn:6.0")] == [bid.key()]
    store.update_meta(bid, queue=None, local_endpoint="ipn:2.1", state="local")
    assert store.queues() == {}
    assert [e.key for e in store.pending_local("ipn:2.1")] == [bid.key()]
    assert store.get_meta(bid).state is CustodyState.LOCAL
    store.update_meta(bid, expiry_ms=5)
    assert [e.key for e in store.expiring_before(6)] == [bid.key()]
    store.delete(bid, disposition=Disposition.DELIVERED)
    assert store.pending_local("ipn:2.1") == [] and store.expiring_before(10**15) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"size": 1},
        {"seq": 3},
        {"checksum": 0},
        {"nonsense": 1},
        {"priority": 7},
        {"state": "bogus"},
        {"queue": ""},
        {"retries": -1},
        {"extra": {"x": object()}},
        {"destination": "x" * 300},
    ],
)
def test_update_meta_refuses_bad_changes(store: Any, changes: dict[str, Any]) -> None:
    bid, _, before = put_bundle(store, 1)
    with pytest.raises(InvalidMeta):
        store.update_meta(bid, **changes)
    assert store.get_meta(bid) == before


def test_put_refuses_bad_meta_and_wire(store: Any) -> None:
    bid, wire, bundle = make_wire(1)
    with pytest.raises(InvalidMeta):
        store.put(bid, wire, meta_for(bundle, priority=3))
    with pytest.raises(InvalidMeta):
        store.put(bid, wire, meta_for(bundle, expiry_ms=-5))
    with pytest.raises(InvalidMeta):
        store.put(bid, wire, meta_for(bundle, extra={"f": lambda: 0}))
    with pytest.raises(InvalidMeta):
        store.put(bid, b"", meta_for(bundle))
    with pytest.raises(TypeError):
        store.put(bid, "text", meta_for(bundle))
    with pytest.raises(TypeError):
        store.put(bid, wire, {"not": "meta"})
    with pytest.raises(TypeError):
        store.put(12345, wire, meta_for(bundle))
    assert store.stats().count == 0
    store.put(bid, wire, meta_for(bundle))  # and the good one still goes in
    assert store.get(bid) == wire


def test_pending_local_per_endpoint(store: Any) -> None:
    a = [put_bundle(store, i, local_endpoint="ipn:2.1", state="local")[0] for i in range(3)]
    put_bundle(store, 10, local_endpoint="ipn:2.7", state="local")
    assert [e.key for e in store.pending_local("ipn:2.1")] == [b.key() for b in a]
    assert len(store.pending_local("ipn:2.7")) == 1


def test_fragments_of_one_adu_by_offset(store: Any) -> None:
    later, _, _ = put_bundle(store, 4, fragment=(200, 300))
    first, _, m0 = put_bundle(store, 4, fragment=(0, 300))
    middle, _, _ = put_bundle(store, 4, fragment=(100, 300))
    put_bundle(store, 5, fragment=(0, 300))  # another ADU
    assert m0.adu_key is not None and m0.state is CustodyState.REASSEMBLY
    frags = store.fragments(m0.adu_key)
    assert [e.key for e in frags] == [first.key(), middle.key(), later.key()]
    assert all(e.meta.total_adu_length == 300 for e in frags)


def test_expiry_sweep_in_bounded_batches(store: Any) -> None:
    for i in range(25):
        put_bundle(store, i, expiry_ms=1000 + i)
    keep, _, _ = put_bundle(store, 100, expiry_ms=10**12)
    assert len(store.expiring_before(1010)) == 10
    first = store.sweep_expired(5000, batch=10)
    assert len(first) == 10
    assert [r.meta.expiry_ms for r in first] == list(range(1000, 1010))  # soonest first
    assert all(r.reason == ReasonCode.LIFETIME_EXPIRED for r in first)
    assert all(r.disposition is Disposition.EXPIRED for r in first)
    assert len(store.sweep_expired(5000, batch=10)) == 10
    assert len(store.sweep_expired(5000, batch=10)) == 5
    assert store.sweep_expired(5000, batch=10) == []
    assert [e.key for e in iter_all(store)] == [keep.key()]


def test_expiry_boundary(store: Any) -> None:
    bid, _, _ = put_bundle(store, 1, expiry_ms=1000)
    assert store.sweep_expired(999) == []
    assert [r.key for r in store.sweep_expired(1000)] == [bid.key()]


def test_quota_count_refuses_without_side_effects(make_store: Any) -> None:
    store = make_store(max_count=3)
    ids = [put_bundle(store, i) for i in range(3)]
    before = store.stats()
    with pytest.raises(StoreFull) as info:
        put_bundle(store, 3)
    assert info.value.max_count == 3
    assert store.stats() == before
    for bid, wire, _ in ids:
        assert store.get(bid) == wire
    store.delete(ids[0][0], ReasonCode.DEPLETED_STORAGE)
    put_bundle(store, 3)  # room again


def test_quota_bytes_refuses_without_side_effects(make_store: Any) -> None:
    store = make_store(max_bytes=4000)
    bid, wire, _ = put_bundle(store, 0, payload_size=3000)
    with pytest.raises(StoreFull) as info:
        put_bundle(store, 1, payload_size=1000)
    assert info.value.free_bytes == 4000 - len(wire)
    put_bundle(store, 2, payload_size=100)  # a small one still fits
    assert store.get(bid) == wire
    assert store.stats().bytes <= 4000


def test_duplicate_reported_even_when_full(make_store: Any) -> None:
    store = make_store(max_count=1)
    bid, wire, meta = put_bundle(store, 0)
    with pytest.raises(DuplicateBundle):
        store.put(bid, wire, meta)


def test_entries_pages_in_key_order(store: Any) -> None:
    keys = sorted(put_bundle(store, i)[0].key() for i in range(7))
    page1 = store.entries(limit=3)
    page2 = store.entries(limit=3, after=page1[-1].key)
    page3 = store.entries(limit=3, after=page2[-1].key)
    assert [e.key for e in page1 + page2 + page3] == keys
    assert [e.key for e in iter_all(store, page=2)] == keys


def test_stats(make_store: Any) -> None:
    store = make_store(max_bytes=10**6, max_count=100)
    _, w1, _ = put_bundle(store, 1)
    _, w2, _ = put_bundle(store, 2, payload_size=500)
    s = store.stats()
    assert (s.count, s.bytes, s.max_bytes, s.max_count) == (2, len(w1) + len(w2), 10**6, 100)


_meta_fields = st.fixed_dictionaries(
    {
        "queue": st.one_of(st.none(), st.sampled_from(["ipn:5.0", "ipn:6.0", "dtn://x/"])),
        "priority": st.sampled_from([0, 1, 2]),
        "local_endpoint": st.one_of(st.none(), st.sampled_from(["ipn:2.1", "ipn:2.2"])),
        "expiry_ms": st.integers(0, 2**40),
        "retries": st.integers(0, 5),
        "extra": st.dictionaries(
            st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3
        ),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["put", "update", "delete"]), st.integers(0, 7), _meta_fields),
        max_size=25,
    )
)
def test_random_operations_keep_indexes_consistent(make_store: Any, ops: list[Any]) -> None:
    """Property: after any sequence of puts/updates/deletes every index answers exactly as a
    scan of all metadata would (the reference semantics)."""
    store = make_store()
    for action, n, fields in ops:
        bid, wire, bundle = make_wire(n)
        try:
            if action == "put":
                store.put(bid, wire, meta_for(bundle, **fields))
            elif action == "update":
                store.update_meta(bid, **fields)
            else:
                store.delete(bid, ReasonCode.TRANSMISSION_CANCELED)
        except (DuplicateBundle, BundleNotFound):
            pass
    everything = {e.key: e.meta for e in store.entries()}
    for q in ("ipn:5.0", "ipn:6.0", "dtn://x/"):
        want = sorted(
            (k for k, m in everything.items() if m.queue == q),
            key=lambda k: (2 - everything[k].priority, everything[k].seq),
        )
        assert [e.key for e in store.queue(q)] == want
    for ep in ("ipn:2.1", "ipn:2.2"):
        want = sorted(
            (k for k, m in everything.items() if m.local_endpoint == ep),
            key=lambda k: everything[k].seq,
        )
        assert [e.key for e in store.pending_local(ep)] == want
    exp = sorted(everything, key=lambda k: (everything[k].expiry_ms, k))
    assert [e.key for e in store.expiring_before(2**41, limit=100)] == exp
    assert [e.key for e in store.by_destination("ipn:2.1")] == sorted(
        everything, key=lambda k: everything[k].seq
    )
    s = store.stats()
    assert s.count == len(everything)
    assert s.bytes == sum(m.size for m in everything.values())
    if hasattr(store, "check"):
        assert store.check() == []
    store.close()  # hypothesis runs many examples per fixture: do not pile up open maps

"""Fragmentation (RFC 9171 §5.8) and reassembly (§5.7 step 1, §5.9) in the node's agent.

Manual clock, memory store; reassembly actions are executed synchronously like the service
does (read fragments, ``reassemble``, hand back)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.agent import BundleDeleted, StatusReportGenerated
from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.errors import BundleError
from waystation.bundle.fragment import fragment_bundle, split_bundle
from waystation.bundle.model import BundleFlags
from waystation.bundleops import originate, payload_of
from waystation.fragmentation import (
    MUST_NOT_FRAGMENT_REASON,
    MustNotFragment,
    fragment_wire,
)
from waystation.reassembly import FragmentsReassembled, ReassembleBundle, _reassemble_wires
from waystation.store.api import Disposition, ReasonCode, StoreError
from waystation.store.memory import MemoryBundleStore

from tests.node.harness import T0, Harness

DEST = "dtn://a/app"


class FragHarness(Harness):
    """The shared harness plus the service's reassembly step (synchronous)."""

    def run(self, outputs: Any) -> None:
        super().run(self._expand(list(outputs)))

    def _store(self, action: Any) -> list[Any]:
        return self._expand(super()._store(action))

    def _expand(self, outputs: list[Any]) -> list[Any]:
        out: list[Any] = []
        for action in outputs:
            if not isinstance(action, ReassembleBundle):
                out.append(action)
                continue
            try:
                wire = _reassemble_wires(self.store, action.keys)
            except (BundleError, StoreError, KeyError, ValueError) as exc:  # as the service
                out += self.agent.reassembly_failed(self.now, action.adu, str(exc))
            else:
                out += self.agent.reassembled(self.now, action.adu, wire)
        return out


def _bundle(payload: bytes, *, flags: int = 0, lifetime_ms: int = 3_600_000, seq: int = 1):
    wire, _ = originate(
        source="dtn://src/",
        destination=DEST,
        payload=payload,
        creation=CreationTimestamp(T0 - 1000, seq),
        lifetime_ms=lifetime_ms,
        flags=flags,
        report_to="dtn://src/" if flags else None,
    )
    return wire


def _fragments(wire: bytes, limit: int) -> list[bytes]:
    return [bytes(encode_bundle(f)) for f in fragment_bundle(decode_bundle(wire), limit)]


def _bound(h: Harness) -> None:
    h.run(h.agent.bind(DEST, "client"))


def test_fragments_for_the_node_are_delivered_only_after_reassembly() -> None:
    h = FragHarness()
    _bound(h)
    payload = bytes(range(256)) * 40
    frags = _fragments(_bundle(payload), 2000)
    assert len(frags) >= 5
    for f in reversed(frags[1:]):
        h.receive(f)
        assert h.deliveries == []
    h.receive(frags[0])
    assert h.payloads(DEST) == [payload]
    [whole] = h.deliveries
    assert not decode_bundle(h.store.get(whole.key)).is_fragment
    # the fragments are gone from the store, as delivered (their content lives on)
    frag_deletes = [d for d in h.deleted if d.key != whole.key]
    assert len(frag_deletes) == len(frags)
    assert {d.disposition for d in frag_deletes} == {Disposition.DELIVERED}
    assert len(h.store.entries()) == 1
    assert h.events_of(FragmentsReassembled)
    h.ack_all(DEST)
    assert len(h.store.entries()) == 0


def test_a_fragment_arriving_after_reassembly_is_not_delivered_again() -> None:
    h = FragHarness()
    _bound(h)
    wire = _bundle(b"x" * 5000)
    first, second = (bytes(encode_bundle(b)) for b in split_bundle(decode_bundle(wire), 1000))
    h.receive(first)
    h.receive(second)
    h.ack_all(DEST)
    # another fragmentation episode of the same bundle (different split): content already here
    a, b = (bytes(encode_bundle(x)) for x in split_bundle(decode_bundle(wire), 3000))
    h.receive(a)
    h.receive(b)
    assert h.deliveries == []
    assert len(h.store.entries()) == 0


def test_a_crash_after_the_reassembled_put_delivers_once_and_drops_the_fragments() -> None:
    store = MemoryBundleStore()
    old = FragHarness(store=store)
    frags = _fragments(_bundle(b"q" * 9000), 3000)
    for f in frags:
        old.receive(f)
    # simulate the kill between step 2 (whole put) and step 3 (fragment deletes): restore the
    # fragments into the store next to the reassembled bundle
    for f in frags:
        from waystation.bundleops import inspect
        from waystation.reassembly import fragment_meta

        info = inspect(f, T0, 1 << 30)
        store.put(info.key, f, fragment_meta(info, T0, 1, DEST))
    assert len(store.entries()) == len(frags) + 1
    new = FragHarness(store=store)
    _bound(new)
    new.run(new.agent.restore(new.now, store.entries()))
    assert new.payloads(DEST) == [b"q" * 9000]
    assert len(store.entries()) == 1


def test_fragments_that_disagree_are_deleted_as_unintelligible_with_one_report() -> None:
    h = FragHarness()
    _bound(h)
    wire = _bundle(b"A" * 4000, flags=BundleFlags.REPORT_DELETION)
    a, _ = (bytes(encode_bundle(x)) for x in split_bundle(decode_bundle(wire), 2000))
    forged = _bundle(b"A" * 1000 + b"B" * 3000, flags=BundleFlags.REPORT_DELETION)
    _, b = (bytes(encode_bundle(x)) for x in split_bundle(decode_bundle(forged), 1500))
    h.receive(a)
    h.receive(b)
    assert h.deliveries == []
    reasons = {d.reason for d in h.deleted}
    assert reasons == {ReasonCode.BLOCK_UNINTELLIGIBLE}
    reports = [e for e in h.events_of(StatusReportGenerated) if e.kind == "deletion"]
    assert len(reports) == 1


def test_incomplete_fragments_expire_with_their_lifetime() -> None:
    h = FragHarness()
    _bound(h)
    frags = _fragments(_bundle(b"z" * 6000, lifetime_ms=5000), 2500)
    h.receive(frags[0])
    h.clock.advance(10_000)
    h.run(h.agent.tick(h.now))
    assert [d.disposition for d in h.deleted] == [Disposition.EXPIRED]
    assert len(h.store.entries()) == 0 and h.deliveries == []


@settings(max_examples=30, deadline=None)
@given(
    payload=st.binary(min_size=2, max_size=3000),
    cuts=st.lists(st.integers(min_value=1, max_value=2999), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_any_split_and_arrival_order_reassembles_to_the_original(
    payload: bytes, cuts: list[int], order: Any
) -> None:
    h = FragHarness()
    _bound(h)
    bundle = decode_bundle(_bundle(payload))
    points = sorted({c for c in cuts if 0 < c < len(payload)})
    pieces, rest, base = [], bundle, 0
    for p in points:
        first, rest = split_bundle(rest, p - base)
        pieces.append(first)
        base = p
    pieces.append(rest)
    wires = [bytes(encode_bundle(p)) for p in pieces]
    order.shuffle(wires)
    for w in wires:
        h.receive(w)
    assert h.payloads(DEST) == [payload]


# --- forwarding (§5.8) ------------------------------------------------------------------------
def test_a_bundle_above_the_link_limit_is_split_into_fragments_that_fit() -> None:
    wire = _bundle(bytes(200 * 1024))
    pieces = fragment_wire(wire, 60_000)
    assert len(pieces) == 4 and all(len(p) <= 60_000 for p in pieces)
    assert payload_of(_reassemble_from(pieces))[0] == bytes(200 * 1024)
    assert fragment_wire(wire, len(wire)) == [wire]


def _reassemble_from(pieces: list[bytes]) -> bytes:
    store = MemoryBundleStore()
    from waystation.bundleops import inspect

    keys = []
    for p in pieces:
        info = inspect(p, T0, 1 << 30)
        store.put(info.key, p, fragment_meta_for(info))
        keys.append(info.key)
    return _reassemble_wires(store, tuple(keys))


def fragment_meta_for(info: Any) -> Any:
    from waystation.reassembly import fragment_meta

    return fragment_meta(info, T0, 1, None)


def test_must_not_fragment_too_big_is_refused_and_deleted_with_reason_6() -> None:
    wire = _bundle(b"m" * 5000, flags=BundleFlags.MUST_NOT_FRAGMENT | BundleFlags.REPORT_DELETION)
    with pytest.raises(MustNotFragment):
        fragment_wire(wire, 1000)
    h = FragHarness(node_id="dtn://b/")
    h.run(h.agent.link_up(h.now, "udp1", "dtn://a/"))
    h.receive(wire, "other")
    [tx] = h.tx
    h.tx.clear()
    h.run(h.agent.forwarding_failed(h.now, tx.key, tx.link_id, MUST_NOT_FRAGMENT_REASON, "big"))
    deleted = [e for e in h.events_of(BundleDeleted) if e.key == tx.key]
    assert [(e.reason, e.disposition) for e in deleted] == [(6, Disposition.DELETED)]
    assert any(e.kind == "deletion" and e.reason == 6 for e in h.events_of(StatusReportGenerated))
    assert h.store.contains(tx.key) is False


class RejectingHarness(FragHarness):
    """The security policy (as the service's hook) rejects every reassembled bundle."""

    def _store(self, action: Any) -> list[Any]:
        if action.origin == "link:reassembly":
            return self.agent.security_rejected(self.now, action.key, 15, "signature fails")
        return super()._store(action)


def test_a_reassembled_bundle_rejected_by_security_takes_its_fragments_with_it() -> None:
    h = RejectingHarness()
    _bound(h)
    wire = _bundle(b"s" * 6000, flags=BundleFlags.REPORT_DELETION)
    for f in _fragments(wire, 2500):
        h.receive(f)
    assert h.deliveries == []
    assert [e.meta.destination for e in h.store.entries()] == ["dtn://src/"]  # the report only
    assert {d.reason for d in h.deleted} == {15}
    reports = [e for e in h.events_of(StatusReportGenerated) if e.kind == "deletion"]
    assert [r.reason for r in reports] == [15]  # one report, for the whole bundle
    # a late fragment of the same bundle (another fragmentation episode) goes the same way
    late, _ = (bytes(encode_bundle(x)) for x in split_bundle(decode_bundle(wire), 100))
    h.receive(late)
    assert h.deliveries == [] and h.deleted[-1].reason == 15
    assert len(h.store.entries()) == 1


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(min_size=2, max_size=6000), limit=st.integers(200, 7000))
def test_fragment_wire_fits_every_piece_and_the_pieces_reassemble(payload: bytes, limit: int) -> None:
    wire = _bundle(payload)
    pieces = fragment_wire(wire, limit)
    assert all(len(p) <= limit for p in pieces)
    if len(pieces) > 1:
        assert payload_of(_reassemble_from(pieces))[0] == payload
    else:
        assert pieces == [wire] and len(wire) <= limit

"""The sans-I/O bundle processing agent against RFC 9171 §5, with a manual clock."""

from __future__ import annotations

import pytest
from waystation.agent import (
    AdminRecordReceived,
    AgentConfig,
    BundleForwarded,
    BundleRejected,
    DuplicateSuppressed,
    StatusReportGenerated,
    TransmissionFailed,
)
from waystation.bundle.admin import decode_admin_record
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.model import BundleFlags
from waystation.bundleops import inspect, originate, payload_of
from waystation.store.api import Disposition, ReasonCode
from waystation.store.memory import MemoryBundleStore

from tests.node.harness import T0, Harness


def remote_bundle(
    dest: str = "dtn://a/inbox",
    payload: bytes = b"remote",
    *,
    src: str = "dtn://z/app",
    t: int = T0,
    seq: int = 0,
    lifetime: int = 60_000,
    flags: int = 0,
    report_to: str | None = None,
    hop_limit: int | None = None,
) -> bytes:
    wire, _ = originate(
        source=src,
        destination=dest,
        payload=payload,
        creation=CreationTimestamp(t, seq),
        lifetime_ms=lifetime,
        flags=flags,
        report_to=report_to,
        hop_limit=hop_limit,
    )
    return wire


# ------------------------------------------------------------------------------------------
# §5.2 transmission and §5.7 local delivery
# ------------------------------------------------------------------------------------------
def test_send_is_answered_only_after_the_store_is_durable() -> None:
    h = Harness(defer_store=True)
    token = h.send("dtn://a/inbox", b"hello")
    assert token not in h.completed and len(h.deferred) == 1
    h.flush_store()
    assert h.completed[token].destination == "dtn://a/inbox"
    assert h.store.contains(h.completed[token].key)


def test_local_delivery_waits_for_the_app_and_releases_only_on_ack() -> None:
    h = Harness()
    h.send("dtn://a/inbox", b"one")
    h.send("dtn://a/inbox", b"two")
    assert h.deliveries == []  # nobody receiving yet: bundles wait in the store
    h.run(h.agent.bind("dtn://a/inbox", "client-1"))
    assert h.payloads("dtn://a/inbox") == [b"one", b"two"]
    assert h.store.stats().count == 2  # delivered but not acknowledged: still held
    h.ack_all("dtn://a/inbox")
    assert h.store.stats().count == 0
    assert {d.disposition for d in h.deleted} == {Disposition.DELIVERED}


def test_unacknowledged_deliveries_are_redelivered_first_and_in_order() -> None:
    h = Harness()
    for i in range(5):
        h.send("dtn://a/inbox", bytes([i]))
    h.run(h.agent.bind("dtn://a/inbox", "c1", window=2))
    assert h.payloads("dtn://a/inbox") == [b"\x00", b"\x01"]  # window bounds in-flight
    first = h.deliveries.pop(0)
    h.run(h.agent.app_acked(h.now, "dtn://a/inbox", first.key))
    assert h.payloads("dtn://a/inbox") == [b"\x01", b"\x02"]
    h.run(h.agent.consumer_gone("c1"))  # client vanished mid-stream
    h.deliveries.clear()
    h.run(h.agent.bind("dtn://a/inbox", "c2", window=10))
    assert h.payloads("dtn://a/inbox") == [b"\x01", b"\x02", b"\x03", b"\x04"]


def test_a_second_client_cannot_steal_a_bound_endpoint() -> None:
    h = Harness()
    h.run(h.agent.bind("dtn://a/inbox", "c1"))
    with pytest.raises(ValueError, match="already bound"):
        h.agent.bind("dtn://a/inbox", "c2")


def test_ack_for_unknown_bundle_is_a_key_error() -> None:
    h = Harness()
    h.run(h.agent.register("dtn://a/inbox"))
    with pytest.raises(KeyError):
        h.agent.app_acked(h.now, "dtn://a/inbox", b"nope")


def test_transient_registration_disappears_with_its_client() -> None:
    h = Harness()
    h.run(h.agent.register("dtn://a/ping", transient=True))
    h.run(h.agent.bind("dtn://a/ping", "c1"))
    h.run(h.agent.consumer_gone("c1"))
    assert not h.agent.is_registered("dtn://a/ping")


def test_submission_with_foreign_source_is_refused() -> None:
    h = Harness()
    token = h.send("dtn://b/x", source="dtn://evil/x")
    assert h.failed[token][0] == "bad-argument"


def test_oversize_bundle_is_refused_precisely() -> None:
    h = Harness(config=AgentConfig(max_bundle_size=1000))
    token = h.send("dtn://b/x", b"x" * 2000)
    assert h.failed[token][0] == "payload-too-large"


def test_store_full_fails_the_submission_and_holds_nothing() -> None:
    h = Harness(store=MemoryBundleStore(max_count=1))
    ok = h.send("dtn://a/inbox", b"1")
    full = h.send("dtn://a/inbox", b"2")
    assert ok in h.completed
    assert h.failed[full][0] == "store-full"
    assert len(h.agent.held) == 1


# ------------------------------------------------------------------------------------------
# §5.4 forwarding
# ------------------------------------------------------------------------------------------
def test_forwarding_waits_for_a_link_then_releases_on_ack() -> None:
    h = Harness()
    h.router.add("dtn://c/*", "dtn://b/")
    h.send("dtn://c/app", b"far")
    assert h.tx == [] and h.agent.snapshot()["places"]["queue"] == 1
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    assert len(h.tx) == 1 and h.tx[0].link_id == "lb"
    h.complete_tx(h.tx[0], ok=True)
    assert h.store.stats().count == 0
    assert h.deleted[-1].disposition == Disposition.FORWARDED
    assert h.events_of(BundleForwarded)[0].neighbour == "dtn://b/"


def test_failed_transmission_keeps_custody_and_retries() -> None:
    h = Harness()
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    h.send("dtn://b/app", b"direct")  # direct neighbour: no route needed
    assert len(h.tx) == 1
    h.complete_tx(h.tx[0], ok=False)
    assert h.events_of(TransmissionFailed)
    assert len(h.tx) == 1  # retried on the same (still up) link
    assert h.store.stats().count == 1
    h.run(h.agent.link_down(h.now, "lb"))
    h.complete_tx(h.tx[0], ok=False)
    assert h.tx == [] and h.store.stats().count == 1  # waits for the link
    h.run(h.agent.link_up(h.now, "lb2", "dtn://b/"))
    assert h.tx[0].link_id == "lb2"


def test_bundle_without_route_waits_until_a_route_appears() -> None:
    h = Harness()
    h.send("dtn://far/app")
    assert h.agent.snapshot()["places"]["waiting"] == 1
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    assert h.tx == []
    h.router.add("*", "dtn://b/")
    h.run(h.agent.routes_changed(h.now))
    assert len(h.tx) == 1


def test_link_window_limits_transmissions_in_flight() -> None:
    h = Harness(config=AgentConfig(link_window=3))
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    for i in range(10):
        h.send("dtn://b/app", bytes([i]))
    assert len(h.tx) == 3
    h.complete_tx(h.tx[0])
    assert len(h.tx) == 3


def test_link_window_bytes_limits_the_bytes_in_flight_but_always_lets_one_go() -> None:
    h = Harness(config=AgentConfig(link_window=100, link_window_bytes=3000))
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    for i in range(6):
        h.send("dtn://b/app", bytes([i]) * 1000)  # ~1,050 bytes on the wire each
    assert len(h.tx) == 3  # the third crosses 3,000 bytes; no fourth while it is out
    h.complete_tx(h.tx[0])
    assert len(h.tx) == 3
    h.complete_tx(h.tx[0], ok=False)  # a failed one frees its bytes as well (and re-queues)
    assert len(h.tx) == 3
    big = Harness(config=AgentConfig(link_window=100, link_window_bytes=100))
    big.run(big.agent.link_up(big.now, "lb", "dtn://b/"))
    big.send("dtn://b/app", b"x" * 5000)
    big.send("dtn://b/app", b"y" * 10)
    assert len(big.tx) == 1  # over the byte window alone: still sent, one at a time
    big.complete_tx(big.tx[0])
    assert len(big.tx) == 1


def test_transmitted_many_gives_the_outputs_of_one_transmitted_per_bundle() -> None:
    """The batched form (every final XFER_ACK of one read) pumps each neighbour once at the
    end, yet releases, re-routes and starts the same bundles as one call per outcome."""

    def run(batched: bool) -> list[tuple[str, bytes]]:
        h = Harness(config=AgentConfig(link_window=4))
        h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
        for i in range(12):
            h.send("dtn://b/app", bytes([i]))
        first = list(h.tx)
        outcomes = [
            (t.key, t.link_id, i != 1, "" if i != 1 else "lost") for i, t in enumerate(first)
        ]
        h.tx.clear()
        n_events = len(h.events)
        if batched:
            outputs = h.agent.transmitted_many(h.now, outcomes)
        else:
            outputs = [o for args in outcomes for o in h.agent.transmitted(h.now, *args)]
        h.run(outputs)
        return sorted(
            [(type(o).__name__, o.key) for o in outputs]
            + [(type(e).__name__, e.key) for e in h.events[n_events:] if hasattr(e, "key")]
        )

    one_by_one, batched = run(False), run(True)
    assert batched == one_by_one
    # the window (4) refilled: three released, the failed one queued again
    assert sum(name == "TransmitBundle" for name, _ in batched) == 4
    assert sum(name == "DeleteBundle" for name, _ in batched) == 3


def test_expedited_bundles_leave_first() -> None:
    h = Harness()
    h.router.add("*", "dtn://b/")
    h.send("dtn://c/x", b"bulk", priority=0)
    h.send("dtn://c/x", b"urgent", priority=2)
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    assert [payload_of(h.store.get(t.key))[0] for t in h.tx] == [b"urgent", b"bulk"]


def test_forwarded_bundle_gets_previous_node_age_and_hop_count() -> None:
    h = Harness(config=AgentConfig(hop_limit=5))
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    h.send("dtn://b/app", b"p")
    h.clock.advance(250)
    from waystation.bundle import codec

    bundle = codec.decode_bundle(h.wire_for(h.tx[0]))
    assert str(bundle.previous_node) == "dtn://a/"
    assert bundle.hop_count is not None and bundle.hop_count.count == 1


# ------------------------------------------------------------------------------------------
# §5.6 reception
# ------------------------------------------------------------------------------------------
def test_garbage_from_a_link_is_refused_not_raised() -> None:
    h = Harness()
    token = h.receive(b"\x00garbage")
    assert h.receptions[token][0] is False
    assert h.events_of(BundleRejected)


def test_received_bundle_is_acknowledged_only_once_stored() -> None:
    h = Harness(defer_store=True)
    token = h.receive(remote_bundle())
    assert token not in h.receptions
    h.flush_store()
    assert h.receptions[token] == (True, "")


def test_duplicates_are_suppressed_but_acknowledged() -> None:
    h = Harness()
    wire = remote_bundle()
    h.receive(wire)
    again = h.receive(wire)
    assert h.receptions[again] == (True, "dup")
    assert h.events_of(DuplicateSuppressed)
    h.run(h.agent.bind("dtn://a/inbox", "c"))
    h.ack_all("dtn://a/inbox")
    later = h.receive(wire)  # released, but remembered until it expires
    assert h.receptions[later] == (True, "dup")


def test_expired_on_arrival_is_deleted_with_reason_1_and_reported() -> None:
    h = Harness()
    wire = remote_bundle(t=T0 - 120_000, flags=BundleFlags.REPORT_DELETION, report_to="dtn://z/")
    token = h.receive(wire)
    assert h.receptions[token][0] is True
    reports = h.events_of(StatusReportGenerated)
    assert [(r.kind, r.reason) for r in reports] == [("deletion", ReasonCode.LIFETIME_EXPIRED)]
    assert h.agent.held.keys() == {k for k in h.agent.held}  # only the report is held
    assert all(e.info.is_admin for e in h.agent.held.values())


def test_hop_limit_exceeded_is_deleted_with_reason_9() -> None:
    from waystation.bundle import codec
    from waystation.bundle.model import BlockType, hop_count_data

    wire = remote_bundle(dest="dtn://c/x", hop_limit=1)
    bundle = codec.decode_bundle(wire)
    bundle.block_by_type(BlockType.HOP_COUNT).data = hop_count_data(1, 2)
    h = Harness()
    h.receive(codec.encode_bundle(bundle))
    deleted = [e for e in h.events if type(e).__name__ == "BundleDeleted"]
    assert deleted[0].reason == ReasonCode.HOP_LIMIT_EXCEEDED
    assert h.store.stats().count == 0


def test_reception_report_when_requested() -> None:
    h = Harness()
    h.router.add("*", "dtn://b/")
    h.receive(remote_bundle(flags=BundleFlags.REPORT_RECEPTION, report_to="dtn://z/"))
    reports = h.events_of(StatusReportGenerated)
    assert [r.kind for r in reports] == ["reception"]
    report = next(x for x in h.agent.held.values() if x.info.is_admin)
    assert report.info.destination == "dtn://z/"
    record = decode_admin_record(payload_of(h.store.get(report.info.key))[0])
    assert record.received.asserted and not record.delivered.asserted


# ------------------------------------------------------------------------------------------
# §5.10 lifetime expiry, §6.1 reports
# ------------------------------------------------------------------------------------------
def test_lifetime_expiry_deletes_with_reason_1_at_the_deadline() -> None:
    h = Harness()
    token = h.send("dtn://a/inbox", lifetime_ms=10_000, reports=frozenset({"deletion"}))
    subject = h.completed[token].key
    assert h.agent.next_deadline() == T0 + 10_000
    h.clock.advance(9_999)
    h.run(h.agent.tick(h.now))
    assert h.deleted == []
    h.clock.advance(1)
    h.run(h.agent.tick(h.now))
    assert [(d.reason, d.disposition) for d in h.deleted if d.key == subject] == [
        (ReasonCode.LIFETIME_EXPIRED, Disposition.EXPIRED)
    ]
    # the deletion report went to the node itself (default report-to) and was consumed there
    assert h.events_of(AdminRecordReceived)


def test_delivery_report_reaches_a_registered_report_endpoint() -> None:
    h = Harness()
    h.run(h.agent.bind("dtn://a/reports", "r"))
    h.send("dtn://a/inbox", reports=frozenset({"delivery"}), report_to="dtn://a/reports")
    h.run(h.agent.bind("dtn://a/inbox", "c"))
    h.ack_all("dtn://a/inbox")
    [d] = [d for d in h.deliveries if d.endpoint == "dtn://a/reports"]
    payload, admin = payload_of(h.store.get(d.key))
    assert admin and decode_admin_record(payload).delivered.asserted


def test_admin_records_never_trigger_reports() -> None:
    h = Harness()
    h.receive(
        remote_bundle(
            flags=BundleFlags.ADMIN_RECORD | BundleFlags.REPORT_RECEPTION, report_to="dtn://z/"
        )
    )
    assert not h.events_of(StatusReportGenerated)


# ------------------------------------------------------------------------------------------
# echo service, restart
# ------------------------------------------------------------------------------------------
def test_echo_service_returns_the_payload_to_the_source() -> None:
    h = Harness(ipn=7)
    h.router.add("*", "dtn://b/")
    h.run(h.agent.link_up(h.now, "lb", "dtn://b/"))
    h.receive(remote_bundle(dest="ipn:7.2047", payload=b"ping!", src="dtn://z/pinger"))
    [tx] = h.tx
    info = inspect(h.store.get(tx.key), h.now, 10**6)
    assert info.destination == "dtn://z/pinger" and info.source == "ipn:7.2047"
    assert payload_of(h.store.get(tx.key))[0] == b"ping!"


def test_restart_resumes_every_stored_bundle_and_registration_order() -> None:
    store = MemoryBundleStore()
    h = Harness(store=store)
    h.router.add("*", "dtn://b/")
    for i in range(3):
        h.send("dtn://a/inbox", bytes([i]))
    h.send("dtn://c/far", b"fwd")
    # "crash": a brand-new agent over the same store
    h2 = Harness(store=store)
    h2.router.add("*", "dtn://b/")
    h2.run(h2.agent.restore(h2.now, store.entries()))
    h2.run(h2.agent.bind("dtn://a/inbox", "c"))
    assert h2.payloads("dtn://a/inbox") == [b"\x00", b"\x01", b"\x02"]
    h2.run(h2.agent.link_up(h2.now, "lb", "dtn://b/"))
    assert len(h2.tx) == 1


def test_restore_expires_what_expired_while_down() -> None:
    store = MemoryBundleStore()
    h = Harness(store=store)
    h.send("dtn://a/inbox", lifetime_ms=1000)
    h2 = Harness(store=store)
    h2.clock.advance(5000)
    h2.run(h2.agent.restore(h2.now, store.entries()))
    assert h2.deleted[0].reason == ReasonCode.LIFETIME_EXPIRED
    assert store.stats().count == 0


def test_app_acked_many_gives_the_outputs_of_one_app_acked_per_key() -> None:
    """An application's batched ack (one frame, many keys) starts the next deliveries once,
    yet releases and delivers the same bundles as one call per key; unknown keys are
    reported back and change nothing."""

    def run(batched: bool) -> tuple[list[tuple[str, bytes]], list[bytes]]:
        h = Harness()
        h.run(h.agent.bind("dtn://a/inbox", "c", window=4))
        for i in range(10):
            h.receive(remote_bundle(seq=i))
        keys = [d.key for d in h.deliveries] + [b"not-a-key"]
        if batched:
            outputs, missing = h.agent.app_acked_many(h.now, "dtn://a/inbox", keys)
        else:
            outputs, missing = [], []
            for key in keys:
                try:
                    outputs += h.agent.app_acked(h.now, "dtn://a/inbox", key)
                except KeyError:
                    missing.append(key)
        return sorted((type(o).__name__, o.key) for o in outputs), missing

    one_by_one, batched = run(False), run(True)
    assert batched == one_by_one
    names = [name for name, _ in batched[0]]
    assert names.count("DeliverBundle") == 4 and names.count("DeleteBundle") == 4
    assert batched[1] == [b"not-a-key"]


def test_released_ids_are_remembered_up_to_seen_max_newest_first() -> None:
    """§5.9 duplicate suppression is bounded: beyond ``seen_max`` the oldest released IDs are
    forgotten at the next tick, the newest are still refused as duplicates, and the set stops
    growing however many bundles pass through."""
    h = Harness(config=AgentConfig(seen_max=100))
    h.run(h.agent.bind("dtn://a/inbox", "c"))
    wires = [remote_bundle(seq=i, lifetime=3_600_000) for i in range(1_500)]
    for wire in wires:
        h.receive(wire)
        h.ack_all("dtn://a/inbox")
    assert h.store.stats().count == 0
    h.run(h.agent.tick(h.now))
    assert len(h.agent._seen) == 100
    assert h.receptions[h.receive(wires[-1])] == (True, "dup")
    assert h.receptions[h.receive(wires[-100])] == (True, "dup")
    assert h.receptions[h.receive(wires[0])] != (True, "dup")


def test_restart_remembers_released_bundles_from_the_deletion_log_until_they_expire() -> None:
    """§5.9 across a crash: what left custody before the restart is still a duplicate (the
    service feeds the store's deletion log to ``remember_released``), until it expires."""
    store = MemoryBundleStore()
    h = Harness(store=store)
    wire = remote_bundle(lifetime=60_000)
    h.receive(wire)
    h.run(h.agent.bind("dtn://a/inbox", "c"))
    h.ack_all("dtn://a/inbox")
    assert store.stats().count == 0
    log = [(r.key, r.meta.expiry_ms) for r in store.deletions()]
    assert len(log) == 1
    h2 = Harness(store=store)
    h2.run(h2.agent.restore(h2.now, store.entries()))
    h2.agent.remember_released(h2.now, log)
    assert h2.receptions[h2.receive(wire)] == (True, "dup")
    # once its lifetime is over the key is forgotten (and a late copy is expired anyway)
    h3 = Harness(store=store)
    h3.clock.advance(61_000)
    h3.agent.remember_released(h3.now, log)
    assert h3.agent._seen == {}


def test_agent_meta_fields_land_where_their_names_say() -> None:
    """Agent._meta builds BundleMeta positionally (hot path): a reordered dataclass must fail
    here, not silently swap fields in every stored record."""
    import dataclasses

    from waystation.store.api import BundleMeta

    assert [f.name for f in dataclasses.fields(BundleMeta)][:15] == [
        "received_ms", "expiry_ms", "destination", "source", "state", "queue", "priority",
        "local_endpoint", "retries", "adu_key", "fragment_offset", "total_adu_length",
        "report_to", "deletion_reason", "extra",
    ]  # fmt: skip
    h = Harness()
    h.run(h.agent.bind("dtn://a/inbox", "c"))
    h.receive(remote_bundle(report_to="dtn://z/"))
    (entry,) = h.store.entries()
    meta = entry.meta
    assert (meta.destination, meta.source, meta.report_to) == (
        "dtn://a/inbox",
        "dtn://z/app",
        "dtn://z/",
    )
    assert meta.local_endpoint == "dtn://a/inbox" and meta.queue is None and meta.retries == 0
    assert meta.extra["lt"] == 60_000

"""Hypothesis sweeps random sequences of agent inputs and checks custody invariants.

Invariants (the agent's promises in its module docstring):
* custody == store: every bundle the agent holds is stored, and everything stored is held;
* every application submission is answered exactly once;
* nothing is deleted twice; forwarded only after a successful transfer; delivered only after
  an application ack or by a node service;
* every held bundle is in exactly one place (local queue, neighbour queue/in flight, waiting).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundleops import originate
from waystation.store.api import Disposition

from tests.node.harness import Harness

ENDPOINTS = ["dtn://a/inbox", "dtn://a/other"]
REMOTE = ["dtn://b/x", "dtn://c/y", "dtn://a/echo"]
LINKS = {"l1": "dtn://b/", "l2": "dtn://c/"}


class AgentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.h.router.add("dtn://c/*", "dtn://c/")
        self.tokens: list[object] = []
        self.acked_transfers: set[bytes] = set()
        self.app_acked: set[bytes] = set()
        self.remote_seq = 0

    @rule(
        dest=st.sampled_from(ENDPOINTS + REMOTE),
        size=st.integers(0, 64),
        lifetime=st.integers(1, 20_000),
        reports=st.booleans(),
    )
    def submit(self, dest: str, size: int, lifetime: int, reports: bool) -> None:
        kw = {"reports": frozenset({"delivery", "deletion", "forwarding"})} if reports else {}
        self.tokens.append(self.h.send(dest, b"p" * size, lifetime_ms=lifetime, **kw))

    @rule(dest=st.sampled_from(ENDPOINTS + REMOTE), dup=st.booleans(), garbage=st.booleans())
    def receive(self, dest: str, dup: bool, garbage: bool) -> None:
        if garbage:
            self.h.receive(b"\x9f\x00junk")
            return
        if not dup:
            self.remote_seq += 1
        wire, _ = originate(
            source="dtn://z/src",
            destination=dest,
            payload=b"r",
            creation=CreationTimestamp(self.h.now, self.remote_seq),
            lifetime_ms=30_000,
        )
        self.h.receive(wire)

    @rule(
        endpoint=st.sampled_from(ENDPOINTS),
        consumer=st.sampled_from(["c1", "c2"]),
        window=st.integers(1, 4),
    )
    def bind(self, endpoint: str, consumer: str, window: int) -> None:
        bound = self.h.agent.bound_consumer(endpoint)
        if bound is None or bound == consumer:
            self.h.run(self.h.agent.bind(endpoint, consumer, window))

    @rule(consumer=st.sampled_from(["c1", "c2"]))
    def vanish(self, consumer: str) -> None:
        self.h.deliveries = [d for d in self.h.deliveries if d.consumer != consumer]
        self.h.run(self.h.agent.consumer_gone(consumer))

    @precondition(lambda self: self.h.deliveries)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        d = data.draw(st.sampled_from(self.h.deliveries))
        self.h.deliveries.remove(d)
        if d.key in self.h.agent.held:
            self.app_acked.add(d.key)
            self.h.run(self.h.agent.app_acked(self.h.now, d.endpoint, d.key))

    @rule(link=st.sampled_from(sorted(LINKS)), up=st.booleans())
    def link(self, link: str, up: bool) -> None:
        if up:
            self.h.run(self.h.agent.link_up(self.h.now, link, LINKS[link]))
        else:
            self.h.run(self.h.agent.link_down(self.h.now, link))

    @precondition(lambda self: self.h.tx)
    @rule(data=st.data(), ok=st.booleans())
    def finish_transfer(self, data: st.DataObject, ok: bool) -> None:
        tx = data.draw(st.sampled_from(self.h.tx))
        if ok and tx.key in self.h.agent.held:
            self.acked_transfers.add(tx.key)
        self.h.complete_tx(tx, ok)

    @rule(ms=st.integers(0, 15_000))
    def time_passes(self, ms: int) -> None:
        self.h.clock.advance(ms)
        self.h.run(self.h.agent.tick(self.h.now))

    @rule()
    def restart(self) -> None:
        """Crash and restart: transfers and deliveries in flight are lost, the store is not."""
        old = self.h
        # A restart takes at least a millisecond; creation timestamps (§4.2.7) rely on the
        # clock moving on (the node does not persist its last timestamp).
        old.clock.advance(1)
        new = Harness(store=old.store, clock=old.clock)
        new.router.add("dtn://c/*", "dtn://c/")
        new.completed, new.failed = old.completed, old.failed
        new.deleted = old.deleted
        self.h = new
        new.run(new.agent.restore(new.now, old.store.entries()))

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def custody_is_the_store(self) -> None:
        stored = {e.key for e in self.h.store.entries()}
        assert stored == set(self.h.agent.held)

    @invariant()
    def every_submission_answered_once(self) -> None:
        for t in self.tokens:
            assert (t in self.h.completed) != (t in self.h.failed)

    @invariant()
    def deletions_are_justified(self) -> None:
        keys = [d.key for d in self.h.deleted]
        assert len(keys) == len(set(keys))
        for d in self.h.deleted:
            if d.disposition == Disposition.FORWARDED:
                assert d.key in self.acked_transfers

    @invariant()
    def each_bundle_in_one_place(self) -> None:
        agent = self.h.agent
        for key, held in agent.held.items():
            assert held.place in ("local", "queue", "waiting")
            in_waiting = key in agent._waiting
            assert in_waiting == (held.place == "waiting")
            if held.place == "local":
                reg = agent.registrations.get(held.endpoint)
                queued = reg is not None and (
                    key in reg.in_flight or any(k == key for _, k in reg.pending)
                )
                service = held.endpoint in agent.identity.echo_eids
                assert queued or service


TestAgentMachine = AgentMachine.TestCase
TestAgentMachine.settings = settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

"""A synchronous in-memory driver for the sans-I/O agent: manual clock, memory store, links.

It executes the agent's actions the way the asyncio service does, but immediately and in
order, so tests can reason step by step. Transmissions are *not* completed automatically:
``tx`` collects them and a test (or ``deliver_link``) decides their outcome.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from waystation.agent import (
    Agent,
    AgentConfig,
    CompleteReception,
    CompleteSubmission,
    DeleteBundle,
    DeliverBundle,
    Event,
    FailSubmission,
    StoreBundle,
    SubmitRequest,
    TransmitBundle,
)
from waystation.bundle.dtntime import ManualClock, TimestampSource
from waystation.bundleops import payload_of, prepare_forward
from waystation.identity import LocalIdentity
from waystation.routing import StaticRouter
from waystation.store.api import DuplicateBundle, StoreFull
from waystation.store.memory import MemoryBundleStore

T0 = 800_000_000_000  # a DTN time in 2025


@dataclass
class Harness:
    node_id: str = "dtn://a/"
    ipn: int | None = None
    clock: ManualClock = field(default_factory=lambda: ManualClock(T0))
    store: MemoryBundleStore = field(default_factory=MemoryBundleStore)
    config: AgentConfig = field(default_factory=AgentConfig)
    defer_store: bool = False

    def __post_init__(self) -> None:
        self.router = StaticRouter()
        self.agent = Agent(
            LocalIdentity(self.node_id, self.ipn),
            router=self.router,
            config=self.config,
            timestamps=TimestampSource(self.clock),
        )
        self.completed: dict[Hashable, Any] = {}
        self.failed: dict[Hashable, tuple[str, str]] = {}
        self.receptions: dict[Hashable, tuple[bool, str]] = {}
        self.tx: list[TransmitBundle] = []
        self.deliveries: list[DeliverBundle] = []
        self.deleted: list[DeleteBundle] = []
        self.events: list[Event] = []
        self.deferred: list[StoreBundle] = []
        self._tokens = 0

    @property
    def now(self) -> int:
        return self.clock.now_ms()

    def run(self, outputs: Iterable[Any]) -> None:
        queue = list(outputs)
        while queue:
            out = queue.pop(0)
            if isinstance(out, StoreBundle):
                if self.defer_store:
                    self.deferred.append(out)
                    continue
                queue.extend(self._store(out))
            elif isinstance(out, TransmitBundle):
                self.tx.append(out)
            elif isinstance(out, DeliverBundle):
                self.deliveries.append(out)
            elif isinstance(out, DeleteBundle):
                self.deleted.append(out)
                self.store.delete(out.key, out.reason, disposition=out.disposition, now_ms=self.now)
            elif isinstance(out, CompleteSubmission):
                self.completed[out.token] = out.info
            elif isinstance(out, FailSubmission):
                self.failed[out.token] = (out.code, out.message)
            elif isinstance(out, CompleteReception):
                self.receptions[out.token] = (out.accepted, out.reason)
            elif isinstance(out, Event):
                self.events.append(out)

    def _store(self, action: StoreBundle) -> list[Any]:
        if self.agent.needs_payload(action.meta.destination):
            self.agent.note_payload(action.key, payload_of(action.wire)[0])
        try:
            meta = self.store.put(action.key, action.wire, action.meta)
        except DuplicateBundle as exc:
            return self.agent.store_failed(self.now, action.key, "duplicate", str(exc))
        except StoreFull as exc:
            return self.agent.store_failed(self.now, action.key, "store-full", str(exc))
        return self.agent.stored(self.now, action.key, meta.seq)

    def flush_store(self) -> None:
        deferred, self.deferred = self.deferred, []
        self.defer_store = False
        for action in deferred:
            self.run(self._store(action))

    # -- convenience inputs -----------------------------------------------------------------
    def send(self, destination: str, payload: bytes = b"x", **kw: Any) -> Hashable:
        self._tokens += 1
        token = ("t", self._tokens)
        self.run(self.agent.submit(self.now, token, SubmitRequest(destination, payload, **kw)))
        return token

    def receive(self, wire: bytes, link_id: str = "l1") -> Hashable:
        self._tokens += 1
        token = ("r", self._tokens)
        self.run(self.agent.receive(self.now, wire, link_id, token))
        return token

    def ack_all(self, endpoint: str) -> None:
        for d in list(self.deliveries):
            if d.endpoint == endpoint:
                self.deliveries.remove(d)
                self.run(self.agent.app_acked(self.now, endpoint, d.key))

    def payloads(self, endpoint: str) -> list[bytes]:
        return [
            payload_of(self.store.get(d.key))[0] for d in self.deliveries if d.endpoint == endpoint
        ]

    def wire_for(self, tx: TransmitBundle) -> bytes:
        return prepare_forward(
            self.store.get(tx.key),
            node_eid=self.agent.identity.node_eid,
            received_ms=tx.received_ms,
            now_ms=self.now,
        )

    def complete_tx(self, tx: TransmitBundle, ok: bool = True) -> None:
        self.tx.remove(tx)
        self.run(self.agent.transmitted(self.now, tx.key, tx.link_id, ok, "" if ok else "lost"))

    def events_of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

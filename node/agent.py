"""The bundle processing agent: RFC 9171 §5 as a sans-I/O state machine.

The agent owns no sockets, files or clocks. Every input method takes ``now_ms`` (DTN time)
and returns a list of *actions* (imperative dataclasses the service executes: store, transmit,
deliver, delete, reply) and *events* (past-tense dataclasses for logs and counters). The
service reports each action's outcome back through another input (``stored``,
``transmitted``, ``app_acked``...). Tests drive it with a manual clock and in-memory links.

Model
-----
A bundle enters the agent's custody only after the store says it is durable (``stored``):
that is when an application's ``send`` is answered and a convergence layer may acknowledge a
received bundle. From then on every held bundle is in exactly one place::

    local[endpoint]    awaiting delivery to a registered application (§5.7), in arrival order;
                       'in flight' to a receiving client until it acks
    queue[neighbour]   waiting for (or being sent over) a link to the chosen next hop (§5.4)
    waiting            no route known yet (§5.4.1 forwarding contraindicated): re-routed
                       whenever routes or links change

It leaves custody (``DeleteBundle``) only when the next hop acknowledged all of it
(disposition *forwarded*, §5.4 step 5), the application acknowledged delivery (*delivered*,
§5.7), its lifetime elapsed (*expired*, reason 1, §5.10 via §4.2.8) or policy dropped it
(hop limit exceeded, reason 9, §4.4.3). Status reports (§6.1) are generated for reception,
forwarding, delivery and deletion when the bundle's flags request them; never for
administrative records (§5.1).

Deviations: no custody transfer (RFC 9171 removed it; "custody" here is the store's retention
guarantee). Fragmentation on forwarding (§5.8) happens at transmission time in the service
(waystation.fragmentation); fragments addressed to this node are reassembled before delivery
(§5.9, waystation.reassembly).
Duplicates (same bundle ID, §5.9) are suppressed while held and for their lifetime after.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.errors import BundleError
from waystation.bundle.model import BundleFlags
from waystation.bundleops import REPORT_FLAGS, BundleInfo, inspect, originate, status_report
from waystation.identity import LocalIdentity
from waystation.routing import Router, StaticRouter
from waystation.store.api import (
    BundleMeta,
    CustodyState,
    Disposition,
    Priority,
    ReasonCode,
    StoredEntry,
)

if TYPE_CHECKING:
    from waystation.reassembly import AduId

__all__ = [
    "Agent",
    "AgentConfig",
    "SubmitRequest",
    # actions
    "Action",
    "StoreBundle",
    "TransmitBundle",
    "DeliverBundle",
    "DeleteBundle",
    "CompleteSubmission",
    "FailSubmission",
    "CompleteReception",
    # events
    "Event",
    "BundleAccepted",
    "BundleForwarded",
    "BundleDelivered",
    "BundleDeleted",
    "DuplicateSuppressed",
    "BundleRejected",
    "TransmissionFailed",
    "StatusReportGenerated",
    "AdminRecordReceived",
]


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AgentConfig:
    max_bundle_size: int = 64 * 1024 * 1024 + 65536
    default_lifetime_ms: int = 24 * 3600 * 1000
    hop_limit: int | None = None
    report_lifetime_ms: int = 24 * 3600 * 1000
    # Transmissions in flight per link: at most this many, and no more than
    # link_window_bytes of them together (always at least one). The receiver acknowledges
    # a bundle only after its durable commit, so the window must cover a commit cycle or two
    # (2,048 x 1 KiB: ~13 % more bundles/s node to node than 512); the byte cap keeps large
    # bundles from holding hundreds of MiB in a link's buffers.
    link_window: int = 2048
    link_window_bytes: int = 64 << 20
    echo_lifetime_ms: int | None = None  # None: the echoed bundle keeps the request's lifetime
    # Released bundle IDs remembered for duplicate suppression (§5.9) until their expiry, but
    # at most this many (the newest): at 10k bundles/s with hour-long lifetimes an unbounded
    # set would hold 36M keys. About 150 bytes each.
    seen_max: int = 200_000


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """An application's request to send (validated EIDs as text)."""

    destination: str
    payload: bytes
    lifetime_ms: int | None = None
    priority: int = Priority.NORMAL
    reports: frozenset[str] = frozenset()
    report_to: str | None = None
    source: str | None = None


# Actions and events are built several times per bundle on the hot path: a frozen dataclass's
# __init__ pays an object.__setattr__ per field (~3x a plain one, profiled at ~7 % of a
# receiving node's CPU with the other per-bundle records). They are plain slotted records that
# nobody mutates, and keep value equality and hashing (unsafe_hash) as when they were frozen.
_record = dataclass(slots=True, unsafe_hash=True)

# ---------------------------------------------------------------------------------------------
# Actions (for the service to execute)
# ---------------------------------------------------------------------------------------------
class Action:
    __slots__ = ()


@_record
class StoreBundle(Action):
    """Put the bundle in the store durably, then call ``Agent.stored`` (or ``store_failed``)."""

    key: bytes
    wire: bytes
    meta: BundleMeta
    # "app", "echo", "report" (originated here) or "link:<id>" (received): the service's
    # BPSec hook signs the former and checks the latter before the put (waystation.security).
    origin: str = ""


@_record
class TransmitBundle(Action):
    """Send the stored bundle over ``link_id`` after ``prepare_forward``; report the outcome
    with ``Agent.transmitted``."""

    key: bytes
    link_id: str
    received_ms: int


@_record
class DeliverBundle(Action):
    """Push the stored bundle to the client ``consumer`` receiving on ``endpoint``."""

    key: bytes
    endpoint: str
    consumer: Hashable


@_record
class DeleteBundle(Action):
    """Remove the bundle from the store, recording why (§5.10)."""

    key: bytes
    reason: int
    disposition: Disposition


@_record
class CompleteSubmission(Action):
    """Answer the application: its bundle is durable."""

    token: Hashable
    info: BundleInfo


@_record
class FailSubmission(Action):
    token: Hashable
    code: str
    message: str


@_record
class CompleteReception(Action):
    """Tell the convergence layer whether to acknowledge a received bundle."""

    token: Hashable
    accepted: bool
    reason: str = ""


# ---------------------------------------------------------------------------------------------
# Events (past tense, for logs and counters)
# ---------------------------------------------------------------------------------------------
class Event:
    __slots__ = ()


@_record
class BundleAccepted(Event):
    key: bytes
    source: str
    destination: str
    origin: str  # "app", "link:<id>", "echo", "report"


@_record
class BundleForwarded(Event):
    key: bytes
    link_id: str
    neighbour: str


@_record
class BundleDelivered(Event):
    key: bytes
    endpoint: str


@_record
class BundleDeleted(Event):
    key: bytes
    reason: int
    disposition: Disposition


@_record
class DuplicateSuppressed(Event):
    key: bytes
    origin: str


@_record
class BundleRejected(Event):
    origin: str
    reason: str


@_record
class TransmissionFailed(Event):
    key: bytes
    link_id: str
    error: str


@_record
class StatusReportGenerated(Event):
    subject: bytes
    kind: str
    reason: int
    report_to: str


@_record
class AdminRecordReceived(Event):
    key: bytes
    source: str
    payload: bytes


Output = Action | Event

# Plain ints: an IntFlag operand turns every ``flags & flag`` into an enum operation, and
# BundleInfo.wants runs several times per bundle.
_REPORT_RECEPTION = int(BundleFlags.REPORT_RECEPTION)
_REPORT_FORWARDING = int(BundleFlags.REPORT_FORWARDING)
_REPORT_DELIVERY = int(BundleFlags.REPORT_DELIVERY)
_REPORT_DELETION = int(BundleFlags.REPORT_DELETION)
_PRIORITY = {int(p): p for p in Priority}  # a dict lookup, not an enum call, per bundle


def _last_key(outputs: list[Output]) -> bytes:
    for out in reversed(outputs):
        if isinstance(out, StoreBundle):
            return out.key
    return b""


# ---------------------------------------------------------------------------------------------
# Agent state
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Held:
    info: BundleInfo
    received_ms: int
    seq: int
    priority: int
    place: str = "waiting"  # "local", "queue", "waiting"
    endpoint: str | None = None  # when local
    neighbour: str | None = None  # when queued
    link_id: str | None = None  # when in flight on a link
    delivering: Hashable | None = None  # consumer holding it unacked


@dataclass(slots=True)
class _Registration:
    endpoint: str
    transient: bool = False
    consumer: Hashable | None = None
    window: int = 64
    pending: list[tuple[int, bytes]] = field(default_factory=list)  # heap of (seq, key)
    in_flight: set[bytes] = field(default_factory=set)


@dataclass(slots=True)
class _LinkState:
    link_id: str
    neighbour: str | None
    up: bool = True
    # size of each bundle in flight on this link (for the byte window), and their sum
    sizes: dict[bytes, int] = field(default_factory=dict)
    in_flight_bytes: int = 0

    @property
    def in_flight(self) -> int:
        return len(self.sizes)


@dataclass(slots=True)
class _Pending:
    """A bundle handed to the store and not yet confirmed durable."""

    info: BundleInfo
    origin: str
    token: Hashable | None
    priority: int
    received_ms: int
    local_endpoint: str | None
    request: SubmitRequest | None = None  # kept to retry with a fresh creation timestamp
    attempts: int = 0


class Agent:
    """RFC 9171 §5 bundle processing for one node. Not thread-safe; single event loop."""

    def __init__(
        self,
        identity: LocalIdentity,
        *,
        router: Router | None = None,
        config: AgentConfig | None = None,
        timestamps: Any = None,
    ) -> None:
        self.identity = identity
        self.router: Router = router if router is not None else StaticRouter()
        self.config = config or AgentConfig()
        # A creation timestamp source (§4.2.7); the service passes one bound to its clock.
        self._timestamps = timestamps
        self.held: dict[bytes, _Held] = {}
        self._pending: dict[bytes, _Pending] = {}
        self.registrations: dict[str, _Registration] = {}
        self.links: dict[str, _LinkState] = {}
        # neighbour -> its links; rebuilt when links come and go, read per bundle (_up_link)
        self._neighbour_links: dict[str, list[_LinkState]] = {}
        self._queues: dict[str, list[tuple[int, int, bytes]]] = {}  # neighbour -> heap
        self._waiting: set[bytes] = set()
        self._seen: dict[bytes, int] = {}  # recently released key -> expiry (dedup, §5.9)
        self._seen_prune_at = min(1024, self.config.seen_max)  # see _prune_seen
        self._expiry_heap: list[tuple[int, bytes]] = []
        self._seq = 0
        # Endpoints with stored bundles but no registration (§5.7 step 2: delivery deferred).
        self._placeholders: set[str] = set()
        # Payloads of bundles for node services (echo, admin sink), fed by the service.
        self._payload_for_echo: dict[bytes, bytes] = {}
        # Fragments for local endpoints wait here for the rest of their ADU (§5.9).
        # (imported here: waystation.reassembly builds on this module's Action/Event classes)
        from waystation.reassembly import ReassemblyTracker

        self.reassembly = ReassemblyTracker()
        self.counters: dict[str, int] = {
            "received": 0,
            "originated": 0,
            "forwarded": 0,
            "delivered": 0,
            "deleted": 0,
            "expired": 0,
            "duplicates": 0,
            "rejected": 0,
            "reports": 0,
        }

    # -----------------------------------------------------------------------------------------
    # helpers
    # -----------------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _timestamp(self, now_ms: int) -> CreationTimestamp:
        if self._timestamps is not None:
            return self._timestamps.next()
        # Fallback: unique per agent even with a stopped clock.
        return CreationTimestamp(now_ms, self._next_seq())

    def is_local(self, eid: str) -> bool:
        return self.identity.owns(eid)

    def _local_place(self, destination: str) -> str | None:
        """The local endpoint a bundle to ``destination`` waits on, or None if not local."""
        return destination if self.is_local(destination) else None

    def _meta(self, p: _Pending) -> BundleMeta:
        info = p.info
        if info.fragment_offset is not None:
            return self.reassembly.meta(info, p.received_ms, p.priority, p.local_endpoint)
        # positional, in BundleMeta's field order (a keyword call costs ~0.7 us more per bundle)
        return BundleMeta(
            p.received_ms,
            info.expiry_ms,
            info.destination,
            info.source,
            CustodyState.LOCAL if p.local_endpoint else CustodyState.RECEIVED,
            None,  # queue
            _PRIORITY[p.priority] if p.priority in _PRIORITY else Priority(p.priority),
            p.local_endpoint,
            0,  # retries
            None,  # adu_key
            None,  # fragment_offset
            None,  # total_adu_length
            None if info.report_to == "dtn:none" else info.report_to,
            None,  # deletion_reason
            info.extra(),
        )

    def _is_duplicate(self, key: bytes) -> bool:
        return key in self.held or key in self._pending or key in self._seen

    # -----------------------------------------------------------------------------------------
    # §5.2 bundle transmission (from a local application)
    # -----------------------------------------------------------------------------------------
    def submit(self, now_ms: int, token: Hashable, req: SubmitRequest) -> list[Output]:
        """An application asks to send; the answer comes once the bundle is durable."""
        flags = 0
        for kind in req.reports:
            flag = REPORT_FLAGS.get(kind)
            if flag is None:
                return [FailSubmission(token, "bad-argument", f"unknown report kind {kind!r}")]
            flags |= flag
        source = req.source or self.identity.node_id
        if not self.is_local(source):
            return [FailSubmission(token, "bad-argument", f"source {source} is not this node's")]
        lifetime = (
            req.lifetime_ms if req.lifetime_ms is not None else self.config.default_lifetime_ms
        )
        report_to = req.report_to
        if flags and report_to is None:
            report_to = self.identity.node_id
        try:
            wire, info = originate(
                source=source,
                destination=req.destination,
                payload=req.payload,
                creation=self._timestamp(now_ms),
                lifetime_ms=lifetime,
                flags=flags,
                report_to=report_to,
                hop_limit=self.config.hop_limit,
            )
        except BundleError as exc:
            return [FailSubmission(token, "bad-argument", str(exc))]
        if len(wire) > self.config.max_bundle_size:
            return [
                FailSubmission(
                    token, "payload-too-large", f"bundle of {len(wire)} bytes exceeds the limit"
                )
            ]
        self.counters["originated"] += 1
        out = self._admit(now_ms, wire, info, "app", token, req.priority)
        self._pending[info.key].request = req
        return out

    def _admit(
        self,
        now_ms: int,
        wire: bytes,
        info: BundleInfo,
        origin: str,
        token: Hashable | None,
        priority: int = Priority.NORMAL,
    ) -> list[Output]:
        # positional (info, origin, token, priority, received_ms, local_endpoint): per bundle
        pending = _Pending(info, origin, token, priority, now_ms, self._local_place(info.destination))
        self._pending[info.key] = pending
        return [StoreBundle(info.key, wire, self._meta(pending), origin)]

    # -----------------------------------------------------------------------------------------
    # §5.6 bundle reception (from a convergence layer)
    # -----------------------------------------------------------------------------------------
    def receive(
        self, now_ms: int, wire: bytes, link_id: str, token: Hashable | None = None
    ) -> list[Output]:
        """A convergence layer received ``wire``; answer with ``CompleteReception(token)``."""
        origin = f"link:{link_id}"
        try:
            info = inspect(wire, now_ms, self.config.max_bundle_size)
        except BundleError as exc:
            # §5.6 step 3 / §4.1: an unintelligible bundle is discarded; without a decodable
            # primary block no status report is possible.
            self.counters["rejected"] += 1
            return [
                BundleRejected(origin, str(exc)),
                CompleteReception(token, False, f"invalid bundle: {exc}"),
            ]
        self.counters["received"] += 1
        out: list[Output] = []
        if self._is_duplicate(info.key):
            # §5.9: we hold (or just released) this bundle; acknowledging again is harmless and
            # stops the peer from retrying.
            self.counters["duplicates"] += 1
            return [DuplicateSuppressed(info.key, origin), CompleteReception(token, True, "dup")]
        if info.wants(_REPORT_RECEPTION):
            out += self._report(now_ms, info, "reception", ReasonCode.NO_ADDITIONAL_INFORMATION)
        if info.expiry_ms <= now_ms:
            out += self._drop_unstored(now_ms, info, ReasonCode.LIFETIME_EXPIRED)
            out.append(CompleteReception(token, True, "expired"))
            return out
        if info.hop_exceeded:
            out += self._drop_unstored(now_ms, info, ReasonCode.HOP_LIMIT_EXCEEDED)
            out.append(CompleteReception(token, True, "hop limit exceeded"))
            return out
        out += self._admit(now_ms, wire, info, origin, token)
        return out

    def _drop_unstored(self, now_ms: int, info: BundleInfo, reason: int) -> list[Output]:
        """Delete a bundle that never reached the store (§5.10) and remember its ID."""
        self._seen[info.key] = max(info.expiry_ms, now_ms + 60_000)
        disposition = (
            Disposition.EXPIRED if reason == ReasonCode.LIFETIME_EXPIRED else Disposition.DELETED
        )
        out: list[Output] = [BundleDeleted(info.key, reason, disposition)]
        self.counters["deleted"] += 1
        if info.wants(_REPORT_DELETION):
            out += self._report(now_ms, info, "deletion", reason)
        return out

    # -----------------------------------------------------------------------------------------
    # store outcomes
    # -----------------------------------------------------------------------------------------
    def stored(self, now_ms: int, key: bytes, seq: int | None = None) -> list[Output]:
        """The store made ``key`` durable: take custody and dispatch it."""
        p = self._pending.pop(key, None)
        if p is None:
            return []
        # positional (info, received_ms, seq, priority): per bundle
        held = _Held(p.info, p.received_ms, seq if seq is not None else self._next_seq(), p.priority)
        self.held[key] = held
        heapq.heappush(self._expiry_heap, (p.info.expiry_ms, key))
        out: list[Output] = [BundleAccepted(key, p.info.source, p.info.destination, p.origin)]
        if p.origin == "app":
            out.append(CompleteSubmission(p.token, p.info))
        elif p.origin == self.reassembly.ORIGIN:
            out += self.reassembly.settled(self, now_ms, key, "stored")
        elif p.origin.startswith("link:"):
            out.append(CompleteReception(p.token, True))
        out += self._dispatch(now_ms, held)
        return out

    def store_failed(self, now_ms: int, key: bytes, code: str, message: str) -> list[Output]:
        """The store refused ``key`` (full, duplicate, broken): nothing was taken into custody."""
        p = self._pending.pop(key, None)
        if p is None:
            return []
        if p.origin == self.reassembly.ORIGIN:
            return self.reassembly.settled(
                self, now_ms, key, "duplicate" if code == "duplicate" else "failed"
            )
        if code == "duplicate":
            self.counters["duplicates"] += 1
            out: list[Output] = [DuplicateSuppressed(key, p.origin)]
            if p.origin.startswith("link:"):
                out.append(CompleteReception(p.token, True, "dup"))
            elif p.origin == "app" and p.request is not None and p.attempts < 3:
                # §4.2.7: our creation timestamp collided with a stored bundle of ours (clock
                # stepped back, or a restart within the same millisecond): take a fresh one.
                out += self.submit(now_ms, p.token, p.request)
                nxt = self._pending.get(_last_key(out))
                if nxt is not None:
                    nxt.attempts = p.attempts + 1
            elif p.origin == "app":
                out.append(FailSubmission(p.token, "internal", "creation timestamp reused"))
            return out
        out = [BundleRejected(p.origin, message)]
        if p.origin == "app":
            out.append(FailSubmission(p.token, code, message))
        elif p.origin.startswith("link:"):
            out.append(CompleteReception(p.token, False, message))
            if p.info.wants(_REPORT_DELETION):
                out += self._report(now_ms, p.info, "deletion", ReasonCode.DEPLETED_STORAGE)
        return out

    def wire_replaced(self, key: bytes) -> None:
        """The service will store other bytes than the ones ``receive`` inspected (BPSec
        processing rewrote them): forget what was learnt about the old encoding's layout."""
        p = self._pending.get(key)
        if p is not None:
            p.info.payload_span = None

    def security_rejected(self, now_ms: int, key: bytes, reason_code: int, reason: str) -> list[Output]:
        """The security policy refused ``key`` before it was stored (RFC 9172 §5, §11.2).

        A received bundle is deleted with ``reason_code`` (a deletion status report if it asked
        for one) and acknowledged at the convergence layer: resending it would not help. An
        originated one fails the submission (our policy could not be applied)."""
        p = self._pending.pop(key, None)
        if p is None:
            return []
        self.counters["rejected"] += 1
        out: list[Output] = [
            BundleRejected(p.origin, f"security policy (reason code {reason_code}): {reason}")
        ]
        if p.origin.startswith("link:"):
            out += self._drop_unstored(now_ms, p.info, reason_code)
            out.append(CompleteReception(p.token, True, "deleted by security policy"))
            if p.origin == self.reassembly.ORIGIN:
                out += self.reassembly.settled(self, now_ms, key, "rejected", reason_code)
        elif p.origin == "app":
            out.append(FailSubmission(p.token, "security", reason))
        return out

    # -----------------------------------------------------------------------------------------
    # dispatch: §5.3 (local delivery or forwarding)
    # -----------------------------------------------------------------------------------------
    def _dispatch(self, now_ms: int, h: _Held) -> list[Output]:
        dest = h.info.destination
        if self.is_local(dest):
            return self._to_local(now_ms, h)
        return self._route(now_ms, h)

    def _to_local(self, now_ms: int, h: _Held) -> list[Output]:
        if h.info.fragment_offset is not None:
            return self.reassembly.hold(self, now_ms, h)  # §5.7 step 1 / §5.9
        dest = h.info.destination
        key = h.info.key
        h.place, h.endpoint = "local", dest
        if self.identity.is_echo_eid(dest):
            return self._echo(now_ms, h)
        reg = self.registrations.get(dest)
        if reg is None and self.identity.is_admin_eid(dest):
            return self._admin_sink(now_ms, h)
        if reg is None:
            # §5.7 step 2: no registration yet; the bundle waits for one (or its expiry).
            reg = self._passive(dest)
        heapq.heappush(reg.pending, (h.seq, key))
        return self._pump_registration(reg)

    def _passive(self, endpoint: str) -> _Registration:
        """An implicit placeholder so bundles for a not-yet-registered endpoint keep order."""
        reg = _Registration(endpoint, transient=True)
        reg.window = 0
        self._placeholders.add(endpoint)
        self.registrations[endpoint] = reg
        return reg

    def _echo(self, now_ms: int, h: _Held) -> list[Output]:
        """The echo service: send the payload back to the source (like ION's bpecho)."""
        out: list[Output] = []
        info = h.info
        if not info.is_admin and info.source != "dtn:none":
            payload = self._payload_for_echo.get(info.key)
            if payload is not None:
                remaining = max(1000, info.expiry_ms - now_ms)
                lifetime = self.config.echo_lifetime_ms or remaining
                try:
                    wire, echo = originate(
                        source=info.destination,
                        destination=info.source,
                        payload=payload,
                        creation=self._timestamp(now_ms),
                        lifetime_ms=lifetime,
                        hop_limit=self.config.hop_limit,
                    )
                    out += self._admit(now_ms, wire, echo, "echo", None)
                except BundleError as exc:
                    out.append(BundleRejected("echo", str(exc)))
        out += self._release(now_ms, h, Disposition.DELIVERED, ReasonCode.NO_ADDITIONAL_INFORMATION)
        return out

    def _admin_sink(self, now_ms: int, h: _Held) -> list[Output]:
        """Administrative records (status reports) addressed to the node itself."""
        out: list[Output] = []
        payload = self._payload_for_echo.pop(h.info.key, b"")
        if h.info.is_admin:
            out.append(AdminRecordReceived(h.info.key, h.info.source, payload))
        out += self._release(now_ms, h, Disposition.DELIVERED, ReasonCode.NO_ADDITIONAL_INFORMATION)
        return out

    def note_payload(self, key: bytes, payload: bytes) -> None:
        """Give the agent a payload it needs for a local service (echo, admin sink).

        The service calls this before ``stored`` for bundles whose destination is a service
        endpoint, so the agent stays free of store reads.
        """
        self._payload_for_echo[key] = payload

    def needs_payload(self, destination: str) -> bool:
        return self.identity.is_echo_eid(destination) or (
            self.identity.is_admin_eid(destination) and destination not in self.registrations
        )

    def _route(self, now_ms: int, h: _Held, pump: bool = True) -> list[Output]:
        """§5.4 step 1-2: pick a next hop; queue on it (or wait if there is none).
        ``pump`` False: only queue, and return ``[]`` (the caller pumps each neighbour
        once, see ``_reroute_waiting``)."""
        info = h.info
        dest_node = self.identity.node_of(info.destination)
        candidates: list[str] = []
        if dest_node is not None and dest_node in self._neighbour_links:
            candidates.append(dest_node)  # a direct neighbour beats any table
        routed = self.router.next_hops(info.destination, now_ms, info.size, info.key)
        for hop in routed:
            if hop not in candidates:
                candidates.append(hop)
        self._waiting.discard(info.key)
        if not candidates:
            h.place, h.neighbour = "waiting", None
            self._waiting.add(info.key)
            return []
        chosen = candidates[0]
        if len(candidates) > 1:
            for c in candidates:
                if self._up_link(c) is not None:
                    chosen = c
                    break
        if routed and chosen != routed[0]:
            # Another neighbour carries it: a capacity booking for the router's pick is unused.
            self._router_released(info.key, transmitted=False)
        h.place, h.neighbour = "queue", chosen
        heapq.heappush(self._queues.setdefault(chosen, []), (-h.priority, h.seq, info.key))
        return self._pump_neighbour(chosen) if pump else []

    def _router_released(self, key: bytes, transmitted: bool) -> None:
        # getattr, not isinstance on the Protocol: this runs once per released bundle.
        released = getattr(self.router, "released", None)
        if released is not None:
            released(key, transmitted)

    def _up_link(self, neighbour: str) -> _LinkState | None:
        """The neighbour's up link with the fewest transmissions in flight."""
        best: _LinkState | None = None
        for ls in self._neighbour_links.get(neighbour, ()):
            if ls.up and (best is None or ls.in_flight < best.in_flight):
                best = ls
        return best

    def _links_changed(self) -> None:
        by_neighbour: dict[str, list[_LinkState]] = {}
        for ls in self.links.values():
            if ls.neighbour is not None:
                by_neighbour.setdefault(ls.neighbour, []).append(ls)
        self._neighbour_links = by_neighbour

    def _pump_neighbour(self, neighbour: str) -> list[Output]:
        """Start transmissions on the neighbour's links while they have window left."""
        out: list[Output] = []
        heap = self._queues.get(neighbour)
        window, window_bytes = self.config.link_window, self.config.link_window_bytes
        while heap:
            link = self._up_link(neighbour)
            if link is None or link.in_flight >= window:
                break
            if link.in_flight and link.in_flight_bytes >= window_bytes:
                break
            _, _, key = heapq.heappop(heap)
            h = self.held.get(key)
            if h is None or h.place != "queue" or h.neighbour != neighbour or h.link_id:
                continue  # stale heap entry (expired, re-routed)
            h.link_id = link.link_id
            size = h.info.size
            link.sizes[key] = size
            link.in_flight_bytes += size
            out.append(TransmitBundle(key, link.link_id, h.received_ms))
        return out

    # -----------------------------------------------------------------------------------------
    # links
    # -----------------------------------------------------------------------------------------
    def link_up(self, now_ms: int, link_id: str, neighbour: str | None) -> list[Output]:
        self.links[link_id] = _LinkState(link_id, neighbour)
        self._links_changed()
        out = self._reroute_waiting(now_ms)
        if neighbour is not None:
            out += self._pump_neighbour(neighbour)
        return out

    def link_down(self, now_ms: int, link_id: str) -> list[Output]:
        ls = self.links.pop(link_id, None)
        if ls is None:
            return []
        self._links_changed()
        # Transmissions still in flight on it will report failure through ``transmitted``.
        return []

    def routes_changed(self, now_ms: int) -> list[Output]:
        """Routes were added/removed (static table, new contact plan): re-route waiting ones."""
        return self._reroute_waiting(now_ms)

    def _reroute_waiting(self, now_ms: int) -> list[Output]:
        """Route every waiting bundle again (oldest first), then start transmissions on each
        neighbour that got some -- once per neighbour, not once per bundle: a contact that
        opens on a backlog of thousands queues them all in one pass."""
        held = self.held
        for key in [k for k in self._waiting if k not in held]:
            self._waiting.discard(key)
        for h in sorted((held[k] for k in self._waiting), key=lambda h: h.seq):
            self._route(now_ms, h, pump=False)
        out: list[Output] = []
        for neighbour in list(self._queues):
            out += self._pump_neighbour(neighbour)
        return out

    def transmitted_many(
        self, now_ms: int, outcomes: Iterable[tuple[bytes, str, bool, str]]
    ) -> list[Output]:
        """Several transmissions finished (``(key, link_id, ok, error)`` each, as for
        ``transmitted``), e.g. every final XFER_ACK of one read: the same outputs, but each
        neighbour's queue is pumped once at the end instead of after every bundle."""
        out: list[Output] = []
        neighbours: set[str] = set()
        for key, link_id, ok, error in outcomes:
            out += self.transmitted(now_ms, key, link_id, ok, error, pump=False)
            ls = self.links.get(link_id)
            if ls is not None and ls.neighbour:
                neighbours.add(ls.neighbour)
        for n in neighbours:
            out += self._pump_neighbour(n)
        return out

    def transmitted(
        self, now_ms: int, key: bytes, link_id: str, ok: bool, error: str = "", pump: bool = True
    ) -> list[Output]:
        """A transmission finished: ``ok`` means the peer acknowledged all of the bundle.
        ``pump`` False leaves starting the next transmissions to the caller
        (``transmitted_many``)."""
        ls = self._transfer_done(link_id, key)
        h = self.held.get(key)
        out: list[Output] = []
        if h is not None and h.link_id == link_id:
            h.link_id = None
            if ok:
                neighbour = h.neighbour or (ls.neighbour if ls else "") or ""
                self.counters["forwarded"] += 1
                out.append(BundleForwarded(key, link_id, neighbour))
                if h.info.wants(_REPORT_FORWARDING):
                    out += self._report(
                        now_ms, h.info, "forwarding", ReasonCode.NO_ADDITIONAL_INFORMATION
                    )
                out += self._release(
                    now_ms, h, Disposition.FORWARDED, ReasonCode.NO_ADDITIONAL_INFORMATION
                )
            else:
                out.append(TransmissionFailed(key, link_id, error))
                # §5.4.1: forwarding failed; keep custody and try again (possibly elsewhere).
                out += self._route(now_ms, h, pump)
        if pump and ls is not None and ls.neighbour:
            out += self._pump_neighbour(ls.neighbour)
        return out

    def _transfer_done(self, link_id: str, key: bytes) -> _LinkState | None:
        """Free ``key``'s place in its link's window; the link, if it still exists."""
        ls = self.links.get(link_id)
        if ls is not None:
            size = ls.sizes.pop(key, None)
            if size is not None:
                ls.in_flight_bytes -= size
        return ls

    def forwarding_failed(
        self, now_ms: int, key: bytes, link_id: str, reason_code: int, reason: str
    ) -> list[Output]:
        """§5.4.2: forwarding over ``link_id`` is impossible (too big for the link and must
        not be fragmented): delete the bundle citing ``reason_code``, reporting if asked."""
        ls = self._transfer_done(link_id, key)
        h = self.held.get(key)
        out: list[Output] = [TransmissionFailed(key, link_id, reason)]
        if h is not None and h.link_id == link_id:
            h.link_id = None
            if h.info.wants(_REPORT_DELETION):
                out += self._report(now_ms, h.info, "deletion", reason_code)
            out += self._release(now_ms, h, Disposition.DELETED, reason_code)
        if ls is not None and ls.neighbour:
            out += self._pump_neighbour(ls.neighbour)
        return out

    # -----------------------------------------------------------------------------------------
    # reassembly of local fragments (§5.9; waystation.reassembly)
    # -----------------------------------------------------------------------------------------
    def reassembled(self, now_ms: int, adu: AduId, wire: bytes) -> list[Output]:
        """The service rebuilt the bundle of ``adu`` from its stored fragments."""
        return self.reassembly.reassembled(self, now_ms, adu, wire)

    def reassembly_failed(self, now_ms: int, adu: AduId, reason: str) -> list[Output]:
        """The fragments of ``adu`` do not reassemble: they are deleted (reason 8)."""
        return self.reassembly.failed(self, now_ms, adu, reason)

    # -----------------------------------------------------------------------------------------
    # registrations and local delivery (§5.7)
    # -----------------------------------------------------------------------------------------
    def register(self, endpoint: str, *, transient: bool = False) -> list[Output]:
        reg = self.registrations.get(endpoint)
        if reg is None:
            reg = _Registration(endpoint, transient=transient)
            self.registrations[endpoint] = reg
        elif endpoint in self._placeholders:
            self._placeholders.discard(endpoint)
            reg.transient = transient
            reg.window = 64
        elif not transient:
            reg.transient = False
        return self._pump_registration(reg)

    def unregister(self, endpoint: str) -> list[Output]:
        reg = self.registrations.get(endpoint)
        if reg is None:
            return []
        self._unbind(reg)
        if reg.pending:
            # Stored bundles stay (until expiry); keep them ordered under a placeholder.
            reg.consumer = None
            reg.transient = True
            reg.window = 0
            self._placeholders.add(endpoint)
        else:
            del self.registrations[endpoint]
        return []

    def is_registered(self, endpoint: str) -> bool:
        return endpoint in self.registrations and endpoint not in self._placeholders

    def bind(self, endpoint: str, consumer: Hashable, window: int = 64) -> list[Output]:
        """``consumer`` starts receiving on ``endpoint`` (registered implicitly)."""
        reg = self.registrations.get(endpoint)
        if reg is None or endpoint in self._placeholders:
            self.register(endpoint)
            reg = self.registrations[endpoint]
        if reg.consumer is not None and reg.consumer != consumer:
            raise ValueError(f"endpoint {endpoint} is already bound to another client")
        reg.consumer = consumer
        reg.window = max(1, window)
        return self._pump_registration(reg)

    def bound_consumer(self, endpoint: str) -> Hashable | None:
        reg = self.registrations.get(endpoint)
        return None if reg is None else reg.consumer

    def unbind(self, endpoint: str, consumer: Hashable | None = None) -> list[Output]:
        reg = self.registrations.get(endpoint)
        if reg is None or (consumer is not None and reg.consumer != consumer):
            return []
        self._unbind(reg)
        return []

    def consumer_gone(self, consumer: Hashable) -> list[Output]:
        """A client disconnected: unbind it everywhere; drop its transient registrations."""
        out: list[Output] = []
        for endpoint, reg in list(self.registrations.items()):
            if reg.consumer == consumer:
                self._unbind(reg)
                if reg.transient and endpoint not in self._placeholders:
                    out += self.unregister(endpoint)
        return out

    def _unbind(self, reg: _Registration) -> None:
        reg.consumer = None
        for key in reg.in_flight:
            h = self.held.get(key)
            if h is not None:
                h.delivering = None
                heapq.heappush(reg.pending, (h.seq, key))
        reg.in_flight.clear()

    def _pump_registration(self, reg: _Registration) -> list[Output]:
        out: list[Output] = []
        if reg.consumer is None:
            return out
        while reg.pending and len(reg.in_flight) < reg.window:
            _, key = heapq.heappop(reg.pending)
            h = self.held.get(key)
            if h is None or key in reg.in_flight:
                continue
            h.delivering = reg.consumer
            reg.in_flight.add(key)
            out.append(DeliverBundle(key, reg.endpoint, reg.consumer))
        return out

    def pending_count(self, endpoint: str) -> int:
        reg = self.registrations.get(endpoint)
        if reg is None:
            return 0
        return len({k for _, k in reg.pending if k in self.held}) + len(reg.in_flight)

    def app_acked(
        self, now_ms: int, endpoint: str, key: bytes, pump: bool = True
    ) -> list[Output]:
        """The application confirmed delivery: §5.7 complete; release the bundle. ``pump``
        False leaves the next deliveries to the caller (``app_acked_many``)."""
        reg = self.registrations.get(endpoint)
        h = self.held.get(key)
        if reg is None or h is None or key not in reg.in_flight:
            raise KeyError(key)
        reg.in_flight.discard(key)
        out: list[Output] = [BundleDelivered(key, endpoint)]
        self.counters["delivered"] += 1
        if h.info.wants(_REPORT_DELIVERY):
            out += self._report(now_ms, h.info, "delivery", ReasonCode.NO_ADDITIONAL_INFORMATION)
        out += self._release(now_ms, h, Disposition.DELIVERED, ReasonCode.NO_ADDITIONAL_INFORMATION)
        if pump:
            out += self._pump_registration(reg)
        return out

    def app_acked_many(
        self, now_ms: int, endpoint: str, keys: Iterable[bytes]
    ) -> tuple[list[Output], list[bytes]]:
        """``app_acked`` for a batch of keys (one ``ack`` frame): the same outputs, with the
        registration's next deliveries started once at the end. Returns the outputs and the
        keys that were not awaiting an ack (those change nothing)."""
        out: list[Output] = []
        missing: list[bytes] = []
        for key in keys:
            try:
                out += self.app_acked(now_ms, endpoint, key, pump=False)
            except KeyError:
                missing.append(key)
        reg = self.registrations.get(endpoint)
        if reg is not None:
            out += self._pump_registration(reg)
        return out, missing

    def delivery_failed(self, endpoint: str, key: bytes) -> list[Output]:
        """The service could not push a delivery (client gone): put it back in line."""
        reg = self.registrations.get(endpoint)
        h = self.held.get(key)
        if reg is None or h is None or key not in reg.in_flight:
            return []
        reg.in_flight.discard(key)
        h.delivering = None
        heapq.heappush(reg.pending, (h.seq, key))
        return []

    # -----------------------------------------------------------------------------------------
    # release, expiry, reports
    # -----------------------------------------------------------------------------------------
    def _release(
        self, now_ms: int, h: _Held, disposition: Disposition, reason: int
    ) -> list[Output]:
        key = h.info.key
        self.held.pop(key, None)
        self._waiting.discard(key)
        self._payload_for_echo.pop(key, None)
        self._router_released(key, transmitted=disposition is Disposition.FORWARDED)
        if h.endpoint is not None:
            reg = self.registrations.get(h.endpoint)
            if reg is not None:
                reg.in_flight.discard(key)
                if (
                    h.endpoint in self._placeholders
                    and not reg.in_flight
                    and not any(k in self.held for _, k in reg.pending)
                ):
                    self._placeholders.discard(h.endpoint)
                    del self.registrations[h.endpoint]
        self._seen[key] = max(h.info.expiry_ms, now_ms)
        if disposition is not Disposition.FORWARDED and disposition is not Disposition.DELIVERED:
            self.counters["deleted"] += 1
        return [DeleteBundle(key, reason, disposition), BundleDeleted(key, reason, disposition)]

    def cancel(self, now_ms: int, key: bytes, reason: int) -> list[Output]:
        """An operator deletes a held bundle (``store_delete``): §5.10 deletion with ``reason``.

        Wherever the bundle is - waiting for a route, in a neighbour's queue, pending or in
        flight to an application - it is released, so it is never forwarded or delivered
        afterwards (stale queue and registration heap entries are skipped by the pumps). A
        transfer already in progress on a link cannot be recalled; its outcome is ignored.
        A deletion status report is generated if the bundle asked for one (§5.10, §6.1.1).
        Raises ``KeyError`` if the bundle is not held (unknown, or its store write pending).
        """
        h = self.held.get(key)
        if h is None:
            raise KeyError(key)
        out: list[Output] = []
        if h.info.wants(_REPORT_DELETION):
            out += self._report(now_ms, h.info, "deletion", reason)
        # In flight on a link: ``transmitted`` later finds no held bundle and only frees the
        # link's window slot.
        h.link_id = None
        if h.delivering is not None and h.endpoint is not None:
            reg = self.registrations.get(h.endpoint)
            if reg is not None:
                reg.in_flight.discard(key)
        out += self._release(now_ms, h, Disposition.DELETED, reason)
        if h.endpoint is not None:
            reg = self.registrations.get(h.endpoint)
            if reg is not None:
                out += self._pump_registration(reg)
        return out

    def _report(self, now_ms: int, subject: BundleInfo, kind: str, reason: int) -> list[Output]:
        """Generate a §6.1 status report bundle (stored and routed like any other)."""
        try:
            wire, info = status_report(
                subject=subject,
                kind=kind,
                reason=reason,
                now_ms=now_ms,
                node_eid=self.identity.node_eid,
                creation=self._timestamp(now_ms),
                lifetime_ms=self.config.report_lifetime_ms,
            )
        except (BundleError, ImportError, AttributeError, TypeError) as exc:
            return [BundleRejected("report", f"cannot build {kind} report: {exc}")]
        self.counters["reports"] += 1
        out: list[Output] = [StatusReportGenerated(subject.key, kind, reason, subject.report_to)]
        out += self._admit(now_ms, wire, info, "report", None)
        return out

    def next_deadline(self) -> int | None:
        """The DTN time at which ``tick`` next has work (the earliest expiry), if any."""
        while self._expiry_heap and self._expiry_heap[0][1] not in self.held:
            heapq.heappop(self._expiry_heap)
        return self._expiry_heap[0][0] if self._expiry_heap else None

    def tick(self, now_ms: int) -> list[Output]:
        """Expire bundles whose lifetime has elapsed (§4.2.8, §5.10 reason 1)."""
        out: list[Output] = []
        while self._expiry_heap and self._expiry_heap[0][0] <= now_ms:
            expiry, key = heapq.heappop(self._expiry_heap)
            h = self.held.get(key)
            if h is None or h.info.expiry_ms != expiry:
                continue
            if h.link_id is not None:
                # In flight: the transfer's outcome decides (the peer may already hold it).
                heapq.heappush(self._expiry_heap, (now_ms + 1000, key))
                continue
            self.counters["expired"] += 1
            if h.info.wants(_REPORT_DELETION):
                out += self._report(now_ms, h.info, "deletion", ReasonCode.LIFETIME_EXPIRED)
            if h.delivering is not None and h.endpoint is not None:
                reg = self.registrations.get(h.endpoint)
                if reg is not None:
                    reg.in_flight.discard(key)
            out += self._release(now_ms, h, Disposition.EXPIRED, ReasonCode.LIFETIME_EXPIRED)
        if len(self._seen) > self._seen_prune_at:
            self._prune_seen(now_ms)
        return out

    def _prune_seen(self, now_ms: int) -> None:
        """Forget released IDs past their expiry, and the oldest beyond ``seen_max`` (the dict
        keeps release order). The next prune waits until the set has doubled, so the cost per
        release stays constant however many are remembered (pruning at a fixed size rebuilt a
        dict of every ID released in the last hour on every tick)."""
        seen = {k: e for k, e in self._seen.items() if e > now_ms}
        excess = len(seen) - self.config.seen_max
        if excess > 0:
            seen = dict(itertools.islice(seen.items(), excess, None))
        self._seen = seen
        cap = self.config.seen_max
        self._seen_prune_at = max(min(1024, cap), min(2 * len(seen), cap * 5 // 4))

    # -----------------------------------------------------------------------------------------
    # restart
    # -----------------------------------------------------------------------------------------
    def restore(self, now_ms: int, entries: Iterable[StoredEntry]) -> list[Output]:
        """Take back custody of everything in the store after a restart (or crash)."""
        held: list[_Held] = []
        for entry in entries:
            if entry.key in self.held:
                continue
            info = BundleInfo.from_stored(entry.key, entry.meta)
            h = _Held(
                info=info,
                received_ms=entry.meta.received_ms,
                seq=entry.meta.seq,
                priority=int(entry.meta.priority),
            )
            self.held[entry.key] = h
            heapq.heappush(self._expiry_heap, (info.expiry_ms, entry.key))
            held.append(h)
        self._seq = max([self._seq, *(h.seq for h in held)])
        out: list[Output] = []
        for h in sorted(held, key=lambda x: x.seq):
            if self.identity.is_echo_eid(h.info.destination) or (
                self.identity.is_admin_eid(h.info.destination)
                and h.info.destination not in self.registrations
            ):
                # Service endpoints need the payload; the service re-feeds those via
                # ``note_payload`` + ``redispatch``.
                h.place, h.endpoint = "local", h.info.destination
                continue
            out += self._dispatch(now_ms, h)
        out += self.tick(now_ms)
        return out

    def remember_released(self, now_ms: int, released: Iterable[tuple[bytes, int]]) -> None:
        """After a restart: the bundles that left custody before it, as (key, expiry_ms) from
        the store's deletion log. Each is suppressed as a duplicate until its expiry, as if it
        had been released in this run (§5.9 duplicate suppression: a previous hop that never
        saw our acknowledgement before the crash resends, and the bundle must not be
        delivered or forwarded twice)."""
        for key, expiry_ms in released:
            if expiry_ms > now_ms and key not in self.held:
                self._seen[key] = max(expiry_ms, self._seen.get(key, 0))

    def redispatch(self, now_ms: int, key: bytes) -> list[Output]:
        h = self.held.get(key)
        return [] if h is None else self._dispatch(now_ms, h)

    # -----------------------------------------------------------------------------------------
    # introspection
    # -----------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        places: dict[str, int] = {"local": 0, "queue": 0, "waiting": 0}
        for h in self.held.values():
            places[h.place] = places.get(h.place, 0) + 1
        return {
            "held": len(self.held),
            "places": places,
            "queues": {n: len(q) for n, q in self._queues.items() if q},
            "counters": dict(self.counters),
        }

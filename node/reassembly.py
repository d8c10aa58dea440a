"""Reassembly of fragments addressed to this node (RFC 9171 §5.7 step 1, §5.9), sans-I/O.

A fragment whose destination is local is not delivered: it stays in the store (its meta
carries the ADU bookkeeping, ``BundleMeta.adu_key``) and the agent parks it here, in place
``"reassembly"``. When the payload extents of the held fragments of one ADU (same source and
creation timestamp) cover ``[0, total ADU length)`` the agent asks the service to reassemble
them (:class:`ReassembleBundle`); the service reads the fragments, rebuilds the original
bundle (``waystation.bundle.fragment.reassemble``: overlaps must agree byte for byte) and hands
the wire back through ``Agent.reassembled``. From there the reassembled bundle is admitted like
a bundle received from a link (origin ``"link:reassembly"``), so it passes the same inbound
BPSec check (``waystation.security``; RFC 9172 defers checks of fragments to reassembly) before
it is stored.

Crash safety (the order of writes):

1. the fragments are durable (they were stored when received);
2. the reassembled bundle is put durably (a new store key: the whole bundle's ID);
3. only after that put succeeded are the fragments deleted (disposition *delivered*, reason
   "no additional information": their content lives on in the reassembled bundle);
4. the reassembled bundle is then delivered like any other local bundle.

A kill between 2 and 3 leaves both in the store: on restart the fragments complete again, the
put of the reassembled bundle is refused as a duplicate (or the agent already holds it from
the store) and the fragments are deleted; the application still gets exactly one delivery. A
kill before 2 simply redoes the reassembly. The group-commit writer applies writes in
submission order, so the fragments' deletes are durable before the reassembled bundle's
post-delivery delete.

If the reassembled bundle is refused by the security policy, the fragments are deleted with
the policy's reason code (the deletion status report, when requested, is generated once, for
the reassembled bundle). Fragments that do not reassemble (overlaps that disagree, a
reassembled bundle that does not decode) are deleted with reason 8 "Block unintelligible".
Incomplete ADUs wait; each fragment expires with its own lifetime (§5.5).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from waystation.agent import Action, Event
from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.errors import BundleError
from waystation.bundle.fragment import reassemble
from waystation.bundle.model import BundleFlags, BundleId
from waystation.bundleops import BundleInfo, cached_eid, inspect
from waystation.store.api import (
    BundleMeta,
    CustodyState,
    Disposition,
    Priority,
    ReasonCode,
    StoreError,
    adu_key_of,
)

if TYPE_CHECKING:
    from waystation.agent import Agent, _Held

__all__ = [
    "REASSEMBLY_ORIGIN",
    "AduId",
    "FragmentsReassembled",
    "ReassembleBundle",
    "ReassemblyFailed",
    "ReassemblyTracker",
    "fragment_meta",
    "run_reassembly",
    "whole_key",
]

#: The origin of a reassembled bundle: starts with ``link:`` so the service's inbound BPSec
#: check runs on it exactly as on a bundle received from a neighbour.
REASSEMBLY_ORIGIN = "link:reassembly"

AduId = tuple[str, int, int]  # (source EID text, creation time, sequence)


@dataclass(frozen=True, slots=True)
class ReassembleBundle(Action):
    """Action: read the stored fragments ``keys``, reassemble them and report the result with
    ``Agent.reassembled(now_ms, adu, wire)`` or ``Agent.reassembly_failed(now_ms, adu, reason)``.
    """

    adu: AduId
    keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class FragmentsReassembled(Event):
    """Event: the fragments of ``adu`` became the stored bundle ``key``."""

    adu: AduId
    key: bytes
    fragments: int


@dataclass(frozen=True, slots=True)
class ReassemblyFailed(Event):
    """Event: the fragments of ``adu`` were deleted without delivery."""

    adu: AduId
    reason_code: int
    reason: str


@dataclass(slots=True)
class _Adu:
    total: int
    keys: set[bytes] = field(default_factory=set)
    assembling: bool = False  # a ReassembleBundle action is out, or the whole is being stored
    whole: bytes | None = None  # the reassembled bundle's key while it is being stored


def whole_key(source: str, creation_ms: int, sequence: int) -> bytes:
    """The store key of the original (unfragmented) bundle of an ADU."""
    return BundleId(cached_eid(source), CreationTimestamp(creation_ms, sequence)).key()


def fragment_meta(
    info: BundleInfo, received_ms: int, priority: int, local_endpoint: str | None
) -> BundleMeta:
    """Store metadata for a fragment, with the ADU bookkeeping the store indexes (§5.9)."""
    return BundleMeta(
        received_ms=received_ms,
        expiry_ms=info.expiry_ms,
        destination=info.destination,
        source=info.source,
        state=CustodyState.REASSEMBLY if local_endpoint else CustodyState.RECEIVED,
        priority=Priority(priority),
        adu_key=adu_key_of(info.source, (info.creation_ms, info.sequence)),
        fragment_offset=info.fragment_offset,
        total_adu_length=info.total_adu_length,
        report_to=None if info.report_to == "dtn:none" else info.report_to,
        extra=info.extra(),
    )


class ReassemblyTracker:
    """The agent's per-ADU view of held local fragments. Owned by one :class:`Agent`."""

    ORIGIN = REASSEMBLY_ORIGIN
    meta = staticmethod(fragment_meta)

    def __init__(self) -> None:
        self._adus: dict[AduId, _Adu] = {}
        self._by_whole: dict[bytes, AduId] = {}
        # Whole-bundle keys the policy rejected -> reason code, so late fragments of the same
        # bundle are deleted with that code rather than released as delivered (bounded).
        self._rejected: dict[bytes, int] = {}
        self.counters: dict[str, int] = {"reassembled": 0, "reassembly_failed": 0}

    def __len__(self) -> int:
        return len(self._adus)

    def pending(self) -> dict[AduId, int]:
        """ADUs waiting for fragments -> number of fragments held."""
        return {adu: len(a.keys) for adu, a in self._adus.items()}

    # -- inputs from the agent ------------------------------------------------------------------
    def hold(self, agent: Agent, now_ms: int, h: _Held) -> list[Any]:
        """A durable fragment for a local endpoint: park it; ask for reassembly once complete."""
        info = h.info
        adu: AduId = (info.source, info.creation_ms, info.sequence)
        h.place, h.endpoint = "reassembly", None
        whole = whole_key(*adu)
        if whole in self._rejected:
            return agent._release(now_ms, h, Disposition.DELETED, self._rejected[whole])
        if whole in agent.held or whole in agent._seen:
            # The ADU was already reassembled (a fragment from another fragmentation episode or
            # a retransmission): its content is already here.
            return agent._release(
                now_ms, h, Disposition.DELIVERED, ReasonCode.NO_ADDITIONAL_INFORMATION
            )
        if len(self._adus) >= 256 and len(self._adus) % 64 == 0:
            self._prune(agent)
        a = self._adus.get(adu)
        if a is None:
            a = self._adus[adu] = _Adu(total=int(info.total_adu_length or 0))
        a.keys.add(info.key)
        return self._maybe_complete(agent, adu, a)

    def _prune(self, agent: Agent) -> None:
        """Forget ADUs whose fragments all expired (their releases went through the agent)."""
        for adu, a in list(self._adus.items()):
            if not a.assembling and not any(k in agent.held for k in a.keys):
                del self._adus[adu]

    def _maybe_complete(self, agent: Agent, adu: AduId, a: _Adu) -> list[Any]:
        if a.assembling:
            return []
        a.keys = {k for k in a.keys if k in agent.held}  # expired ones are gone
        if not a.keys:
            del self._adus[adu]
            return []
        extents = sorted(
            (agent.held[k].info.fragment_offset or 0, agent.held[k].info.fragment_length or 0)
            for k in a.keys
        )
        covered = 0
        for offset, length in extents:
            if offset > covered:
                return []
            covered = max(covered, offset + length)
        if covered < a.total:
            return []
        a.assembling = True
        order = sorted(a.keys, key=lambda k: agent.held[k].info.fragment_offset or 0)
        return [ReassembleBundle(adu, tuple(order))]

    def reassembled(self, agent: Agent, now_ms: int, adu: AduId, wire: bytes) -> list[Any]:
        """The service rebuilt the ADU's bundle: admit it (BPSec check, durable put)."""
        a = self._adus.get(adu)
        if a is None:
            return []
        try:
            info = inspect(wire, now_ms, agent.config.max_bundle_size)
        except BundleError as exc:
            return self.failed(agent, now_ms, adu, f"reassembled bundle is invalid: {exc}")
        if info.fragment_offset is not None:
            return self.failed(agent, now_ms, adu, "reassembled bundle is still a fragment")
        if agent._is_duplicate(info.key):
            # Already stored (a crash after step 2 of the module docstring) or in progress.
            return self._finish(agent, now_ms, adu, Disposition.DELIVERED, 0, "already held")
        a.whole = info.key
        self._by_whole[info.key] = adu
        return agent._admit(now_ms, wire, info, REASSEMBLY_ORIGIN, None)

    def failed(self, agent: Agent, now_ms: int, adu: AduId, reason: str) -> list[Any]:
        """The fragments do not make a bundle: delete them all (reason 8) with one report."""
        a = self._adus.get(adu)
        if a is None:
            return []
        out: list[Any] = []
        first = next((agent.held[k].info for k in sorted(a.keys) if k in agent.held), None)
        if first is not None and first.wants(BundleFlags.REPORT_DELETION):
            out += agent._report(now_ms, first, "deletion", ReasonCode.BLOCK_UNINTELLIGIBLE)
        out += self._finish(
            agent, now_ms, adu, Disposition.DELETED, ReasonCode.BLOCK_UNINTELLIGIBLE, reason
        )
        return out

    def settled(
        self, agent: Agent, now_ms: int, key: bytes, outcome: str, code: int = 0
    ) -> list[Any]:
        """The put of a reassembled bundle ended: ``stored``, ``duplicate``, ``rejected`` (by
        the security policy, ``code`` its reason) or ``failed`` (store full, I/O error)."""
        adu = self._by_whole.pop(key, None)
        if adu is None:
            return []
        a = self._adus.get(adu)
        if a is None:
            return []
        if outcome in ("stored", "duplicate"):
            return self._finish(agent, now_ms, adu, Disposition.DELIVERED, 0, outcome)
        if outcome == "rejected":
            if len(self._rejected) >= 1024:
                self._rejected.pop(next(iter(self._rejected)))
            self._rejected[key] = code
            # the deletion status report was generated for the reassembled bundle
            return self._finish(agent, now_ms, adu, Disposition.DELETED, code, "security policy")
        # Not stored (store full...): keep the fragments; the next fragment, or a restart,
        # tries again.
        a.assembling, a.whole = False, None
        return []

    def _finish(
        self,
        agent: Agent,
        now_ms: int,
        adu: AduId,
        disposition: Disposition,
        code: int,
        reason: str,
    ) -> list[Any]:
        a = self._adus.pop(adu)
        if a.whole is not None:
            self._by_whole.pop(a.whole, None)
        out: list[Any] = []
        if disposition is Disposition.DELIVERED:
            self.counters["reassembled"] += 1
            out.append(FragmentsReassembled(adu, whole_key(*adu), len(a.keys)))
        else:
            self.counters["reassembly_failed"] += 1
            out.append(ReassemblyFailed(adu, code, reason))
        for k in sorted(a.keys):
            h = agent.held.get(k)
            if h is not None:
                out += agent._release(now_ms, h, disposition, code)
        return out


async def run_reassembly(service: Any, action: ReassembleBundle) -> None:
    """The service's side of :class:`ReassembleBundle`: read, reassemble, hand back.

    Reads the fragments from the store and rebuilds the bundle in the default executor (a
    large ADU is megabytes of copying), then reports to the agent on the event loop.
    """
    loop = asyncio.get_running_loop()
    store = service.store.store
    try:
        wire = await loop.run_in_executor(None, _reassemble_wires, store, action.keys)
    except (BundleError, StoreError, KeyError, ValueError) as exc:
        service.execute(service.agent.reassembly_failed(service.now_ms(), action.adu, str(exc)))
        return
    service.execute(service.agent.reassembled(service.now_ms(), action.adu, wire))


def _reassemble_wires(store: Any, keys: tuple[bytes, ...]) -> bytes:
    fragments = []
    for key in keys:
        wire = store.get(key)
        fragments.append(decode_bundle(wire, max_size=max(len(wire), 1)))
    return bytes(encode_bundle(reassemble(fragments)))

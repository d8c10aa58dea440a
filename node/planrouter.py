"""Contact Graph Routing as a :class:`~waystation.routing.Router` (adapter over contact_plan).

``waystation.contact_plan.Router`` computes SABR routes between ipn node numbers; this adapter
maps a destination EID to its node number, asks for the best route for a bundle of the given
size at ``now_ms`` (CCSDS 734.3-B-1 / SABR route selection as implemented there), and answers
the route's first hop as a node ID ``ipn:<hop>.0``.

Volume awareness (SABR, CCSDS 734.3-B-1 residual volume): every routing decision books the
bundle's size on every contact of the chosen route (``Router.book``), and ``Router.select``
only proposes routes whose contacts still have room from the bundle's earliest transmission
opportunity on. So a contact is never over-booked: when no route has room the answer is "no
hop" and the bundle waits in the store (re-routed when links or plans change). Only the booked
route's first hop is answered - offering unbooked alternatives would let the agent send a
bundle over capacity it never reserved.

Bookings are per bundle (the agent passes the bundle's store key): one that is forwarded
keeps its volume consumed; one that leaves custody without being sent (expired, deleted) or
is sent to another neighbour gives its volume back (``released``), and asking again for the
same bundle (re-routing after a failed transfer) first gives back its earlier booking. So an
expired bundle does not leave a contact looking full (ION likewise restores a contact's
residual capacity when a queued bundle is removed).

Limits (documented in docs/node.md): only ``ipn`` destinations are routed by the plan (a
contact plan names nodes by number); bookings restart from zero when a new plan is loaded; a
plan change re-routes only bundles that are still waiting.
"""

from __future__ import annotations

import logging
from typing import Any

from waystation.bundle.eid import IpnEID
from waystation.bundleops import cached_eid
from waystation.contact_plan import ContactPlan, ContactPlanError, VolumeExhausted
from waystation.contact_plan import Route as CgrRoute
from waystation.contact_plan import Router as CgrRouter

__all__ = ["PlanRouter"]

log = logging.getLogger(__name__)


class PlanRouter:
    """CGR over a loaded contact plan, for the node whose ipn number is ``local_node``."""

    def __init__(self, plan: ContactPlan, local_node: int) -> None:
        self.local_node = local_node
        self.cgr = CgrRouter(plan, local_node=local_node)
        self.bookings = 0  # routing decisions booked against contact volume (for status)
        self.booked_bytes = 0  # bytes currently booked (given-back bookings subtracted)
        # bundle key -> its live booking, so it can be given back (re-route, expiry, delete)
        self._by_key: dict[bytes, tuple[CgrRoute, int]] = {}

    @property
    def plan(self) -> ContactPlan:
        return self.cgr.plan

    def update_plan(self, plan: ContactPlan) -> None:
        self.cgr.update_plan(plan)
        self._by_key.clear()  # the new plan's contacts start with their full volume
        self.booked_bytes = 0

    def released(self, key: bytes, transmitted: bool) -> None:
        """The agent is done with bundle ``key``'s booking (see module docstring)."""
        booking = self._by_key.pop(key, None)
        if booking is None or transmitted:
            return
        route, size = booking
        self.cgr.release(route, size)
        self.booked_bytes -= size

    def next_hops(
        self, destination: str, now_ms: int, size: int, key: bytes | None = None
    ) -> list[str]:
        if key is not None:
            self.released(key, transmitted=False)  # a re-route: the old booking goes first
        try:
            eid = cached_eid(destination)
        except Exception:
            return []
        if not isinstance(eid, IpnEID) or eid.authority != 0 or eid.node == self.local_node:
            return []
        try:
            # select() already checked residual volume; book() re-checks and books atomically.
            # Two attempts: a route can go stale between the two only if the cache was rebuilt.
            for _ in range(2):
                best = self.cgr.select(eid.node, now_ms, size)
                if best is None:
                    return []
                try:
                    self.cgr.book(best, size)
                except VolumeExhausted:
                    continue
                self.booked_bytes += size
                self.bookings += 1
                if key is not None:
                    self._by_key[key] = (best, size)
                return [f"ipn:{best.next_hop}.0"]
        except ContactPlanError as exc:  # unknown node, no route: not an error for the node
            log.debug("no contact-plan route to %s: %s", destination, exc)
        return []

    def describe(self) -> list[dict[str, str]]:
        return [
            {
                "pattern": "ipn:*",
                "next_hop": f"contact graph ({len(self.plan.contacts)} contacts, "
                f"{self.bookings} bundles / {self.booked_bytes} bytes booked)",
                "kind": "cgr",
            }
        ]

    def contacts(self, now_ms: int, limit: int = 50) -> list[dict[str, Any]]:
        """Current and future contacts that involve this node, soonest first."""
        rows = [
            c
            for c in self.plan.contacts
            if c.end_ms > now_ms and self.local_node in (c.source, c.dest)
        ]
        rows.sort(key=lambda c: c.start_ms)
        return [
            {
                "from": f"ipn:{c.source}.0",
                "to": f"ipn:{c.dest}.0",
                "start_ms": c.start_ms,
                "end_ms": c.end_ms,
                "rate": c.rate,
                "active": c.start_ms <= now_ms,
            }
            for c in rows[:limit]
        ]

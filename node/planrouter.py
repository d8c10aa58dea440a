"""Contact Graph Routing as a :class:`~waystation.routing.Router` (adapter over contact_plan).

``waystation.contact_plan.Router`` computes SABR routes between ipn node numbers; this adapter
maps a destination EID to its node number, asks for the best route for a bundle of the given
size at ``now_ms`` (CCSDS 734.3-B-1 / SABR route selection as implemented there), and answers
the route's first hop as a node ID ``ipn:<hop>.0``, followed by the first hops of the other
routes in its route list as alternatives.

Limits (documented in docs/node.md): only ``ipn`` destinations are routed by the plan (a
contact plan names nodes by number); volume is not booked per bundle (routes are chosen at
best-case capacity, so a heavily loaded contact may be over-subscribed); a plan change
re-routes only bundles that are still waiting.
"""

from __future__ import annotations

import logging
from typing import Any

from waystation.bundle.eid import IpnEID
from waystation.bundleops import cached_eid
from waystation.contact_plan import ContactPlan, ContactPlanError
from waystation.contact_plan import Router as CgrRouter

__all__ = ["PlanRouter"]

log = logging.getLogger(__name__)


class PlanRouter:
    """CGR over a loaded contact plan, for the node whose ipn number is ``local_node``."""

    def __init__(self, plan: ContactPlan, local_node: int) -> None:
        self.local_node = local_node
        self.cgr = CgrRouter(plan, local_node=local_node)

    @property
    def plan(self) -> ContactPlan:
        return self.cgr.plan

    def update_plan(self, plan: ContactPlan) -> None:
        self.cgr.update_plan(plan)

    def next_hops(self, destination: str, now_ms: int, size: int) -> list[str]:
        try:
            eid = cached_eid(destination)
        except Exception:
            return []
        if not isinstance(eid, IpnEID) or eid.authority != 0 or eid.node == self.local_node:
            return []
        hops: list[str] = []
        try:
            best = self.cgr.select(eid.node, now_ms, size)
            if best is not None:
                hops.append(f"ipn:{best.next_hop}.0")
            for route in self.cgr.route_list(eid.node, now_ms):
                hop = f"ipn:{route.next_hop}.0"
                if hop not in hops:
                    hops.append(hop)
        except ContactPlanError as exc:  # unknown node, no route: not an error for the node
            log.debug("no contact-plan route to %s: %s", destination, exc)
        return hops

    def describe(self) -> list[dict[str, str]]:
        return [
            {
                "pattern": "ipn:*",
                "next_hop": f"contact graph ({len(self.plan.contacts)} contacts)",
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

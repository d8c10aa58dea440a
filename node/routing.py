"""Pluggable routing: the :class:`Router` protocol and the static table router.

RFC 9171 §5.4 step 1 leaves route selection to the node ("determine the endpoint(s) to which
the bundle is to be forwarded"); the agent asks its router for candidate *neighbour node IDs*
and forwards over whichever of them currently has a link up. A router that returns nothing
means "no known route": the bundle waits (§5.4.1 forwarding contraindicated; reason 6 is only
used if the bundle then expires or is dropped by policy).

Contact Graph Routing (waystation.contact_plan) and anti-entropy routers plug in by
implementing the same three-method protocol; the agent never knows which one it has.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ChainRouter", "ReservingRouter", "Route", "Router", "StaticRouter"]


@runtime_checkable
class Router(Protocol):
    """What the agent needs from any routing algorithm."""

    def next_hops(
        self, destination: str, now_ms: int, size: int, key: bytes | None = None
    ) -> Sequence[str]:
        """Candidate neighbour node IDs for a bundle to ``destination``, best first.

        ``key`` names the bundle (its store key) for routers that reserve capacity for it
        (CGR's volume booking); such a router also offers ``released`` (see
        :class:`ReservingRouter`). Asking again for the same key re-routes it: the earlier
        reservation is given back first."""
        ...

    def describe(self) -> list[dict[str, str]]:
        """A human/JSON readable view of the routing state (for ``status``)."""
        ...


@runtime_checkable
class ReservingRouter(Protocol):
    """A router that books capacity per bundle and must hear when the booking is over."""

    def released(self, key: bytes, transmitted: bool) -> None:
        """Bundle ``key`` will not use its booking any more: it left custody, or another
        neighbour was chosen. ``transmitted`` means the capacity was actually used (the
        bundle was forwarded), so it stays consumed; otherwise it is freed."""
        ...


@dataclass(frozen=True, slots=True)
class Route:
    """A static route: destination EID glob pattern -> next-hop neighbour node ID."""

    pattern: str
    next_hop: str

    def matches(self, destination: str) -> bool:
        if self.pattern == destination:
            return True
        return fnmatch.fnmatchcase(destination, self.pattern)


class StaticRouter:
    """A static table (destination pattern -> next hop), like ION's ``ipnfw`` plans.

    Patterns are shell globs over the EID text (``ipn:2.*``, ``dtn://mars/*``, ``*``). An
    exact match wins; otherwise the most specific pattern (the longest literal prefix before
    the first wildcard) wins, ties going to the route added first. A ``*`` route is the
    default route.
    """

    def __init__(self, routes: Sequence[Route] = ()) -> None:
        self._routes: list[Route] = []
        # destination -> its answer: every bundle asks, the table rarely changes, and with
        # many glob routes the match costs microseconds per route. Emptied on every change.
        self._answers: dict[str, tuple[str, ...]] = {}
        for r in routes:
            self.add(r.pattern, r.next_hop)

    def add(self, pattern: str, next_hop: str) -> None:
        if not pattern or not next_hop:
            raise ValueError("route pattern and next hop must be non-empty")
        self._routes = [r for r in self._routes if r.pattern != pattern]
        self._routes.append(Route(pattern, next_hop))
        self._answers.clear()

    def remove(self, pattern: str) -> bool:
        before = len(self._routes)
        self._routes = [r for r in self._routes if r.pattern != pattern]
        self._answers.clear()
        return len(self._routes) != before

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    @staticmethod
    def _specificity(pattern: str) -> int:
        for i, ch in enumerate(pattern):
            if ch in "*?[":
                return i
        return len(pattern) + 1  # no wildcard at all: more specific than any glob

    def next_hops(
        self, destination: str, now_ms: int, size: int, key: bytes | None = None
    ) -> list[str]:
        answer = self._answers.get(destination)
        if answer is None:
            answer = tuple(self._match(destination))
            if len(self._answers) >= 4096:
                self._answers.clear()
            self._answers[destination] = answer
        return list(answer)

    def _match(self, destination: str) -> list[str]:
        matching = [
            (-self._specificity(r.pattern), i, r.next_hop)
            for i, r in enumerate(self._routes)
            if r.matches(destination)
        ]
        matching.sort()
        hops: list[str] = []
        for _, _, hop in matching:
            if hop not in hops:
                hops.append(hop)
        return hops

    def describe(self) -> list[dict[str, str]]:
        return [
            {"pattern": r.pattern, "next_hop": r.next_hop, "kind": "static"} for r in self._routes
        ]


class ChainRouter:
    """Ask routers in order and concatenate their answers (e.g. CGR first, static fallback)."""

    def __init__(self, routers: Sequence[Router]) -> None:
        self.routers = list(routers)

    def next_hops(
        self, destination: str, now_ms: int, size: int, key: bytes | None = None
    ) -> list[str]:
        hops: list[str] = []
        for router in self.routers:
            for hop in router.next_hops(destination, now_ms, size, key):
                if hop not in hops:
                    hops.append(hop)
        return hops

    def released(self, key: bytes, transmitted: bool) -> None:
        for router in self.routers:
            released = getattr(router, "released", None)
            if released is not None:
                released(key, transmitted)

    def describe(self) -> list[dict[str, str]]:
        return [row for r in self.routers for row in r.describe()]

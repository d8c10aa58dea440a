"""Contact Graph Routing in the manner of SABR (CCSDS 734.3-B-1).

The contact plan is compiled into a :class:`ContactGraph`: for every sending node, per
neighbour, the contacts sorted by start time plus a running maximum of their end times (so a
binary search skips every contact that has already ended, even when contacts overlap).

Route search is a label-setting Dijkstra over *time*: a label is (arrival time, hop count,
-route termination time, entry node) and labels are compared in exactly that order, which is
SABR's route-selection order as ION implements it (the CCSDS 734.3-B-1 text itself was not
available while this was written; the order follows ION's and the CGR tutorial's description):

1. earliest best-case delivery time (arrival at the destination);
2. fewest hops;
3. latest route termination time (the earliest end of the route's contacts, i.e. the route
   stays usable longest);
4. smallest entry (next-hop) node number.

Each node keeps every label that is Pareto-optimal in (arrival, hops), so criteria 1 and 2 are
exact (a route that reaches a relay later but in fewer hops is not thrown away when the next
contact starts after both). Criteria 3 and 4 are applied among labels equal in (1, 2).

On large plans (``LAYERED_THRESHOLD`` contacts and up) :meth:`ContactGraph.search_layers` is
used instead: a numpy hop-synchronous relaxation that is exact in criteria 1 and 2 as well
(layer h holds the earliest arrival over at most h hops) and far cheaper in Python on orbital
plans with tens of thousands of contacts. Both are cross-checked against a brute-force
time-expanded search in the tests.

Time feasibility of one hop (SABR "earliest transmission opportunity"), for a bundle of ``size``
bytes that is at the sending node at time ``t``:

* first byte at ``tx = max(t, start + booked/rate)`` (already booked bytes go first);
* the hop is usable only if ``tx < end`` and the last byte ``tx + size/rate <= end``
  (so a booking can never exceed the residual volume);
* arrival at the receiver ``tx + size/rate + OWLT``.

With ``size=0`` this is the classic rule "usable if end > t, arrival = max(start, t) + OWLT"
(pyCGR, HDTN). Contacts with no range are skipped, as ION does (``missing_range_owlt_ms``
overrides that).

Route lists use Yen's k-shortest-paths algorithm over contacts (a spur search from each hop of
the previous route, excluding the contacts already used after the same root and the root's
nodes, so no route visits a node twice). :class:`Router` adds SABR-style per-bundle selection
from a cached route list, volume booking and cache invalidation.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from waystation.contact_plan.errors import RoutingError, UnknownNode, VolumeExhausted
from waystation.contact_plan.model import Contact, ContactPlan

__all__ = ["ContactGraph", "Route", "Router"]

_INF = float("inf")
_NEVER = 1 << 62


@dataclass(frozen=True, slots=True)
class Route:
    """A time-feasible sequence of contacts from ``source`` to ``dest``.

    ``departure_ms`` is when the bundle was (or will be) ready at ``source``; ``arrival_ms`` its
    projected arrival at ``dest`` for ``size`` bytes; ``termination_ms`` the earliest end of the
    route's contacts; ``hop_times`` the (first byte sent, arrival) time of each hop.
    """

    source: int
    dest: int
    contacts: tuple[Contact, ...]
    contact_ids: tuple[int, ...]
    departure_ms: int
    arrival_ms: int
    termination_ms: int
    size: int
    hop_times: tuple[tuple[int, int], ...]

    @property
    def hops(self) -> int:
        return len(self.contacts)

    @property
    def next_hop(self) -> int:
        return self.contacts[0].dest

    @property
    def nodes(self) -> tuple[int, ...]:
        return (self.source, *(c.dest for c in self.contacts))

    @property
    def confidence(self) -> float:
        p = 1.0
        for c in self.contacts:
            p *= c.confidence
        return p

    @property
    def sort_key(self) -> tuple[int, int, int, int]:
        """SABR selection order: arrival, hops, later termination, smaller entry node."""
        return (self.arrival_ms, len(self.contacts), -self.termination_ms, self.next_hop)

    def __str__(self) -> str:
        hops = " ".join(f"{c.source}->{c.dest}[{c.start_ms},{c.end_ms})" for c in self.contacts)
        return f"route {self.source}->{self.dest} arrival {self.arrival_ms} via {hops}"


@dataclass(slots=True)
class _Pair:
    dest: int
    starts: list[int]
    max_ends: list[int]
    ends: list[int]
    ids: list[int]
    min_owlt: int


class ContactGraph:
    """A compiled, routable view of a :class:`ContactPlan`, with per-contact bookings."""

    def __init__(self, plan: ContactPlan, *, missing_range_owlt_ms: int | None = None) -> None:
        self.plan = plan
        self.contacts: list[Contact] = []
        self.owlt: list[int] = []
        self.skipped_no_range = 0
        for c in plan.contacts:
            if c.source == c.dest:
                continue  # loopback contacts carry nothing between nodes
            owlt = plan.contact_owlt_ms(c)
            if owlt is None:
                if missing_range_owlt_ms is None:
                    self.skipped_no_range += 1
                    continue
                owlt = missing_range_owlt_ms
            self.contacts.append(c)
            self.owlt.append(owlt)
        self.booked: list[int] = [0] * len(self.contacts)
        self._booked_ms: list[int] = [0] * len(self.contacts)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, c in enumerate(self.contacts):
            groups.setdefault((c.source, c.dest), []).append(i)
        self.adj: dict[int, list[_Pair]] = {}
        for (s, d), ids in sorted(groups.items()):
            ids.sort(key=lambda i: (self.contacts[i].start_ms, self.contacts[i].end_ms))
            starts = [self.contacts[i].start_ms for i in ids]
            ends = [self.contacts[i].end_ms for i in ids]
            max_ends = list(itertools.accumulate(ends, max))
            self.adj.setdefault(s, []).append(
                _Pair(d, starts, max_ends, ends, ids, min(self.owlt[i] for i in ids))
            )
        self.nodes: frozenset[int] = frozenset(
            n for c in self.contacts for n in (c.source, c.dest)
        ) | plan.nodes
        self.version = 0
        # Column arrays for the vectorised search (see search_layers).
        self._node_list = sorted(self.nodes)
        self._node_index = {n: i for i, n in enumerate(self._node_list)}
        cs = self.contacts
        self._c_src = np.array([self._node_index[c.source] for c in cs], dtype=np.int64)
        self._c_dst = np.array([self._node_index[c.dest] for c in cs], dtype=np.int64)
        self._c_start = np.array([c.start_ms for c in cs], dtype=np.int64)
        self._c_end = np.array([c.end_ms for c in cs], dtype=np.int64)
        self._c_rate = np.array([c.rate for c in cs], dtype=np.int64)
        self._c_owlt = np.array(self.owlt, dtype=np.int64)
        self._c_booked_ms = np.zeros(len(cs), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.contacts)

    # -- volume ----------------------------------------------------------------------------

    def residual_volume(self, cid: int, at_ms: int | None = None) -> int:
        """Bytes still bookable on contact ``cid`` (from ``at_ms`` if given)."""
        c = self.contacts[cid]
        start = c.start_ms if at_ms is None else max(c.start_ms, at_ms)
        if start >= c.end_ms:
            return 0
        return max(0, c.rate * (c.end_ms - start) // 1000 - self.booked[cid])

    def _book(self, cid: int, size: int) -> None:
        self.booked[cid] += size
        rate = self.contacts[cid].rate
        self._booked_ms[cid] = -((-self.booked[cid] * 1000) // rate)
        self._c_booked_ms[cid] = self._booked_ms[cid]

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(
        self, cids: Sequence[int], t0: int, size: int = 0
    ) -> tuple[int, tuple[tuple[int, int], ...]] | None:
        """Arrival time and per-hop (tx, arrival) for ``size`` bytes leaving at ``t0``, or
        ``None`` if some hop is not feasible (ended, or not enough residual volume)."""
        t = t0
        times = []
        for cid in cids:
            c = self.contacts[cid]
            tx = max(t, c.start_ms + self._booked_ms[cid])
            if tx >= c.end_ms:
                return None
            last = tx + (-((-size * 1000) // c.rate) if size else 0)
            if last > c.end_ms:
                return None
            t = last + self.owlt[cid]
            times.append((tx, t))
        return t, tuple(times)

    def make_route(self, source: int, cids: Sequence[int], t0: int, size: int = 0) -> Route | None:
        ev = self.evaluate(cids, t0, size)
        if ev is None or not cids:
            return None
        arrival, times = ev
        cs = tuple(self.contacts[i] for i in cids)
        return Route(
            source, cs[-1].dest, cs, tuple(cids), t0, arrival,
            min(c.end_ms for c in cs), size, times,
        )

    # -- search ----------------------------------------------------------------------------

    def search(
        self,
        source: int,
        t0: int,
        dest: int | None = None,
        *,
        size: int = 0,
        deadline_ms: int | None = None,
        excluded_nodes: Collection[int] = (),
        excluded_contacts: Collection[int] = (),
        pareto: bool = True,
    ) -> dict[int, tuple[int, ...]]:
        """Label-setting search from ``source`` at ``t0``.

        Returns {node: contact ids of its best route}; with ``dest`` it stops as soon as the
        destination is settled and returns at most that one entry. ``pareto=False`` keeps one
        label per node (faster; arrival still exact, tie-breaks greedy).
        """
        contacts = self.contacts
        owlt = self.owlt
        booked_ms = self._booked_ms
        adj = self.adj
        deadline = _NEVER if deadline_ms is None else deadline_ms
        # Label storage in parallel lists (cheaper than objects in CPython).
        l_node: list[int] = [source]
        l_cid: list[int] = [-1]
        l_parent: list[int] = [-1]
        heap: list[tuple[int, int, int, int, int]] = [(t0, 0, -_NEVER, -1, 0)]
        best_hops: dict[int, int] = {}
        result: dict[int, int] = {}
        pop = heapq.heappop
        push = heapq.heappush
        excl_n = excluded_nodes
        excl_c = excluded_contacts
        while heap:
            arr, hops, neg_end, entry, li = pop(heap)
            u = l_node[li]
            bh = best_hops.get(u)
            if bh is not None and (not pareto or bh <= hops):
                continue
            best_hops[u] = hops
            if u not in result:
                result[u] = li
                if u == dest:
                    break
            pairs = adj.get(u)
            if not pairs:
                continue
            nhops = hops + 1
            min_end = -neg_end
            for pair in pairs:
                v = pair.dest
                bv = best_hops.get(v)
                if bv is not None and (not pareto or bv <= nhops):
                    continue
                if excl_n and v in excl_n:
                    continue
                starts = pair.starts
                n = len(starts)
                i = bisect_right(pair.max_ends, arr)
                best_a = _NEVER
                best_e = 0
                best_c = -1
                lim = _NEVER - pair.min_owlt
                ends = pair.ends
                ids = pair.ids
                while i < n:
                    s = starts[i]
                    if s > lim:
                        break
                    e = ends[i]
                    i += 1
                    if e <= arr:
                        continue
                    cid = ids[i - 1]
                    if excl_c and cid in excl_c:
                        continue
                    tx = s + booked_ms[cid]
                    if tx < arr:
                        tx = arr
                    if tx >= e:
                        continue
                    if size:
                        tx += -((-size * 1000) // contacts[cid].rate)
                        if tx > e:
                            continue
                    a = tx + owlt[cid]
                    if a < best_a or (a == best_a and e > best_e):
                        best_a, best_e, best_c = a, e, cid
                        lim = a - pair.min_owlt
                if best_c < 0 or best_a > deadline:
                    continue
                l_node.append(v)
                l_cid.append(best_c)
                l_parent.append(li)
                push(
                    heap,
                    (best_a, nhops, -(best_e if best_e < min_end else min_end),
                     v if entry < 0 else entry, len(l_node) - 1),
                )
        out: dict[int, tuple[int, ...]] = {}
        for node, li in result.items():
            if node == source:
                continue
            chain = []
            while l_cid[li] >= 0:
                chain.append(l_cid[li])
                li = l_parent[li]
            chain.reverse()
            out[node] = tuple(chain)
        return out

    def search_layers(
        self,
        source: int,
        t0: int,
        *,
        size: int = 0,
        deadline_ms: int | None = None,
        excluded_nodes: Collection[int] = (),
        excluded_contacts: Collection[int] = (),
    ) -> dict[int, tuple[int, ...]]:
        """Earliest-arrival routes to every node by hop-synchronous relaxation (vectorised).

        Layer ``h`` evaluates, with numpy, every contact leaving a node whose arrival improved
        in layer ``h-1`` (same hop feasibility as :meth:`search`), so after layer ``h`` each
        node holds its earliest arrival over routes of at most ``h`` hops. A node's final
        value is first reached in the layer equal to the fewest hops that achieve it, so the
        routes returned are exact in SABR's first two criteria (arrival, then hops); among
        equal candidates the contact that ends last is kept (criterion 3, greedily).
        Total work is about (contacts x times their source improved), which on large
        orbital plans is far less Python than a heap search.
        """
        idx_of = self._node_index
        if source not in idx_of:
            return {}
        n = len(self._node_list)
        inf = np.int64(_NEVER)
        ea = np.full(n, inf, dtype=np.int64)
        s_i = idx_of[source]
        ea[s_i] = t0
        # Contacts that ended before t0 can never be used: drop them once, then every layer
        # works on this (often much smaller) column subset.
        usable = self._c_end > t0
        if excluded_contacts:
            usable[np.fromiter(excluded_contacts, dtype=np.int64)] = False
        if excluded_nodes:
            bad = np.zeros(n, dtype=bool)
            for node in excluded_nodes:
                if node in idx_of:
                    bad[idx_of[node]] = True
            usable &= ~bad[self._c_dst] & ~bad[self._c_src]
        usable &= self._c_dst != s_i
        sub = np.flatnonzero(usable)
        c_src_s = self._c_src[sub]
        c_dst_s = self._c_dst[sub]
        c_end_s = self._c_end[sub]
        c_ready_s = self._c_start[sub] + self._c_booked_ms[sub]
        c_owlt_s = self._c_owlt[sub]
        tx_s = -((-size * 1000) // self._c_rate[sub]) if size else None
        deadline = inf if deadline_ms is None else np.int64(deadline_ms)
        # per node: list of (layer, parent contact) in improvement order
        history: dict[int, list[tuple[int, int]]] = {s_i: [(0, -1)]}
        frontier = np.zeros(n, dtype=bool)
        frontier[s_i] = True
        layer = 0
        while True:
            cand = np.flatnonzero(frontier[c_src_s])
            if len(cand) == 0:
                break
            layer += 1
            tx = np.maximum(ea[c_src_s[cand]], c_ready_s[cand])
            end = c_end_s[cand]
            last = tx if tx_s is None else tx + tx_s[cand]
            arr = np.where((tx < end) & (last <= end), last + c_owlt_s[cand], inf)
            if deadline_ms is not None:
                arr = np.where(arr <= deadline, arr, inf)
            dst = c_dst_s[cand]
            new = ea.copy()
            np.minimum.at(new, dst, arr)
            improved = new < ea
            if not improved.any():
                break
            win = improved[dst] & (arr == new[dst])
            k = sub[cand[win]]
            # among equal arrivals keep the contact that ends last, then the lowest index
            order = np.lexsort((k, -self._c_end[k], self._c_dst[k]))
            k = k[order]
            kd = self._c_dst[k]
            first = np.ones(len(k), dtype=bool)
            first[1:] = kd[1:] != kd[:-1]
            for node_i, cid in zip(kd[first].tolist(), k[first].tolist()):
                history.setdefault(node_i, []).append((layer, cid))
            ea = new
            frontier = improved
        out: dict[int, tuple[int, ...]] = {}
        c_src = self._c_src
        for node_i, _hist in history.items():
            if node_i == s_i:
                continue
            chain = []
            v, lim = node_i, layer + 1
            while v != s_i:
                # the last improvement of v at a layer below lim
                entry = None
                for lay, cid in reversed(history[v]):
                    if lay < lim:
                        entry = (lay, cid)
                        break
                if entry is None:  # pragma: no cover - history is built layer by layer
                    raise RoutingError("internal error reconstructing a route")
                lim, cid = entry
                chain.append(cid)
                v = int(c_src[cid])
            chain.reverse()
            out[self._node_list[node_i]] = tuple(chain)
        return out

    def best_route(
        self,
        source: int,
        dest: int,
        t0: int,
        *,
        size: int = 0,
        deadline_ms: int | None = None,
        excluded_nodes: Collection[int] = (),
        excluded_contacts: Collection[int] = (),
    ) -> Route | None:
        """The best route by SABR's selection order, or ``None``."""
        if source == dest:
            raise RoutingError("source and destination are the same node")
        found = self._find(
            source, t0, dest, size=size, deadline_ms=deadline_ms,
            excluded_nodes=excluded_nodes, excluded_contacts=excluded_contacts,
        )
        cids = found.get(dest)
        return None if cids is None else self.make_route(source, cids, t0, size)

    #: Graphs with at least this many contacts are searched with :meth:`search_layers`.
    LAYERED_THRESHOLD = 2000

    def _find(
        self, source: int, t0: int, dest: int | None, **kw: object
    ) -> dict[int, tuple[int, ...]]:
        if len(self.contacts) >= self.LAYERED_THRESHOLD:
            return self.search_layers(source, t0, **kw)  # type: ignore[arg-type]
        return self.search(source, t0, dest, **kw)  # type: ignore[arg-type]

    def tree(self, source: int, t0: int, *, size: int = 0, pareto: bool = True) -> dict[int, Route]:
        """Best route from ``source`` to every reachable node (``pareto=False`` uses the
        single-label heap search, ``True`` the exact one that suits the graph's size)."""
        if pareto:
            found = self._find(source, t0, None, size=size)
        else:
            found = self.search(source, t0, None, size=size, pareto=False)
        out = {}
        for node, cids in found.items():
            r = self.make_route(source, cids, t0, size)
            if r is not None:
                out[node] = r
        return out

    def k_routes(
        self,
        source: int,
        dest: int,
        t0: int,
        k: int,
        *,
        size: int = 0,
        deadline_ms: int | None = None,
        excluded_nodes: Collection[int] = (),
    ) -> list[Route]:
        """Up to ``k`` loop-free routes in SABR order (Yen's algorithm over contacts)."""
        first = self.best_route(
            source, dest, t0, size=size, deadline_ms=deadline_ms, excluded_nodes=excluded_nodes
        )
        if first is None or k <= 0:
            return []
        accepted = [first]
        seen = {first.contact_ids}
        candidates: list[tuple[tuple[int, int, int, int], int, Route]] = []
        counter = itertools.count()
        while len(accepted) < k:
            prev = accepted[-1]
            for i in range(len(prev.contact_ids)):
                root = prev.contact_ids[:i]
                if i == 0:
                    spur_node, spur_t = source, t0
                else:
                    ev = self.evaluate(root, t0, size)
                    if ev is None:
                        break
                    spur_node, spur_t = self.contacts[root[-1]].dest, ev[0]
                excl_c = {
                    r.contact_ids[i]
                    for r in accepted
                    if len(r.contact_ids) > i and r.contact_ids[:i] == root
                }
                excl_n = set(excluded_nodes)
                excl_n.add(source)
                excl_n.update(self.contacts[c].dest for c in root[:-1])
                excl_n.discard(spur_node)
                found = self._find(
                    spur_node, spur_t, dest, size=size, deadline_ms=deadline_ms,
                    excluded_nodes=excl_n, excluded_contacts=excl_c,
                )
                spur = found.get(dest)
                if spur is None:
                    continue
                total = root + spur
                if total in seen:
                    continue
                seen.add(total)
                r = self.make_route(source, total, t0, size)
                if r is not None:
                    heapq.heappush(candidates, (r.sort_key, next(counter), r))
            if not candidates:
                break
            accepted.append(heapq.heappop(candidates)[2])
        return accepted


@dataclass
class _CacheEntry:
    version: int
    computed_at: int
    routes: list[Route]
    hits: int = 0


@dataclass
class RouterStats:
    searches: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    invalidations: int = 0
    bookings: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Router:
    """Stateful CGR for one node: route lists cached per destination, volume booking.

    :meth:`select` is SABR's forwarding decision for one bundle: take the cached route list for
    the destination (computed by Yen at best-case size), drop routes that have expired, cannot
    carry the bundle in its residual volume or miss its deadline, and pick the best of the rest
    by SABR order; if none is left, search afresh with the bundle's size against current
    bookings. The cache is invalidated when the plan changes (:meth:`update_plan`) and per
    destination when its best route's termination time has passed.
    """

    def __init__(
        self,
        plan: ContactPlan,
        *,
        local_node: int | None = None,
        route_list_size: int = 5,
        missing_range_owlt_ms: int | None = None,
    ) -> None:
        self.local_node = local_node
        self.route_list_size = route_list_size
        self._missing = missing_range_owlt_ms
        self.graph = ContactGraph(plan, missing_range_owlt_ms=missing_range_owlt_ms)
        self._cache: dict[tuple[int, int, frozenset[int]], _CacheEntry] = {}
        self._version = 0
        self.stats = RouterStats()

    @property
    def plan(self) -> ContactPlan:
        return self.graph.plan

    def update_plan(self, plan: ContactPlan) -> None:
        """Swap in a new plan; every cached route and booking is dropped."""
        self.graph = ContactGraph(plan, missing_range_owlt_ms=self._missing)
        self._version += 1
        self._cache.clear()
        self.stats.invalidations += 1

    def _src(self, source: int | None) -> int:
        src = self.local_node if source is None else source
        if src is None:
            raise RoutingError("no source node given and the router has no local node")
        return src

    def _known(self, node: int) -> None:
        if node not in self.graph.nodes:
            raise UnknownNode(f"node {node} is not in the contact plan")

    def route_list(
        self, dest: int, now_ms: int, *, source: int | None = None,
        excluded_nodes: Iterable[int] = (),
    ) -> list[Route]:
        """The (cached) best-case route list to ``dest`` as of ``now_ms``."""
        src = self._src(source)
        self._known(src)
        self._known(dest)
        excl = frozenset(excluded_nodes)
        key = (src, dest, excl)
        entry = self._cache.get(key)
        if entry is not None and entry.version == self._version and now_ms >= entry.computed_at:
            live = [r for r in entry.routes if r.termination_ms > now_ms]
            if live and live[0] is entry.routes[0]:
                entry.routes = live
                entry.hits += 1
                self.stats.cache_hits += 1
                return live
        self.stats.cache_misses += 1
        self.stats.searches += 1
        routes = self.graph.k_routes(src, dest, now_ms, self.route_list_size, excluded_nodes=excl)
        self._cache[key] = _CacheEntry(self._version, now_ms, routes)
        return routes

    def select(
        self,
        dest: int,
        now_ms: int,
        size: int,
        *,
        source: int | None = None,
        deadline_ms: int | None = None,
        excluded_nodes: Iterable[int] = (),
    ) -> Route | None:
        """Best feasible route for one bundle of ``size`` bytes (not yet booked)."""
        src = self._src(source)
        excl = frozenset(excluded_nodes)
        best: Route | None = None
        for r in self.route_list(dest, now_ms, source=src, excluded_nodes=excl):
            cand = self.graph.make_route(src, r.contact_ids, now_ms, size)
            if cand is None or (deadline_ms is not None and cand.arrival_ms > deadline_ms):
                continue
            if best is None or cand.sort_key < best.sort_key:
                best = cand
        if best is not None:
            return best
        self.stats.searches += 1
        return self.graph.best_route(
            src, dest, now_ms, size=size, deadline_ms=deadline_ms, excluded_nodes=excl
        )

    def book(self, route: Route, size: int | None = None) -> None:
        """Reserve ``size`` bytes (default the route's size) on every contact of ``route``.

        Raises :class:`VolumeExhausted` (and books nothing) if any hop can no longer carry it
        from the route's departure time."""
        size = route.size if size is None else size
        if size < 0:
            raise RoutingError("size must be >= 0")
        g = self.graph
        if g.evaluate(route.contact_ids, route.departure_ms, size) is None or any(
            cid >= len(g.contacts) or g.contacts[cid] is not c
            for cid, c in zip(route.contact_ids, route.contacts)
        ):
            raise VolumeExhausted(
                f"cannot book {size} bytes on {route}: a contact has ended, changed or is full"
            )
        for cid in route.contact_ids:
            g._book(cid, size)
        self.stats.bookings += 1

    def release(self, route: Route, size: int | None = None) -> None:
        """Undo a booking (bundle dropped or sent elsewhere)."""
        size = route.size if size is None else size
        g = self.graph
        for cid, c in zip(route.contact_ids, route.contacts):
            if cid < len(g.contacts) and g.contacts[cid] is c:
                g.booked[cid] = max(0, g.booked[cid] - size)
                g._book(cid, 0)

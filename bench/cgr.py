"""Contact Graph Routing speed on orbital plans: 100 satellites with ISLs x 20 ground stations.

Plans: the full one-day plan of the shared benchmark constellation (``_constellation.py``,
computed at the start, ~89-90k contacts) and its first hours cut to about 10k contacts.

Measured in the same run, on the same random queries (fixed seed):

* **route**: ``ContactGraph.best_route`` (exact SABR order: Pareto labels on arrival and hops)
  between random ground stations at random times on the 10k-contact plan; p50/p90.
* **tree**: from a ground station to every node on the full plan: ``search_layers`` (the
  vectorised hop-synchronous search ``ContactGraph`` uses on large plans; exact in arrival and
  hops) and the heap search with one label per node (``pareto=False``); their arrival times
  must agree (checked).
* **reference**: a textbook contact-graph Dijkstra (contacts are vertices, a heap, per-node
  contact lists, no pruning - the structure of pyCGR/HDTN/ION's searches) on the same route
  queries (10k plan), and once as a tree on the full plan (it is far too slow to repeat);
  its arrival times must equal ours (checked).
* **select**: ``Router.select`` for a 1 kB bundle (cached Yen route list, per-bundle checks).

Targets (issue 6): route p50 <= 5 ms on 10k contacts; tree <= 15 ms on 89k contacts.
Run: ``.venv/bin/python bench/cgr.py [--queries N]`` (about 30-60 s, mostly plan computation).
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _constellation import START_MS, scenario
from waystation.contact_plan.cgr import ContactGraph, Router
from waystation.contact_plan.model import ContactPlan
from waystation.contact_plan.orbits import compute_plan


def reference_earliest_arrival(
    g: ContactGraph, src: int, dst: int | None, t0: int, budget_s: float | None = None
) -> dict[int, int] | None:
    """Contact-vertex Dijkstra: label = arrival at the contact's receiver. Returns best
    arrival per reached node (all nodes when ``dst`` is None); ``None`` if it ran out of
    ``budget_s`` seconds."""
    give_up = None if budget_s is None else time.perf_counter() + budget_s
    out: dict[int, list[int]] = {}
    for i, c in enumerate(g.contacts):
        out.setdefault(c.source, []).append(i)
    best = {}
    heap = []
    for i in out.get(src, []):
        c = g.contacts[i]
        if c.end_ms > t0:
            heapq.heappush(heap, (max(c.start_ms, t0) + g.owlt[i], i))
    done = [False] * len(g.contacts)
    pops = 0
    while heap:
        arr, i = heapq.heappop(heap)
        pops += 1
        if give_up is not None and pops % 4096 == 0 and time.perf_counter() > give_up:
            return None
        if done[i]:
            continue
        done[i] = True
        node = g.contacts[i].dest
        if node not in best:
            best[node] = arr
            if node == dst:
                break
        for j in out.get(node, []):
            if done[j]:
                continue
            c = g.contacts[j]
            if c.end_ms > arr and c.dest != src:
                heapq.heappush(heap, (max(c.start_ms, arr) + g.owlt[j], j))
    return best


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--reference-budget", type=float, default=60.0,
                    help="seconds the reference tree may run on the full plan (default 60)")
    ap.add_argument("--skip-reference-tree", action="store_true",
                    help="skip the one slow reference tree on the full plan")
    args = ap.parse_args()
    t = time.perf_counter()
    sc = scenario()
    full = compute_plan(sc, START_MS, 24, isl=True)
    print(f"plan: {len(full.contacts)} contacts, {len(full.nodes)} nodes, computed in "
          f"{time.perf_counter() - t:.1f} s")
    contacts = sorted(full.contacts, key=lambda c: c.start_ms)
    cut = contacts[10_000].start_ms
    small = ContactPlan(tuple(contacts[:10_000]), tuple(r for r in full.ranges if r.start_ms < cut))
    g_small = ContactGraph(small)
    g_full = ContactGraph(full)
    gs = [s.node for s in sc.stations]
    rng = random.Random(7343)

    # -- one route, 10k contacts --------------------------------------------------------------
    lat, ref_lat, routed = [], [], 0
    span = cut - START_MS
    for _ in range(args.queries):
        a, b = rng.sample(gs, 2)
        t0 = START_MS + rng.randrange(span // 2)
        t1 = time.perf_counter()
        r = g_small.best_route(a, b, t0)
        lat.append(time.perf_counter() - t1)
        t1 = time.perf_counter()
        ref = reference_earliest_arrival(g_small, a, b, t0)
        ref_lat.append(time.perf_counter() - t1)
        assert ref is not None and (r.arrival_ms if r else None) == ref.get(b), (a, b, t0)
        routed += r is not None
    print(f"route, {len(g_small)} contacts, {args.queries} queries ({routed} routed): "
          f"p50 {1000 * pct(lat, .5):.2f} ms, p90 {1000 * pct(lat, .9):.2f} ms   "
          f"reference p50 {1000 * pct(ref_lat, .5):.2f} ms -> {pct(ref_lat, .5) / pct(lat, .5):.1f}x"
          "   (target p50 <= 5 ms)")

    # -- tree to all destinations, full plan ---------------------------------------------------
    res: dict[str, list[float]] = {"layers": [], "heap": []}
    n_tree = max(10, args.queries // 5)
    for _ in range(n_tree):
        a = rng.choice(gs)
        t0 = START_MS + rng.randrange(12 * 3600 * 1000)
        t1 = time.perf_counter()
        tree = g_full.search_layers(a, t0)
        res["layers"].append(time.perf_counter() - t1)
        t1 = time.perf_counter()
        tree_h = g_full.search(a, t0, pareto=False)
        res["heap"].append(time.perf_counter() - t1)
        assert set(tree) == set(tree_h)
        for node, cids in tree.items():
            assert g_full.evaluate(cids, t0)[0] == g_full.evaluate(tree_h[node], t0)[0]  # type: ignore[index]
    print(f"tree, {len(g_full)} contacts, {n_tree} sources, {len(tree)} nodes reached: "
          f"layered p50 {1000 * pct(res['layers'], .5):.1f} ms (p90 {1000 * pct(res['layers'], .9):.1f}), "
          f"heap single-label p50 {1000 * pct(res['heap'], .5):.1f} ms   (target <= 15 ms)")
    if not args.skip_reference_tree:
        a, t0 = gs[0], START_MS
        t1 = time.perf_counter()
        ref = reference_earliest_arrival(g_full, a, None, t0, budget_s=args.reference_budget)
        ref_t = time.perf_counter() - t1
        if ref is None:
            print(f"reference tree (textbook contact Dijkstra) on the full plan: gave up after "
                  f"{ref_t:.0f} s -> layered is > {ref_t / pct(res['layers'], .5):.0f}x faster")
        else:
            tree = g_full.search_layers(a, t0)
            assert all(g_full.evaluate(c, t0)[0] == ref[n] for n, c in tree.items())  # type: ignore[index]
            print(f"reference tree (textbook contact Dijkstra) on the full plan: {ref_t:.1f} s "
                  f"-> layered is {ref_t / pct(res['layers'], .5):.0f}x faster")

    # -- per-bundle selection with the route cache ---------------------------------------------
    router = Router(small, route_list_size=3)
    sel = []
    a, b = gs[0], gs[1]
    t0 = START_MS + 600_000
    for k in range(args.queries):
        t1 = time.perf_counter()
        router.select(b, t0 + k * 1000, 1000, source=a)
        sel.append(time.perf_counter() - t1)
    print(f"select (cached route list, 1 kB bundles): p50 {1e6 * pct(sel, .5):.0f} us, first "
          f"(Yen k=3) {1000 * sel[0]:.1f} ms; cache hits {router.stats.cache_hits}, "
          f"misses {router.stats.cache_misses}")
    _ = statistics
    return 0


if __name__ == "__main__":
    sys.exit(main())

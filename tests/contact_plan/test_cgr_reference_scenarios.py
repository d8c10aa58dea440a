"""CGR against third-party expectations in refdata/cgr (HDTN unit tests, the CGR tutorial /
pyCGR, ION regression plans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from waystation.contact_plan.cgr import ContactGraph, Router
from waystation.contact_plan.errors import RoutingError, UnknownNode, VolumeExhausted
from waystation.contact_plan.formats import load_plan
from waystation.contact_plan.model import Contact, ContactPlan, Range


def _hdtn(refdata: Path, name: str) -> tuple[ContactGraph, list[dict]]:
    path = refdata / "cgr" / "hdtn" / name
    raw = json.loads(path.read_text())["contacts"]
    return ContactGraph(load_plan(path, lenient=True)), raw


def _as_raw(c: Contact) -> tuple[int, int, int, int]:
    return (c.source, c.dest, c.start_ms // 1000, c.end_ms // 1000)


def _raw_key(d: dict) -> tuple[int, int, int, int]:
    return (d["source"], d["dest"], d["startTime"], d["endTime"])


def test_hdtn_routing_test_case(refdata: Path) -> None:
    g, raw = _hdtn(refdata, "contactPlan_RoutingTest.json")
    r = g.best_route(1, 4, 0)
    assert r is not None and r.next_hop == 2 and r.arrival_ms == 12_000
    assert [_as_raw(c) for c in r.contacts] == [_raw_key(raw[1]), _raw_key(raw[2])]
    assert g.best_route(4, 1, 0) is None


def test_cgr_tutorial_dijkstra_and_yen(refdata: Path) -> None:
    g, raw = _hdtn(refdata, "cgrTutorial.json")
    r = g.best_route(1, 5, 0)
    assert r is not None and r.next_hop == 3 and r.arrival_ms == 3000
    assert [_as_raw(c) for c in r.contacts] == [_raw_key(raw[i]) for i in (4, 6, 10)]
    routes = g.k_routes(1, 5, 0, 10)
    assert len(routes) == 7
    assert [x.next_hop for x in routes[:3]] == [3, 2, 5]
    assert [x.arrival_ms // 1000 for x in routes] == [3, 4, 11, 31, 31, 51, 51]
    assert len({x.contact_ids for x in routes}) == 7
    for x in routes:
        assert len(set(x.nodes)) == len(x.nodes)  # loop-free


def test_hdtn_10_and_50_nodes(refdata: Path) -> None:
    g, _ = _hdtn(refdata, "10nodes.json")
    r = g.best_route(20, 40, 0)
    assert r is not None and r.next_hop == 3686 and r.arrival_ms == 2000
    g, _ = _hdtn(refdata, "50nodes.json")
    r = g.best_route(20, 40, 0)
    # README: a documented tie, both next hops reach node 40 at t=2
    assert r is not None and r.arrival_ms == 2000 and r.next_hop in {3513, 3545}


def test_ion_bench_cgr_diamond(refdata: Path) -> None:
    g = ContactGraph(load_plan(refdata / "ion_contact_plans" / "bench-cgr_global.ionrc"))
    r = g.best_route(1, 4, 0)
    assert r is not None and r.next_hop == 2 and r.arrival_ms == 25_000
    assert [(c.source, c.dest, c.start_ms, c.end_ms) for c in r.contacts] == [
        (1, 2, 20_000, 30_000), (2, 4, 25_000, 40_000)]


def test_ion_bug_0002_no_stale_route_after_150s(refdata: Path) -> None:
    """ION tests/bug-0002: after t>150 s, 4->2 and 4->3 both route without a 1<->2 loop,
    even when a 4->2 route was cached early."""
    router = Router(load_plan(refdata / "cgr" / "ion" / "bug-0002-cgr-recompute_global.ionrc"),
                    local_node=4)
    early = router.select(2, 5_000, 100)
    assert early is not None and early.nodes[0] == 4
    for dest in (2, 3):
        r = router.select(dest, 160_000, 100)
        assert r is not None and r.nodes == (4, dest) and r.arrival_ms == 161_001  # 1 ms to send 100 B
    assert router.stats.cache_misses >= 2


def test_ion_mars_plan_routes_9_to_1(refdata: Path) -> None:
    plan = load_plan(refdata / "cgr" / "ion" / "cgr-test_global.ionrc")
    r = ContactGraph(plan).best_route(9, 1, 0)
    assert r is not None and r.dest == 1 and r.hops >= 2


def _line(n: int, rate: int = 1000, owlt: int = 0) -> ContactPlan:
    cs = [Contact(i, i + 1, 0, 10_000, rate) for i in range(1, n)]
    rs = [Range(i, i + 1, 0, 10_000, owlt) for i in range(1, n)]
    return ContactPlan(tuple(cs), tuple(rs))


def test_volume_booking_never_overbooks() -> None:
    # 1000 B/s for 10 s = 10_000 bytes per contact
    router = Router(_line(2), local_node=1)
    booked = 0
    while (r := router.select(2, 0, 3000)) is not None:
        router.book(r)
        booked += 3000
    assert booked == 9000
    assert router.graph.residual_volume(0) == 1000
    # two hops: the second hop cannot send before the data has arrived (store and forward),
    # so only two 3-s bundles fit through 1->2->3 within [0, 10 s)
    router = Router(_line(3), local_node=1)
    n = 0
    while (r := router.select(3, 0, 3000)) is not None:
        router.book(r)
        n += 1
    g = router.graph
    assert n == 2 and all(g.booked[i] <= g.contacts[i].volume for i in range(len(g)))
    # a stale route object cannot be booked past the volume either, and nothing is booked
    before = list(g.booked)
    with pytest.raises(VolumeExhausted):
        router.book(g.make_route(1, (0, 1), 0, 0), 3000)  # type: ignore[arg-type]
    assert g.booked == before
    # release frees it again
    r0 = g.make_route(1, (0, 1), 0, 1000)
    assert r0 is not None
    router.book(r0)
    router.release(r0)
    assert g.booked == before


def test_booked_volume_delays_transmission() -> None:
    router = Router(_line(2), local_node=1)
    r1 = router.select(2, 0, 2000)
    assert r1 is not None and r1.arrival_ms == 2000
    router.book(r1)
    r2 = router.select(2, 0, 2000)
    assert r2 is not None and r2.arrival_ms == 4000  # queued behind the first booking


def test_deadline_and_excluded_nodes() -> None:
    plan = ContactPlan(
        (Contact(1, 2, 0, 100_000, 10), Contact(2, 4, 0, 100_000, 10),
         Contact(1, 3, 0, 100_000, 10), Contact(3, 4, 50_000, 100_000, 10)),
        tuple(Range(a, b, 0, 100_000, 0) for a, b in [(1, 2), (2, 4), (1, 3), (3, 4)]),
    )
    g = ContactGraph(plan)
    assert g.best_route(1, 4, 0).nodes == (1, 2, 4)  # type: ignore[union-attr]
    assert g.best_route(1, 4, 0, excluded_nodes={2}).nodes == (1, 3, 4)  # type: ignore[union-attr]
    assert g.best_route(1, 4, 0, excluded_nodes={2}, deadline_ms=40_000) is None


def test_fewest_hops_breaks_arrival_ties_even_when_relay_reached_later() -> None:
    # 1->2->3->5 reaches 3 at 5 (3 hops); 1->3 directly reaches it at 6 (1 hop);
    # 3->5 opens at 10, so both arrive at 10: the 2-hop route must win.
    cs = [Contact(1, 2, 0, 100, 1), Contact(2, 6, 0, 100, 1), Contact(6, 3, 5, 100, 1),
          Contact(1, 3, 6, 100, 1), Contact(3, 5, 10, 100, 1)]
    plan = ContactPlan(tuple(cs), tuple(Range(c.source, c.dest, 0, 100, 0) for c in cs))
    r = ContactGraph(plan).best_route(1, 5, 0)
    assert r is not None and r.arrival_ms == 10 and r.nodes == (1, 3, 5)


def test_router_cache_invalidation_on_plan_change_and_expiry() -> None:
    router = Router(_line(3), local_node=1)
    router.route_list(3, 0)
    router.route_list(3, 1000)
    assert router.stats.cache_hits == 1
    router.update_plan(_line(4))
    assert router.route_list(4, 0)[0].dest == 4
    assert router.stats.invalidations == 1
    assert router.route_list(3, 20_000) == []  # contacts over: recomputed, nothing left


def test_router_errors() -> None:
    router = Router(_line(3))
    with pytest.raises(RoutingError):
        router.select(3, 0, 1)  # no local node
    with pytest.raises(UnknownNode):
        router.select(99, 0, 1, source=1)
    with pytest.raises(RoutingError):
        router.graph.best_route(1, 1, 0)


def test_contacts_without_range_are_skipped_unless_defaulted() -> None:
    plan = ContactPlan((Contact(1, 2, 0, 1000, 1),))
    assert ContactGraph(plan).best_route(1, 2, 0) is None
    r = ContactGraph(plan, missing_range_owlt_ms=0).best_route(1, 2, 0)
    assert r is not None and r.arrival_ms == 0


def test_layered_search_reproduces_reference_scenarios(refdata: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorised search used on large plans gives the same answers as the heap search."""
    monkeypatch.setattr(ContactGraph, "LAYERED_THRESHOLD", 0)
    g, _ = _hdtn(refdata, "cgrTutorial.json")
    routes = g.k_routes(1, 5, 0, 10)
    assert [x.arrival_ms // 1000 for x in routes] == [3, 4, 11, 31, 31, 51, 51]
    assert [x.next_hop for x in routes[:3]] == [3, 2, 5]
    g, _ = _hdtn(refdata, "contactPlan_RoutingTest.json")
    r = g.best_route(1, 4, 0)
    assert r is not None and r.arrival_ms == 12_000 and r.next_hop == 2
    g, _ = _hdtn(refdata, "50nodes.json")
    r = g.best_route(20, 40, 0)
    assert r is not None and r.arrival_ms == 2000 and r.next_hop in {3513, 3545}

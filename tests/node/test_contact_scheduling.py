"""Contact-scheduled links (node/contacts.py), the scaled clock (node/simclock.py) and CGR
volume booking (node/planrouter.py).

The timeline is driven by a ManualClock: tests move DTN time and call ``run_due`` (the body
of the APScheduler job) instead of sleeping; the armed job's wall time is checked separately.
The last test moves a bundle over a real TCPCLv4 session on loopback between two in-process
nodes, opened and closed by the plan.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.dtntime import ManualClock
from waystation.config import ConfigError, LinkConfig, NodeConfig, load_config
from waystation.contact_plan import ContactPlan
from waystation.contact_plan.formats import save_plan
from waystation.contact_plan.model import Contact, Range
from waystation.contact_plan.schedule import ContactEnded, ContactScheduler, ContactStarted
from waystation.contacts import (
    CloseLink,
    ContactClosed,
    ContactLinkPlanner,
    ContactOpened,
    OpenLink,
    neighbour_number,
)
from waystation.planrouter import PlanRouter
from waystation.service import NodeService
from waystation.simclock import AnchoredScaledClock, clock_from_config, parse_clock_start
from waystation.store.memory import MemoryBundleStore

pytestmark = pytest.mark.timeout(60)

T0 = 800_000_000_000


def plan_of(*windows: tuple[int, int, int, int], rate: int = 10_000) -> ContactPlan:
    """Symmetric contacts (a, b, start, end) in both directions, with ranges of 1 ms."""
    contacts, ranges = [], []
    for a, b, s, e in windows:
        contacts += [Contact(a, b, s, e, rate), Contact(b, a, s, e, rate)]
        ranges += [Range(a, b, s, e, 1), Range(b, a, s, e, 1)]
    return ContactPlan(contacts=tuple(contacts), ranges=tuple(ranges))


# ------------------------------------------------------------------------------- planner
def test_planner_opens_on_first_contact_and_closes_after_the_last() -> None:
    link = LinkConfig("sat", "tcpcl", {"address": "x:1", "scheduled": True, "neighbour": 2})
    p = ContactLinkPlanner(1, [link])
    fwd, back = Contact(1, 2, 10, 20, 5), Contact(2, 1, 10, 25, 5)
    out = p.handle([ContactStarted(fwd, 10), ContactStarted(back, 10)])
    assert [type(o) for o in out] == [ContactOpened, OpenLink, ContactOpened]
    assert p.is_open(2)
    out = p.handle([ContactEnded(fwd, 20)])
    assert [type(o) for o in out] == [ContactClosed]  # the reverse contact still runs
    out = p.handle([ContactEnded(back, 25)])
    assert [type(o) for o in out] == [ContactClosed, CloseLink]
    assert out[1] == CloseLink("sat", 2) and not p.is_open(2)


def test_planner_ignores_contacts_of_other_nodes_and_unknown_ends() -> None:
    p = ContactLinkPlanner(1, [])
    assert p.handle([ContactStarted(Contact(2, 3, 0, 5, 1), 0)]) == []
    assert p.handle([ContactEnded(Contact(1, 2, 0, 5, 1), 5)]) == []  # never started


def test_planner_rejects_scheduled_links_without_a_usable_neighbour() -> None:
    p = ContactLinkPlanner(1, [])
    with pytest.raises(ValueError, match="needs a 'neighbour'"):
        p.add_link(LinkConfig("x", "tcpcl", {"scheduled": True}))
    with pytest.raises(ValueError, match="this node"):
        p.add_link(LinkConfig("x", "tcpcl", {"scheduled": True, "neighbour": "ipn:1.0"}))


@pytest.mark.parametrize(
    ("text", "number"), [(2, 2), ("2", 2), ("ipn:7", 7), ("ipn:7.0", 7), (" 9 ", 9)]
)
def test_neighbour_number_forms(text: Any, number: int) -> None:
    assert neighbour_number(text) == number


@pytest.mark.parametrize("bad", [True, 0, -1, "dtn://a/", "ipn:3.1", "", 2**64])
def test_neighbour_number_rejects(bad: Any) -> None:
    with pytest.raises(ValueError, match="neighbour"):
        neighbour_number(bad)


# ------------------------------------------------------------------------------- clocks
def test_anchored_scaled_clocks_in_two_objects_agree() -> None:
    anchor = time.time()
    a = AnchoredScaledClock(60, T0, anchor)
    b = AnchoredScaledClock(60, T0, anchor)
    assert abs(a.now_ms() - b.now_ms()) < 60 * 20  # same reading within 20 ms of wall time
    future = AnchoredScaledClock(60, T0, anchor + 10)
    assert future.now_ms() < T0  # before its anchor the clock reads earlier than the start
    assert a.real_seconds(60_000) == pytest.approx(1.0)


def test_clock_from_config_and_start_parsing() -> None:
    cfg = NodeConfig(node_id="ipn:1.0", clock_scale=60, clock_start=T0, clock_anchor=1e9)
    clock = clock_from_config(cfg)
    assert isinstance(clock, AnchoredScaledClock) and clock.factor == 60
    assert not isinstance(clock_from_config(NodeConfig(node_id="ipn:1.0")), AnchoredScaledClock)
    assert parse_clock_start("2000-01-01T00:01:00Z") == 60_000
    assert parse_clock_start("2000-01-01T00:01:00") == 60_000
    assert parse_clock_start(5) == 5
    for bad in ("yesterday", -1, True, "1999-12-31T00:00:00Z"):
        with pytest.raises(ValueError, match="clock start"):
            parse_clock_start(bad)


def test_config_file_clock_and_watch_settings(tmp_path: Path) -> None:
    f = tmp_path / "node.toml"
    f.write_text(
        '[node]\nid = "ipn:1.0"\nipn = 1\nclock_scale = 60\n'
        'clock_start = "2024-05-09T20:40:00Z"\nclock_anchor = 1700000000\nwatch_plan = true\n'
        '[[links]]\nid = "sat"\nkind = "tcpcl"\naddress = "127.0.0.1:4556"\n'
        'scheduled = true\nneighbour = "ipn:2.0"\n'
    )
    cfg = load_config(f)
    assert cfg.clock_scale == 60.0 and cfg.clock_anchor == 1.7e9 and cfg.watch_plan
    assert cfg.clock_start == 768_602_400_000
    assert cfg.links[0].options["scheduled"] is True
    f.write_text('[node]\nclock_scale = 0\n')
    with pytest.raises(ConfigError, match="clock_scale"):
        load_config(f)
    f.write_text('[node]\nclock_start = "soon"\n')
    with pytest.raises(ConfigError, match="clock_start"):
        load_config(f)


# ------------------------------------------------------------------------------- CGR booking
def test_plan_router_books_volume_and_never_overbooks() -> None:
    # 1 -> 2 for 10 s at 1000 B/s: 10,000 bytes; three 3,000-byte bundles fit, a fourth not.
    plan = plan_of((1, 2, T0, T0 + 10_000), rate=1000)
    r = PlanRouter(plan, 1)
    hops = [r.next_hops("ipn:2.1", T0, 3000) for _ in range(4)]
    assert hops[:3] == [["ipn:2.0"]] * 3
    assert hops[3] == []  # waits in the store instead of over-subscribing the contact
    assert r.bookings == 3 and r.booked_bytes == 9000
    assert r.next_hops("ipn:2.1", T0, 1000) == ["ipn:2.0"]  # the residual 1,000 bytes
    assert "booked" in r.describe()[0]["next_hop"]
    r.update_plan(plan)  # a new plan starts with fresh residual volume
    assert r.next_hops("ipn:2.1", T0, 3000) == ["ipn:2.0"]


def test_plan_router_bookings_are_per_bundle_and_given_back_unless_used() -> None:
    """A booking is consumed when its bundle is forwarded, given back when the bundle leaves
    without being sent or is re-routed (same key again), and never double-counted."""
    plan = plan_of((1, 2, T0, T0 + 10_000), rate=1000)  # 10,000 bytes in all
    r = PlanRouter(plan, 1)
    for k in (b"a", b"b", b"c"):
        assert r.next_hops("ipn:2.1", T0, 3000, k) == ["ipn:2.0"]
    assert r.next_hops("ipn:2.1", T0, 3000, b"d") == []  # full
    r.released(b"a", transmitted=False)  # "a" expired in the queue: its 3,000 bytes return
    assert r.booked_bytes == 6000
    assert r.next_hops("ipn:2.1", T0, 3000, b"d") == ["ipn:2.0"]
    r.released(b"b", transmitted=True)  # "b" was forwarded: its volume stays used
    assert r.booked_bytes == 9000
    assert r.next_hops("ipn:2.1", T0, 3000, b"e") == []
    # re-routing "c" (a failed transfer) replaces its booking instead of adding a second one
    assert r.next_hops("ipn:2.1", T0, 3000, b"c") == ["ipn:2.0"]
    assert r.booked_bytes == 9000
    r.released(b"unknown", transmitted=False)  # nothing booked: nothing happens
    assert r.booked_bytes == 9000


def test_agent_gives_back_the_booking_of_a_bundle_that_expires_before_its_contact() -> None:
    """The agent tells a booking router when a queued bundle leaves custody: an expired bundle
    must not leave the contact looking full for the bundles after it."""
    from tests.node.harness import Harness

    # the contact opens in 100 s and carries 10,000 bytes; 8 KiB bundles: one fits at a time
    plan = plan_of((1, 2, T0 + 100_000, T0 + 110_000), rate=1000)
    h = Harness(node_id="ipn:1.0", ipn=1)
    router = PlanRouter(plan, 1)
    h.agent.router = router
    h.send("ipn:2.1", bytes(8000), lifetime_ms=50_000)  # expires before the contact opens
    assert router.booked_bytes > 8000
    h.send("ipn:2.1", bytes(8000), lifetime_ms=500_000)
    assert h.agent.snapshot()["places"]["waiting"] == 1  # no room left for the second one
    h.clock.advance(60_000)
    h.run(h.agent.tick(h.now))  # the first expires: its booking is given back...
    h.run(h.agent.routes_changed(h.now))  # ...and the waiting one is routed into it
    assert h.agent.snapshot()["places"]["waiting"] == 0
    assert h.agent.snapshot()["places"]["queue"] == 1


# ------------------------------------------------------------------------------- service
class RecordingLink:
    """A link that only records that it was opened/closed (the factory is the test's)."""

    kind = "rec"

    def __init__(self, link_id: str, peer: str, log: list[str]) -> None:
        self.link_id, self.peer, self.log = link_id, peer, log
        self.is_up = True

    async def send(self, wire: bytes) -> None:
        raise AssertionError("nothing is routed in this test")

    async def close(self) -> None:
        self.is_up = False
        self.log.append(f"close {self.link_id}")

    def describe(self) -> dict[str, Any]:
        return {"id": self.link_id, "kind": self.kind, "peer": self.peer, "up": self.is_up}


def _service(tmp: Path, name: str, ipn: int, clock: Any, **kw: Any) -> NodeService:
    cfg = NodeConfig(node_id=f"ipn:{ipn}.0", ipn_node=ipn, data_dir=tmp / name / "data",
                     runtime_dir=tmp / name / "run", **kw)
    return NodeService(cfg, store=MemoryBundleStore(), clock=clock, app_socket=False)


def test_service_opens_scheduled_link_at_contact_start_and_closes_it_at_end(
    tmp_path: Path,
) -> None:
    plan_path = tmp_path / "plan.json"
    save_plan(plan_of((1, 2, T0 + 60_000, T0 + 120_000)), plan_path, "native")
    clock = ManualClock(T0)
    log: list[str] = []

    async def main() -> None:
        svc = _service(
            tmp_path, "a", 1, clock, contact_plan=plan_path,
            links=[LinkConfig("sat", "rec", {"scheduled": True, "neighbour": 2, "x": 1})],
        )

        async def factory(link_id: str, options: dict[str, Any], handler: Any) -> Any:
            assert options == {"x": 1}  # scheduling keys are not the convergence layer's
            log.append(f"open {link_id}")
            return RecordingLink(link_id, "ipn:2.0", log)

        svc.links.register_factory("rec", factory)
        await svc.start()
        try:
            assert log == []  # not opened at start-up: no contact yet
            # Armed for the contact start: 60 s of DTN time ahead on a ManualClock (factor 1).
            nxt = svc.contact_links.next_run()
            assert nxt is not None
            ahead = (nxt - datetime.now(UTC)).total_seconds()
            assert 55 < ahead <= 60
            clock.advance(60_000)
            svc.contact_links.run_due()
            await asyncio.sleep(0.05)
            assert log == ["open sat"] and "sat" in svc.links.links
            sched = svc.status()["schedule"]
            assert sched["open"] == ["ipn:2.0"] and sched["links"][0]["open"]
            assert [h["event"] for h in sched["history"]] == ["contact-start"] * 2
            clock.advance(60_000)
            svc.contact_links.run_due()
            await asyncio.sleep(0.05)
            assert log == ["open sat", "close sat"] and "sat" not in svc.links.links
            assert svc.contact_links.next_run() is None  # plan exhausted
        finally:
            await svc.stop()

    asyncio.run(main())


def test_scaled_clock_arms_the_job_at_scaled_wall_time(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    clock = AnchoredScaledClock(600, T0)  # 10 min of DTN time per real second
    save_plan(plan_of((1, 2, T0 + 1_200_000, T0 + 1_800_000)), plan_path, "native")

    async def main() -> None:
        svc = _service(tmp_path, "a", 1, clock, contact_plan=plan_path)
        await svc.start()
        try:
            nxt = svc.contact_links.next_run()
            assert nxt is not None
            assert 1.5 < (nxt - datetime.now(UTC)).total_seconds() <= 2.0  # 20 min / 600
            await asyncio.sleep(2.2)  # the real APScheduler job fires: contact is on
            assert svc.status()["schedule"]["history"][0]["event"] == "contact-start"
        finally:
            await svc.stop()

    asyncio.run(main())


def test_plan_change_via_load_plan_and_watched_file(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    save_plan(plan_of((1, 2, T0, T0 + 100_000)), plan_path, "native")
    clock = ManualClock(T0 + 10)

    async def main() -> None:
        svc = _service(tmp_path, "a", 1, clock, contact_plan=plan_path, watch_plan=True)
        await svc.start()  # the watcher polls every second
        try:
            assert svc.status()["schedule"]["open"] == ["ipn:2.0"]  # in progress at start
            # A bad edit is rejected and the old plan stays in force.
            plan_path.write_text("{ not a plan")
            await asyncio.sleep(1.3)
            assert svc.status()["schedule"]["open"] == ["ipn:2.0"]
            # A good edit without the contact ends it ("plan-changed").
            save_plan(plan_of((1, 3, T0 + 500_000, T0 + 600_000)), plan_path, "native")
            await asyncio.sleep(1.3)
            st = svc.status()["schedule"]
            assert st["open"] == []
            assert st["history"][-1]["reason"] == "plan-changed"
            assert st["next_event_ms"] == T0 + 500_000
        finally:
            await svc.stop()

    asyncio.run(main())


def test_bundle_waits_for_contact_then_crosses_real_tcpcl(tmp_path: Path) -> None:
    """Node 1 holds a scheduled TCPCLv4 link to node 2 (listening on loopback)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan_path = tmp_path / "plan.json"
    save_plan(plan_of((1, 2, T0 + 60_000, T0 + 120_000)), plan_path, "native")
    clock = ManualClock(T0)

    async def main() -> None:
        sat = _service(tmp_path, "sat", 2, clock, contact_plan=plan_path,
                       links=[LinkConfig("l", "tcpcl", {"listen": f"127.0.0.1:{port}"})])
        gs = _service(tmp_path, "gs", 1, clock, contact_plan=plan_path, links=[LinkConfig(
            "sat", "tcpcl", {"address": f"127.0.0.1:{port}", "scheduled": True,
                             "neighbour": "ipn:2.0", "reconnect_min": 0.05})])
        await sat.start()
        await gs.start()
        try:
            from waystation.agent import SubmitRequest

            received: list[Any] = []
            sat.on_output.append(lambda o: received.append(o))
            gs.submit("t1", SubmitRequest(destination="ipn:2.7", payload=b"hello pass"))
            await asyncio.sleep(0.3)
            assert gs.status()["bundles"]["held"] == 1  # stored, waiting for the contact
            assert sat.status()["counters"].get("received", 0) == 0
            clock.advance(60_000)
            gs.contact_links.run_due()
            sat.contact_links.run_due()
            for _ in range(100):
                await asyncio.sleep(0.05)
                if sat.status()["counters"].get("received", 0) == 1:
                    break
            assert sat.status()["counters"]["received"] == 1
            for _ in range(40):
                if gs.status()["bundles"]["held"] == 0:
                    break
                await asyncio.sleep(0.05)
            assert gs.status()["bundles"]["held"] == 0
            clock.advance(60_000)
            gs.contact_links.run_due()
            await asyncio.sleep(0.1)
            assert "sat" not in gs.links.links  # contact over: link closed
        finally:
            await gs.stop()
            await sat.stop()

    asyncio.run(main())


def test_cli_plan_load_over_the_admin_socket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from waystation.cli import main

    plan_path = tmp_path / "plan.json"
    save_plan(plan_of((1, 2, T0, T0 + 100_000)), plan_path, "native")
    clock = ManualClock(T0 + 10)

    async def run() -> None:
        cfg = NodeConfig(node_id="ipn:1.0", ipn_node=1, data_dir=tmp_path / "d",
                         runtime_dir=tmp_path / "r")
        svc = NodeService(cfg, store=MemoryBundleStore(), clock=clock)
        await svc.start()
        sock = str(tmp_path / "r" / "node.sock")
        try:
            rc = await asyncio.to_thread(main, ["plan", "load", str(plan_path), "--socket", sock])
            assert rc == 0
            assert svc.status()["schedule"]["open"] == ["ipn:2.0"]  # the contact is on now
            bad = tmp_path / "bad.ionrc"
            bad.write_text("a contact +0 +10 1 2 lots\n")
            rc = await asyncio.to_thread(main, ["plan", "load", str(bad), "--socket", sock])
            assert rc == 4  # refused with the plan error; the old plan stays
            assert svc.status()["schedule"]["open"] == ["ipn:2.0"]
        finally:
            await svc.stop()

    asyncio.run(run())
    out, err = capsys.readouterr()
    assert "node loaded 2 contacts" in out
    assert "bad.ionrc:1" in err and "xmit_data_rate" in err


# ------------------------------------------------------------------------------- properties
_windows = st.lists(
    st.tuples(st.sampled_from([(1, 2), (2, 1), (1, 3), (3, 1), (2, 3)]),
              st.integers(0, 1000), st.integers(1, 300)),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(_windows, st.lists(st.integers(0, 1400), min_size=1, max_size=20))
def test_links_are_open_exactly_while_a_contact_with_the_neighbour_runs(
    windows: list[tuple[tuple[int, int], int, int]], polls: list[int]
) -> None:
    contacts = {Contact(a, b, s, s + d, 100) for (a, b), s, d in windows}
    plan = ContactPlan(contacts=tuple(sorted(contacts, key=lambda c: (c.start_ms, c.source))))
    links = [LinkConfig(f"to{n}", "tcpcl", {"scheduled": True, "neighbour": n}) for n in (2, 3)]
    planner = ContactLinkPlanner(1, links)
    sched = ContactScheduler(plan, local_node=1)
    is_open = {"to2": False, "to3": False}
    for t in sorted(polls):
        for out in planner.handle(sched.poll(t)):
            if isinstance(out, OpenLink):
                assert not is_open[out.link.id], "opened twice"
                is_open[out.link.id] = True
            elif isinstance(out, CloseLink):
                assert is_open[out.link_id], "closed while closed"
                is_open[out.link_id] = False
        for n in (2, 3):
            expected = any(
                n in (c.source, c.dest) and 1 in (c.source, c.dest) and c.start_ms <= t < c.end_ms
                for c in contacts
            )
            assert is_open[f"to{n}"] == expected, (t, n)


def test_status_text_shows_the_schedule() -> None:
    from waystation.commands.status import format_status

    text = format_status({
        "clock_ms": T0,
        "schedule": {"open": ["ipn:2.0"], "next_event_ms": T0 + 60_000,
                     "links": [{"id": "contact-ipn2", "neighbour": "ipn:2.0", "open": True}]},
        "contacts": [{"from": "ipn:1.0", "to": "ipn:2.0", "start_ms": T0 - 1000,
                      "end_ms": T0 + 60_000, "rate": 125000, "active": True}],
    })
    assert "in contact     ipn:2.0" in text
    assert "scheduled link contact-ipn2 -> ipn:2.0  open" in text
    assert "now  ipn:1.0 -> ipn:2.0" in text
    assert "contacts" not in format_status({})

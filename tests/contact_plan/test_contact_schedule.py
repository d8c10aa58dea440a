"""Contact scheduling core: start/end events on manual and scaled clocks, mid-contact start,
plan replacement, wall-clock mapping for APScheduler."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.dtntime import ManualClock, ScaledClock
from waystation.contact_plan.model import Contact, ContactPlan
from waystation.contact_plan.schedule import (
    ContactEnded,
    ContactScheduler,
    ContactStarted,
    wall_time,
)

A = Contact(1, 2, 1000, 2000, 10)
B = Contact(2, 1, 2000, 3000, 10)
C = Contact(3, 4, 1500, 1600, 10)


def test_events_in_order_with_ends_before_starts() -> None:
    s = ContactScheduler(ContactPlan((A, B, C)))
    assert s.start(0) == []
    assert s.next_deadline_ms() == 1000
    assert s.poll(999) == []
    assert s.poll(1000) == [ContactStarted(A, 1000)]
    assert s.active == {A}
    ev = s.poll(2000)
    assert ev == [ContactStarted(C, 1500, 500), ContactEnded(C, 1600), ContactEnded(A, 2000),
                  ContactStarted(B, 2000)]
    assert s.poll(5000) == [ContactEnded(B, 3000)]
    assert s.next_deadline_ms() is None


def test_local_node_filter_and_mid_contact_start() -> None:
    s = ContactScheduler(ContactPlan((A, B, C)), local_node=1)
    assert s.start(1500) == [ContactStarted(A, 1500, 500)]
    assert s.poll(10_000) == [ContactEnded(A, 2000), ContactStarted(B, 2000, 8000),
                              ContactEnded(B, 3000)]


def test_plan_replacement_closes_removed_contacts() -> None:
    s = ContactScheduler(ContactPlan((A, B)))
    s.start(1200)
    ev = s.update_plan(ContactPlan((B, C)), 1550)
    assert ev == [ContactEnded(A, 1550, "plan-changed"), ContactStarted(C, 1550, 50)]
    assert s.poll(3000) == [ContactEnded(C, 1600), ContactStarted(B, 2000, 1000),
                            ContactEnded(B, 3000)]


def test_scaled_clock_drives_the_same_code_path() -> None:
    clock = ScaledClock(1000.0, origin_ms=0)  # 1 real ms = 1 s of plan time
    plan = ContactPlan((Contact(1, 2, 50_000, 60_000, 1),))
    s = ContactScheduler(plan)
    s.start(clock.now_ms())
    deadline = s.next_deadline_ms()
    assert deadline == 50_000
    when = wall_time(clock, deadline)
    time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))
    seen = s.poll(clock.now_ms())
    assert [type(e) for e in seen] == [ContactStarted]
    assert seen[0].late_ms < 30_000  # scheduling slack, in plan time


def test_wall_time_mapping() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert wall_time(ManualClock(0), 5000, now=now) == datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert wall_time(ManualClock(9000), 5000, now=now) == now
    sc = ScaledClock(60.0, origin_ms=0)
    got = wall_time(sc, 60_000, now=now)
    assert abs((got - now).total_seconds() - 1.0) < 0.05


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 20), st.integers(1, 3)),
                min_size=1, max_size=8), st.lists(st.integers(0, 80), max_size=10))
def test_every_contact_starts_once_and_ends_once(spec: list[tuple[int, int, int]],
                                                 polls: list[int]) -> None:
    contacts = tuple(Contact(1, 1 + k, s, s + d, 1) for s, d, k in spec)
    plan = ContactPlan(contacts)
    sched = ContactScheduler(plan)
    events = sched.start(0)
    for t in [*sorted(polls), 1000]:
        events += sched.poll(t)
    unique = set(contacts)
    starts = [e.contact for e in events if isinstance(e, ContactStarted)]
    ends = [e.contact for e in events if isinstance(e, ContactEnded)]
    assert sorted(starts, key=repr) == sorted(ends, key=repr) == sorted(unique, key=repr)
    assert sched.active == frozenset()

"""Contact scheduling as a sans-I/O core: which links go up and down, and when.

:class:`ContactScheduler` turns a plan into past-tense events - :class:`ContactStarted` and
:class:`ContactEnded` - as DTN time passes. It never sleeps and never touches a socket: the node
feeds it ``now`` (from any :class:`~waystation.bundle.dtntime.Clock`) and asks for the next
deadline; :func:`wall_time` converts a DTN deadline into the wall-clock ``datetime`` that an
APScheduler ``DateTrigger`` needs, honouring a :class:`~waystation.bundle.dtntime.ScaledClock`'s
factor, so a day of orbits replays in minutes through the same code path as real time.

Rules:

* a contact is up during ``[start_ms, end_ms)``; at one instant, ends are reported before starts
  (a link handed from one contact to the next on the same pair closes, then reopens);
* contacts already in progress when the scheduler starts (or when a new plan arrives) start at
  once, with ``late_ms`` saying how late;
* replacing the plan ends every active contact that is no longer in the new plan
  (``reason="plan-changed"``) and starts the new ones that are in progress;
* with ``local_node`` set only contacts from or to that node are reported.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from waystation.bundle.dtntime import Clock
from waystation.contact_plan.model import Contact, ContactPlan

__all__ = ["ContactEnded", "ContactScheduler", "ContactStarted", "wall_time"]


@dataclass(frozen=True, slots=True)
class ContactStarted:
    contact: Contact
    at_ms: int
    late_ms: int = 0


@dataclass(frozen=True, slots=True)
class ContactEnded:
    contact: Contact
    at_ms: int
    reason: str = "scheduled"


ContactEvent = ContactStarted | ContactEnded


def wall_time(clock: Clock, dtn_ms: int, *, now: datetime | None = None) -> datetime:
    """Wall-clock time (aware UTC ``datetime``) at which ``clock`` will read ``dtn_ms``.

    Uses the clock's ``factor`` when it has one (ScaledClock), else 1. Times in the past map to
    ``now`` (APScheduler then runs the job at once)."""
    now = now or datetime.now(UTC)
    factor = float(getattr(clock, "factor", 1.0))
    delta_ms = dtn_ms - clock.now_ms()
    if delta_ms <= 0:
        return now
    return now + timedelta(milliseconds=delta_ms / factor)


class ContactScheduler:
    """Sans-I/O contact timeline for one node (see module docstring)."""

    def __init__(self, plan: ContactPlan, *, local_node: int | None = None) -> None:
        self.local_node = local_node
        self._plan = plan
        self._queue: list[tuple[int, int, int, Contact]] = []  # (time, 0=end/1=start, seq, c)
        self._active: set[Contact] = set()
        self._seq = 0
        self._started = False

    @property
    def plan(self) -> ContactPlan:
        return self._plan

    @property
    def active(self) -> frozenset[Contact]:
        """Contacts that are up now (after the last :meth:`poll`)."""
        return frozenset(self._active)

    def _mine(self, c: Contact) -> bool:
        return self.local_node is None or self.local_node in (c.source, c.dest)

    def _load(self, now_ms: int, reason: str) -> list[ContactEvent]:
        events: list[ContactEvent] = []
        wanted = {c for c in self._plan.contacts if self._mine(c) and c.end_ms > now_ms}
        for c in sorted(self._active - wanted, key=lambda c: (c.end_ms, c.source, c.dest)):
            events.append(ContactEnded(c, now_ms, reason))
            self._active.discard(c)
        self._queue = []
        for c in wanted:
            if c in self._active:
                self._push(c.end_ms, 0, c)
            elif c.start_ms <= now_ms:
                events.append(ContactStarted(c, now_ms, now_ms - c.start_ms))
                self._active.add(c)
                self._push(c.end_ms, 0, c)
            else:
                self._push(c.start_ms, 1, c)
        return events

    def _push(self, t: int, kind: int, c: Contact) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, kind, self._seq, c))

    def start(self, now_ms: int) -> list[ContactEvent]:
        """Begin at ``now_ms``: contacts in progress start immediately."""
        self._started = True
        return self._load(now_ms, "plan-changed")

    def update_plan(self, plan: ContactPlan, now_ms: int) -> list[ContactEvent]:
        """Swap plans atomically; see module docstring for the events this emits."""
        self._plan = plan
        if not self._started:
            return []
        return self._load(now_ms, "plan-changed")

    def next_deadline_ms(self) -> int | None:
        """DTN time of the next event, or ``None`` when the plan is exhausted."""
        return self._queue[0][0] if self._queue else None

    def poll(self, now_ms: int) -> list[ContactEvent]:
        """Every event due at or before ``now_ms``, in time order (ends first at a tie)."""
        if not self._started:
            return self.start(now_ms)
        events: list[ContactEvent] = []
        while self._queue and self._queue[0][0] <= now_ms:
            t, kind, _seq, c = heapq.heappop(self._queue)
            if kind == 1:
                if c.end_ms <= now_ms:  # the whole contact passed while we were not polled
                    events.append(ContactStarted(c, t, now_ms - t))
                    events.append(ContactEnded(c, c.end_ms))
                    continue
                self._active.add(c)
                events.append(ContactStarted(c, t, now_ms - t))
                self._push(c.end_ms, 0, c)
            else:
                self._active.discard(c)
                events.append(ContactEnded(c, t))
        return events

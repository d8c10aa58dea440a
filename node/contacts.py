"""Contact-scheduled links: bring convergence-layer links up at contact start, down at its end.

A link in the node's configuration marked ``scheduled = true`` with ``neighbour = "ipn:2.0"``
(or the node number ``2``) is not opened at start-up. Instead it is open exactly while the loaded
contact plan has a contact between this node and that neighbour in progress (either
direction: a TCPCLv4 session carries both). Bundles routed to the neighbour wait in the store
(queued on the neighbour) until the link comes up; when the contact ends the link is closed and
anything in flight fails back into the store to be re-routed (RFC 9171 §5.4: the node keeps
custody of what the convergence layer did not confirm).

Layers, so the logic is testable without time passing:

* :class:`waystation.contact_plan.schedule.ContactScheduler` (library, sans-I/O): contact
  start/end events as DTN time passes.
* :class:`ContactLinkPlanner` (sans-I/O, here): turns those events into :class:`OpenLink` /
  :class:`CloseLink` actions, counting overlapping contacts per neighbour (the link opens on
  the first, closes after the last).
* :class:`ContactLinks` (the asyncio shell the service owns): APScheduler's
  ``AsyncIOScheduler`` with one date job armed at ``wall_time(clock, next_deadline)`` - for a
  scaled clock that divides by the factor, otherwise it is the same path - which polls the
  scheduler, executes the actions through the service's ``LinkManager`` and re-arms; and an
  interval job polling a watched plan file (:class:`~waystation.contact_plan.watch.PlanFileWatcher`).

Events (``ContactOpened`` / ``ContactClosed``) are kept in a short history for ``status``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from waystation.config import LinkConfig
from waystation.contact_plan.model import Contact, ContactPlan
from waystation.contact_plan.schedule import (
    ContactEnded,
    ContactScheduler,
    ContactStarted,
    wall_time,
)
from waystation.logsetup import kv

__all__ = [
    "CloseLink",
    "ContactClosed",
    "ContactLinkPlanner",
    "ContactLinks",
    "ContactOpened",
    "OpenLink",
    "is_scheduled",
    "neighbour_number",
]

log = logging.getLogger("waystation.node.contacts")

SCHEDULE_KEYS = ("scheduled", "neighbour")
JOB_ID = "contact-links"
WATCH_JOB_ID = "contact-plan-watch"


def is_scheduled(options: dict[str, Any]) -> bool:
    """Whether a link's options mark it as opened only during contacts."""
    return options.get("scheduled") is True


def neighbour_number(value: Any) -> int:
    """ipn node number from ``2``, ``"2"``, ``"ipn:2"`` or ``"ipn:2.0"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"neighbour {value!r}: expected an ipn node number or ipn:N.0")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if text.startswith("ipn:"):
            text = text[4:]
            if text.endswith(".0"):
                text = text[:-2]
        if not text.isdigit():
            raise ValueError(f"neighbour {value!r}: expected an ipn node number or ipn:N.0")
        number = int(text)
    if not 0 < number < 2**64:
        raise ValueError(f"neighbour {value!r}: node numbers are 1 .. 2**64-1")
    return number


# ---------------------------------------------------------------------------------------------
# sans-I/O planner
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpenLink:
    link: LinkConfig
    neighbour: int


@dataclass(frozen=True, slots=True)
class CloseLink:
    link_id: str
    neighbour: int


@dataclass(frozen=True, slots=True)
class ContactOpened:
    neighbour: int
    contact: Contact
    at_ms: int
    late_ms: int = 0


@dataclass(frozen=True, slots=True)
class ContactClosed:
    neighbour: int
    contact: Contact
    at_ms: int
    reason: str = "scheduled"


PlannerOutput = OpenLink | CloseLink | ContactOpened | ContactClosed


@dataclass
class ContactLinkPlanner:
    """Contact events in, link actions out (no clock, no I/O)."""

    local_node: int
    links: list[LinkConfig] = field(default_factory=list)
    _active: dict[int, set[Contact]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_neighbour: dict[int, list[LinkConfig]] = {}
        for link in self.links:
            self.add_link(link)

    def add_link(self, link: LinkConfig) -> None:
        """Register a scheduled link (its ``neighbour`` option is checked here)."""
        if "neighbour" not in link.options:
            raise ValueError(f"scheduled link {link.id!r} needs a 'neighbour' (ipn node number)")
        n = neighbour_number(link.options["neighbour"])
        if n == self.local_node:
            raise ValueError(f"scheduled link {link.id!r}: the neighbour is this node")
        if link not in self.links:
            self.links.append(link)
        self._by_neighbour.setdefault(n, []).append(link)

    @property
    def neighbours(self) -> frozenset[int]:
        return frozenset(self._by_neighbour)

    def is_open(self, neighbour: int) -> bool:
        return bool(self._active.get(neighbour))

    def open_neighbours(self) -> list[int]:
        """Neighbours with a contact in progress (scheduled link or not)."""
        return sorted(n for n, active in self._active.items() if active)

    def _other(self, c: Contact) -> int | None:
        if c.source == self.local_node:
            return c.dest
        if c.dest == self.local_node:
            return c.source
        return None

    def handle(self, events: list[ContactStarted | ContactEnded]) -> list[PlannerOutput]:
        out: list[PlannerOutput] = []
        for ev in events:
            n = self._other(ev.contact)
            if n is None:
                continue
            active = self._active.setdefault(n, set())
            if isinstance(ev, ContactStarted):
                was_open = bool(active)
                active.add(ev.contact)
                out.append(ContactOpened(n, ev.contact, ev.at_ms, ev.late_ms))
                if not was_open:
                    out += [OpenLink(link, n) for link in self._by_neighbour.get(n, [])]
            else:
                if ev.contact not in active:
                    continue
                active.discard(ev.contact)
                out.append(ContactClosed(n, ev.contact, ev.at_ms, ev.reason))
                if not active:
                    out += [CloseLink(link.id, n) for link in self._by_neighbour.get(n, [])]
        return out


# ---------------------------------------------------------------------------------------------
# asyncio / APScheduler shell
# ---------------------------------------------------------------------------------------------
def _factory_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in SCHEDULE_KEYS}


class ContactLinks:
    """Owned by the node service: runs the contact timeline against the service's links.

    ``service`` needs ``clock``, ``identity.ipn_node``, ``links`` (a ``LinkManager``),
    ``config`` (``links``, ``contact_plan``, ``watch_plan``) and ``load_plan(path)``.
    """

    def __init__(self, service: Any, *, watch_interval_s: float = 1.0) -> None:
        self.service = service
        self.clock = service.clock
        self.watch_interval_s = watch_interval_s
        local = service.identity.ipn_node
        scheduled = [lc for lc in service.config.links if is_scheduled(lc.options)]
        self.planner: ContactLinkPlanner | None = None
        if local is not None:
            self.planner = ContactLinkPlanner(local)
            for lc in scheduled:
                try:
                    self.planner.add_link(lc)
                except ValueError as exc:
                    log.error("scheduled link ignored", extra=kv(link=lc.id, error=str(exc)))
        elif scheduled:
            log.error("scheduled links need an ipn node number (--ipn N); they stay closed")
        self.scheduler: ContactScheduler | None = None
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
        self._aps: Any = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._watcher: Any = None
        self._running = False

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start APScheduler on the running loop; arm the timeline if a plan is loaded."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        if not log.isEnabledFor(logging.DEBUG):
            # APScheduler logs every job run at INFO; our own contact lines say what matters.
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._aps = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        self._aps.start()
        self._running = True
        plan = self.service.plan_router.plan if self.service.plan_router is not None else None
        if plan is not None:
            self.plan_changed(plan)
        cfg = self.service.config
        if getattr(cfg, "watch_plan", False) and cfg.contact_plan is not None:
            from waystation.contact_plan.watch import PlanFileWatcher

            self._watcher = PlanFileWatcher(cfg.contact_plan)
            self._watcher.poll()  # the service loaded this version already
            self._aps.add_job(
                self._watch, "interval", seconds=self.watch_interval_s, id=WATCH_JOB_ID,
                max_instances=1, coalesce=True,
            )

    async def stop(self) -> None:
        self._running = False
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    # plan changes -------------------------------------------------------------------------
    def plan_changed(self, plan: ContactPlan) -> None:
        """A new plan is in force (start-up, ``load_plan``, watched file)."""
        if self.planner is None:
            return
        now = self.clock.now_ms()
        if self.scheduler is None:
            self.scheduler = ContactScheduler(plan, local_node=self.planner.local_node)
            if not self._running:
                return  # start() polls it
            events = self.scheduler.start(now)
        else:
            events = self.scheduler.update_plan(plan, now)
        self._act(events)
        self._arm()

    async def _watch(self) -> None:
        from waystation.contact_plan.watch import PlanRejected, PlanReloaded

        if self._watcher is None:
            return
        result = self._watcher.poll()
        if isinstance(result, PlanRejected):
            log.error("watched contact plan rejected, keeping the old one",
                      extra=kv(path=result.path, error=str(result.error)))
        elif isinstance(result, PlanReloaded):
            try:
                self.service.load_plan(result.path)
            except ValueError as exc:
                log.error("watched contact plan not loaded", extra=kv(error=str(exc)))

    # the timeline -------------------------------------------------------------------------
    def run_due(self) -> None:
        """Handle every contact event due now and re-arm (the APScheduler job body)."""
        if self.scheduler is None:
            return
        self._act(self.scheduler.poll(self.clock.now_ms()))
        self._arm()

    async def _job(self) -> None:
        self.run_due()

    def next_run(self) -> datetime | None:
        """Wall-clock time the timeline job is armed for (None: nothing left in the plan)."""
        if self._aps is None:
            return None
        job = self._aps.get_job(JOB_ID)
        return None if job is None else job.next_run_time

    def _arm(self) -> None:
        if self._aps is None or self.scheduler is None:
            return
        deadline = self.scheduler.next_deadline_ms()
        if deadline is None:
            if self._aps.get_job(JOB_ID) is not None:
                self._aps.remove_job(JOB_ID)
            return
        self._aps.add_job(
            self._job, "date", run_date=wall_time(self.clock, deadline), id=JOB_ID,
            replace_existing=True, misfire_grace_time=None,
        )

    def _act(self, events: list[ContactStarted | ContactEnded]) -> None:
        assert self.planner is not None
        for out in self.planner.handle(events):
            if isinstance(out, ContactOpened):
                self._note("contact-start", out.neighbour, out.contact, out.at_ms)
                log.info("contact started", extra=kv(
                    src=out.contact.source, dst=out.contact.dest, late_ms=out.late_ms))
            elif isinstance(out, ContactClosed):
                self._note("contact-end", out.neighbour, out.contact, out.at_ms, out.reason)
                log.info("contact ended", extra=kv(
                    src=out.contact.source, dst=out.contact.dest, reason=out.reason))
            elif isinstance(out, OpenLink):
                self.service._spawn(self._open(out))
            elif isinstance(out, CloseLink):
                self.service._spawn(self._close(out))

    def _note(self, kind: str, n: int, c: Contact, at_ms: int, reason: str = "") -> None:
        self.history.append({
            "event": kind, "neighbour": f"ipn:{n}.0", "from": c.source, "to": c.dest,
            "start_ms": c.start_ms, "end_ms": c.end_ms, "at_ms": at_ms,
            **({"reason": reason} if reason else {}),
        })

    def _lock(self, link_id: str) -> asyncio.Lock:
        return self._locks.setdefault(link_id, asyncio.Lock())

    async def _open(self, action: OpenLink) -> None:
        lc = action.link
        async with self._lock(lc.id):
            if not self.planner or not self.planner.is_open(action.neighbour):
                return  # the contact ended before we got here
            if lc.id in self.service.links.links:
                return
            try:
                await self.service.links.open(lc.id, lc.kind, _factory_options(lc.options))
            except Exception as exc:  # a factory's failure must not stop the timeline
                log.error("cannot open scheduled link", extra=kv(link=lc.id, error=str(exc)))
                return
            log.info("scheduled link opened", extra=kv(link=lc.id, neighbour=action.neighbour))

    async def _close(self, action: CloseLink) -> None:
        async with self._lock(action.link_id):
            if self.planner and self.planner.is_open(action.neighbour):
                return  # a new contact began meanwhile: keep it
            if await self.service.links.close(action.link_id):
                log.info("scheduled link closed",
                         extra=kv(link=action.link_id, neighbour=action.neighbour))

    def describe(self) -> dict[str, Any]:
        """For ``status``: scheduled links, open neighbours, next event, recent history."""
        nxt = self.scheduler.next_deadline_ms() if self.scheduler else None
        planner = self.planner
        return {
            "links": [
                {"id": lc.id, "neighbour": f"ipn:{neighbour_number(lc.options['neighbour'])}.0",
                 "open": lc.id in self.service.links.links}
                for lc in (planner.links if planner else [])
            ],
            "open": [f"ipn:{n}.0" for n in planner.open_neighbours()] if planner else [],
            "next_event_ms": nxt,
            "history": list(self.history)[-50:],
        }

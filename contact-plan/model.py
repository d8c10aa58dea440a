"""The contact-plan model: contacts, ranges and the plan that holds them.

Times are DTN time in milliseconds (RFC 9171 §4.2.6: ms since 2000-01-01T00:00:00Z, leap
seconds ignored). Nodes are ipn node numbers (RFC 9171 §4.2.5.1.2), as in ION and HDTN plans.

* A :class:`Contact` is a scheduled interval ``[start_ms, end_ms)`` during which ``source`` can
  transmit to ``dest`` at ``rate`` bytes/s, with a ``confidence`` in (0, 1] (ION ``a contact``).
* A :class:`Range` says the one-way light time (OWLT) from ``source`` to ``dest`` during
  ``[start_ms, end_ms)``; ranges are *directional* here. ION's implied-reverse rule is applied by
  the ION reader, so a plan in memory never depends on node-number order.
* OWLT is kept in whole milliseconds (ION only knows whole light-seconds; see ``ionrc.py`` for
  the rounding policy when writing ION files).

A :class:`ContactPlan` is immutable; ``with_*`` methods return new plans, so a router can hold a
plan while a new one is loaded and swap atomically.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from waystation.contact_plan.errors import PlanValidationError

__all__ = ["Contact", "ContactPlan", "PlanProblem", "Range"]

_MAX_NODE = 2**64 - 1


def _check_node(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanValidationError(f"{name} must be an integer node number, not {value!r}")
    if not 0 <= value <= _MAX_NODE:
        raise PlanValidationError(f"{name} {value} is outside 0..2**64-1")


def _check_time(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanValidationError(f"{name} must be an integer DTN time in ms, not {value!r}")
    if value < 0:
        raise PlanValidationError(f"{name} {value} is before the DTN epoch")


def _check_span(kind: str, source: int, dest: int, start_ms: int, end_ms: int) -> None:
    """Endpoints and a non-empty ``[start_ms, end_ms)``: what a contact and a range share."""
    _check_node("source", source)
    _check_node("dest", dest)
    _check_time("start_ms", start_ms)
    _check_time("end_ms", end_ms)
    if end_ms <= start_ms:
        raise PlanValidationError(
            f"{kind} {source}->{dest} ends ({end_ms}) at or before it starts ({start_ms})"
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """One scheduled transmission opportunity ``source -> dest`` over ``[start_ms, end_ms)``."""

    source: int
    dest: int
    start_ms: int
    end_ms: int
    rate: int
    """Transmission rate in bytes per second (ION's unit)."""
    confidence: float = 1.0

    def __post_init__(self) -> None:
        _check_span("contact", self.source, self.dest, self.start_ms, self.end_ms)
        if isinstance(self.rate, bool) or not isinstance(self.rate, int) or self.rate <= 0:
            raise PlanValidationError(f"rate must be a positive integer (bytes/s), not {self.rate!r}")
        if not isinstance(self.confidence, int | float) or not 0.0 < self.confidence <= 1.0:
            raise PlanValidationError(f"confidence must be in (0, 1], not {self.confidence!r}")

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def volume(self) -> int:
        """Bytes that fit in the whole contact (rate x duration)."""
        return self.rate * self.duration_ms // 1000


@dataclass(frozen=True, slots=True)
class Range:
    """One-way light time ``source -> dest`` during ``[start_ms, end_ms)``."""

    source: int
    dest: int
    start_ms: int
    end_ms: int
    owlt_ms: int

    def __post_init__(self) -> None:
        _check_span("range", self.source, self.dest, self.start_ms, self.end_ms)
        if isinstance(self.owlt_ms, bool) or not isinstance(self.owlt_ms, int) or self.owlt_ms < 0:
            raise PlanValidationError(f"owlt_ms must be an integer >= 0, not {self.owlt_ms!r}")


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """A finding of :meth:`ContactPlan.check`; ``severity`` is ``"error"`` or ``"warning"``."""

    severity: str
    message: str
    contact: Contact | None = None


@dataclass(frozen=True)
class ContactPlan:
    """An immutable set of contacts and ranges (plus ION registrations/hypothetical contacts)."""

    contacts: tuple[Contact, ...] = ()
    ranges: tuple[Range, ...] = ()
    registrations: frozenset[int] = frozenset()
    """ION registration contacts (``a contact -1 ...``): nodes affirmed as region members."""
    hypothetical: tuple[tuple[int, int], ...] = ()
    """ION hypothetical contacts (stop time ``0``) as (source, dest); never used for routing."""
    _range_index: dict[tuple[int, int], tuple[list[int], list[Range]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "contacts", tuple(self.contacts))
        object.__setattr__(self, "ranges", tuple(self.ranges))
        for c in self.contacts:
            if not isinstance(c, Contact):
                raise PlanValidationError(f"not a Contact: {c!r}")
        for r in self.ranges:
            if not isinstance(r, Range):
                raise PlanValidationError(f"not a Range: {r!r}")
        index: dict[tuple[int, int], list[Range]] = defaultdict(list)
        for r in self.ranges:
            index[(r.source, r.dest)].append(r)
        built: dict[tuple[int, int], tuple[list[int], list[Range]]] = {}
        for key, rs in index.items():
            rs.sort(key=lambda r: (r.start_ms, r.end_ms))
            built[key] = ([r.start_ms for r in rs], rs)
        object.__setattr__(self, "_range_index", built)

    # -- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.contacts)

    def __iter__(self) -> Iterator[Contact]:
        return iter(self.contacts)

    @property
    def nodes(self) -> frozenset[int]:
        out: set[int] = set(self.registrations)
        for c in self.contacts:
            out.add(c.source)
            out.add(c.dest)
        return frozenset(out)

    @property
    def window(self) -> tuple[int, int] | None:
        """(earliest contact start, latest contact end), or ``None`` for an empty plan."""
        if not self.contacts:
            return None
        return min(c.start_ms for c in self.contacts), max(c.end_ms for c in self.contacts)

    def owlt_ms(self, source: int, dest: int, at_ms: int) -> int | None:
        """OWLT from ``source`` to ``dest`` at time ``at_ms`` (``None`` if no range covers it)."""
        entry = self._range_index.get((source, dest))
        if entry is None:
            return None
        starts, rs = entry
        i = bisect.bisect_right(starts, at_ms) - 1
        # Ranges may overlap; the latest-starting one that still covers at_ms wins.
        while i >= 0:
            r = rs[i]
            if r.start_ms <= at_ms < r.end_ms:
                return r.owlt_ms
            i -= 1
        return None

    def contact_owlt_ms(self, contact: Contact) -> int | None:
        """OWLT that applies to a contact: the range covering its start, else any range that
        overlaps it (ION applies the range in force when transmission starts)."""
        owlt = self.owlt_ms(contact.source, contact.dest, contact.start_ms)
        if owlt is not None:
            return owlt
        entry = self._range_index.get((contact.source, contact.dest))
        if entry is None:
            return None
        for r in entry[1]:
            if r.start_ms < contact.end_ms and contact.start_ms < r.end_ms:
                return r.owlt_ms
        return None

    def check(self) -> list[PlanProblem]:
        """Semantic checks that do not stop a plan from loading.

        Errors: overlapping contacts between the same pair (ION forbids them: ionrc(5) "the
        intervals of scheduled contacts are not allowed to overlap"). Warnings: a contact with no
        range (CGR cannot use it), self-contacts (loopback; ignored by CGR).
        """
        problems: list[PlanProblem] = []
        by_pair: dict[tuple[int, int], list[Contact]] = defaultdict(list)
        for c in self.contacts:
            by_pair[(c.source, c.dest)].append(c)
        for (s, d), cs in sorted(by_pair.items()):
            cs.sort(key=lambda c: (c.start_ms, c.end_ms))
            for a, b in itertools.pairwise(cs):
                if b.start_ms < a.end_ms:
                    problems.append(
                        PlanProblem(
                            "error",
                            f"contacts {s}->{d} overlap: [{a.start_ms},{a.end_ms}) and "
                            f"[{b.start_ms},{b.end_ms})",
                            b,
                        )
                    )
            if s == d:
                problems.append(
                    PlanProblem("warning", f"{len(cs)} loopback contact(s) {s}->{d}", cs[0])
                )
        missing = [c for c in self.contacts if c.source != c.dest and self.contact_owlt_ms(c) is None]
        for c in missing:
            problems.append(
                PlanProblem(
                    "warning",
                    f"no range for contact {c.source}->{c.dest} at {c.start_ms}; CGR skips it",
                    c,
                )
            )
        return problems

    # -- derivations -----------------------------------------------------------------------

    def with_contacts(self, contacts: Iterable[Contact]) -> ContactPlan:
        return ContactPlan(tuple(contacts), self.ranges, self.registrations, self.hypothetical)

    def with_ranges(self, ranges: Iterable[Range]) -> ContactPlan:
        return ContactPlan(self.contacts, tuple(ranges), self.registrations, self.hypothetical)

    def merged(self, other: ContactPlan) -> ContactPlan:
        return ContactPlan(
            self.contacts + other.contacts,
            self.ranges + other.ranges,
            self.registrations | other.registrations,
            self.hypothetical + other.hypothetical,
        )

    def sorted(self) -> ContactPlan:
        """The same plan with contacts and ranges in (start, source, dest) order."""

        def key(x: Contact | Range) -> tuple[int, int, int, int]:
            return (x.start_ms, x.source, x.dest, x.end_ms)

        return ContactPlan(
            tuple(sorted(self.contacts, key=key)),
            tuple(sorted(self.ranges, key=key)),
            self.registrations,
            self.hypothetical,
        )

    def between(self, start_ms: int, end_ms: int) -> ContactPlan:
        """Contacts and ranges that overlap ``[start_ms, end_ms)`` (not clipped)."""
        return ContactPlan(
            tuple(c for c in self.contacts if c.start_ms < end_ms and start_ms < c.end_ms),
            tuple(r for r in self.ranges if r.start_ms < end_ms and start_ms < r.end_ms),
            self.registrations,
            self.hypothetical,
        )

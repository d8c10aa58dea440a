"""ION contact-plan syntax (ionadmin ``.ionrc`` files), read and written.

Implements the contact-plan commands of ionrc(5) (ION-DTN ``ici/doc/pod5/ionrc.pod``):

* ``a contact <start> <stop> <from> <to> <rate bytes/s> [confidence]``; ``start`` ``-1`` is a
  registration contact, ``stop`` ``0`` a hypothetical one; otherwise a scheduled contact with
  ``start < stop`` and positive rate/confidence.
* ``a range <start> <stop> <a> <b> <light-seconds>`` with the implied-reverse rule: if ``a < b``
  the same distance applies from ``b`` to ``a`` *unless* an explicit ``b a`` range covers that
  time; if ``a > b`` nothing is implied for the reverse direction.
* ``d contact``, ``c contact``, ``d range`` (applied in file order; ``*`` start = all).
* ``@ <time>`` sets the reference time for relative times; ``@ +N`` shifts it.
* Times: absolute ``yyyy/mm/dd-hh:mm:ss`` (UTC) or relative ``+N`` seconds after the reference.

Other ionadmin commands (``1``, ``s``, ``x``, ``m ...``, ``!``, ``^``, ``l``, ``i``, ``b``, ``h``,
``v``, ``e``, ``?``) are accepted and ignored, so real node start-up files load; anything else is
an error naming file, line and field. ``^`` (region) is ignored: one plan per file.

Deviation from ionadmin: the default reference time is ``reference_ms`` (the caller's choice,
default the DTN epoch), not "the moment ionadmin started", so loading is deterministic.

Writing policy (ION only takes whole seconds and whole light-seconds): contact start is rounded
*up* and stop *down* to the second (never claim a link that does not exist); a range's interval
is widened outward to whole seconds and its OWLT rounded *up* to whole light-seconds (never
promise earlier delivery than the geometry allows). A contact shorter than a second after
rounding is dropped with a warning comment. The file starts with an absolute ``@`` line, so
relative times are unambiguous.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, datetime

from waystation.bundle.dtntime import DTN_EPOCH, datetime_to_dtn_ms, dtn_ms_to_datetime
from waystation.contact_plan.errors import PlanFormatError, PlanValidationError
from waystation.contact_plan.model import Contact, ContactPlan, Range

__all__ = ["format_ion_time", "parse_ion", "parse_ion_time", "write_ion"]

_ABS_RE = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})-(\d{1,2}):(\d{1,2}):(\d{1,2})$")
_IGNORED = {"1", "s", "x", "m", "!", "^", "l", "i", "b", "h", "v", "e", "?", "#"}


def parse_ion_time(text: str, reference_ms: int) -> int:
    """DTN ms for an ION time token (``+N`` relative seconds or ``yyyy/mm/dd-hh:mm:ss``)."""
    if text.startswith("+"):
        digits = text[1:]
        if not digits.isdigit():
            raise ValueError(f"bad relative time {text!r} (expected +<seconds>)")
        return reference_ms + int(digits) * 1000
    m = _ABS_RE.match(text)
    if not m:
        raise ValueError(f"bad time {text!r} (expected +<seconds> or yyyy/mm/dd-hh:mm:ss)")
    try:
        dt = datetime(*(int(g) for g in m.groups()), tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"bad time {text!r}: {exc}") from None
    if dt < DTN_EPOCH:
        raise ValueError(f"time {text!r} is before the DTN epoch (2000-01-01)")
    return datetime_to_dtn_ms(dt)


def format_ion_time(dtn_ms: int) -> str:
    """Absolute ION time for a whole-second DTN time."""
    return dtn_ms_to_datetime(dtn_ms).strftime("%Y/%m/%d-%H:%M:%S")


def _int(path: str, lineno: int, fieldname: str, text: str, *, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise PlanFormatError(path, lineno, fieldname, f"not an integer: {text!r}") from None
    if value < minimum:
        raise PlanFormatError(path, lineno, fieldname, f"must be >= {minimum}, got {value}")
    return value


def _time(path: str, lineno: int, fieldname: str, text: str, ref: int) -> int:
    try:
        return parse_ion_time(text, ref)
    except ValueError as exc:
        raise PlanFormatError(path, lineno, fieldname, str(exc)) from None


def parse_ion(text: str, *, path: str = "<string>", reference_ms: int = 0) -> ContactPlan:
    """Parse an ION ``.ionrc`` contact plan into a :class:`ContactPlan` (all or nothing)."""
    ref = reference_ms
    # (source, dest, start) -> Contact; dict keeps file order and gives ION's identity for d/c.
    contacts: dict[tuple[int, int, int], tuple[Contact, int]] = {}
    ranges: dict[tuple[int, int, int], tuple[int, int, int, int]] = {}  # -> (end, owlt_s, line, explicit)
    registrations: set[int] = set()
    hypothetical: list[tuple[int, int]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tok = line.split()
        cmd = tok[0]
        if cmd == "@":
            if len(tok) != 2:
                raise PlanFormatError(path, lineno, "reference_time", "expected '@ <time>'")
            ref = _time(path, lineno, "reference_time", tok[1], ref)
            continue
        if cmd in ("a", "d", "c") and len(tok) >= 2 and tok[1] in ("contact", "range"):
            what = tok[1]
            args = tok[2:]
            if cmd == "a" and what == "contact":
                if len(args) not in (5, 6):
                    raise PlanFormatError(
                        path, lineno, None,
                        "expected 'a contact <start> <stop> <from> <to> <rate> [confidence]'",
                    )
                src = _int(path, lineno, "from_node", args[2])
                dst = _int(path, lineno, "to_node", args[3])
                if args[0] == "-1":
                    if src != dst or src == 0:
                        raise PlanFormatError(
                            path, lineno, "from_node",
                            "a registration contact needs identical non-zero nodes",
                        )
                    registrations.add(src)
                    continue
                if args[1] == "0":
                    if src == dst:
                        raise PlanFormatError(
                            path, lineno, "to_node", "a hypothetical contact needs two nodes"
                        )
                    hypothetical.append((src, dst))
                    continue
                start = _time(path, lineno, "start_time", args[0], ref)
                stop = _time(path, lineno, "stop_time", args[1], ref)
                if stop <= start:
                    raise PlanFormatError(path, lineno, "stop_time", "stop time is not after start time")
                rate = _int(path, lineno, "xmit_data_rate", args[4], minimum=1)
                conf = 1.0
                if len(args) == 6:
                    try:
                        conf = float(args[5])
                    except ValueError:
                        raise PlanFormatError(
                            path, lineno, "confidence", f"not a number: {args[5]!r}"
                        ) from None
                    if not 0.0 < conf <= 1.0:
                        raise PlanFormatError(path, lineno, "confidence", "must be in (0, 1]")
                try:
                    contact = Contact(src, dst, start, stop, rate, conf)
                except PlanValidationError as exc:
                    raise PlanFormatError(path, lineno, None, str(exc)) from None
                key = (src, dst, start)
                if key in contacts:
                    raise PlanFormatError(
                        path, lineno, "start_time",
                        f"duplicate contact {src}->{dst} at this start time "
                        f"(first at line {contacts[key][1]})",
                    )
                contacts[key] = (contact, lineno)
            elif cmd == "a" and what == "range":
                if len(args) != 5:
                    raise PlanFormatError(
                        path, lineno, None, "expected 'a range <start> <stop> <a> <b> <distance>'"
                    )
                start = _time(path, lineno, "start_time", args[0], ref)
                stop = _time(path, lineno, "stop_time", args[1], ref)
                if stop <= start:
                    raise PlanFormatError(path, lineno, "stop_time", "stop time is not after start time")
                a = _int(path, lineno, "one_node", args[2])
                b = _int(path, lineno, "the_other_node", args[3])
                dist = _int(path, lineno, "distance", args[4])
                ranges[(a, b, start)] = (stop, dist, lineno, 1)
            elif cmd == "d" and what == "contact":
                if len(args) != 3:
                    raise PlanFormatError(path, lineno, None, "expected 'd contact <start|*> <from> <to>'")
                src = _int(path, lineno, "from_node", args[1])
                dst = _int(path, lineno, "to_node", args[2])
                if args[0] == "*":
                    for k in [k for k in contacts if k[0] == src and k[1] == dst]:
                        del contacts[k]
                elif args[0] == "-1":
                    registrations.discard(src)
                elif args[0] == "0":
                    hypothetical = [h for h in hypothetical if h != (src, dst)]
                else:
                    start = _time(path, lineno, "start_time", args[0], ref)
                    contacts.pop((src, dst, start), None)
            elif cmd == "c" and what == "contact":
                if len(args) not in (4, 5):
                    raise PlanFormatError(
                        path, lineno, None,
                        "expected 'c contact <start> <from> <to> <rate> [confidence]'",
                    )
                start = _time(path, lineno, "start_time", args[0], ref)
                src = _int(path, lineno, "from_node", args[1])
                dst = _int(path, lineno, "to_node", args[2])
                rate = _int(path, lineno, "xmit_data_rate", args[3], minimum=1)
                key = (src, dst, start)
                if key not in contacts:
                    raise PlanFormatError(path, lineno, "start_time", "no such contact to change")
                old, first = contacts[key]
                conf = old.confidence
                if len(args) == 5:
                    try:
                        conf = float(args[4])
                    except ValueError:
                        raise PlanFormatError(path, lineno, "confidence", "not a number") from None
                    if not 0.0 < conf <= 1.0:
                        raise PlanFormatError(path, lineno, "confidence", "must be in (0, 1]")
                contacts[key] = (Contact(src, dst, old.start_ms, old.end_ms, rate, conf), first)
            elif cmd == "d" and what == "range":
                if len(args) != 3:
                    raise PlanFormatError(path, lineno, None, "expected 'd range <start|*> <a> <b>'")
                a = _int(path, lineno, "one_node", args[1])
                b = _int(path, lineno, "the_other_node", args[2])
                # ionrc(5): with a < b the deletion also applies to the reverse direction.
                pairs = [(a, b), (b, a)] if a < b else [(a, b)]
                if args[0] == "*":
                    for k in [k for k in ranges if (k[0], k[1]) in pairs]:
                        del ranges[k]
                else:
                    start = _time(path, lineno, "start_time", args[0], ref)
                    for p in pairs:
                        ranges.pop((p[0], p[1], start), None)
            else:
                raise PlanFormatError(path, lineno, None, f"unsupported command '{cmd} {what}'")
            continue
        if cmd in _IGNORED or cmd in ("a", "d", "c"):
            if cmd in ("a", "d", "c"):
                raise PlanFormatError(
                    path, lineno, None, f"unknown object {tok[1] if len(tok) > 1 else ''!r}"
                )
            continue
        raise PlanFormatError(path, lineno, None, f"unknown ionadmin command {cmd!r}")

    explicit = list(ranges.items())
    out_ranges: list[Range] = []
    for (a, b, start), (stop, dist, _line, _) in explicit:
        out_ranges.append(Range(a, b, start, stop, dist * 1000))
    by_pair: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for (a, b, start), (stop, *_rest) in explicit:
        by_pair[(a, b)].append((start, stop))
    for (a, b, start), (stop, dist, _line, _) in explicit:
        if a < b:
            # Implied reverse unless an explicit reverse range overlaps this interval.
            rev = by_pair.get((b, a), [])
            if not any(s < stop and start < e for s, e in rev):
                out_ranges.append(Range(b, a, start, stop, dist * 1000))
    return ContactPlan(
        tuple(c for c, _ in contacts.values()),
        tuple(out_ranges),
        frozenset(registrations),
        tuple(hypothetical),
    )


def write_ion(plan: ContactPlan, *, reference_ms: int | None = None) -> str:
    """Render ``plan`` as an ION ``.ionrc`` contact plan (see module docstring for rounding)."""
    lines = ["# contact plan written by waystation", "# times rounded inward to whole seconds; "
             "ranges outward, OWLT up to whole light-seconds"]
    starts = [c.start_ms for c in plan.contacts] + [r.start_ms for r in plan.ranges]
    if reference_ms is None:
        reference_ms = (min(starts) // 1000) * 1000 if starts else 0
    reference_ms = (reference_ms // 1000) * 1000
    lines.append(f"@ {format_ion_time(reference_ms)}")

    def rel(ms: int) -> str:
        if ms < reference_ms:
            return format_ion_time(ms)
        return f"+{(ms - reference_ms) // 1000}"

    for node in sorted(plan.registrations):
        lines.append(f"a contact -1 -1 {node} {node} 0")
    for s, d in plan.hypothetical:
        lines.append(f"a contact 0 0 {s} {d} 0")
    # Ranges: collapse symmetric pairs into one a<b line (the implied-reverse rule restores it).
    rset = {(r.source, r.dest, math.floor(r.start_ms / 1000) * 1000,
             math.ceil(r.end_ms / 1000) * 1000, math.ceil(r.owlt_ms / 1000)) for r in plan.ranges}
    for a, b, s, e, ls in sorted(rset, key=lambda x: (x[2], x[0], x[1])):
        if a > b and (b, a, s, e, ls) in rset:
            continue  # implied by the a<b line
        lines.append(f"a range {rel(s)} {rel(e)} {a} {b} {ls}")
    for c in sorted(plan.contacts, key=lambda c: (c.start_ms, c.source, c.dest)):
        s = math.ceil(c.start_ms / 1000) * 1000
        e = (c.end_ms // 1000) * 1000
        if e <= s:
            lines.append(
                f"# dropped: contact {c.source}->{c.dest} [{c.start_ms},{c.end_ms}) ms "
                "is shorter than a whole second"
            )
            continue
        conf = "" if c.confidence == 1.0 else f" {c.confidence:g}"
        lines.append(f"a contact {rel(s)} {rel(e)} {c.source} {c.dest} {c.rate}{conf}")
    return "\n".join(lines) + "\n"

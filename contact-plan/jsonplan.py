"""JSON contact plans: HDTN's format and waystation's own.

HDTN (``module/router/contact_plans/*.json`` in nasa/HDTN)::

    {"contacts": [{"contact": 0, "source": 1, "dest": 2, "startTime": 0, "endTime": 60,
                   "rateBitsPerSec": 1000000, "owlt": 1}, ...]}

Times are whole seconds relative to an epoch (HDTN: its start time; here ``epoch_ms``, default
the DTN epoch), rate is in *bits* per second, OWLT in whole seconds per contact. Reading
converts the rate to bytes/s rounding down (never promise volume that is not there) and turns
each contact's OWLT into a directional range over the contact's interval. Writing rounds times
inward to seconds, OWLT up to whole seconds (the same policy as for ION) and rate x 8.

waystation's own format keeps everything exact (DTN ms, OWLT in ms, directional ranges)::

    {"format": "waystation-contact-plan", "version": 1,
     "contacts": [{"source": 1, "dest": 2, "start_ms": ..., "end_ms": ..., "rate": 125000,
                   "confidence": 1.0}, ...],
     "ranges": [{"source": 1, "dest": 2, "start_ms": ..., "end_ms": ..., "owlt_ms": 4}, ...],
     "registrations": [...], "hypothetical": [[1, 2], ...]}

Errors name the file, the line of the offending array element and the field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from waystation.contact_plan.errors import PlanFormatError, PlanValidationError
from waystation.contact_plan.model import Contact, ContactPlan, Range

__all__ = ["FORMAT_TAG", "parse_hdtn", "parse_native", "write_hdtn", "write_native"]

FORMAT_TAG = "waystation-contact-plan"
_WS = re.compile(r"[\s,]*")


def _load(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFormatError(path, exc.lineno, None, f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise PlanFormatError(path, None, None, "JSON nested too deeply") from None


def _element_lines(text: str, key: str) -> list[int]:
    """1-based line of each element of the top-level array ``key`` (best effort)."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:\s*\[', text)
    if not m:
        return []
    dec = json.JSONDecoder()
    pos = m.end()
    lines: list[int] = []
    line = text.count("\n", 0, pos) + 1
    last = pos
    try:
        while True:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if pos >= len(text) or text[pos] == "]":
                break
            line += text.count("\n", last, pos)
            lines.append(line)
            last = pos
            _, pos = dec.raw_decode(text, pos)
    except (json.JSONDecodeError, RecursionError):
        pass
    return lines


def _get_int(obj: dict[str, Any], name: str, path: str, line: int | None, *, minimum: int = 0) -> int:
    if name not in obj:
        raise PlanFormatError(path, line, name, "missing")
    v = obj[name]
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise PlanFormatError(path, line, name, f"must be an integer, not {v!r}")
    if v < minimum:
        raise PlanFormatError(path, line, name, f"must be >= {minimum}, got {v}")
    return v


def _array(doc: Any, key: str, path: str, *, required: bool = True) -> list[Any]:
    if not isinstance(doc, dict):
        raise PlanFormatError(path, 1, None, "top level must be a JSON object")
    if key not in doc:
        if required:
            raise PlanFormatError(path, 1, key, "missing")
        return []
    arr = doc[key]
    if not isinstance(arr, list):
        raise PlanFormatError(path, 1, key, "must be an array")
    return arr


def parse_hdtn(
    text: str, *, path: str = "<string>", epoch_ms: int = 0, skip_empty: bool = False
) -> ContactPlan:
    """Parse an HDTN JSON contact plan (all or nothing).

    HDTN's own sample plans contain contacts whose ``endTime`` is not after ``startTime``
    (HDTN simply never uses them). By default that is an error; ``skip_empty=True`` drops them
    instead, the way HDTN effectively does.
    """
    doc = _load(text, path)
    items = _array(doc, "contacts", path)
    lines = _element_lines(text, "contacts")
    contacts: list[Contact] = []
    ranges: list[Range] = []
    for i, item in enumerate(items):
        line = lines[i] if i < len(lines) else None
        if not isinstance(item, dict):
            raise PlanFormatError(path, line, f"contacts[{i}]", "must be an object")
        src = _get_int(item, "source", path, line)
        dst = _get_int(item, "dest", path, line)
        start = epoch_ms + _get_int(item, "startTime", path, line) * 1000
        end = epoch_ms + _get_int(item, "endTime", path, line) * 1000
        if end <= start:
            if skip_empty:
                continue
            raise PlanFormatError(path, line, "endTime", "must be after startTime")
        bits = _get_int(item, "rateBitsPerSec", path, line, minimum=8)
        owlt = _get_int(item, "owlt", path, line)
        try:
            contacts.append(Contact(src, dst, start, end, bits // 8))
            ranges.append(Range(src, dst, start, end, owlt * 1000))
        except PlanValidationError as exc:
            raise PlanFormatError(path, line, None, str(exc)) from None
    return ContactPlan(tuple(contacts), tuple(ranges))


def write_hdtn(plan: ContactPlan, *, epoch_ms: int = 0) -> str:
    """Render ``plan`` as HDTN JSON; contacts without a range get OWLT 0 and are listed
    in ``plan.check()`` warnings."""
    out = []
    for c in sorted(plan.contacts, key=lambda c: (c.start_ms, c.source, c.dest)):
        s = math.ceil((c.start_ms - epoch_ms) / 1000)
        e = math.floor((c.end_ms - epoch_ms) / 1000)
        if e <= s or s < 0:
            continue
        owlt = plan.contact_owlt_ms(c) or 0
        out.append(
            {
                "contact": len(out),
                "source": c.source,
                "dest": c.dest,
                "startTime": s,
                "endTime": e,
                "rateBitsPerSec": c.rate * 8,
                "owlt": math.ceil(owlt / 1000),
            }
        )
    body = ",\n".join("    " + json.dumps(o) for o in out)
    return '{\n  "contacts": [\n' + body + "\n  ]\n}\n"


def parse_native(text: str, *, path: str = "<string>") -> ContactPlan:
    """Parse waystation's own JSON plan format (all or nothing)."""
    doc = _load(text, path)
    if not isinstance(doc, dict):
        raise PlanFormatError(path, 1, None, "top level must be a JSON object")
    if doc.get("format") != FORMAT_TAG:
        raise PlanFormatError(path, 1, "format", f"expected {FORMAT_TAG!r}")
    if doc.get("version") != 1:
        raise PlanFormatError(path, 1, "version", f"unsupported version {doc.get('version')!r}")
    contacts: list[Contact] = []
    ranges: list[Range] = []
    for key, sink in (("contacts", contacts), ("ranges", ranges)):
        lines = _element_lines(text, key)
        for i, item in enumerate(_array(doc, key, path, required=False)):
            line = lines[i] if i < len(lines) else None
            if not isinstance(item, dict):
                raise PlanFormatError(path, line, f"{key}[{i}]", "must be an object")
            src = _get_int(item, "source", path, line)
            dst = _get_int(item, "dest", path, line)
            start = _get_int(item, "start_ms", path, line)
            end = _get_int(item, "end_ms", path, line)
            if end <= start:
                raise PlanFormatError(path, line, "end_ms", "must be after start_ms")
            try:
                if key == "contacts":
                    rate = _get_int(item, "rate", path, line, minimum=1)
                    conf = item.get("confidence", 1.0)
                    if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 < conf <= 1:
                        raise PlanFormatError(path, line, "confidence", "must be a number in (0, 1]")
                    sink.append(Contact(src, dst, start, end, rate, float(conf)))  # type: ignore[arg-type]
                else:
                    owlt = _get_int(item, "owlt_ms", path, line)
                    sink.append(Range(src, dst, start, end, owlt))  # type: ignore[arg-type]
            except PlanValidationError as exc:
                raise PlanFormatError(path, line, None, str(exc)) from None
    regs = _array(doc, "registrations", path, required=False)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in regs):
        raise PlanFormatError(path, None, "registrations", "must be positive node numbers")
    hyp_raw = _array(doc, "hypothetical", path, required=False)
    hyp: list[tuple[int, int]] = []
    for h in hyp_raw:
        if not (isinstance(h, list) and len(h) == 2 and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in h
        )):
            raise PlanFormatError(path, None, "hypothetical", "must be [source, dest] pairs")
        hyp.append((h[0], h[1]))
    return ContactPlan(tuple(contacts), tuple(ranges), frozenset(regs), tuple(hyp))


def write_native(plan: ContactPlan) -> str:
    """Render ``plan`` in waystation's own exact JSON format (one element per line)."""
    cs = [
        json.dumps(
            {"source": c.source, "dest": c.dest, "start_ms": c.start_ms, "end_ms": c.end_ms,
             "rate": c.rate, "confidence": c.confidence}
        )
        for c in plan.contacts
    ]
    rs = [
        json.dumps(
            {"source": r.source, "dest": r.dest, "start_ms": r.start_ms, "end_ms": r.end_ms,
             "owlt_ms": r.owlt_ms}
        )
        for r in plan.ranges
    ]
    parts = [
        "{",
        f'  "format": "{FORMAT_TAG}",',
        '  "version": 1,',
        '  "contacts": [\n' + ",\n".join("    " + x for x in cs) + ("\n  ],"),
        '  "ranges": [\n' + ",\n".join("    " + x for x in rs) + ("\n  ],"),
        f'  "registrations": {json.dumps(sorted(plan.registrations))},',
        f'  "hypothetical": {json.dumps([list(h) for h in plan.hypothetical])}',
        "}",
    ]
    return "\n".join(parts) + "\n"

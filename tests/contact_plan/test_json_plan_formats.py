"""HDTN JSON and waystation JSON plans: parsing, errors with line/field, conversions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.contact_plan.errors import ContactPlanError, PlanFormatError
from waystation.contact_plan.formats import (
    detect_format,
    dump_plan,
    load_plan,
    parse_plan,
    save_plan,
)
from waystation.contact_plan.jsonplan import parse_hdtn, parse_native, write_hdtn, write_native
from waystation.contact_plan.model import Contact, ContactPlan, Range


def test_hdtn_tutorial_plan(refdata: Path) -> None:
    p = load_plan(refdata / "cgr" / "hdtn" / "cgrTutorial.json")
    assert len(p.contacts) == 16
    c = p.contacts[8]
    assert (c.source, c.dest, c.start_ms, c.end_ms, c.rate) == (1, 5, 10_000, 20_000, 125_000)
    assert p.contact_owlt_ms(c) == 1000


def test_hdtn_inverted_contacts_are_errors_unless_lenient(refdata: Path) -> None:
    path = refdata / "cgr" / "hdtn" / "10nodes.json"
    with pytest.raises(PlanFormatError) as ei:
        load_plan(path)
    assert ei.value.field == "endTime" and ei.value.line == 1618 and str(path) in str(ei.value)
    assert len(load_plan(path, lenient=True).contacts) == 362  # 368 minus 6 inverted


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ('{"contacts": [\n{"source": 1, "dest": 2, "startTime": 0, "endTime": 5,\n'
         '"rateBitsPerSec": 8, "owlt": 1},\n{"source": 1, "dest": 2, "startTime": 0,\n'
         '"endTime": 5, "rateBitsPerSec": "fast", "owlt": 1}]}', "rateBitsPerSec"),
        ('{"contacts": [\n{"dest": 2}]}', "source"),
        ('{"contacts": 3}', "contacts"),
        ("[1]", None),
        ('{"contacts": [\n 7]}', "contacts[0]"),
    ],
)
def test_hdtn_errors_name_line_and_field(doc: str, field: str | None) -> None:
    with pytest.raises(PlanFormatError) as ei:
        parse_hdtn(doc, path="x.json")
    assert ei.value.field == field
    if field == "rateBitsPerSec":
        assert ei.value.line == 4


def test_invalid_json_reports_line() -> None:
    with pytest.raises(PlanFormatError) as ei:
        parse_plan('{\n"contacts": [\n,]}', path="p.json")
    assert ei.value.line == 3


def test_native_round_trip_exact_and_detect(tmp_path: Path) -> None:
    plan = ContactPlan(
        (Contact(1, 2, 1234, 5678, 10, 0.5), Contact(2, 1, 1234, 5678, 10)),
        (Range(1, 2, 0, 9999, 3), Range(2, 1, 0, 9999, 4)),
        frozenset({9}),
        ((1, 3),),
    )
    f = tmp_path / "p.json"
    save_plan(plan, f)
    assert detect_format(f.read_text()) == "native"
    assert load_plan(f) == plan
    assert parse_native(write_native(plan)) == plan


def test_native_errors() -> None:
    good = json.loads(write_native(ContactPlan((Contact(1, 2, 0, 10, 1),))))
    bad = dict(good, contacts=[{"source": 1, "dest": 2, "start_ms": 10, "end_ms": 5, "rate": 1}])
    with pytest.raises(PlanFormatError) as ei:
        parse_native(json.dumps(bad, indent=1))
    assert ei.value.field == "end_ms" and ei.value.line is not None
    with pytest.raises(PlanFormatError):
        parse_native(json.dumps(dict(good, version=2)))


def test_ion_to_hdtn_to_ion(refdata: Path) -> None:
    p = load_plan(refdata / "ion_contact_plans" / "bench-cgr_global.ionrc")
    h = parse_hdtn(write_hdtn(p))
    assert sorted((c.source, c.dest, c.start_ms, c.end_ms, c.rate) for c in h.contacts) == sorted(
        (c.source, c.dest, c.start_ms, c.end_ms, c.rate) for c in p.contacts
    )
    back = parse_plan(dump_plan(h, "ion"), fmt="ion")
    assert {c.start_ms for c in back.contacts} == {c.start_ms for c in p.contacts}


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats() | st.text(max_size=5),
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(
        st.sampled_from(["contacts", "source", "dest", "startTime", "endTime", "rateBitsPerSec",
                         "owlt", "format", "version", "start_ms", "end_ms", "rate", "ranges"]),
        ch, max_size=8),
    max_leaves=20,
))
def test_arbitrary_json_fails_only_with_plan_errors(doc: object) -> None:
    text = json.dumps(doc)
    for fn in (parse_hdtn, parse_native):
        try:
            fn(text)
        except ContactPlanError:
            pass

"""ION .ionrc contact-plan syntax (ionrc(5)): times, @ reference, implied-reverse ranges,
d/c commands, errors naming file/line/field, and the rounding policy when writing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.dtntime import datetime_to_dtn_ms
from waystation.contact_plan.errors import ContactPlanError, PlanFormatError
from waystation.contact_plan.formats import load_plan, parse_plan
from waystation.contact_plan.ionrc import parse_ion, parse_ion_time, write_ion
from waystation.contact_plan.model import Contact, ContactPlan, Range


def test_relative_and_absolute_times() -> None:
    assert parse_ion_time("+60", 5000) == 65000
    from datetime import UTC, datetime

    assert parse_ion_time("2009/01/01-00:00:00", 0) == datetime_to_dtn_ms(
        datetime(2009, 1, 1, tzinfo=UTC)
    )
    for bad in ("60", "+6.5", "2009/13/01-00:00:00", "1999/12/31-23:59:59", "+", "+-1"):
        with pytest.raises(ValueError):
            parse_ion_time(bad, 0)


def test_ionrc_pod_examples() -> None:
    plan = parse_ion(
        "@ 2008/10/05-11:30:00\n"
        "a range +1 2009/01/01-00:00:00 1 2 12\n"
        "a contact +60 +7260 1 2 10000\n"
    )
    from datetime import UTC, datetime

    ref = datetime_to_dtn_ms(datetime(2008, 10, 5, 11, 30, tzinfo=UTC))
    (c,) = plan.contacts
    assert (c.source, c.dest, c.start_ms, c.end_ms, c.rate) == (1, 2, ref + 60_000, ref + 7_260_000, 10000)
    # a range with 1 < 2 implies the reverse direction too
    assert plan.owlt_ms(1, 2, ref + 5000) == 12_000
    assert plan.owlt_ms(2, 1, ref + 5000) == 12_000
    assert plan.owlt_ms(1, 2, ref) is None  # range starts at +1


def test_implied_reverse_rule() -> None:
    # explicit reverse overrides the implied one
    p = parse_ion("a range +0 +10 1 2 5\na range +0 +10 2 1 7\n")
    assert p.owlt_ms(1, 2, 0) == 5000 and p.owlt_ms(2, 1, 0) == 7000
    # first node > second: nothing implied for the reverse
    p = parse_ion("a range +0 +10 3 2 4\n")
    assert p.owlt_ms(3, 2, 0) == 4000 and p.owlt_ms(2, 3, 0) is None


def test_reference_shift_and_delete_change() -> None:
    p = parse_ion(
        "a contact +0 +10 1 2 100\n@ +100\na contact +0 +10 1 2 100\n"
        "c contact +0 1 2 300 0.5\nd contact +0 1 2\n@ +100\na contact +5 +6 2 1 9\n",
        reference_ms=1000,
    )
    assert [(c.source, c.start_ms, c.rate) for c in p.contacts] == [(1, 1000, 100), (2, 206000, 9)]
    p = parse_ion("a contact +0 +10 1 2 100\na contact +20 +30 1 2 100\nd contact * 1 2\n")
    assert p.contacts == ()


def test_registration_hypothetical_and_ignored_commands() -> None:
    p = parse_ion("1 10 ionconfig\ns\nm horizon +0\na contact -1 -1 7 7 0\na contact +0 0 7 8 0\n")
    assert p.registrations == {7} and p.hypothetical == ((7, 8),) and p.contacts == ()


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("a contact +0 +10 1 2 100\na contact +0 +x 1 2 100\n", 2, "stop_time"),
        ("a contact +10 +5 1 2 100\n", 1, "stop_time"),
        ("a contact +0 +10 1 2 0\n", 1, "xmit_data_rate"),
        ("a contact +0 +10 1 two 100\n", 1, "to_node"),
        ("a contact +0 +10 1 2 100 1.5\n", 1, "confidence"),
        ("\n\na range +0 +10 1 2 -3\n", 3, "distance"),
        ("a contact +0 +10 1 2\n", 1, None),
        ("z\n", 1, None),
        ("a contact +0 +10 1 2 5\na contact +0 +20 1 2 5\n", 2, "start_time"),
        ("@\n", 1, "reference_time"),
        ("a plan x\n", 1, None),
    ],
)
def test_malformed_lines_name_file_line_field(text: str, line: int, field: str | None) -> None:
    with pytest.raises(PlanFormatError) as ei:
        parse_plan(text, fmt="ion", path="plan.ionrc")
    assert ei.value.path == "plan.ionrc" and ei.value.line == line and ei.value.field == field
    assert "plan.ionrc:" in str(ei.value)


def test_load_refdata_ion_plans(refdata: Path) -> None:
    p = load_plan(refdata / "ion_contact_plans" / "bench-cgr_global.ionrc")
    assert len(p.contacts) == 8 and len(p.ranges) == 8  # 4 ranges + 4 implied reverses
    p = load_plan(refdata / "ion_contact_plans" / "3node-ltp-brs_node10.ionrc")
    assert p.owlt_ms(7, 5, 0) == 600_000
    p = load_plan(refdata / "cgr" / "ion" / "cgr-test_global.ionrc")
    assert len(p.contacts) > 300
    p = load_plan(refdata / "cgr" / "hdtn" / "cgr_tables_global.ionrc")
    assert len(p.contacts) == 142


def test_missing_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanFormatError) as ei:
        load_plan(tmp_path / "nope.ionrc")
    assert "cannot read" in str(ei.value)
    (tmp_path / "bin.ionrc").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PlanFormatError):
        load_plan(tmp_path / "bin.ionrc")


def test_write_rounding_policy() -> None:
    plan = ContactPlan(
        (Contact(1, 2, 1500, 9700, 1000), Contact(2, 1, 100, 900, 5)),
        (Range(1, 2, 1500, 9700, 4), Range(2, 1, 1500, 9700, 4)),
    )
    text = write_ion(plan, reference_ms=0)
    back = parse_ion(text)
    (c,) = back.contacts  # the sub-second contact is dropped (and commented)
    assert "# dropped" in text
    assert (c.start_ms, c.end_ms) == (2000, 9000)  # contact shrinks to whole seconds
    assert back.owlt_ms(1, 2, 1000) == 1000 and back.owlt_ms(2, 1, 9999) == 1000  # range grows, owlt up
    assert text.count("a range") == 1  # symmetric pair collapsed into the implied-reverse form


_node = st.integers(1, 20)


@st.composite
def _plans(draw: st.DrawFn) -> ContactPlan:
    contacts = []
    for s, d in draw(st.lists(st.tuples(_node, _node), max_size=8, unique=True)):
        start = draw(st.integers(0, 10_000)) * 1000
        contacts.append(Contact(s, d, start, start + draw(st.integers(1, 5000)) * 1000,
                                draw(st.integers(1, 10**9))))
    ranges = []
    for s, d in draw(st.lists(st.tuples(_node, _node), max_size=6, unique=True)):
        if s < d:
            start = draw(st.integers(0, 10_000)) * 1000
            ranges.append(Range(s, d, start, start + 1000 * draw(st.integers(1, 100)),
                                1000 * draw(st.integers(0, 1000))))
    return ContactPlan(tuple(contacts), tuple(ranges))


@settings(max_examples=60, deadline=None)
@given(_plans())
def test_whole_second_plans_round_trip_exactly(plan: ContactPlan) -> None:
    back = parse_ion(write_ion(plan, reference_ms=0))
    assert sorted(back.contacts, key=repr) == sorted(plan.contacts, key=repr)
    for r in plan.ranges:  # every range survives, plus its implied reverse
        assert back.owlt_ms(r.source, r.dest, r.start_ms) == r.owlt_ms
        assert back.owlt_ms(r.dest, r.source, r.start_ms) == r.owlt_ms


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ac d+r@-0123456789 ontgeacl/:.*\n#", max_size=120))
def test_arbitrary_text_fails_only_with_plan_errors(text: str) -> None:
    try:
        parse_ion(text)
    except ContactPlanError:
        pass

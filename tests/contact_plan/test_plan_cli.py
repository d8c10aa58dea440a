"""`waystation plan ...` end to end through the real CLI entry point (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from waystation.cli import main
from waystation.contact_plan.formats import load_plan

DATA = Path(__file__).resolve().parents[2] / "contact-plan" / "data"


def test_compute_show_convert_check_plot_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.json"
    rc = main(["plan", "compute", "--tle", str(DATA / "demo.tle"), "--stations",
               str(DATA / "demo_stations.json"), "--start", "2024-05-09T20:40:00Z",
               "--hours", "3", "-o", str(out)])
    assert rc == 0 and "contacts" in capsys.readouterr().out
    plan = load_plan(out)
    assert {(c.source, c.dest) for c in plan.contacts} >= {(1, 2), (2, 3)}

    assert main(["plan", "show", str(out), "--limit", "2"]) == 0
    assert "more" in capsys.readouterr().out

    ion = tmp_path / "demo.ionrc"
    assert main(["plan", "convert", str(out), "--to", "ion", "-o", str(ion)]) == 0
    hdtn = tmp_path / "demo_hdtn.json"
    assert main(["plan", "convert", str(ion), "--to", "hdtn", "-o", str(hdtn)]) == 0
    assert len(load_plan(hdtn).contacts) == len(plan.contacts)
    assert main(["plan", "check", str(ion)]) == 0

    png = tmp_path / "plan.png"
    assert main(["plan", "plot", str(out), "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    capsys.readouterr()
    assert main(["plan", "route", str(out), "--from", "1", "--to", "3"]) == 0
    assert "2 hops" in capsys.readouterr().out


def test_bad_plan_is_one_line_error_with_location(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ionrc"
    bad.write_text("a contact +0 +10 1 2 100\na contact +0 +10 1 2 lots\n")
    assert main(["plan", "show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "xmit_data_rate" in err
    assert main(["plan", "check", str(tmp_path / "missing.ionrc")]) == 2


def test_check_reports_overlaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "o.json"
    p.write_text('{"contacts": [{"source": 1, "dest": 2, "startTime": 0, "endTime": 10, '
                 '"rateBitsPerSec": 80, "owlt": 0}, {"source": 1, "dest": 2, "startTime": 5, '
                 '"endTime": 20, "rateBitsPerSec": 80, "owlt": 0}]}')
    assert main(["plan", "check", str(p)]) == 1
    assert "overlap" in capsys.readouterr().out

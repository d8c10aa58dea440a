"""``waystation demo`` end to end: three real node processes, TCPCLv4 on loopback, LMDB stores,
a contact plan from the shipped TLE, on a scaled clock (x300: ~25 s of wall time)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from waystation.demorun import run_demo

pytestmark = pytest.mark.timeout(120)


def test_demo_delivers_every_message_exactly_once_and_writes_the_plan_png(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    result = run_demo(scale=300, messages=4, workdir=tmp_path, timeout_s=90, out=out)
    text = out.getvalue()
    assert result.ok, text
    assert result.delivered == {1: 1, 2: 1, 3: 1, 4: 1}, text
    png = tmp_path / "plan.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The bundles waited for the pass: ~78 simulated minutes aboard before Kourou's contact.
    assert min(result.sim_delays_s.values()) > 60 * 60, text
    for line in ("contact Darmstadt <-> ISS OPENS", "contact ISS <-> Kourou OPENS",
                 "Kourou: DELIVERED", "delivered exactly once: 4/4"):
        assert line in text, text
    # Every node process was stopped (their logs end with a clean shutdown).
    for n in (1, 2, 3):
        assert "node stopped" in (tmp_path / f"node-ipn{n}.log").read_text()

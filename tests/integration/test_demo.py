"""``waystation demo`` end to end: three real node processes, TCPCLv4 on loopback, LMDB stores,
a contact plan from the shipped TLE, on a scaled clock (x300: ~25 s of wall time)."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
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


def _demo_waiting_for_the_pass(tmp_path: Path, stderr: int) -> subprocess.Popen[str]:
    """``waystation demo`` as a process, returned once its messages wait for the pass."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "waystation", "demo", "--scale", "50", "--workdir",
         str(tmp_path)],
        stdout=subprocess.PIPE, stderr=stderr, text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "waiting for the pass" in line:
                break
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def _every_node_stopped(tmp_path: Path, within_s: float) -> None:
    """Each node's log ends with a clean shutdown within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    for n in (1, 2, 3):
        log = tmp_path / f"node-ipn{n}.log"
        while "node stopped" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "node stopped" in log.read_text(), log.read_text()[-2000:]


def test_demo_interrupted_stops_every_node(tmp_path: Path) -> None:
    proc = _demo_waiting_for_the_pass(tmp_path, subprocess.PIPE)
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    _every_node_stopped(tmp_path, 5)


def test_demo_killed_by_sigkill_leaves_no_node_running(tmp_path: Path) -> None:
    """The kernel stops the nodes (parent-death signal) even when the demo cannot clean up."""
    proc = _demo_waiting_for_the_pass(tmp_path, subprocess.DEVNULL)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _every_node_stopped(tmp_path, 15)

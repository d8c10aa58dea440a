"""TCPCLv4 with TLS across network namespaces joined by veth pairs, through a router namespace
whose forwarding path runs through the packet-level link emulator (300 ms each way, 1 % packet
loss) -- the ``tc netem`` setup, which this kernel lacks, done in userspace with TUN devices.

    ns A (sender) --veth-- ns R (router: vRA -> tunF -> linkemu -> tunB -> vRB) --veth-- ns B

Skips with the reason when not root, or when ``ip``, network namespaces or /dev/net/tun are
unavailable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waystation.convergence.tls import make_ca, make_node_certificate

from .netns_peer import bundles

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

HERE = Path(__file__).resolve().parent
PY = sys.executable
COUNT = 30
SEED = 4


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def _why_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if shutil.which("ip") is None:
        return "the 'ip' tool (iproute2) is not installed"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no TUN support)"
    probe = f"wsprobe{os.getpid()}"
    try:
        _sh("ip", "netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot create a network namespace: {getattr(exc, 'stderr', exc)}"
    _sh("ip", "netns", "del", probe)
    return None


@pytest.fixture
def topology():
    why = _why_unavailable()
    if why:
        pytest.skip(f"network-namespace test skipped: {why}")
    tag = str(os.getpid() % 100000)
    ns = {k: f"ws{k}{tag}" for k in ("A", "R", "B")}
    veth = {k: f"{k}{tag}" for k in ("va", "vra", "vb", "vrb")}
    procs: list[subprocess.Popen] = []
    try:
        for n in ns.values():
            _sh("ip", "netns", "add", n)
            _sh("ip", "-n", n, "link", "set", "lo", "up")
        _sh("ip", "link", "add", veth["va"], "type", "veth", "peer", "name", veth["vra"])
        _sh("ip", "link", "add", veth["vb"], "type", "veth", "peer", "name", veth["vrb"])
        for dev, n in (
            (veth["va"], ns["A"]),
            (veth["vra"], ns["R"]),
            (veth["vb"], ns["B"]),
            (veth["vrb"], ns["R"]),
        ):
            _sh("ip", "link", "set", dev, "netns", n)
            _sh("ip", "-n", n, "link", "set", dev, "up")
        _sh("ip", "-n", ns["A"], "addr", "add", "10.201.1.1/24", "dev", veth["va"])
        _sh("ip", "-n", ns["A"], "route", "add", "default", "via", "10.201.1.2")
        _sh("ip", "-n", ns["B"], "addr", "add", "10.201.2.2/24", "dev", veth["vb"])
        _sh("ip", "-n", ns["B"], "route", "add", "default", "via", "10.201.2.1")
        r = ns["R"]
        _sh("ip", "-n", r, "addr", "add", "10.201.1.2/24", "dev", veth["vra"])
        _sh("ip", "-n", r, "addr", "add", "10.201.2.1/24", "dev", veth["vrb"])
        for key in (
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ):
            _sh("ip", "netns", "exec", r, "sysctl", "-q", "-w", key)
        emu = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                r,
                PY,
                "-m",
                "waystation.convergence.linkemu",
                "tun",
                "tunF",
                "tunB",
                "--delay",
                "0.3",
                "--loss",
                "0.01",
                "--seed",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(emu)
        line = emu.stdout.readline()
        assert "ready" in line, f"link emulator did not start: {line} {emu.stderr.read()}"
        for dev, table, iif in (("tunF", "101", veth["vra"]), ("tunB", "102", veth["vrb"])):
            _sh("ip", "-n", r, "link", "set", dev, "up")
            _sh("ip", "netns", "exec", r, "sysctl", "-q", "-w", f"net.ipv4.conf.{dev}.rp_filter=0")
            _sh("ip", "-n", r, "rule", "add", "iif", iif, "lookup", table)
            _sh("ip", "-n", r, "route", "add", "default", "dev", dev, "table", table)
        yield ns, procs
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for n in ns.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def test_tls_transfer_completes_over_a_300ms_lossy_link(topology, tmp_path: Path) -> None:
    ns, procs = topology
    ca = make_ca()
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    for n in ("a", "b"):
        make_node_certificate(f"dtn://{n}/", ca).write(tmp_path, n)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    rx = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns["B"],
            PY,
            str(HERE / "netns_peer.py"),
            "receive",
            "10.201.2.2",
            "4556",
            str(tmp_path),
            str(COUNT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    procs.append(rx)
    assert rx.stdout.readline().strip() == "listening", rx.stderr.read()
    t0 = time.monotonic()
    tx = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns["A"],
            PY,
            str(HERE / "netns_peer.py"),
            "send",
            "10.201.2.2",
            "4556",
            str(tmp_path),
            str(COUNT),
            str(SEED),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
    )
    elapsed = time.monotonic() - t0
    assert tx.returncode == 0, tx.stderr
    out, _err = rx.communicate(timeout=20)
    expected = sorted(hashlib.sha256(b).hexdigest() for b in bundles(COUNT, SEED))
    received = sorted(line.split()[1] for line in out.splitlines() if line.strip())
    assert received == expected  # every bundle, intact, exactly once
    acked = sorted(line.split()[1] for line in tx.stdout.splitlines() if line.startswith("sent"))
    assert acked == expected
    # 300 ms each way: the contact headers, TLS and SESS_INIT alone need several round trips.
    assert elapsed > 1.2

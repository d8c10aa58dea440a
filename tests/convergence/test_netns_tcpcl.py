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
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waystation.convergence.tls import make_ca, make_node_certificate

from . import netns_topology
from .netns_peer import bundles

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

HERE = Path(__file__).resolve().parent
PY = sys.executable
COUNT = 30
SEED = 4


@pytest.fixture
def topology():
    with netns_topology.topology(delay=0.3, loss=0.01) as topo:
        yield topo


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

"""Two real ``waystation node`` processes in separate network namespaces, joined through a
router namespace whose path delays every packet 300 ms each way and drops 1 % (the packet-level
link emulator standing in for ``tc netem``): bundles submitted at A reach B's application over
TCPCLv4 + TLS, exactly once and intact. The nodes' application sockets are files, so the test
drives both from outside the namespaces."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import pytest
from waystation.convergence.tls import make_ca, make_node_certificate

from . import netns_topology
from .nodeproc import Node

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(180)]


def test_nodes_in_namespaces_over_a_300ms_lossy_link(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = make_ca()
    (pki / "ca.crt").write_bytes(ca.cert_pem)
    for n in ("a", "b"):
        make_node_certificate(f"dtn://{n}/", ca).write(pki, n)
    rng = random.Random(3)
    payloads = [
        i.to_bytes(4, "big") + rng.randbytes(rng.choice([1, 500, 20_000, 100_000]))
        for i in range(30)
    ]
    with netns_topology.topology(delay=0.3, loss=0.01) as (ns, _procs):
        b = Node(
            tmp_path,
            "b",
            pki,
            [{"id": "in", "kind": "tcpcl", "listen": "10.201.2.2:4556"}],
            {},
            prefix=("ip", "netns", "exec", ns["B"]),
        )
        a = Node(
            tmp_path,
            "a",
            pki,
            [{"id": "to-b", "kind": "tcpcl", "address": "10.201.2.2:4556", "peer": "dtn://b/"}],
            {"dtn://b/*": "dtn://b/"},
            prefix=("ip", "netns", "exec", ns["A"]),
        )
        try:
            b.start()
            a.start()
            got: list[bytes] = []

            def collect() -> None:
                with b.client(timeout=60) as cl:
                    cl.register("dtn://b/inbox")
                    for d in cl.receive("dtn://b/inbox", count=len(payloads), timeout=120):
                        got.append(d.payload)

            rx = threading.Thread(target=collect, daemon=True)
            rx.start()
            with a.client(timeout=60) as cl:
                cl.send_many("dtn://b/inbox", payloads, lifetime=3600)
            rx.join(150)
            assert not rx.is_alive(), f"B received {len(got)} of {len(payloads)}"
            assert sorted(hashlib.sha256(p).digest() for p in got) == sorted(
                hashlib.sha256(p).digest() for p in payloads
            )
            with a.client() as cl:
                (link,) = [x for x in cl.status()["links"] if x["id"] == "to-b"]
            assert link["tls"] and link["authenticated"]
        finally:
            a.kill()
            b.kill()

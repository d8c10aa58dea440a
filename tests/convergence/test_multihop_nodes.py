"""Three real ``waystation node`` processes on loopback, A -> B -> C over TCPCLv4 with TLS
(mutual certificates naming each node, NODE-ID required), configured from node.toml files:
bundles of mixed sizes (1 B to 4 MiB) arrive at C's application exactly once and intact; then
again with B killed by SIGKILL mid-transfer and restarted on the same store."""

from __future__ import annotations

import hashlib
import random
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from waystation.convergence.tls import make_ca, make_node_certificate

from .nodeproc import Node, _free_port

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
PY = sys.executable


@pytest.fixture
def chain(tmp_path: Path):
    pki = tmp_path / "pki"
    ca = make_ca()
    pki.mkdir()
    (pki / "ca.crt").write_bytes(ca.cert_pem)
    for n in ("a", "b", "c"):
        make_node_certificate(f"dtn://{n}/", ca).write(pki, n)
    pb, pc = _free_port(), _free_port()
    retry = {"reconnect_min": "0.2", "reconnect_max": "1.0"}
    c = Node(tmp_path, "c", pki, [{"id": "in", "kind": "tcpcl", "listen": f"127.0.0.1:{pc}"}], {})
    b = Node(
        tmp_path,
        "b",
        pki,
        [
            {"id": "in", "kind": "tcpcl", "listen": f"127.0.0.1:{pb}"},
            {
                "id": "to-c",
                "kind": "tcpcl",
                "address": f"127.0.0.1:{pc}",
                "peer": "dtn://c/",
                **retry,
            },
        ],
        {"dtn://c/*": "dtn://c/"},
    )
    a = Node(
        tmp_path,
        "a",
        pki,
        [
            {
                "id": "to-b",
                "kind": "tcpcl",
                "address": f"127.0.0.1:{pb}",
                "peer": "dtn://b/",
                **retry,
            },
        ],
        {"dtn://c/*": "dtn://b/"},
    )
    nodes = (a, b, c)
    try:
        for n in (c, b, a):
            n.start()
        yield nodes
    finally:
        for n in nodes:
            n.kill()


def _payloads(count: int, big: int) -> list[bytes]:
    rng = random.Random(9)
    sizes = [1] + [rng.choice([10, 100, 1024, 10_000, 100_000]) for _ in range(count - 1 - big)]
    sizes += [4 * 1024 * 1024] * big
    rng.shuffle(sizes)
    # Each payload names its index, so the receiver can check exactly-once and integrity.
    return [
        i.to_bytes(4, "big") + rng.randbytes(max(0, n - 4)) if n >= 4 else bytes([i % 256])
        for i, n in enumerate(sizes)
    ]


def _collect(c: Node, count: int, out: list[bytes], stop: threading.Event) -> None:
    with c.client(timeout=60) as cl:
        cl.register("dtn://c/inbox")
        for d in cl.receive("dtn://c/inbox", count=count, timeout=120):
            out.append(d.payload)
            if stop.is_set():
                return


def _run(chain, count: int, big: int, kill_b_after: int | None) -> None:
    a, b, c = chain
    payloads = _payloads(count, big)
    got: list[bytes] = []
    stop = threading.Event()
    rx = threading.Thread(target=_collect, args=(c, count, got, stop), daemon=True)
    rx.start()
    with a.client(timeout=60) as cl:
        cl.send_many("dtn://c/inbox", payloads, lifetime=3600)
    if kill_b_after is not None:
        deadline = time.monotonic() + 60
        while len(got) < kill_b_after and time.monotonic() < deadline:
            time.sleep(0.01)
        at_kill = len(got)
        b.kill(signal.SIGKILL)  # mid-transfer: A->B and B->C sessions break
        assert at_kill < count, "B was killed only after everything arrived"
        time.sleep(0.3)
        b.start()
    rx.join(180)
    stop.set()
    assert not rx.is_alive(), f"C received {len(got)} of {count}"
    digest = lambda p: hashlib.sha256(p).hexdigest()  # noqa: E731
    assert len(got) == count, "duplicates or losses"
    assert sorted(map(digest, got)) == sorted(map(digest, payloads))  # exactly once, intact


def test_a_to_c_via_b_over_tls_exactly_once(chain) -> None:
    _run(chain, count=1000, big=4, kill_b_after=None)


def test_a_to_c_survives_sigkill_of_b_mid_transfer(chain) -> None:
    _run(chain, count=1000, big=4, kill_b_after=150)

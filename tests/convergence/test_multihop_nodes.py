"""Three real ``waystation node`` processes on loopback, A -> B -> C over TCPCLv4 with TLS
(mutual certificates naming each node, NODE-ID required), configured from node.toml files:
bundles of mixed sizes (1 B to 4 MiB) arrive at C's application exactly once and intact; then
again with B killed by SIGKILL mid-transfer and restarted on the same store."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from waystation.client import Client, ClientError
from waystation.convergence.tls import make_ca, make_node_certificate

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, tmp: Path, name: str, pki: Path, links: list[dict], routes: dict[str, str]):
        self.name = name
        self.dir = tmp / name
        self.dir.mkdir()
        self.socket = self.dir / "run" / "node.sock"
        self.log = self.dir / "node.log"
        tls = (
            f'tls = true\nrequire_tls = true\nnode_id_policy = "require"\n'
            f'cert = "{pki / name}.crt"\nkey = "{pki / name}.key"\nca = "{pki}/ca.crt"\n'
        )
        text = [
            f'[node]\nid = "dtn://{name}/"\ndata_dir = "{self.dir / "data"}"\n'
            f'runtime_dir = "{self.dir / "run"}"\n',
            '[logging]\nlevel = "info"\n',
        ]
        for pattern, hop in routes.items():
            text.append(f'[[routes]]\npattern = "{pattern}"\nnext_hop = "{hop}"\n')
        for link in links:
            body = "".join(f'{k} = "{v}"\n' for k, v in link.items())
            text.append(f"[[links]]\n{body}{tls}")
        self.config = self.dir / "node.toml"
        self.config.write_text("\n".join(text))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, WAYSTATION_SOCKET=str(self.socket))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [PY, "-m", "waystation", "node", "--config", str(self.config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            if self.socket.exists():
                try:
                    with self.client(0.5) as c:
                        c.hello()
                    return
                except ClientError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not come up: {self.log.read_text()[-3000:]}")

    def client(self, timeout: float = 30.0) -> Client:
        return Client(f"ipc://{self.socket}", timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.proc = None


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

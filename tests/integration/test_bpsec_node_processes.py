"""BPSec end to end with real ``waystation node`` processes over TCPCLv4 on loopback (issue 7).

A signs and encrypts (a BCB rule in its node.toml; signing is the default), B forwards with no
keys and no security rules, C decrypts with the shared key, verifies A's signature against the
key it was told to trust (``waystation keys export`` / ``keys trust`` on the running nodes'
data directories) and delivers the plaintext to an application. Then: B, whose key C does not
hold, still reaches C (the documented default); and a forged "from A" bundle without a
signature, injected into C over a raw TCPCL session, is deleted with reason code 12 and a
deletion status report is generated because it asked for one.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waystation.bundle.dtntime import CreationTimestamp, SystemClock
from waystation.bundle.model import BundleFlags
from waystation.bundleops import originate
from waystation.client import Client
from waystation.convergence.tcpcl.adapter import connect
from waystation.convergence.tcpcl.session import SessionConfig

from tests.node_launch import free_port, spawn_node, wait_until_up

pytestmark = [pytest.mark.timeout(120)]
PY = sys.executable
KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


class Node:
    def __init__(self, tmp: Path, name: str, body: str) -> None:
        self.name = name
        self.dir = tmp / name
        self.dir.mkdir()
        self.socket = self.dir / "run" / "node.sock"
        self.log = self.dir / "node.log"
        self.config = self.dir / "node.toml"
        self.config.write_text(
            f'[node]\nid = "dtn://{name}/"\ndata_dir = "{self.dir / "data"}"\n'
            f'runtime_dir = "{self.dir / "run"}"\n\n{body}'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def keys(self, *args: str, stdin: bytes | None = None) -> bytes:
        """``waystation keys --config node.toml ...`` (the node's own data directory)."""
        done = subprocess.run(
            [PY, "-m", "waystation", "keys", "--config", str(self.config), *args],
            input=stdin, capture_output=True, timeout=30, check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    def start(self) -> None:
        env = dict(os.environ, WAYSTATION_SOCKET=str(self.socket))
        self.proc = spawn_node(["--config", str(self.config)], log=self.log, env=env)
        wait_until_up(self.proc, self.socket, log=self.log, label=self.name)

    def client(self, timeout: float = 30.0) -> Client:
        return Client(f"ipc://{self.socket}", timeout=timeout)

    def status(self) -> dict:
        with self.client() as c:
            return c.status()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def _link(**kw: str) -> str:
    return "[[links]]\n" + "".join(f'{k} = "{v}"\n' for k, v in kw.items()) + (
        'reconnect_min = "0.2"\nreconnect_max = "1.0"\n' if "address" in kw else ""
    )


def _route(pattern: str, hop: str) -> str:
    return f'[[routes]]\npattern = "{pattern}"\nnext_hop = "{hop}"\n'


def _wait_for(pred, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


@pytest.fixture
def chain(tmp_path: Path):  # type: ignore[no-untyped-def]
    pb, pc = free_port(), free_port()
    c = Node(tmp_path, "c", (
        _link(id="in", kind="tcpcl", listen=f"127.0.0.1:{pc}")
        + '[security]\n[[security.rules]]\nname = "from-a-encrypted"\nrole = "acceptor"\n'
        'context = "bcb-aes-gcm"\nsource = "dtn://a/*"\nkey = "a-to-c"\n'
    ))
    b = Node(tmp_path, "b", (
        _link(id="in", kind="tcpcl", listen=f"127.0.0.1:{pb}")
        + _link(id="to-c", kind="tcpcl", address=f"127.0.0.1:{pc}", peer="dtn://c/")
        + _route("dtn://c/*", "dtn://c/")
    ))
    a = Node(tmp_path, "a", (
        _link(id="to-b", kind="tcpcl", address=f"127.0.0.1:{pb}", peer="dtn://b/")
        + _route("dtn://c/*", "dtn://b/")
        + '[security]\n[[security.rules]]\nname = "encrypt-to-c"\nrole = "source"\n'
        'context = "bcb-aes-gcm"\ndestination = "dtn://c/*"\nkey = "a-to-c"\n'
    ))
    nodes = (a, b, c)
    try:
        for n in (a, c):
            n.keys("symmetric", "add", "a-to-c", "--hex", KEY_HEX, "--quiet")
        for n in (c, b, a):
            n.start()
        yield a, b, c, pc
    finally:
        for n in nodes:
            n.stop()


def test_sign_encrypt_at_a_forward_at_b_without_keys_verify_decrypt_deliver_at_c(
    chain,  # type: ignore[no-untyped-def]
) -> None:
    a, b, c, _ = chain
    # Each node created its identity key on first start, private to its user.
    for n in (a, b, c):
        key = n.dir / "data" / "keys" / "identity.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, n.name
    # Key exchange on the running nodes' data dirs; C re-reads its trust store live.
    c.keys("trust", "node-a", "-", "--node", "dtn://a/", stdin=a.keys("export"))
    listed = json.loads(c.keys("list", "--json"))
    assert "node-a" in json.dumps(listed)

    payloads = [b"secret telemetry %d " % i * 50 for i in range(5)]
    with c.client() as rc:
        rc.register("dtn://c/inbox")
        with a.client() as sc:
            for p in payloads:
                sc.send("dtn://c/inbox", p)
        got = []
        for d in rc.receive("dtn://c/inbox", count=len(payloads), timeout=30):
            got.append(d.payload)
            rc.ack(d)
    assert sorted(got) == sorted(payloads)
    assert c.status()["counters"]["rejected"] == 0
    sa, sb, sc_ = a.status()["security"], b.status()["security"], c.status()["security"]
    assert sa["protected"] >= len(payloads)  # signed + encrypted at the source
    assert sb["checked"] == 0  # the forwarder did no cryptography
    assert sc_["checked"] >= len(payloads) and sc_["rejected"] == 0
    # C's acceptor rule *requires* A's payloads to be encrypted and, A being trusted, signed:
    # delivery above proves both operations were present and verified.
    log_c = c.log.read_text()
    assert "rejects" not in log_c


def test_fresh_node_without_key_exchange_reaches_c(chain) -> None:  # type: ignore[no-untyped-def]
    _, b, c, _ = chain
    with c.client() as rc:
        rc.register("dtn://c/from-b")
        with b.client() as sc:
            sc.send("dtn://c/from-b", b"hello from a stranger")
        (d,) = list(rc.receive("dtn://c/from-b", count=1, timeout=30))
        assert d.payload == b"hello from a stranger" and d.source == "dtn://b/"
        rc.ack(d)


def test_forged_unsigned_bundle_is_deleted_with_reason_12_and_reported(
    chain,  # type: ignore[no-untyped-def]
) -> None:
    a, _, c, port = chain
    c.keys("trust", "node-a", "-", "--node", "dtn://a/", stdin=a.keys("export"))
    forged, _ = originate(
        source="dtn://a/inbox",
        destination="dtn://c/inbox",
        payload=b"transfer all funds",
        creation=CreationTimestamp(SystemClock().now_ms(), 77),
        lifetime_ms=3_600_000,
        flags=int(BundleFlags.REPORT_DELETION),
        report_to="dtn://a/",
    )

    async def inject() -> None:
        conn = await connect("127.0.0.1", port, SessionConfig(node_id="dtn://mallory/"))
        try:
            await asyncio.wait_for(conn.send(forged), 20)
        finally:
            await conn.close()

    asyncio.run(inject())
    _wait_for(lambda: c.status()["counters"]["rejected"] >= 1)
    status = c.status()
    assert status["counters"]["reports"] >= 1
    assert status["security"]["rejected"] == 1
    log_c = c.log.read_text()
    assert "reason code 12" in log_c
    # Nothing reached the application.
    with c.client() as rc:
        rc.register("dtn://c/inbox")
        assert list(rc.receive("dtn://c/inbox", count=1, timeout=1)) == []


def test_node_refuses_to_start_with_a_world_readable_identity_key(tmp_path: Path) -> None:
    node = Node(tmp_path, "z", "")
    node.keys("show")  # creates the identity key
    key = node.dir / "data" / "keys" / "identity.pem"
    key.chmod(0o644)
    done = subprocess.run(
        [PY, "-m", "waystation", "node", "--config", str(node.config)],
        capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    assert b"chmod 600" in done.stderr and b"Traceback" not in done.stderr

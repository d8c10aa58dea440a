"""Fragmentation and reassembly end to end: two real ``waystation node`` processes over UDP.

A's UDP link to B carries at most 16,000-byte bundles, so A fragments (RFC 9171 §5.8) a
200 KiB bundle; B reassembles it (§5.9), verifies A's signature on the *reassembled* bundle
(A signs by default; B trusts A's key, so it requires the signature) and delivers it to the
application exactly once. A signed bundle whose second fragment was tampered with in transit
reassembles but fails verification: it is deleted with the BPSec reason code and never
delivered. All traffic is on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.dtntime import CreationTimestamp, SystemClock
from waystation.bundle.fragment import fragment_bundle
from waystation.bundle.model import BundleFlags
from waystation.bundleops import originate
from waystation.security import NodeSecurity

from tests.integration.test_bpsec_node_processes import Node, _wait_for

pytestmark = [pytest.mark.timeout(120)]
LIMIT = 16_000


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _udp_link(link_id: str, listen: int, peer_port: int, peer: str) -> str:
    return (
        f'[[links]]\nid = "{link_id}"\nkind = "udp"\nlisten = "127.0.0.1:{listen}"\n'
        f'address = "127.0.0.1:{peer_port}"\npeer = "{peer}"\nmax_bundle = "{LIMIT}"\n'
        # UDP has no acknowledgement: paced sending keeps a 200 KiB burst of datagrams from
        # overrunning the receiver's socket buffer (a lost fragment would leave the ADU
        # incomplete until it expires)
        "rate = 4000000\n"
    )


@pytest.fixture
def pair(tmp_path: Path):  # type: ignore[no-untyped-def]
    pa, pb = _udp_port(), _udp_port()
    a = Node(tmp_path, "a", _udp_link("to-b", pa, pb, "dtn://b/"))
    b = Node(tmp_path, "b", _udp_link("to-a", pb, pa, "dtn://a/"))
    try:
        b.start()
        a.start()
        b.keys("trust", "node-a", "-", "--node", "dtn://a/", stdin=a.keys("export"))
        yield a, b, pb
    finally:
        for n in (a, b):
            n.stop()


def test_200_kib_bundle_is_fragmented_over_udp_and_delivered_once_reassembled_and_verified(
    pair,  # type: ignore[no-untyped-def]
) -> None:
    a, b, _ = pair
    payload = bytes((i * 7 + i // 251) & 0xFF for i in range(200 * 1024))
    with b.client() as rc:
        rc.register("dtn://b/inbox")
        with a.client() as sc:
            sc.send("dtn://b/inbox", payload)
        got = list(rc.receive("dtn://b/inbox", count=1, timeout=30))
        assert len(got) == 1
        assert got[0].payload == payload and got[0].source == "dtn://a/"
        rc.ack(got[0])
        # exactly once: nothing else arrives
        assert list(rc.receive("dtn://b/inbox", count=1, timeout=1.5)) == []
    status_b = b.status()
    assert status_b["counters"]["received"] >= 200 * 1024 // LIMIT  # fragments, not one bundle
    assert status_b["counters"]["delivered"] == 1
    assert status_b["reassembly"] == {"pending_adus": 0, "reassembled": 1, "reassembly_failed": 0}
    assert status_b["security"]["checked"] >= 1 and status_b["security"]["rejected"] == 0
    _wait_for(lambda: a.status()["counters"]["forwarded"] >= 1)
    # the fragments were deleted once the reassembled bundle was stored; it, once acked
    _wait_for(lambda: b.status()["bundles"]["held"] == 0)


def test_tampered_fragment_of_a_signed_bundle_is_rejected_after_reassembly(
    pair,  # type: ignore[no-untyped-def]
) -> None:
    a, b, port_b = pair
    wire, _ = originate(
        source="dtn://a/app",
        destination="dtn://b/inbox",
        payload=b"launch window opens at T+%d " % 42 * 2000,
        creation=CreationTimestamp(SystemClock().now_ms(), 4242),
        lifetime_ms=3_600_000,
        flags=int(BundleFlags.REPORT_DELETION),
        report_to="dtn://a/",
    )
    sec = NodeSecurity(a.dir / "data", ["dtn://a/"], None)
    sec.start()
    try:
        signed = sec.protect_sync(wire)  # signed with A's identity key, as A would
    finally:
        sec.close()
    fragments = fragment_bundle(decode_bundle(signed), LIMIT)
    assert len(fragments) >= 3
    pieces = [bytearray(encode_bundle(f)) for f in fragments]
    # flip one payload byte of the second fragment and re-encode it (valid CRCs: only the
    # signature can tell)
    bad = decode_bundle(bytes(pieces[1]))
    data = bytearray(bad.payload)
    data[10] ^= 0x01
    bad.payload_block.data = bytes(data)
    pieces[1] = bytearray(encode_bundle(bad))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in pieces:
            s.sendto(bytes(p), ("127.0.0.1", port_b))
            time.sleep(0.01)
    _wait_for(lambda: b.status()["security"]["rejected"] >= 1)
    log_b = b.log.read_text()
    assert "reason code 15" in log_b  # "Failed security operation" (RFC 9172 §11.2)
    with b.client() as rc:
        rc.register("dtn://b/inbox")
        assert list(rc.receive("dtn://b/inbox", count=1, timeout=1)) == []
    assert b.status()["counters"]["delivered"] == 0
    assert b.status()["reassembly"]["reassembly_failed"] == 1


def _signed_fragments(a: Node, payload: bytes, seq: int) -> list[bytes]:
    wire, _ = originate(
        source="dtn://a/app",
        destination="dtn://b/inbox",
        payload=payload,
        creation=CreationTimestamp(SystemClock().now_ms(), seq),
        lifetime_ms=3_600_000,
    )
    sec = NodeSecurity(a.dir / "data", ["dtn://a/"], None)
    sec.start()
    try:
        signed = sec.protect_sync(wire)
    finally:
        sec.close()
    return [bytes(encode_bundle(f)) for f in fragment_bundle(decode_bundle(signed), LIMIT)]


def _inject(port: int, pieces: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in pieces:
            s.sendto(p, ("127.0.0.1", port))
            time.sleep(0.01)


def test_fragments_survive_sigkill_and_the_adu_completes_after_restart(
    pair,  # type: ignore[no-untyped-def]
) -> None:
    a, b, port_b = pair
    payload = bytes(range(256)) * 300  # 76,800 bytes: 5 fragments
    pieces = _signed_fragments(a, payload, 777)
    half = len(pieces) // 2
    _inject(port_b, pieces[:half])
    _wait_for(lambda: b.status()["bundles"]["held"] == half)
    assert b.proc is not None
    b.proc.kill()  # SIGKILL: no shutdown path runs
    b.proc.wait(10)
    b.proc = None
    b.start()
    assert b.status()["reassembly"]["pending_adus"] == 1  # rebuilt from the store
    _inject(port_b, pieces[half:])
    with b.client() as rc:
        rc.register("dtn://b/inbox")
        got = list(rc.receive("dtn://b/inbox", count=1, timeout=20))
        assert [d.payload for d in got] == [payload]
        rc.ack(got[0])
        assert list(rc.receive("dtn://b/inbox", count=1, timeout=1)) == []
    assert b.status()["security"]["rejected"] == 0
    _wait_for(lambda: b.status()["bundles"]["held"] == 0)

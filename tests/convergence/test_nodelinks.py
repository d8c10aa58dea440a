"""Convergence adapters behind the node's Link interface (waystation.links), over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waystation.convergence.nodelinks import register_all
from waystation.convergence.tls import make_ca, make_node_certificate
from waystation.links import Link, LinkDown, LinkManager, TransferRefused

pytestmark = pytest.mark.timeout(60)


class FakeNode:
    """A LinkHandler that stores bundles in a list (and can pretend its store is full)."""

    def __init__(self, node_id: str) -> None:
        self.config = type("C", (), {"node_id": node_id})()
        self.got: list[bytes] = []
        self.ups: list[str | None] = []
        self.downs: list[str] = []
        self.full = False
        self.up_event = asyncio.Event()

    def link_up(self, link) -> None:
        self.ups.append(link.peer)
        self.up_event.set()

    def link_down(self, link, reason: str) -> None:
        self.downs.append(reason)

    async def bundle_received(self, link, wire: bytes) -> bool:
        if self.full:
            return False
        self.got.append(wire)
        return True


async def _pair(tmp: Path | None, options_a=None, options_b=None):
    a, b = FakeNode("dtn://a/"), FakeNode("dtn://b/")
    ma, mb = LinkManager(a), LinkManager(b)
    register_all(ma)
    register_all(mb)
    listener = await mb.open("in", "tcpcl", {"listen": "127.0.0.1:0", **(options_b or {})})
    link = await ma.open(
        "to-b", "tcpcl", {"address": listener.address, "peer": "dtn://b/", **(options_a or {})}
    )
    await asyncio.wait_for(a.up_event.wait(), 10)
    await asyncio.wait_for(b.up_event.wait(), 10)
    return a, b, ma, mb, listener, link


def test_tcpcl_links_carry_bundles_both_ways_and_map_refusals() -> None:
    async def main():
        a, b, ma, mb, listener, link = await _pair(None)
        assert isinstance(link, Link) and link.is_up and link.peer == "dtn://b/"
        await link.send(b"\x9f hello")
        assert b.got == [b"\x9f hello"]
        back = listener.links["dtn://a/"]
        assert back.peer == "dtn://a/"
        await back.send(b"\x9f reply")
        assert a.got == [b"\x9f reply"]
        b.full = True
        with pytest.raises(TransferRefused):
            await link.send(b"\x9f no room")
        assert "bundles_sent" in link.describe()
        await ma.close_all()
        await asyncio.sleep(0.05)
        assert a.downs and b.downs
        with pytest.raises(LinkDown):
            await link.send(b"x")
        await mb.close_all()

    asyncio.run(main())


def test_tcpcl_links_with_tls_from_config_options(tmp_path: Path) -> None:
    ca = make_ca()
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    for n in ("a", "b"):
        make_node_certificate(f"dtn://{n}/", ca).write(tmp_path, n)

    def opts(n: str) -> dict:
        return {
            "tls": True,
            "require_tls": True,
            "node_id_policy": "require",
            "cert": str(tmp_path / f"{n}.crt"),
            "key": str(tmp_path / f"{n}.key"),
            "ca": str(tmp_path / "ca.crt"),
        }

    async def main():
        _a, b, ma, mb, _listener, link = await _pair(tmp_path, opts("a"), opts("b"))
        d = link.describe()
        assert d["tls"] and d["authenticated"]
        await link.send(b"\x9f secret")
        assert b.got == [b"\x9f secret"]
        await ma.close_all()
        await mb.close_all()

    asyncio.run(main())


def test_link_reconnects_after_the_peer_restarts() -> None:
    async def main():
        _a, _b, ma, mb, listener, link = await _pair(
            None, {"reconnect_min": 0.05, "reconnect_max": 0.1}
        )
        address = listener.address
        await mb.close_all()  # the peer goes away
        for _ in range(100):
            if not link.is_up:
                break
            await asyncio.sleep(0.02)
        assert not link.is_up
        b2 = FakeNode("dtn://b/")
        mb2 = LinkManager(b2)
        register_all(mb2)
        await mb2.open("in", "tcpcl", {"listen": address})
        for _ in range(200):
            if link.is_up:
                break
            await asyncio.sleep(0.02)
        await link.send(b"\x9f again")
        assert b2.got == [b"\x9f again"] and link.describe()["sessions"] == 2
        await ma.close_all()
        await mb2.close_all()

    asyncio.run(main())


def test_udp_and_mtcp_links() -> None:
    async def main():
        a, b = FakeNode("dtn://a/"), FakeNode("dtn://b/")
        ma, mb = LinkManager(a), LinkManager(b)
        register_all(ma)
        register_all(mb)
        ub = await mb.open("u", "udp", {"listen": "127.0.0.1:0"})
        port = ub.endpoint.local_address[1]
        ua = await ma.open(
            "u",
            "udp",
            {"listen": "127.0.0.1:0", "address": f"127.0.0.1:{port}", "max_bundle": 2000},
        )
        await ua.send(b"\x9f datagram")
        from waystation.links import LinkError

        with pytest.raises(LinkError, match="fragment"):
            await ua.send(b"\x9f" + bytes(3000))
        mlisten = await mb.open("m", "mtcp", {"listen": "127.0.0.1:0"})
        mport = mlisten.server.sockets[0].getsockname()[1]
        ml = await ma.open("m", "mtcp", {"address": f"127.0.0.1:{mport}"})
        for _ in range(100):
            if ml.is_up:
                break
            await asyncio.sleep(0.02)
        await ml.send(b"\x9f framed")
        for _ in range(100):
            if len(b.got) == 2:
                break
            await asyncio.sleep(0.02)
        assert sorted(b.got) == [b"\x9f datagram", b"\x9f framed"]
        await ma.close_all()
        await mb.close_all()

    asyncio.run(main())

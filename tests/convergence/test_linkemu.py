"""The userspace link emulator: delay, rate, loss, reordering, stalls -- over real sockets."""

from __future__ import annotations

import asyncio
import time

import pytest
from waystation.convergence.linkemu import LinkProfile, TcpRelay, UdpRelay
from waystation.convergence.tcpcl import SessionConfig
from waystation.convergence.tcpcl.adapter import connect, start_server

pytestmark = pytest.mark.timeout(60)


async def _echo_server():
    async def echo(r, w):
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()

    srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[:2]


def test_profile_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        LinkProfile(loss=1.5)
    with pytest.raises(ValueError):
        LinkProfile(delay=-1)
    with pytest.raises(ValueError):
        LinkProfile(rate=0)


def test_tcp_relay_adds_one_way_delay_each_way_and_keeps_bytes_intact() -> None:
    async def main():
        srv, target = await _echo_server()
        relay = TcpRelay(target, LinkProfile(delay=0.1), LinkProfile(delay=0.05))
        host, port = await relay.start()
        r, w = await asyncio.open_connection(host, port)
        payload = bytes(range(256)) * 1000
        t0 = time.monotonic()
        w.write(payload)
        got = await r.readexactly(len(payload))
        rtt = time.monotonic() - t0
        assert got == payload
        assert rtt >= 0.15  # a lower bound only: the relay may never deliver early
        w.close()
        await relay.close()
        srv.close()

    asyncio.run(main())


def test_tcp_relay_rate_limit_paces_the_stream() -> None:
    async def main():
        srv, target = await _echo_server()
        relay = TcpRelay(target, LinkProfile(rate=1_000_000), LinkProfile())
        host, port = await relay.start()
        r, w = await asyncio.open_connection(host, port)
        t0 = time.monotonic()
        w.write(bytes(300_000))
        await r.readexactly(300_000)
        assert time.monotonic() - t0 >= 0.25  # 300 kB at 1 MB/s cannot take less
        assert relay.stats_forward.bytes == 300_000
        w.close()
        await relay.close()
        srv.close()

    asyncio.run(main())


def test_tcp_relay_stalls_freeze_then_release_the_stream() -> None:
    async def main():
        srv, target = await _echo_server()
        relay = TcpRelay(target, LinkProfile(stall_every=0.2, stall_for=0.19), LinkProfile())
        host, port = await relay.start()
        r, w = await asyncio.open_connection(host, port)
        for i in range(5):
            w.write(b"%d" % i)
            assert await r.readexactly(1) == b"%d" % i
        w.close()
        await relay.close()
        srv.close()

    asyncio.run(main())


def test_tcpcl_session_over_a_delayed_link() -> None:
    async def main():
        got: list[bytes] = []

        class Sink:
            def bundle_received(self, conn, data):
                got.append(data)

        srv = await start_server("127.0.0.1", 0, SessionConfig("dtn://far/"), Sink())
        relay = TcpRelay(
            srv.sockets[0].getsockname()[:2],
            LinkProfile(delay=0.05, rate=5e6),
            LinkProfile(delay=0.05),
        )
        host, port = await relay.start()
        conn = await connect(host, port, SessionConfig("dtn://near/"))
        bundles = [bytes([i]) * (1 << i) for i in range(18)]
        await asyncio.gather(*(conn.send(b) for b in bundles))
        assert sorted(got) == sorted(bundles)
        await conn.close()
        await relay.close()
        srv.close()

    asyncio.run(main())


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data, addr):
        self.got.append(data)


def test_udp_relay_loss_and_reordering_are_seeded_and_counted() -> None:
    async def main():
        loop = asyncio.get_running_loop()
        rx_t, rx = await loop.create_datagram_endpoint(_Collector, local_addr=("127.0.0.1", 0))
        target = rx_t.get_extra_info("sockname")
        relay = UdpRelay(target, LinkProfile(loss=0.3, reorder=0.3, reorder_delay=0.05), seed=7)
        host, port = await relay.start()
        tx_t, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(host, port)
        )
        for i in range(200):
            tx_t.sendto(i.to_bytes(2, "big"))
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.3)
        seq = [int.from_bytes(d, "big") for d in rx.got]
        st = relay.stats_forward
        assert st.chunks == 200 and len(seq) == 200 - st.dropped
        assert 20 < st.dropped < 100 and st.reordered > 10
        assert seq != sorted(seq)  # something overtook something
        tx_t.close()
        rx_t.close()
        await relay.close()

    asyncio.run(main())


def test_tls_session_over_a_delayed_link(tmp_path) -> None:
    """Regression: over a delayed path the client's last handshake record and its SESS_INIT
    arrive in one read, before start_tls() returns on the server -- the SESS_INIT must wait for
    the core to learn that TLS is up, not be parsed as plaintext."""
    from waystation.convergence.tls import TlsSettings, make_ca, make_node_certificate

    ca = make_ca()
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    for n in ("a", "b"):
        make_node_certificate(f"dtn://{n}/", ca).write(tmp_path, n)

    def ctx(n: str, server: bool):
        return TlsSettings(
            tmp_path / f"{n}.crt", tmp_path / f"{n}.key", tmp_path / "ca.crt"
        ).context(server)

    async def main():
        got: list[bytes] = []

        class Sink:
            def bundle_received(self, conn, data):
                got.append(data)

        srv = await start_server(
            "127.0.0.1", 0, SessionConfig("dtn://b/", can_tls=True), Sink(), ctx("b", True)
        )
        relay = TcpRelay(
            srv.sockets[0].getsockname()[:2], LinkProfile(delay=0.05), LinkProfile(delay=0.05)
        )
        host, port = await relay.start()
        conn = await connect(
            host, port, SessionConfig("dtn://a/", can_tls=True), None, ctx("a", False)
        )
        assert conn.established_info.tls and conn.established_info.peer_node_id_authenticated
        await conn.send(b"through the tunnel")
        assert got == [b"through the tunnel"]
        await conn.close()
        await relay.close()
        srv.close()

    asyncio.run(main())

"""TCPCLv4 over real loopback sockets: plain TCP, TLS with certificates made by cryptography,
refusals, malformed peers, and reconnect with backoff."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from pathlib import Path

import pytest
from waystation.convergence.errors import LinkClosed
from waystation.convergence.tcpcl import NodeIdPolicy, RefuseReason, SessionConfig
from waystation.convergence.tcpcl.adapter import (
    ReconnectingClient,
    TransferFailed,
    connect,
    start_server,
)
from waystation.convergence.tcpcl.messages import SessTerm, SessTermReason
from waystation.convergence.tls import TlsSettings, make_ca, make_node_certificate

from .tcpcl_helpers import messages_in

pytestmark = pytest.mark.timeout(60)


def run(coro, timeout: float = 30.0):
    async def main():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


class Sink:
    """Receiver that records bundles; ``verdict`` decides accept/refuse."""

    def __init__(self, verdict=None) -> None:
        self.bundles: list[bytes] = []
        self.verdict = verdict
        self.closed = asyncio.Event() if False else None

    def bundle_received(self, conn, data: bytes):
        self.bundles.append(data)
        return self.verdict(data) if callable(self.verdict) else self.verdict


async def _server(handler, cfg=None, ctx=None):
    srv = await start_server("127.0.0.1", 0, cfg or SessionConfig("dtn://server/"), handler, ctx)
    return srv, srv.sockets[0].getsockname()[1]


def test_bundles_of_mixed_sizes_arrive_intact_and_send_returns_after_ack() -> None:
    async def main():
        sink = Sink()
        srv, port = await _server(sink, SessionConfig("dtn://server/", segment_mru=64 * 1024))
        conn = await connect("127.0.0.1", port, SessionConfig("dtn://client/"))
        assert conn.peer_node_id == "dtn://server/"
        sock = conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        bundles = [b"", b"a", bytes(range(256)) * 4, bytes(3 * 1024 * 1024 + 7)]
        for b in bundles:
            await conn.send(b)
        await asyncio.gather(*(conn.send(b"%d" % i) for i in range(200)))
        assert sink.bundles[:4] == bundles
        assert sorted(sink.bundles[4:]) == sorted(b"%d" % i for i in range(200))
        await conn.close()
        assert conn.terminated_info is not None and conn.terminated_info.clean
        srv.close()
        await srv.wait_closed()

    run(main())


@pytest.mark.parametrize(
    ("verdict", "expect"),
    [
        (RefuseReason.COMPLETED, None),  # duplicate: the sender may release the bundle
        (RefuseReason.NO_RESOURCES, RefuseReason.NO_RESOURCES),  # store full
        (False, RefuseReason.NO_RESOURCES),
        (RefuseReason.NOT_ACCEPTABLE, RefuseReason.NOT_ACCEPTABLE),
    ],
)
def test_receiver_verdict_reaches_the_sender(verdict, expect) -> None:
    async def main():
        srv, port = await _server(Sink(verdict))
        conn = await connect("127.0.0.1", port, SessionConfig("dtn://client/"))
        if expect is None:
            await conn.send(b"bundle")
        else:
            with pytest.raises(TransferFailed) as info:
                await conn.send(b"bundle")
            assert info.value.reason == expect
        await conn.close()
        srv.close()

    run(main())


def test_async_verdict_holds_the_final_ack_until_the_bundle_is_stored() -> None:
    async def main():
        stored = asyncio.Event()
        order: list[str] = []

        class SlowStore:
            async def bundle_received(self, conn, data):
                await asyncio.sleep(0.05)
                order.append("stored")
                stored.set()
                return None

        srv, port = await _server(SlowStore())
        conn = await connect("127.0.0.1", port, SessionConfig("dtn://client/"))
        await conn.send(b"x" * 1000)
        order.append("acked")
        assert order == ["stored", "acked"]
        await conn.close()
        srv.close()

    run(main())


# ------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    (d / "ca.crt").write_bytes(ca.cert_pem)
    for name in ("server", "client"):
        make_node_certificate(f"dtn://{name}/", ca).write(d, name)
    make_node_certificate("dtn://mallory/", ca).write(d, "mallory")
    rogue = make_ca("rogue CA")
    make_node_certificate("dtn://client/", rogue).write(d, "rogue")
    return d


def _ctx(pki: Path, name: str, server_side: bool) -> ssl.SSLContext:
    return TlsSettings(pki / f"{name}.crt", pki / f"{name}.key", pki / "ca.crt").context(
        server_side
    )


def test_tls_session_authenticates_node_ids_from_certificates(pki: Path) -> None:
    async def main():
        sink = Sink()
        cfg = SessionConfig(
            "dtn://server/", can_tls=True, require_tls=True, node_id_policy=NodeIdPolicy.REQUIRE
        )
        srv, port = await _server(sink, cfg, _ctx(pki, "server", True))
        conn = await connect(
            "127.0.0.1",
            port,
            SessionConfig("dtn://client/", can_tls=True, node_id_policy=NodeIdPolicy.REQUIRE),
            None,
            _ctx(pki, "client", False),
        )
        info = conn.established_info
        assert info.tls and info.peer_node_id_authenticated and info.peer_node_id == "dtn://server/"
        assert conn.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        payload = hashlib.sha256(b"x").digest() * 40000
        await conn.send(payload)
        assert sink.bundles == [payload]
        await conn.close()
        srv.close()

    run(main())


def test_tls_peer_claiming_another_node_id_is_rejected(pki: Path) -> None:
    async def main():
        established: list[str] = []

        class Watch(Sink):
            def session_established(self, conn, info):
                established.append(info.peer_node_id)

        cfg = SessionConfig("dtn://server/", can_tls=True, node_id_policy=NodeIdPolicy.IF_PRESENT)
        srv, port = await _server(Watch(), cfg, _ctx(pki, "server", True))
        # mallory's certificate is valid, but it names dtn://mallory/, not dtn://client/.
        conn = await connect(
            "127.0.0.1",
            port,
            SessionConfig("dtn://client/", can_tls=True),
            None,
            _ctx(pki, "mallory", False),
            timeout=10,
        )
        info = await asyncio.wait_for(conn.wait_closed(), 10)
        assert info is not None and info.reason == SessTermReason.CONTACT_FAILURE and info.by_peer
        assert established == []  # the server never accepted the session
        with pytest.raises(LinkClosed):
            await conn.send(b"x")
        srv.close()

    run(main())


def test_tls_certificate_from_an_untrusted_ca_fails_the_handshake(pki: Path) -> None:
    async def main():
        cfg = SessionConfig("dtn://server/", can_tls=True)
        srv, port = await _server(Sink(), cfg, _ctx(pki, "server", True))
        with pytest.raises((LinkClosed, ssl.SSLError, ConnectionError)):
            await connect(
                "127.0.0.1",
                port,
                SessionConfig("dtn://client/", can_tls=True),
                None,
                _ctx(pki, "rogue", False),
                timeout=10,
            )
        srv.close()

    run(main())


def test_tls_required_but_client_offers_none(pki: Path) -> None:
    async def main():
        cfg = SessionConfig("dtn://server/", can_tls=True, require_tls=True)
        srv, port = await _server(Sink(), cfg, _ctx(pki, "server", True))
        with pytest.raises(LinkClosed):
            await connect("127.0.0.1", port, SessionConfig("dtn://client/"), timeout=10)
        srv.close()

    run(main())


# ------------------------------------------------------------------------- hostile peers


def _raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xff", b"\x01\x02" + b"\x00" * 3, b"\x07" + b"\xff" * 40, b"\x02\x01" + b"\x00" * 16],
    ids=["unknown-type", "truncated-segment", "oversized-sess-init", "ack-for-unknown-transfer"],
)
def test_malformed_stream_gets_sess_term_and_close_not_a_crash(garbage: bytes) -> None:
    async def main():
        srv, port = await _server(Sink())
        client_init = bytes.fromhex("64746e210400") + bytes.fromhex(
            "07000a00000000000004000000000000002800000a64746e3a2f2f7261772f00000000"
        )
        out = await asyncio.to_thread(_raw_exchange, port, client_init + garbage)
        assert out[:6] == bytes.fromhex("64746e210400")
        msgs = messages_in(out[6:])
        assert isinstance(msgs[-1], SessTerm)
        srv.close()

    run(main())


def test_non_tcpcl_client_is_dropped() -> None:
    async def main():
        srv, port = await _server(Sink())
        out = await asyncio.to_thread(_raw_exchange, port, b"GET / HTTP/1.1\r\n\r\n")
        assert out == b""  # no contact header for a peer that is not speaking TCPCL
        srv.close()

    run(main())


# ----------------------------------------------------------------------------- reconnect


def test_reconnecting_client_backs_off_until_the_server_appears_and_after_a_drop() -> None:
    async def main():
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        ups: list[str] = []
        client = ReconnectingClient(
            "127.0.0.1",
            port,
            SessionConfig("dtn://client/"),
            initial_backoff=0.05,
            max_backoff=0.2,
            on_up=lambda c: ups.append(c.peer_node_id),
        )
        client.start()
        await asyncio.sleep(0.3)  # nobody listening yet: several failed attempts
        assert client.attempts >= 2
        sink = Sink()
        srv = await start_server("127.0.0.1", port, SessionConfig("dtn://server/"), sink)
        conn = await client.wait_up(5)
        await conn.send(b"one")
        conn.abort()  # the link breaks
        await asyncio.sleep(0.05)
        conn2 = await client.wait_up(5)
        assert conn2 is not conn
        await conn2.send(b"two")
        assert sink.bundles == [b"one", b"two"] and len(ups) == 2
        await client.stop()
        srv.close()

    run(main())


def test_interrupted_transfer_fails_and_is_retried_on_the_next_session_exactly_once() -> None:
    async def main():
        held: set[bytes] = set()
        gate = asyncio.Event()

        class Store:
            """Dedupes by content, the way the node dedupes by bundle ID."""

            async def bundle_received(self, conn, data):
                if data in held:
                    return RefuseReason.COMPLETED
                await gate.wait()  # first time: hang until the connection is cut
                held.add(data)
                return None

        srv, port = await _server(Store())
        conn = await connect("127.0.0.1", port, SessionConfig("dtn://client/"))
        pending = asyncio.ensure_future(conn.send(b"bundle-1"))
        await asyncio.sleep(0.1)
        conn.abort()
        with pytest.raises(TransferFailed):
            await pending
        gate.set()  # the receiver stored it after all (the ack was lost with the link)
        await asyncio.sleep(0.05)
        conn = await connect("127.0.0.1", port, SessionConfig("dtn://client/"))
        await conn.send(b"bundle-1")  # retry: refused as Completed -> counts as delivered
        assert held == {b"bundle-1"}
        await conn.close()
        srv.close()

    run(main())

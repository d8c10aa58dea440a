"""MTCP interop with pyD3TN (µD3TN's Python tooling), both directions, over loopback TCP.

pyD3TN frames with the ``cbor`` package and parses with its own socket reader -- an independent
implementation of the same framing. Bundles are real BPv7 bundles serialised by pyD3TN.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

pyd3tn_mtcp = pytest.importorskip("pyd3tn.mtcp")
pyd3tn_bundle7 = pytest.importorskip("pyd3tn.bundle7")

from waystation.convergence.mtcp import connect, start_server  # noqa: E402

pytestmark = pytest.mark.timeout(60)

SIZES = [1, 23, 24, 300, 70_000, 1 << 20]


def _bundles() -> list[bytes]:
    return [
        bytes(
            pyd3tn_bundle7.serialize_bundle7(
                "dtn://pyd3tn/", "dtn://waystation/sink", bytes([i % 256]) * size
            )
        )
        for i, size in enumerate(SIZES)
    ]


def test_pyd3tn_sends_to_waystation() -> None:
    bundles = _bundles()

    async def main():
        got: list[bytes] = []
        done = asyncio.Event()

        class Sink:
            def bundle_received(self, conn, data):
                got.append(data)
                if len(got) == len(bundles):
                    done.set()

        srv = await start_server("127.0.0.1", 0, Sink())
        port = srv.sockets[0].getsockname()[1]

        def client():
            with pyd3tn_mtcp.MTCPConnection("127.0.0.1", port, timeout=5) as conn:
                for b in bundles:
                    conn.send_bundle(b)

        await asyncio.to_thread(client)
        await asyncio.wait_for(done.wait(), 10)
        assert got == bundles
        srv.close()

    asyncio.run(main())


def test_waystation_sends_to_pyd3tn() -> None:
    bundles = _bundles()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def server():
        sock, _ = listener.accept()
        reader = pyd3tn_mtcp.MTCPSocket(sock, timeout=5)
        for _ in bundles:
            received.append(reader.recv_bundle())
        sock.close()

    t = threading.Thread(target=server, daemon=True)
    t.start()

    async def main():
        conn = await connect("127.0.0.1", port)
        for b in bundles:
            await conn.send(b)
        await asyncio.to_thread(t.join, 10)
        await conn.close()

    asyncio.run(main())
    listener.close()
    assert received == bundles

"""RFC 9174 §4.3 version negotiation against a real TCPCLv3 (RFC 7242) peer: pyD3TN's TCPCL.

Our passive entity answers a v3 contact header with its own v4 header and SESS_TERM
"Version Mismatch", then closes; our active entity that meets a v3 server closes without a
SESS_TERM and reports why. Neither side crashes or hangs."""

from __future__ import annotations

import asyncio

import pytest

pyd3tn_tcpcl = pytest.importorskip("pyd3tn.tcpcl")

from waystation.convergence.errors import LinkClosed  # noqa: E402
from waystation.convergence.tcpcl import SessionConfig  # noqa: E402
from waystation.convergence.tcpcl.adapter import connect, start_server  # noqa: E402
from waystation.convergence.tcpcl.messages import SessTerm, SessTermReason  # noqa: E402

from .tcpcl_helpers import messages_in  # noqa: E402

pytestmark = pytest.mark.timeout(30)


def test_v3_client_gets_version_mismatch_from_our_server() -> None:
    async def main():
        srv = await start_server("127.0.0.1", 0, SessionConfig("dtn://v4/"))
        port = srv.sockets[0].getsockname()[1]

        def v3_client() -> bytes:
            conn = pyd3tn_tcpcl.TCPCLConnection("dtn://v3/", "127.0.0.1", port, timeout=5)
            conn.sock.connect(("127.0.0.1", port))
            conn.sock.sendall(pyd3tn_tcpcl.serialize_tcpcl_contact_header("dtn://v3/"))
            out = b""
            while chunk := conn.sock.recv(4096):
                out += chunk
            conn.sock.close()
            return out

        out = await asyncio.to_thread(v3_client)
        assert out[:6] == b"dtn!\x04\x00"
        assert messages_in(out[6:]) == [SessTerm(SessTermReason.VERSION_MISMATCH)]
        # pyD3TN's own client refuses our v4 header (it only speaks v3) -- and we stay up.
        with pytest.raises(AssertionError, match="v3"):
            await asyncio.to_thread(
                pyd3tn_tcpcl.TCPCLConnection("dtn://v3/", "127.0.0.1", port, timeout=5).connect
            )
        conn = await connect("127.0.0.1", port, SessionConfig("dtn://v4-client/"))
        assert conn.peer_node_id == "dtn://v4/"
        await conn.close()
        srv.close()

    asyncio.run(main())


def test_our_client_closes_on_a_v3_server() -> None:
    async def main():
        server = pyd3tn_tcpcl.TCPCLServer("dtn://v3/", "127.0.0.1", 0)
        await server.start()
        port = server.server.sockets[0].getsockname()[1]
        with pytest.raises(LinkClosed, match="version 3"):
            await connect("127.0.0.1", port, SessionConfig("dtn://v4/"), timeout=10)
        server.close()

    asyncio.run(main())

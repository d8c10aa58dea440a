"""Helper process for the network-namespace tests (run inside a namespace; not a test module).

    python netns_peer.py receive HOST PORT PKI_DIR COUNT
    python netns_peer.py send HOST PORT PKI_DIR COUNT SEED

The receiver prints one line per bundle (``<transfer size> <sha256>``) and exits after COUNT;
the sender prints ``sent <sha256>`` per acknowledged bundle and ``done <seconds>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
import time
from pathlib import Path

from waystation.convergence.tcpcl import NodeIdPolicy, SessionConfig
from waystation.convergence.tcpcl.adapter import connect, start_server
from waystation.convergence.tls import TlsSettings


def bundles(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [1, 1024, 300_000] + [
        rng.choice([10, 700, 5_000, 40_000, 120_000]) for _ in range(count - 3)
    ]
    return [rng.randbytes(n) for n in sizes[:count]]


async def receive(host: str, port: int, pki: Path, count: int) -> None:
    done = asyncio.Event()
    seen = 0

    class Sink:
        def bundle_received(self, conn, data):
            nonlocal seen
            print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
            seen += 1
            if seen >= count:
                done.set()

    ctx = TlsSettings(pki / "b.crt", pki / "b.key", pki / "ca.crt").context(True)
    cfg = SessionConfig(
        "dtn://b/", can_tls=True, require_tls=True, node_id_policy=NodeIdPolicy.REQUIRE
    )
    srv = await start_server(host, port, cfg, Sink(), ctx)
    print("listening", flush=True)
    await done.wait()
    await asyncio.sleep(1.0)  # let the last acks leave
    srv.close()


async def send(host: str, port: int, pki: Path, count: int, seed: int) -> None:
    ctx = TlsSettings(pki / "a.crt", pki / "a.key", pki / "ca.crt").context(False)
    cfg = SessionConfig(
        "dtn://a/", can_tls=True, require_tls=True, node_id_policy=NodeIdPolicy.REQUIRE
    )
    t0 = time.monotonic()
    conn = await connect(host, port, cfg, None, ctx, timeout=60)
    assert conn.established_info is not None and conn.established_info.peer_node_id_authenticated

    async def one(b: bytes) -> None:
        await conn.send(b)
        print("sent", hashlib.sha256(b).hexdigest(), flush=True)

    await asyncio.gather(*(one(b) for b in bundles(count, seed)))
    await conn.close()
    print(f"done {time.monotonic() - t0:.2f}", flush=True)


if __name__ == "__main__":
    mode, host, port, pki, count = sys.argv[1:6]
    if mode == "receive":
        asyncio.run(receive(host, int(port), Path(pki), int(count)))
    else:
        asyncio.run(send(host, int(port), Path(pki), int(count), int(sys.argv[6])))

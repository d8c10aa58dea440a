"""Batched submission (app protocol minor 2, docs/app-protocol.md): ``send`` with ``payloads``.

The node in-process with a real LMDB store and the real ipc socket. A bare DEALER speaks the
frames (one reply for the batch, results in order, per-bundle errors in place; a batch refused
as a whole stores nothing), and the sync client's ``send_many`` uses batches against this node.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waystation.appproto import MAX_BATCH, encode_frame
from waystation.client import Client, NodeError
from waystation.service import NodeService
from waystation.store.lmdb_store import LmdbBundleStore

from tests.node.test_node_service_app_socket import Raw, make_config, run

pytestmark = pytest.mark.timeout(60)

DEST = "dtn://far/inbox"


def stored(node: NodeService) -> int:
    assert node.store is not None
    return node.store.store.stats().count


def test_one_reply_for_the_batch_with_every_result_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        node = NodeService(make_config(tmp_path, "bs"))
        await node.start()
        try:
            raw = Raw(f"ipc://{node.config.socket_path}")
            payloads = [bytes([i]) * (10 + i) for i in range(5)]
            reply = await raw.ask(
                encode_frame("send", 7, {"destination": DEST, "payloads": payloads})
            )
            assert reply.kind == "ok" and reply.rid == 7
            results = reply.body["results"]
            assert len(results) == 5 and len({r["key"] for r in results}) == 5
            seqs = [r["creation"] for r in results]
            assert seqs == sorted(seqs)  # submission order
            assert stored(node) == 5  # the reply came after every one was durable
            assert node.store is not None
            got = [node.store.store.get(r["key"]) for r in results]
            assert all(p in w for p, w in zip(payloads, got, strict=True))
            raw.close()
        finally:
            await node.stop()

    run(main)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"payloads": []}, "1.."),
        ({"payloads": [b"a"] * (MAX_BATCH + 1)}, "1.."),
        ({"payloads": [b"a", "text"]}, "byte strings"),
        ({"payloads": [b"a"], "payload": b"b"}, "not both"),
        ({"payloads": [b"a", b"x" * 5000]}, "max_payload"),
    ],
)
def test_a_batch_refused_as_a_whole_stores_nothing(
    tmp_path: Path, body: dict[str, object], fragment: str
) -> None:
    async def main() -> None:
        node = NodeService(make_config(tmp_path, "bs", max_payload=4096))
        await node.start()
        try:
            raw = Raw(f"ipc://{node.config.socket_path}")
            reply = await raw.ask(encode_frame("send", 3, {"destination": DEST, **body}))
            assert reply.kind == "error" and fragment in reply.body["message"]
            assert stored(node) == 0
            raw.close()
        finally:
            await node.stop()

    run(main)


def test_a_bundle_the_store_refuses_fails_alone_in_its_batch(tmp_path: Path) -> None:
    """Per-bundle outcomes: with room for two bundles, a batch of four gets two results and
    two errors, in place; the client's send_many raises for the first refusal."""

    async def main() -> None:
        config = make_config(tmp_path, "bs")
        store = LmdbBundleStore(config.data_dir / "store", max_count=2)
        node = NodeService(config, store=store)
        await node.start()
        try:
            raw = Raw(f"ipc://{node.config.socket_path}")
            reply = await raw.ask(
                encode_frame("send", 5, {"destination": DEST, "payloads": [b"1", b"2", b"3", b"4"]})
            )
            results = reply.body["results"]
            assert ["error" in r for r in results] == [False, False, True, True]
            assert results[2]["error"]["code"] and stored(node) == 2
            raw.close()

            def client_side() -> None:
                with Client(f"ipc://{node.config.socket_path}") as c, pytest.raises(NodeError):
                    c.send_many(DEST, [b"5", b"6"])

            await asyncio.to_thread(client_side)
        finally:
            await node.stop()

    run(main)


def test_send_many_batches_against_a_minor_2_node(tmp_path: Path) -> None:
    async def main() -> None:
        node = NodeService(make_config(tmp_path, "bs"))
        await node.start()
        requests_before = 0
        try:

            def client_side() -> list[object]:
                nonlocal requests_before
                with Client(f"ipc://{node.config.socket_path}") as c:
                    assert c.protocol_minor() >= 2
                    requests_before = node.app.stats["requests"] if node.app else 0
                    return list(c.send_many(DEST, (bytes([i % 256]) * 8 for i in range(300))))

            results = await asyncio.to_thread(client_side)
            assert len(results) == 300 and len({r.key for r in results}) == 300  # type: ignore[attr-defined]
            assert stored(node) == 300
            assert node.app is not None
            # 300 bundles in batches of 64: five requests, not 300
            assert node.app.stats["requests"] - requests_before == 5
        finally:
            await node.stop()

    run(main)

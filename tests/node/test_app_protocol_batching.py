"""Batched deliveries and batched acks (app protocol minor 1, docs/app-protocol.md).

The node in-process with a real LMDB store and the real ipc socket: a bare DEALER speaks the
frames directly (``deliveries`` frames, ``ack`` with ``keys``, version-1.0 clients unchanged),
and the sync and async clients receive through the batched path. Custody is the point: a
bundle leaves the store only when its key was acknowledged, whatever the batching.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from waystation.appproto import MAX_BATCH, PROTOCOL_MINOR, encode_frame
from waystation.client import AsyncClient, Client
from waystation.service import NodeService

from tests.node.test_node_service_app_socket import Raw, make_config, run

pytestmark = pytest.mark.timeout(60)

INBOX = "dtn://bat/inbox"


async def start(tmp_path: Path) -> tuple[NodeService, str]:
    node = NodeService(make_config(tmp_path, "bat"))
    await node.start()
    return node, f"ipc://{node.config.socket_path}"


async def submit(endpoint: str, n: int, size: int = 16) -> None:
    async with AsyncClient(endpoint) as c:
        await asyncio.gather(
            *(c.send(INBOX, i.to_bytes(4, "big") * (size // 4)) for i in range(n))
        )


async def collect(raw: Raw, n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Read frames until ``n`` deliveries arrived; returns them and the frame kinds seen."""
    items: list[dict[str, Any]] = []
    kinds: list[str] = []
    while len(items) < n:
        frame = await raw.recv()
        kinds.append(frame.kind)
        if frame.kind == "deliveries":
            items += frame.body["items"]
        else:
            assert frame.kind == "delivery", frame
            items.append(frame.body)
    return items, kinds


def held(node: NodeService) -> int:
    assert node.store is not None
    return node.store.store.stats().count


def test_hello_reports_the_minor_version(tmp_path: Path) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            async with AsyncClient(endpoint) as c:
                hello = await c.hello()
            assert hello["protocol"] == 1 and hello["protocol_minor"] == PROTOCOL_MINOR >= 1
        finally:
            await node.stop()

    run(main)


def test_batched_deliveries_in_order_and_one_ack_releases_them_all(tmp_path: Path) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            await submit(endpoint, 40)
            raw = Raw(endpoint)
            reply = await raw.ask(
                encode_frame("recv", 1, {"endpoint": INBOX, "window": 64, "batch": 16})
            )
            assert reply.kind == "ok" and reply.body == {
                "endpoint": INBOX,
                "pending": 40,
                "batch": 16,
            }
            items, kinds = await collect(raw, 40)
            assert "deliveries" in kinds and len(kinds) < 40
            assert all(len(f) <= 16 for f in [items[i : i + 16] for i in range(0, 40, 16)])
            assert [int.from_bytes(d["payload"][:4], "big") for d in items] == list(range(40))
            assert held(node) == 40  # nothing released before the ack
            await raw.sock.send(
                encode_frame("ack", 2, {"endpoint": INBOX, "keys": [d["key"] for d in items]})
            )
            assert (await raw.recv()).kind == "ok"
            assert node.agent.counters["delivered"] == 40
            for _ in range(100):
                if held(node) == 0:
                    break
                await asyncio.sleep(0.02)
            assert held(node) == 0
            raw.close()
        finally:
            await node.stop()

    run(main)


def test_a_version_1_0_client_gets_single_deliveries_and_acks_one_key(tmp_path: Path) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            await submit(endpoint, 5)
            raw = Raw(endpoint)
            reply = await raw.ask(encode_frame("recv", 1, {"endpoint": INBOX, "window": 8}))
            assert "batch" not in reply.body  # the client did not ask: nothing changes for it
            items, kinds = await collect(raw, 5)
            assert kinds == ["delivery"] * 5
            for i, d in enumerate(items):
                await raw.sock.send(encode_frame("ack", 10 + i, {"endpoint": INBOX, "key": d["key"]}))
                assert (await raw.recv()).kind == "ok"
            assert node.agent.counters["delivered"] == 5
            raw.close()
        finally:
            await node.stop()

    run(main)


def test_batch_ack_with_an_unknown_key_releases_the_rest_and_says_not_found(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            await submit(endpoint, 3)
            raw = Raw(endpoint)
            await raw.ask(encode_frame("recv", 1, {"endpoint": INBOX, "batch": 8}))
            items, _ = await collect(raw, 3)
            keys = [d["key"] for d in items]
            await raw.sock.send(
                encode_frame("ack", 2, {"endpoint": INBOX, "keys": [keys[0], b"nope", keys[2]]})
            )
            err = await raw.recv()
            assert err.kind == "error" and err.body["code"] == "not-found"
            assert b"nope".hex() in err.body["message"]
            assert node.agent.counters["delivered"] == 2
            # the one not acknowledged is still in flight; acking it now works
            await raw.sock.send(encode_frame("ack", 3, {"endpoint": INBOX, "keys": [keys[1]]}))
            assert (await raw.recv()).kind == "ok"
            assert node.agent.counters["delivered"] == 3
            raw.close()
        finally:
            await node.stop()

    run(main)


@pytest.mark.parametrize(
    ("op", "body"),
    [
        ("recv", {"endpoint": INBOX, "batch": 0}),
        ("recv", {"endpoint": INBOX, "batch": MAX_BATCH + 1}),
        ("recv", {"endpoint": INBOX, "batch": "8"}),
        ("ack", {"endpoint": INBOX, "keys": []}),
        ("ack", {"endpoint": INBOX, "keys": ["text"]}),
        ("ack", {"endpoint": INBOX, "keys": b"k"}),
        ("ack", {"endpoint": INBOX, "keys": [b"k"] * (MAX_BATCH + 1)}),
    ],
)
def test_bad_batch_arguments_are_refused_precisely(
    tmp_path: Path, op: str, body: dict[str, Any]
) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            raw = Raw(endpoint)
            await raw.ask(encode_frame("register", 1, {"endpoint": INBOX}))
            err = await raw.ask(encode_frame(op, 2, body))
            assert err.kind == "error" and err.body["code"] == "bad-argument", err
            assert err.rid == 2
            raw.close()
        finally:
            await node.stop()

    run(main)


def test_batch_to_a_vanished_client_goes_back_in_line(tmp_path: Path) -> None:
    """The batch is sent after the loop pass that decided it; when that send fails (the
    client is gone), every delivery in it is queued again for the next receiver."""

    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            raw = Raw(endpoint)
            await raw.ask(encode_frame("recv", 1, {"endpoint": INBOX, "batch": 32}))
            raw.close()
            await asyncio.sleep(0.2)  # ZeroMQ notices the disconnect
            await submit(endpoint, 20)
            async with AsyncClient(endpoint) as c:
                got: list[int] = []
                for _ in range(50):
                    try:
                        async for d in c.receive(INBOX, count=20 - len(got), timeout=2):
                            got.append(int.from_bytes(d.payload[:4], "big"))
                        break
                    except Exception as exc:  # already-bound until the node notices
                        assert getattr(exc, "code", "") == "already-bound", exc
                        await asyncio.sleep(0.2)
            assert sorted(got) == list(range(20)) and got == sorted(got)
            for _ in range(100):
                if held(node) == 0:
                    break
                await asyncio.sleep(0.02)
            assert held(node) == 0
        finally:
            await node.stop()

    run(main)


def test_sync_client_batches_and_never_acks_the_delivery_it_was_handling(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            await submit(endpoint, 100)

            def receive_then_stop() -> list[int]:
                seen = []
                with Client(endpoint, timeout=5) as c:
                    for d in c.receive(INBOX, timeout=5, window=32, batch=16):
                        seen.append(int.from_bytes(d.payload[:4], "big"))
                        if len(seen) == 60:
                            break  # handling #59 when it stops: #59 must not be acked
                return seen

            first = await asyncio.to_thread(receive_then_stop)
            assert first == list(range(60))
            for _ in range(100):  # the last acks travel after the client closed its socket
                if node.agent.counters["delivered"] >= 59:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            assert node.agent.counters["delivered"] == 59

            def receive_rest() -> list[int]:
                with Client(endpoint, timeout=5) as c:
                    return [
                        int.from_bytes(d.payload[:4], "big")
                        for d in c.receive(INBOX, count=41, timeout=5, window=32, batch=16)
                    ]

            assert await asyncio.to_thread(receive_rest) == list(range(59, 100))
            for _ in range(100):
                if held(node) == 0:
                    break
                await asyncio.sleep(0.02)
            assert held(node) == 0 and node.agent.counters["delivered"] == 100
        finally:
            await node.stop()

    run(main)


def test_async_client_batches_and_releases_everything_it_handled(tmp_path: Path) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            await submit(endpoint, 150)
            async with AsyncClient(endpoint) as c:
                got = [
                    int.from_bytes(d.payload[:4], "big")
                    async for d in c.receive(INBOX, count=150, timeout=5, window=64)
                ]
            assert got == list(range(150))
            for _ in range(100):
                if held(node) == 0:
                    break
                await asyncio.sleep(0.02)
            assert held(node) == 0 and node.agent.counters["delivered"] == 150
        finally:
            await node.stop()

    run(main)


def test_large_payloads_go_alone_and_keep_their_order(tmp_path: Path) -> None:
    async def main() -> None:
        node, endpoint = await start(tmp_path)
        try:
            async with AsyncClient(endpoint) as c:
                for i in range(6):
                    size = 300_000 if i % 2 else 100
                    await c.send(INBOX, i.to_bytes(4, "big") * (size // 4))
            raw = Raw(endpoint)
            await raw.ask(encode_frame("recv", 1, {"endpoint": INBOX, "batch": 16}))
            items, _ = await collect(raw, 6)
            assert [int.from_bytes(d["payload"][:4], "big") for d in items] == list(range(6))
            raw.close()
        finally:
            await node.stop()

    run(main)

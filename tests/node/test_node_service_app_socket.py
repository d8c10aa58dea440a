"""The node service in-process: real LMDB stores, real ZeroMQ ipc sockets, loopback links.

Each test runs its own event loop (``asyncio.run``) with nodes on temporary directories.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
import zmq
import zmq.asyncio
from waystation.appproto import decode_frame, encode_frame
from waystation.bundle import codec
from waystation.client import AsyncClient, NodeError, NodeUnavailable
from waystation.config import NodeConfig
from waystation.links import LoopbackLink
from waystation.service import NodeService

from tests.node.running import running_node

pytestmark = pytest.mark.timeout(60)


def make_config(tmp: Path, name: str, **kw: Any) -> NodeConfig:
    kw.setdefault("node_id", f"dtn://{name}/")
    return NodeConfig(
        data_dir=tmp / name / "data",
        runtime_dir=tmp / name / "run",
        **kw,
    )


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


class Raw:
    """A bare DEALER socket for sending arbitrary bytes to the node."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    async def ask(self, *parts: bytes) -> Any:
        await self.sock.send_multipart(list(parts))
        return await self.recv()

    async def recv(self) -> Any:
        while True:
            data = await asyncio.wait_for(self.sock.recv(), 5)
            frame = decode_frame(data, from_node=True)
            if frame.kind != "keepalive":
                return frame

    def close(self) -> None:
        self.sock.close(linger=0)


def test_send_and_receive_through_the_socket_with_the_async_client(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            running_node(make_config(tmp_path, "alpha")) as node,
            AsyncClient(runtime_dir=node.config.runtime_dir) as c,
        ):
            hello = await c.hello()
            assert hello["node_id"] == "dtn://alpha/" and hello["protocol"] == 1
            res = await c.send("dtn://alpha/inbox", b"hello", lifetime=60)
            assert res.bundle_id.startswith("dtn://alpha/ ")
            got = []
            async for d in c.receive("dtn://alpha/inbox", count=1, timeout=5):
                got.append(d.payload)
            assert got == [b"hello"]
            await asyncio.sleep(0.1)  # let the ack land
            status = await c.status()
            assert status["store"]["count"] == 0
            assert status["counters"]["delivered"] == 1

    run(main)


def test_two_nodes_forward_over_a_loopback_link(tmp_path: Path) -> None:
    async def main() -> None:
        a = NodeService(make_config(tmp_path, "a", hop_limit=8))
        b = NodeService(make_config(tmp_path, "b"))
        await a.start()
        await b.start()
        try:
            la, lb = LoopbackLink.pair("dtn://a/", "dtn://b/", a, b)
            a.links.attach(la)
            b.links.attach(lb)
            async with (
                AsyncClient(runtime_dir=a.config.runtime_dir) as ca,
                AsyncClient(runtime_dir=b.config.runtime_dir) as cb,
            ):
                await ca.send("dtn://b/inbox", b"over the link", reports=["forwarding"])
                la.bring_up()
                got = []
                async for d in cb.receive("dtn://b/inbox", count=1, timeout=5):
                    got.append(d)
                assert got[0].payload == b"over the link"
                assert got[0].source == "dtn://a/"
                wire = b.store.store.get(got[0].key)
                bundle = codec.decode_bundle(wire)
                assert str(bundle.previous_node) == "dtn://a/"
                assert bundle.hop_count is not None and bundle.hop_count.count == 1
                await asyncio.sleep(0.1)
                assert a.store.store.stats().count <= 1  # only the forwarding report remains
                assert a.agent.counters["forwarded"] >= 1
        finally:
            await a.stop()
            await b.stop()

    run(main)


def test_garbage_and_bad_requests_get_precise_errors_and_harm_nobody(tmp_path: Path) -> None:
    async def main() -> None:
        node = NodeService(make_config(tmp_path, "g", max_payload=1000))
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * 1001)
        await node.start()
        endpoint = f"ipc://{node.config.socket_path}"
        raw = Raw(endpoint)
        try:
            async with AsyncClient(endpoint) as good:
                cases = [
                    ((b"\xff\x00garbage",), "bad-frame"),
                    ((b"",), "bad-frame"),
                    ((cbor2.dumps([1, "send", 1, {}]), b"second part"), "bad-frame"),
                    ((cbor2.dumps([9, "hello", 2, {}]),), "unsupported-version"),
                    ((encode_frame("frobnicate", 3, {}),), "unknown-op"),
                    ((encode_frame("send", 4, {"destination": "dtn://x/y"}),), "bad-argument"),
                    (
                        (encode_frame("send", 5, {"destination": "nope", "payload": b""}),),
                        "bad-argument",
                    ),
                    (
                        (
                            encode_frame(
                                "send", 6, {"destination": "dtn://x/y", "payload": b"x" * 1001}
                            ),
                        ),
                        "payload-too-large",
                    ),
                    (
                        (
                            encode_frame(
                                "send",
                                7,
                                {"destination": "dtn://x/y", "payload": b"", "priority": "max"},
                            ),
                        ),
                        "bad-argument",
                    ),
                    ((encode_frame("register", 8, {"endpoint": "dtn://other/x"}),), "bad-argument"),
                    (
                        (encode_frame("ack", 9, {"endpoint": "dtn://g/in", "key": b"k"}),),
                        "not-registered",
                    ),
                    ((encode_frame("load_plan", 10, {"path": "/x"}),), "bad-argument"),
                    ((encode_frame("add_link", 11, {"id": "x", "kind": "warp"}),), "not-available"),
                    (
                        (
                            encode_frame(
                                "send", 12, {"destination": "dtn://x/y", "file": "/nonexistent"}
                            ),
                        ),
                        "bad-argument",
                    ),
                    (
                        (encode_frame("send", 13, {"destination": "dtn://x/y", "file": str(big)}),),
                        "payload-too-large",
                    ),
                    (
                        (
                            encode_frame(
                                "send",
                                14,
                                {"destination": "dtn://x/y", "file": str(big), "payload": b""},
                            ),
                        ),
                        "bad-argument",
                    ),
                ]
                for parts, code in cases:
                    reply = await raw.ask(*parts)
                    assert reply.kind == "error", (parts, reply)
                    assert reply.body["code"] == code, (parts, reply.body)
                    # ...and a well-behaved client is served normally in between
                    assert (await good.hello())["node_id"] == "dtn://g/"
                with pytest.raises(NodeError) as info:
                    await good.send("dtn://x/y", b"x" * 1001)
                assert info.value.code == "payload-too-large"
        finally:
            raw.close()
            await node.stop()

    run(main)


def test_client_vanishing_mid_stream_gets_its_bundles_redelivered(tmp_path: Path) -> None:
    async def main() -> None:
        node = NodeService(make_config(tmp_path, "v"))
        await node.start()
        endpoint = f"ipc://{node.config.socket_path}"
        try:
            async with AsyncClient(endpoint) as c:
                for i in range(5):
                    await c.send("dtn://v/inbox", bytes([i]))
            raw = Raw(endpoint)
            reply = await raw.ask(
                encode_frame("recv", 1, {"endpoint": "dtn://v/inbox", "window": 3})
            )
            assert reply.kind == "ok" and reply.body["pending"] == 5
            first = [await raw.recv() for _ in range(3)]
            assert [f.body["payload"] for f in first] == [b"\x00", b"\x01", b"\x02"]
            await raw.sock.send(
                encode_frame("ack", 0, {"endpoint": "dtn://v/inbox", "key": first[0].body["key"]})
            )
            await asyncio.sleep(0.05)
            raw.close()  # vanish with two deliveries unacknowledged
            async with AsyncClient(endpoint) as c2:
                got = []
                for _ in range(50):  # the keepalive notices the vanished client within ~1 s
                    try:
                        async for d in c2.receive("dtn://v/inbox", count=4, timeout=2):
                            got.append(d.payload)
                        break
                    except NodeError as exc:
                        assert exc.code == "already-bound"
                        await asyncio.sleep(0.2)
                assert got == [b"\x01", b"\x02", b"\x03", b"\x04"]
        finally:
            await node.stop()

    run(main)


def test_registration_survives_restart_and_bundles_wait_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, "r")
        node = NodeService(cfg)
        await node.start()
        async with AsyncClient(runtime_dir=cfg.runtime_dir) as c:
            await c.register("dtn://r/app")
            for i in range(3):
                await c.send("dtn://r/app", b"m%d" % i)
        await node.stop()
        async with running_node(make_config(tmp_path, "r")) as node:
            assert node.agent.is_registered("dtn://r/app")
            async with AsyncClient(runtime_dir=cfg.runtime_dir) as c:
                got = [d.payload async for d in c.receive("dtn://r/app", count=3, timeout=5)]
                assert got == [b"m0", b"m1", b"m2"]

    run(main)


def test_socket_directory_is_private(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(make_config(tmp_path, "p")) as node:
            assert node.config.runtime_dir.stat().st_mode & 0o777 == 0o700
            assert node.config.data_dir.stat().st_mode & 0o777 == 0o700
        assert not node.config.socket_path.exists()

    run(main)


def test_contact_plan_routes_ipn_traffic_through_the_right_neighbour(tmp_path: Path) -> None:
    plan = tmp_path / "plan.ionrc"
    plan.write_text(
        "a contact +0 +3600 1 2 100000\n"
        "a contact +0 +3600 2 3 100000\n"
        "a range +0 +3600 1 2 1\n"
        "a range +0 +3600 2 3 1\n"
    )

    async def main() -> None:
        one = NodeService(make_config(tmp_path, "one", node_id="ipn:1.0"))
        two = NodeService(make_config(tmp_path, "two", node_id="ipn:2.0"))
        await one.start()
        await two.start()
        try:
            l1, l2 = LoopbackLink.pair("ipn:1.0", "ipn:2.0", one, two)
            one.links.attach(l1)
            two.links.attach(l2)
            l1.bring_up()
            async with AsyncClient(runtime_dir=one.config.runtime_dir) as c:
                with pytest.raises(NodeError) as info:
                    await c.load_plan(str(tmp_path / "missing.ionrc"))
                assert info.value.code == "bad-argument"
                assert (await c.load_plan(str(plan)))["contacts"] == 2
                await c.send("ipn:3.1", b"via two")
                for _ in range(100):
                    if two.agent.held:
                        break
                    await asyncio.sleep(0.02)
                status = await c.status()
                assert status["contacts"] and status["contacts"][0]["to"] == "ipn:2.0"
                assert any(r["kind"] == "cgr" for r in status["routes"])
            [held] = two.agent.held.values()  # node two holds it, waiting for a route to 3
            assert held.info.destination == "ipn:3.1" and held.place == "waiting"
        finally:
            await one.stop()
            await two.stop()

    run(main)


def test_receiving_client_notices_a_node_that_went_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import waystation.client as client_mod

    monkeypatch.setattr(client_mod, "SILENCE_S", 1.5)

    async def main() -> None:
        node = NodeService(make_config(tmp_path, "gone"))
        await node.start()
        async with AsyncClient(runtime_dir=node.config.runtime_dir) as c:
            stream = c.receive("dtn://gone/inbox")
            waiter = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(1.2)  # keepalives arrive: still fine
            assert not waiter.done()
            await node.stop()
            with pytest.raises(NodeUnavailable, match="went silent"):
                await asyncio.wait_for(waiter, 10)

    run(main)

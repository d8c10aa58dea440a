"""TCPCL links hand received bundles to a node's ``receive_nowait`` (a plain future, no Task).

The node's verdict must map exactly as through the coroutine path: True -> XFER_ACK (the
sender's ``send`` returns), False -> refused, and a node that fails (raises at once, or fails
the future) -> refused, so the sender keeps the bundle. Real sessions on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from waystation.convergence.nodelinks import register_all
from waystation.links import LinkManager, TransferRefused

pytestmark = pytest.mark.timeout(60)


class FutureNode:
    """A LinkHandler answering through ``receive_nowait``; ``mode`` picks the verdict."""

    def __init__(self, node_id: str) -> None:
        self.config = type("C", (), {"node_id": node_id})()
        self.up_event = asyncio.Event()
        self.mode = "accept"
        self.got: list[bytes] = []
        self.coroutine_calls = 0

    def link_up(self, link) -> None:  # type: ignore[no-untyped-def]
        self.up_event.set()

    def link_down(self, link, reason: str) -> None:  # type: ignore[no-untyped-def]
        pass

    async def bundle_received(self, link, wire: bytes) -> bool:  # type: ignore[no-untyped-def]
        self.coroutine_calls += 1
        return await self.receive_nowait(link, wire)

    def receive_nowait(self, link, wire: bytes) -> asyncio.Future[bool]:  # type: ignore[no-untyped-def]
        if self.mode == "raise":
            raise RuntimeError("node bug")
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        if self.mode == "accept":
            self.got.append(wire)
            loop.call_later(0.01, fut.set_result, True)  # "durable" a moment later
        elif self.mode == "refuse":
            loop.call_soon(fut.set_result, False)
        else:
            loop.call_soon(fut.set_exception, RuntimeError("store failed"))
        return fut


async def tcpcl_pair(
    node: Callable[[str], Any] = FutureNode,
) -> tuple[Any, LinkManager, LinkManager, Any]:
    """Nodes A and B (made by ``node(node_id)``) with link managers, B listening on loopback,
    A's TCPCL link to B up: (B, A's manager, B's manager, the link)."""
    a, b = node("dtn://a/"), node("dtn://b/")
    ma, mb = LinkManager(a), LinkManager(b)
    register_all(ma)
    register_all(mb)
    listener = await mb.open("in", "tcpcl", {"listen": "127.0.0.1:0"})
    link = await ma.open("to-b", "tcpcl", {"address": listener.address, "peer": "dtn://b/"})
    await asyncio.wait_for(a.up_event.wait(), 10)
    await asyncio.wait_for(b.up_event.wait(), 10)
    return b, ma, mb, link


def test_receive_nowait_verdicts_map_to_ack_and_refusals() -> None:
    async def main() -> None:
        b, ma, mb, link = await tcpcl_pair()
        # many at once: every send completes only after its own (delayed) acceptance
        await asyncio.gather(*(link.send(b"\x9f%d" % i) for i in range(50)))
        assert sorted(b.got) == sorted(b"\x9f%d" % i for i in range(50))
        for mode in ("refuse", "raise", "fail"):
            b.mode = mode
            with pytest.raises(TransferRefused):
                await link.send(b"\x9f " + mode.encode())
        assert b.coroutine_calls == 0  # the hot path never went through the coroutine
        b.mode = "accept"
        await link.send(b"\x9f again")  # the session survived the refusals
        assert b.got[-1] == b"\x9f again"
        await ma.close_all()
        await mb.close_all()

    asyncio.run(main())

"""The callback forms of the TCPCL node path (no future per bundle): a node's ``receive_cb``
answers a received transfer through a callback, and ``TcpclLink.send_with_callback`` reports
a transfer's outcome through one.

The verdicts must map exactly as through ``receive_nowait`` and the coroutine path: True ->
XFER_ACK, False -> refused (NO_RESOURCES), a node that raises -> refused (UNKNOWN), so the
sender keeps the bundle; an answer given twice counts once; the answer may come before
``receive_cb`` returns (a duplicate) or much later (after a durable commit). On the sending
side ``done(None)`` comes only on the final XFER_ACK, ``done(TransferFailed)`` on a refusal
or when the session ends first. Real sessions on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from waystation.convergence.tcpcl.adapter import TransferFailed
from waystation.links import TransferRefused

from tests.convergence.test_nodelinks_receive_nowait import tcpcl_pair

pytestmark = pytest.mark.timeout(60)


class CallbackNode:
    """A LinkHandler answering through ``receive_cb``; ``mode`` picks the verdict."""

    def __init__(self, node_id: str) -> None:
        self.config = type("C", (), {"node_id": node_id})()
        self.up_event = asyncio.Event()
        self.mode = "accept"
        self.got: list[bytes] = []
        self.other_calls = 0

    def link_up(self, link: Any) -> None:
        self.up_event.set()

    def link_down(self, link: Any, reason: str) -> None:
        pass

    async def bundle_received(self, link: Any, wire: bytes) -> bool:
        self.other_calls += 1
        return True

    def receive_nowait(self, link: Any, wire: bytes) -> asyncio.Future[bool]:
        self.other_calls += 1
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        fut.set_result(True)
        return fut

    def receive_cb(self, link: Any, wire: bytes, answer: Any) -> None:
        loop = asyncio.get_running_loop()
        if self.mode == "raise":
            raise RuntimeError("node bug")
        if self.mode == "accept":
            self.got.append(wire)
            loop.call_later(0.01, answer, True)  # "durable" a moment later
        elif self.mode == "now":  # e.g. a duplicate: answered before receive_cb returns
            answer(True)
            answer(False)  # a second answer is ignored
        elif self.mode == "refuse":
            loop.call_soon(answer, False)
        elif self.mode == "never":
            pass  # the node keeps it pending (the session's end fails the transfer)


def _send(link: Any, wire: bytes) -> asyncio.Future[BaseException | None]:
    """send_with_callback as a future, for the test to await."""
    fut: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    link.send_with_callback(wire, fut.set_result)
    return fut


def test_receive_cb_verdicts_map_to_ack_and_refusals() -> None:
    async def main() -> None:
        b, ma, mb, link = await tcpcl_pair(CallbackNode)
        # many at once: each completes only after its own (delayed) acceptance
        results = await asyncio.gather(*(_send(link, b"\x9f%d" % i) for i in range(50)))
        assert results == [None] * 50
        assert sorted(b.got) == sorted(b"\x9f%d" % i for i in range(50))
        b.mode = "now"
        assert await _send(link, b"\x9f dup") is None
        for mode in ("refuse", "raise"):
            b.mode = mode
            outcome = await _send(link, b"\x9f " + mode.encode())
            assert isinstance(outcome, TransferFailed) and outcome.reason is not None
            with pytest.raises(TransferRefused):  # the awaiting form maps it the same way
                await link.send(b"\x9f again " + mode.encode())
        assert b.other_calls == 0  # the node's other entry points were never used
        b.mode = "accept"
        assert await _send(link, b"\x9f after") is None  # the session survived the refusals
        assert b.got[-1] == b"\x9f after"
        await ma.close_all()
        await mb.close_all()

    asyncio.run(main())


def test_send_with_callback_fails_when_the_session_ends_first() -> None:
    async def main() -> None:
        b, ma, mb, link = await tcpcl_pair(CallbackNode)
        b.mode = "never"
        pending = _send(link, b"\x9f never acked")
        await asyncio.sleep(0.05)
        assert not pending.done()  # no XFER_ACK: the sender still holds the bundle
        link.conn.abort()  # the connection drops before any answer
        outcome = await asyncio.wait_for(pending, 10)
        assert isinstance(outcome, TransferFailed)
        await ma.close_all()
        await mb.close_all()

    asyncio.run(main())

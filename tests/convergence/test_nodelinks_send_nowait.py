"""``TcpclLink.send_nowait`` / ``ready_now``: the node's per-bundle transmit path (no Task).

The transfer's future must resolve only on the final XFER_ACK (the node releases the bundle
then) and fail when the peer refuses, so the node keeps the bundle; a link that is not up
raises at once. Real sessions on 127.0.0.1.
"""

from __future__ import annotations

import asyncio

import pytest
from waystation.links import LinkDown

from tests.convergence.test_nodelinks_receive_nowait import tcpcl_pair

pytestmark = pytest.mark.timeout(60)


def test_send_nowait_resolves_on_the_final_ack_and_fails_on_refusal() -> None:
    async def main() -> None:
        b, ma, mb, link = await tcpcl_pair()
        assert link.ready_now  # type: ignore[attr-defined]
        futs = [link.send_nowait(b"\x9f%d" % i) for i in range(50)]  # type: ignore[attr-defined]
        assert not any(f.done() for f in futs)  # B accepts ~10 ms later: no ack yet
        await asyncio.wait_for(asyncio.gather(*futs), 10)
        assert sorted(b.got) == sorted(b"\x9f%d" % i for i in range(50))
        b.mode = "refuse"
        refused = link.send_nowait(b"\x9f no")  # type: ignore[attr-defined]
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(refused, 10)
        assert "refused" in str(info.value)
        await ma.close("to-b")
        assert not link.ready_now  # type: ignore[attr-defined]
        with pytest.raises(LinkDown):
            link.send_nowait(b"\x9f late")  # type: ignore[attr-defined]
        await ma.close_all()
        await mb.close_all()

    asyncio.run(main())

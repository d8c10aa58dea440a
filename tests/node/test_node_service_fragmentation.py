"""Fragmentation on forwarding and reassembly through the real service (asyncio, LMDB stores,
ZeroMQ app sockets) over an in-process loopback link with a size limit (RFC 9171 §5.8, §5.9).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waystation.bundle.dtntime import CreationTimestamp, SystemClock
from waystation.bundle.model import BundleFlags
from waystation.bundleops import originate
from waystation.client import AsyncClient
from waystation.links import LoopbackLink
from waystation.service import NodeService

from tests.node.test_node_service_app_socket import make_config, run

pytestmark = pytest.mark.timeout(60)


async def _until(pred, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def test_service_fragments_for_a_small_link_and_the_peer_delivers_once(tmp_path: Path) -> None:
    async def main() -> None:
        a = NodeService(make_config(tmp_path, "a"))
        b = NodeService(make_config(tmp_path, "b"))
        await a.start()
        await b.start()
        try:
            la, lb = LoopbackLink.pair("dtn://a/", "dtn://b/", a, b)
            la.max_bundle_size = 3000
            a.links.attach(la)
            b.links.attach(lb)
            payload = bytes(range(251)) * 100  # 25,100 bytes
            async with (
                AsyncClient(runtime_dir=a.config.runtime_dir) as ca,
                AsyncClient(runtime_dir=b.config.runtime_dir) as cb,
            ):
                await ca.send("dtn://b/inbox", payload)
                la.bring_up()
                got = [d async for d in cb.receive("dtn://b/inbox", count=1, timeout=5)]
                assert [d.payload for d in got] == [payload]
                assert la.sent >= 9  # fragments, each within the limit
                await _until(lambda: b.store.store.stats().count == 0)
                await _until(lambda: a.store.store.stats().count == 0)
                assert b.agent.reassembly.counters["reassembled"] == 1
                assert b.agent.counters["delivered"] == 1
        finally:
            await a.stop()
            await b.stop()

    run(main)


def test_must_not_fragment_bundle_too_big_for_the_link_is_deleted_not_retried(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        a = NodeService(make_config(tmp_path, "a"))
        b = NodeService(make_config(tmp_path, "b"))
        await a.start()
        await b.start()
        try:
            la, lb = LoopbackLink.pair("dtn://a/", "dtn://b/", a, b)
            la.max_bundle_size = 1000
            a.links.attach(la)
            b.links.attach(lb)
            la.bring_up()
            wire, _ = originate(
                source="dtn://c/",
                destination="dtn://b/inbox",
                payload=b"w" * 5000,
                creation=CreationTimestamp(SystemClock().now_ms(), 9),
                lifetime_ms=60_000,
                flags=int(BundleFlags.MUST_NOT_FRAGMENT | BundleFlags.REPORT_DELETION),
                report_to="dtn://c/",
            )
            a.execute(a.agent.receive(a.now_ms(), wire, "inject"))
            await _until(lambda: a.agent.counters["deleted"] >= 1)
            await asyncio.sleep(0.2)
            assert a.agent.counters["forwarded"] == 0
            assert a.agent.counters["reports"] == 1  # the deletion report (reason 6)
            await _until(lambda: any(r.reason == 6 for r in a.store.store.deletions()))
        finally:
            await a.stop()
            await b.stop()

    run(main)

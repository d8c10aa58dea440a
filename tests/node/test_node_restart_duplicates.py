"""Duplicate suppression survives a restart (RFC 9171 §5.9; issue 5: "no duplicate delivery
after a reconnect").

A previous hop that did not see our acknowledgement before we crashed sends the bundle again
after the restart. If the bundle had already been delivered (or forwarded) and released before
the crash, only the store's deletion log still knows it: the node must treat the resend as a
duplicate, not deliver it a second time. In-process nodes, real LMDB stores, real ZeroMQ
sockets; the bundle arrives through ``bundle_received`` as a convergence layer hands it over.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waystation.client import AsyncClient
from waystation.service import NodeService
from waystation.store.api import iter_all

from tests.node.test_node_bpsec_policy import StubLink, config, make_wire, run

pytestmark = pytest.mark.timeout(60)

INBOX = "dtn://b/inbox"


async def _deliver_once(node: NodeService, wire: bytes) -> None:
    async with AsyncClient(runtime_dir=node.config.runtime_dir) as c:
        await c.register(INBOX)
        assert await node.bundle_received(StubLink(), wire)  # type: ignore[arg-type]
        async for d in c.receive(INBOX, count=1, timeout=10):
            assert bytes(d.payload) == b"once only"
    # the application's ack releases the bundle: it is gone from the store
    assert node.store is not None
    for _ in range(100):
        if not list(iter_all(node.store.store)):
            break
        await asyncio.sleep(0.05)
    assert not list(iter_all(node.store.store))


def test_a_bundle_delivered_before_a_restart_is_a_duplicate_after_it(tmp_path: Path) -> None:
    wire = make_wire("dtn://a/", INBOX, b"once only", report=False)
    cfg = config(tmp_path, "b", {"require_signature": False})

    async def before() -> None:
        node = NodeService(cfg)
        await node.start()
        try:
            await _deliver_once(node, wire)
        finally:
            await node.stop()

    async def after() -> None:
        node = NodeService(cfg)
        await node.start()
        try:
            async with AsyncClient(runtime_dir=node.config.runtime_dir) as c:
                await c.register(INBOX)
                # the resend is acknowledged (the sender may let go) but not taken again
                assert await node.bundle_received(StubLink(), wire)  # type: ignore[arg-type]
                assert node.agent.counters["duplicates"] == 1
                assert node.store is not None and not list(iter_all(node.store.store))
                got = [d async for d in c.receive(INBOX, timeout=0.5)]
                assert got == []
        finally:
            await node.stop()

    run(before)
    run(after)


def test_a_new_bundle_after_a_restart_is_still_delivered(tmp_path: Path) -> None:
    """The remembered keys are exact: another bundle from the same source gets through."""
    cfg = config(tmp_path, "b", {"require_signature": False})
    first = make_wire("dtn://a/", INBOX, b"once only", report=False, seq=1)
    second = make_wire("dtn://a/", INBOX, b"once only", report=False, seq=2)

    async def before() -> None:
        node = NodeService(cfg)
        await node.start()
        try:
            await _deliver_once(node, first)
        finally:
            await node.stop()

    async def after() -> None:
        node = NodeService(cfg)
        await node.start()
        try:
            await _deliver_once(node, second)
            assert node.agent.counters["duplicates"] == 0
        finally:
            await node.stop()

    run(before)
    run(after)

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
from waystation.config import NodeConfig
from waystation.service import NodeService
from waystation.store.api import iter_all

from tests.node.running import running_node
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


async def _delivered_in_one_run(cfg: NodeConfig, wire: bytes) -> None:
    """One run of the node (the time before the restart): the bundle arrives, is delivered
    and acknowledged, and leaves the store."""
    async with running_node(cfg) as node:
        await _deliver_once(node, wire)


def test_a_bundle_delivered_before_a_restart_is_a_duplicate_after_it(tmp_path: Path) -> None:
    wire = make_wire("dtn://a/", INBOX, b"once only", report=False)
    cfg = config(tmp_path, "b", {"require_signature": False})

    async def after() -> None:
        async with (
            running_node(cfg) as node,
            AsyncClient(runtime_dir=node.config.runtime_dir) as c,
        ):
            await c.register(INBOX)
            # the resend is acknowledged (the sender may let go) but not taken again
            assert await node.bundle_received(StubLink(), wire)  # type: ignore[arg-type]
            assert node.agent.counters["duplicates"] == 1
            assert node.store is not None and not list(iter_all(node.store.store))
            got = [d async for d in c.receive(INBOX, timeout=0.5)]
            assert got == []

    run(lambda: _delivered_in_one_run(cfg, wire))
    run(after)


def test_a_new_bundle_after_a_restart_is_still_delivered(tmp_path: Path) -> None:
    """The remembered keys are exact: another bundle from the same source gets through."""
    cfg = config(tmp_path, "b", {"require_signature": False})
    first = make_wire("dtn://a/", INBOX, b"once only", report=False, seq=1)
    second = make_wire("dtn://a/", INBOX, b"once only", report=False, seq=2)

    async def after() -> None:
        async with running_node(cfg) as node:
            await _deliver_once(node, second)
            assert node.agent.counters["duplicates"] == 0

    run(lambda: _delivered_in_one_run(cfg, first))
    run(after)

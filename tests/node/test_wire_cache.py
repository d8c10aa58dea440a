"""The node's wire cache: a byte budget that is never exceeded, and lookups that never lie.

The cache only saves store reads, so what matters is (a) a hit returns exactly the bytes put
for that key, (b) the held bytes never exceed the budget and match what is held, and
(c) discard/replace keep the accounting right -- checked against a plain dict model -- and
(d) in a running node, hits and misses (store fallback) both forward intact bundles and the
cache is empty once custody ends.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.client import AsyncClient
from waystation.config import LinkConfig
from waystation.service import NodeService
from waystation.wirecache import WireCache

from tests.node.test_node_service_app_socket import make_config

pytestmark = pytest.mark.timeout(60)

_keys = st.binary(min_size=1, max_size=3)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _keys, st.binary(max_size=40)),
        st.tuples(st.just("get"), _keys, st.just(b"")),
        st.tuples(st.just("discard"), _keys, st.just(b"")),
    ),
    max_size=60,
)


@given(budget=st.integers(0, 100), ops=_ops)
@settings(max_examples=150, deadline=None)
def test_cache_hits_are_exact_and_the_budget_holds(budget: int, ops: list) -> None:
    cache = WireCache(budget)
    last_put: dict[bytes, bytes] = {}
    for op, key, wire in ops:
        if op == "put":
            cache.put(key, wire)
            last_put[key] = wire
        elif op == "discard":
            cache.discard(key)
            last_put.pop(key, None)
        else:
            got = cache.get(key)
            assert got is None or got == last_put.get(key)
        assert cache.bytes <= budget
        assert cache.bytes == sum(len(w) for w in cache._entries.values())


def test_oldest_entries_go_first_when_the_budget_is_full() -> None:
    cache = WireCache(10)
    cache.put(b"a", b"1234")
    cache.put(b"b", b"1234")
    cache.put(b"c", b"1234")  # needs room: "a" (the oldest) goes
    assert cache.get(b"a") is None
    assert cache.get(b"b") == b"1234" and cache.get(b"c") == b"1234"
    assert (cache.hits, cache.misses) == (2, 1)


def test_a_wire_larger_than_the_budget_is_not_kept_and_drops_a_stale_entry() -> None:
    cache = WireCache(8)
    cache.put(b"k", b"old")
    cache.put(b"k", b"x" * 9)
    assert cache.get(b"k") is None  # never the stale b"old"
    assert cache.bytes == 0 and len(cache) == 0


def test_two_nodes_over_tcpcl_forward_from_the_cache_or_the_store_and_leave_it_empty(
    tmp_path: Path,
) -> None:
    """Real LMDB stores and a real TCPCLv4 session on 127.0.0.1: bundles whose wire is cached
    go out from memory, those evicted go out from the store, all arrive intact, and nothing
    stays cached (or stored) once every bundle has left custody at both ends."""

    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        b = NodeService(
            make_config(
                tmp_path, "b", links=[LinkConfig("in", "tcpcl", {"listen": f"127.0.0.1:{port}"})]
            )
        )
        a = NodeService(make_config(tmp_path, "a"))
        await b.start()
        await a.start()
        try:
            async with (
                AsyncClient(runtime_dir=a.config.runtime_dir) as ca,
                AsyncClient(runtime_dir=b.config.runtime_dir) as cb,
            ):
                await cb.register("dtn://b/inbox")
                payloads = {b"bundle %d " % i * 40 for i in range(30)}
                for p in sorted(payloads):
                    await ca.send("dtn://b/inbox", p, lifetime=600)
                assert len(a.wires) == 30  # no link yet: all held at A, all cached
                for key in list(a.wires._entries)[::2]:
                    a.wires.discard(key)  # as if evicted: these must come from LMDB
                await a.links.open(
                    "to-b", "tcpcl", {"address": f"127.0.0.1:{port}", "peer": "dtn://b/"}
                )
                got = [d.payload async for d in cb.receive("dtn://b/inbox", count=30, timeout=10)]
                assert sorted(got) == sorted(payloads)
                for _ in range(100):  # let the last acks and deletes land
                    if not len(a.wires) and not len(b.wires) and not b.store.store.stats().count:
                        break
                    await asyncio.sleep(0.05)
                assert (a.wires.hits, a.wires.misses) == (15, 15)
                assert b.wires.hits >= 30  # every delivery at B came from memory
                assert len(a.wires) == 0 and len(b.wires) == 0
                assert a.store.store.stats().count == 0 and b.store.store.stats().count == 0
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())

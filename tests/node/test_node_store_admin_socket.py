"""Store administration through a running node (store_list/get/delete/stats, app protocol v1).

In-process node services with real LMDB stores and real ZeroMQ ipc sockets; two nodes joined
by a loopback link for the forwarding case.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waystation.bundle import codec
from waystation.client import AsyncClient, NodeError
from waystation.links import LoopbackLink
from waystation.service import NodeService

from tests.node.running import running_node
from tests.node.test_node_service_app_socket import make_config, run

pytestmark = pytest.mark.timeout(60)


def test_list_get_stats_through_a_running_node(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            running_node(make_config(tmp_path, "alpha")) as node,
            AsyncClient(runtime_dir=node.config.runtime_dir) as c,
        ):
            sent = [await c.send("dtn://alpha/inbox", b"one", lifetime=60)]
            sent.append(await c.send("dtn://alpha/other", b"two", lifetime=60))
            listing = await c.store_list()
            assert {e["key"] for e in listing["entries"]} == {r.key for r in sent}
            assert listing["more"] is False
            only = await c.store_list(destination="dtn://alpha/other")
            assert [e["key"] for e in only["entries"]] == [sent[1].key]
            assert only["entries"][0]["meta"]["destination"] == "dtn://alpha/other"
            limited = await c.store_list(limit=1)
            assert len(limited["entries"]) == 1 and limited["more"] is True
            state = limited["entries"][0]["meta"]["state"]
            assert len((await c.store_list(state=state))["entries"]) >= 1

            got = await c.store_get(sent[0].key)
            bundle = codec.decode_bundle(got["wire"])
            assert bundle.payload == b"one"
            assert got["meta"]["size"] == len(got["wire"])
            assert got["node"]["place"] == "local"
            # hex text and a unique hex prefix name the same bundle
            by_hex = await c.store_get(sent[0].key.hex())
            assert by_hex["wire"] == got["wire"]

            stats = await c.store_stats()
            assert stats["count"] == 2 and stats["bytes"] > 0
            assert sum(stats["by_state"].values()) == 2
            assert stats["held"]["count"] == 2

    run(main)


def test_bad_store_requests_get_precise_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            running_node(make_config(tmp_path, "alpha")) as node,
            AsyncClient(runtime_dir=node.config.runtime_dir) as c,
        ):
            await c.send("dtn://alpha/inbox", b"x", lifetime=60)
            cases = [
                ("store_delete", {"key": b"\x00" * 12}, "not-found", "no bundle with key"),
                ("store_delete", {"key": "ffff"}, "not-found", "no bundle with key ffff"),
                ("store_get", {"key": "xyz"}, "bad-argument", "not a hex key"),
                ("store_get", {}, "bad-argument", "missing argument 'key'"),
                ("store_get", {"key": 5}, "bad-argument", "'key' must be"),
                ("store_list", {"state": "nope"}, "bad-argument", "state must be one of"),
                ("store_list", {"limit": -1}, "bad-argument", "limit must be in"),
                ("store_delete", {"key": "00", "reason": 999}, "not-found", "no bundle"),
            ]
            for op, args, code, text in cases:
                with pytest.raises(NodeError) as err:
                    await c.call(op, **args)
                assert err.value.code == code, (op, args, err.value)
                assert text in err.value.message, (op, args, err.value.message)
            key = (await c.store_list())["entries"][0]["key"]
            with pytest.raises(NodeError) as err:
                await c.store_delete(key, reason=256)
            assert err.value.code == "bad-argument"
            assert (await c.store_stats())["count"] == 1  # nothing was harmed

    run(main)


def test_deleting_a_queued_bundle_means_it_is_never_forwarded(tmp_path: Path) -> None:
    async def main() -> None:
        a = NodeService(make_config(tmp_path, "a"))
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
                doomed = await ca.send("dtn://b/inbox", b"doomed", reports=["deletion"])
                kept = await ca.send("dtn://b/inbox", b"kept")
                assert a.agent.held[doomed.key].place in ("queue", "waiting")
                reply = await ca.store_delete(doomed.key, reason=3)
                assert reply == {"key": doomed.key, "reason": 3}
                assert doomed.key not in a.agent.held
                assert not a.store.store.contains(doomed.key)  # durable before the reply
                records = a.store.store.deletions()
                assert any(r.key == doomed.key and r.reason == 3 for r in records)
                with pytest.raises(NodeError) as err:
                    await ca.store_get(doomed.key)
                assert err.value.code == "not-found"

                la.bring_up()
                got = []
                async for d in cb.receive("dtn://b/inbox", count=2, timeout=1.5):
                    got.append(d.payload)
                assert got == [b"kept"]
                await asyncio.sleep(0.1)
                assert kept.key not in a.agent.held
                assert a.agent.counters["forwarded"] >= 1
                assert a.agent.counters["deleted"] >= 1
        finally:
            await a.stop()
            await b.stop()

    run(main)


def test_deleting_a_pending_local_bundle_means_it_is_never_delivered(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            running_node(make_config(tmp_path, "alpha")) as node,
            AsyncClient(runtime_dir=node.config.runtime_dir) as c,
        ):
            await c.register("dtn://alpha/inbox")
            doomed = await c.send("dtn://alpha/inbox", b"doomed", lifetime=60)
            await c.send("dtn://alpha/inbox", b"kept", lifetime=60)
            await c.store_delete(doomed.key.hex()[:-2], reason=0)  # a unique prefix
            got = []
            async for d in c.receive("dtn://alpha/inbox", count=2, timeout=1.5):
                got.append(d.payload)
            assert got == [b"kept"]
            await asyncio.sleep(0.1)
            assert (await c.store_stats())["count"] == 0
            assert node.agent.pending_count("dtn://alpha/inbox") == 0

    run(main)


def test_store_walks_run_off_the_event_loop_and_report_store_errors(tmp_path: Path) -> None:
    """store_list/store_stats walk the whole store (seconds for a large one): they run in the
    executor, so the loop keeps forwarding; a store failure in the walk is an 'internal' error."""
    import threading

    from waystation.store.api import StoreError

    async def main() -> None:
        node = NodeService(make_config(tmp_path, "alpha"))
        await node.start()
        assert node.store is not None
        store = node.store.store
        loop_thread = threading.get_ident()
        walkers: list[int] = []
        real_entries = store.entries
        broken = False

        def entries(**kwargs):  # type: ignore[no-untyped-def]
            walkers.append(threading.get_ident())
            if broken:
                raise StoreError("disk on fire")
            return real_entries(**kwargs)

        store.entries = entries
        try:
            async with AsyncClient(runtime_dir=node.config.runtime_dir) as c:
                await c.send("dtn://alpha/inbox", b"one", lifetime=60)
                assert len((await c.store_list())["entries"]) == 1
                assert (await c.store_stats())["count"] == 1
                assert walkers and loop_thread not in walkers
                broken = True
                for op in ("store_list", "store_stats"):
                    with pytest.raises(NodeError) as err:
                        await c.call(op)
                    assert err.value.code == "internal"
                    assert "disk on fire" in str(err.value)
                assert "counters" in await c.status()  # and the node still serves
        finally:
            del store.entries
            await node.stop()

    run(main)

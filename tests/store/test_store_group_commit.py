"""Group commit: concurrent puts share durable transactions; nothing runs on the event loop.

Checked against both the LMDB backend (the real thing) and the memory reference.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import pytest
from waystation.store.api import (
    BundleNotFound,
    DuplicateBundle,
    ReasonCode,
    StoreClosed,
    StoreError,
    StoreFull,
)
from waystation.store.group_commit import AsyncBundleStore, GroupCommitWriter
from waystation.store.lmdb_store import LmdbBundleStore
from waystation.store.memory import MemoryBundleStore
from waystation.store.ops import DeleteOp, PutOp

from tests.store.bundles import make_wire, meta_for


class ThreadRecorder:
    """Wraps a store; records which thread each call ran on (to prove the loop never does)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.threads: set[int] = set()
        self.batch_sizes: list[int] = []

    def apply_batch(self, ops: Any) -> Any:
        self.threads.add(threading.get_ident())
        self.batch_sizes.append(len(ops))
        return self.inner.apply_batch(ops)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.threads.add(threading.get_ident())
            return attr(*args, **kwargs)

        return call


@pytest.fixture(params=["lmdb", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "lmdb":
        return LmdbBundleStore(tmp_path / "s", max_bytes=64 << 20)
    return MemoryBundleStore(max_bytes=64 << 20)


def test_concurrent_puts_share_commits_and_stay_off_the_loop(backend: Any) -> None:
    recorder = ThreadRecorder(backend)
    bundles = [make_wire(i, payload_size=1024) for i in range(600)]

    async def main() -> None:
        store = AsyncBundleStore(recorder)
        loop_thread = threading.get_ident()

        async def producer(chunk: list[Any]) -> None:
            for bid, wire, bundle in chunk:
                stored = await store.put(bid, wire, meta_for(bundle))
                assert stored.size == len(wire)

        await asyncio.gather(*(producer(bundles[i::30]) for i in range(30)))
        for bid, wire, _ in bundles[:50]:
            assert await store.get(bid) == wire
        assert len(await store.by_destination("ipn:2.1")) == 600
        assert (await store.stats()).count == 600
        await store.aclose()
        assert loop_thread not in recorder.threads

    asyncio.run(main())
    assert sum(recorder.batch_sizes) == 600
    # 30 producers always have a put outstanding: commits must have been shared
    assert len(recorder.batch_sizes) < 600
    assert max(recorder.batch_sizes) > 1


def test_failures_are_per_operation(backend: Any) -> None:
    async def main() -> None:
        store = AsyncBundleStore(backend)
        bid, wire, bundle = make_wire(1)
        await store.put(bid, wire, meta_for(bundle))
        others = [make_wire(i) for i in range(2, 12)]
        results = await asyncio.gather(
            store.put(bid, wire, meta_for(bundle)),  # duplicate
            store.delete(b"\x00missing", ReasonCode.TRANSMISSION_CANCELED),
            *(store.put(b, w, meta_for(x)) for b, w, x in others),
            return_exceptions=True,
        )
        assert isinstance(results[0], DuplicateBundle)
        assert isinstance(results[1], BundleNotFound)
        assert all(not isinstance(r, BaseException) for r in results[2:])
        assert (await store.stats()).count == 11
        await store.aclose()

    asyncio.run(main())


def test_quota_refusal_through_the_async_path(tmp_path: Path) -> None:
    async def main() -> None:
        store = AsyncBundleStore(LmdbBundleStore(tmp_path / "s", max_count=50))
        bundles = [make_wire(i) for i in range(80)]
        results = await asyncio.gather(
            *(store.put(b, w, meta_for(x)) for b, w, x in bundles), return_exceptions=True
        )
        ok = [r for r in results if not isinstance(r, BaseException)]
        full = [r for r in results if isinstance(r, StoreFull)]
        assert (len(ok), len(full)) == (50, 30)
        assert store.store.check() == []
        await store.aclose()

    asyncio.run(main())


def test_async_sweep_runs_in_bounded_batches(backend: Any) -> None:
    recorder = ThreadRecorder(backend)

    async def main() -> None:
        store = AsyncBundleStore(recorder)
        for i in range(45):
            b, w, x = make_wire(i)
            await store.put(b, w, meta_for(x, expiry_ms=100 + i))
        recorder.batch_sizes.clear()
        gone = await store.sweep_expired(10_000, batch=10)
        assert len(gone) == 45
        assert all(r.reason == ReasonCode.LIFETIME_EXPIRED for r in gone)
        assert len(recorder.batch_sizes) == 5  # 10+10+10+10+5, one transaction each
        assert (await store.stats()).count == 0
        await store.aclose()

    asyncio.run(main())


def test_thread_submission_and_close(backend: Any) -> None:
    writer = GroupCommitWriter(backend)
    ops = [make_wire(i) for i in range(40)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = list(
            pool.map(lambda o: writer.submit(PutOp(o[0].key(), o[1], meta_for(o[2]))), ops)
        )
    assert all(f.result(10).seq > 0 for f in futures)
    writer.submit(DeleteOp(ops[0][0].key())).result(10)
    writer.close()
    assert not writer.running
    with pytest.raises(StoreClosed):
        writer.submit(DeleteOp(ops[1][0].key()))
    assert backend.stats().count == 39
    backend.close()


def test_writer_survives_a_backend_that_raises() -> None:
    class Broken:
        def apply_batch(self, ops: Any) -> Any:
            raise RuntimeError("disk on fire")

    writer = GroupCommitWriter(Broken())  # type: ignore[arg-type]
    fut = writer.submit(DeleteOp(b"k"))
    with pytest.raises(StoreError, match="disk on fire"):
        fut.result(10)
    assert writer.running  # still serving
    writer.close()


def test_malformed_raw_ops_fail_alone(backend: Any) -> None:
    """Ops submitted straight to the writer (as the node does) are checked like put() args."""
    good = [make_wire(i) for i in range(5)]
    writer = GroupCommitWriter(backend)
    bad_ops: list[Any] = [
        PutOp("not bytes", good[0][1], meta_for(good[0][2])),  # type: ignore[arg-type]
        PutOp(b"k1", "not bytes", meta_for(good[0][2])),  # type: ignore[arg-type]
        PutOp(b"k2", good[0][1], {"not": "meta"}),  # type: ignore[arg-type]
        DeleteOp(b"", 3),
    ]
    ops = [*bad_ops, *(PutOp(b.key(), w, meta_for(x)) for b, w, x in good)]
    results = backend.apply_batch(ops)
    assert all(isinstance(r, TypeError | StoreError) for r in results[:4])
    assert all(not isinstance(r, BaseException) for r in results[4:])
    assert backend.stats().count == 5
    writer.close()
    backend.close()


def test_cancelled_callers_do_not_stop_the_writer(backend: Any) -> None:
    writer = GroupCommitWriter(backend)
    wires = [make_wire(i) for i in range(50)]
    futures = [writer.submit(PutOp(b.key(), w, meta_for(x))) for b, w, x in wires]
    for f in futures[::3]:
        f.cancel()  # may or may not win against the writer; either way nothing breaks
    writer.submit(DeleteOp(b"\x00nothing")).exception(10)
    assert writer.running
    writer.close()
    assert backend.stats().count == 50  # cancelling a caller does not withdraw its put
    backend.close()


def test_sweep_does_not_stall_puts(tmp_path: Path) -> None:
    """A long sweep is many short transactions: a put submitted meanwhile commits long before
    the sweep ends (it waits behind at most one sweep batch)."""
    backend = LmdbBundleStore(tmp_path / "s")
    ops = []
    for i in range(3000):
        b, w, x = make_wire(i, payload_size=16)
        ops.append(PutOp(b.key(), w, meta_for(x, expiry_ms=100)))
    assert not any(isinstance(r, BaseException) for r in backend.apply_batch(ops))

    async def main() -> None:
        store = AsyncBundleStore(backend)
        sweep = asyncio.create_task(store.sweep_expired(10_000, batch=50))
        await asyncio.sleep(0)  # let the sweep start
        b, w, x = make_wire(99_999)
        await store.put(b, w, meta_for(x))
        assert not sweep.done()
        assert len(await sweep) == 3000
        assert (await store.stats()).count == 1
        await store.aclose()

    asyncio.run(main())

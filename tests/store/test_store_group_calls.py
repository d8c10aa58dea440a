"""AsyncBundleStore.put_many / delete_many: many ops, one commit, one future.

Checked against the LMDB backend and the memory reference.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from waystation.store.api import (
    BundleMeta,
    BundleNotFound,
    DeletionRecord,
    Disposition,
    DuplicateBundle,
    ReasonCode,
    StoreError,
)
from waystation.store.group_commit import AsyncBundleStore
from waystation.store.lmdb_store import LmdbBundleStore
from waystation.store.memory import MemoryBundleStore

from tests.store.bundles import make_wire, meta_for


class BatchRecorder:
    """Wraps a store; records the keys of every batch it applies and which are committed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batches: list[list[bytes]] = []

    def apply_batch(self, ops: Any, *, before_commit: Any = None) -> Any:
        self.batches.append([getattr(op, "key", b"") for op in ops])
        if isinstance(self.inner, LmdbBundleStore):
            return self.inner.apply_batch(ops, before_commit=before_commit)
        if before_commit is not None:
            before_commit()
        return self.inner.apply_batch(ops)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=["lmdb", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "lmdb":
        return LmdbBundleStore(tmp_path / "s", max_bytes=64 << 20)
    return MemoryBundleStore(max_bytes=64 << 20)


def test_put_many_reports_each_outcome_in_order(backend: Any) -> None:
    async def main() -> None:
        store = AsyncBundleStore(backend)
        bundles = [make_wire(i) for i in range(10)]
        b0, w0, x0 = bundles[0]
        await store.put(b0, w0, meta_for(x0))
        items: list[Any] = [(b, w, meta_for(x)) for b, w, x in bundles]
        items.insert(3, (bundles[5][0], bundles[5][1], meta_for(bundles[5][2])))  # dup in call
        items.append((b"k-bad-wire", "not bytes", meta_for(x0)))
        items.append((b"k-bad-meta", w0, {"not": "meta"}))
        items.append(("not a key", w0, meta_for(x0)))
        items.append((b"too", b"few"))
        results = await store.put_many(items)
        assert len(results) == len(items)
        assert isinstance(results[0], DuplicateBundle)  # stored before the call
        # the first of the two copies of bundle 5 wins, wherever it sits
        assert isinstance(results[3], BundleMeta)
        assert isinstance(results[6], DuplicateBundle)
        for r in results[1:3] + results[4:6] + results[7:11]:
            assert isinstance(r, BundleMeta)
        assert all(isinstance(r, TypeError | StoreError) for r in results[11:])
        assert (await store.stats()).count == 10
        for b, w, _ in bundles:
            assert await store.get(b) == w
        await store.aclose()

    asyncio.run(main())


def test_a_group_is_one_commit_even_beyond_max_batch(backend: Any) -> None:
    recorder = BatchRecorder(backend)

    async def main() -> None:
        store = AsyncBundleStore(recorder, max_batch=8)
        groups = [[make_wire(100 * g + i) for i in range(30)] for g in range(4)]
        singles = [make_wire(1000 + i) for i in range(40)]
        outcomes = await asyncio.gather(
            *(store.put_many([(b, w, meta_for(x)) for b, w, x in grp]) for grp in groups),
            *(store.put(b, w, meta_for(x)) for b, w, x in singles),
        )
        for result in outcomes[:4]:
            assert isinstance(result, list) and len(result) == 30
            assert all(isinstance(r, BundleMeta) for r in result)
        for grp in groups:
            keys = {b.key() for b, _, _ in grp}
            holding = [batch for batch in recorder.batches if keys & set(batch)]
            assert len(holding) == 1 and keys <= set(holding[0])
        assert (await store.stats()).count == 160
        await store.aclose()

    asyncio.run(main())


def test_group_future_resolves_only_after_its_commit(backend: Any) -> None:
    async def main() -> None:
        store = AsyncBundleStore(backend)
        seen: list[bool] = []

        def committed(keys: list[bytes], present: bool) -> Any:
            # runs when the future resolves; a read transaction sees only committed state
            return lambda _done: seen.append(all(backend.contains(k) == present for k in keys))

        for g in range(5):
            grp = [make_wire(50 * g + i) for i in range(20)]
            fut = store.put_many([(b, w, meta_for(x)) for b, w, x in grp])
            fut.add_done_callback(committed([b.key() for b, _, _ in grp], True))
            await fut
            gone = store.delete_many([b for b, _, _ in grp[:10]])
            gone.add_done_callback(committed([b.key() for b, _, _ in grp[:10]], False))
            await gone
        assert seen == [True] * 10
        await store.aclose()

    asyncio.run(main())


def test_delete_many_reports_each_outcome(backend: Any) -> None:
    async def main() -> None:
        store = AsyncBundleStore(backend)
        bundles = [make_wire(i) for i in range(6)]
        await store.put_many([(b, w, meta_for(x)) for b, w, x in bundles])
        keys: list[Any] = [b for b, _, _ in bundles[:4]]
        keys[1:1] = [b"\x00missing", 12345]
        keys.append(bundles[0][0])  # deleted earlier in the same call
        results = await store.delete_many(
            keys, ReasonCode.TRANSMISSION_CANCELED, disposition=Disposition.DELETED, now_ms=77
        )
        assert isinstance(results[1], BundleNotFound)
        assert isinstance(results[2], TypeError)
        assert isinstance(results[-1], BundleNotFound)
        records = [results[0], *results[3:6]]
        assert all(isinstance(r, DeletionRecord) for r in records)
        assert all(
            r.reason == ReasonCode.TRANSMISSION_CANCELED and r.time_ms == 77 for r in records
        )
        assert [r.seq for r in records] == sorted(r.seq for r in records)
        assert (await store.stats()).count == 2
        assert await store.delete_many([]) == []
        assert await store.put_many([]) == []
        await store.aclose()

    asyncio.run(main())


def test_group_future_fails_when_the_whole_batch_fails() -> None:
    class Broken:
        def apply_batch(self, ops: Any) -> Any:
            raise RuntimeError("disk on fire")

        def close(self) -> None:
            pass

    async def main() -> None:
        store = AsyncBundleStore(Broken())  # type: ignore[arg-type]
        b, w, x = make_wire(1)
        b2, w2, x2 = make_wire(2)
        with pytest.raises(StoreError, match="disk on fire"):
            await store.put_many([(b, w, meta_for(x)), (b2, w2, meta_for(x2))])
        with pytest.raises(StoreError, match="disk on fire"):
            await store.delete_many([b, b"\x00bad-but-well-formed"])
        await store.aclose()

    asyncio.run(main())

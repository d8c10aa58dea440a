"""The event-loop wake-up: results reach the loop through its pipe, written by the LMDB commit
(GIL-free) when the backend takes ``wake_fd=``, else by the writer -- and never get lost, also
when a batch fails before its commit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from waystation.store.api import StoreError
from waystation.store.group_commit import AsyncBundleStore
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire, meta_for


class WakeLog(LmdbBundleStore):
    """Records the wake_fd each batch got; ``fail_at``: batch numbers that raise unstaged."""

    def __init__(self, *args: Any, fail_at: frozenset[int] = frozenset(), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.wake_fds: list[int | None] = []
        self.fail_at = fail_at

    def apply_batch(
        self, ops: Any, *, before_commit: Any = None, wake_fd: int | None = None
    ) -> list[Any]:
        self.wake_fds.append(wake_fd)
        if len(self.wake_fds) in self.fail_at:
            raise StoreError("injected failure before the commit")
        return super().apply_batch(ops, before_commit=before_commit, wake_fd=wake_fd)


class HookOnly(LmdbBundleStore):
    """A backend with the before_commit hook but without wake_fd: the writer wakes the loop."""

    def apply_batch(self, ops: Any, *, before_commit: Any = None) -> list[Any]:  # type: ignore[override]
        return super().apply_batch(ops, before_commit=before_commit)


async def _hammer(store: AsyncBundleStore, first: int, n: int, producers: int) -> list[Any]:
    bundles = [make_wire(i) for i in range(first, first + n)]

    async def producer(chunk: list[Any]) -> list[Any]:
        out = []
        for b, w, x in chunk:
            try:
                out.append(await store.put(b, w, meta_for(x)))
            except StoreError as exc:
                out.append(exc)
        return out

    parts = await asyncio.wait_for(
        asyncio.gather(*(producer(bundles[i::producers]) for i in range(producers))), 30
    )
    return [r for part in parts for r in part]


def test_the_commit_writes_the_wake_up(tmp_path: Path) -> None:
    backend = WakeLog(tmp_path / "s")

    async def main() -> None:
        store = AsyncBundleStore(backend, max_batch=16)
        results = await _hammer(store, 0, 300, 64)
        assert all(not isinstance(r, BaseException) for r in results)
        await store.aclose()

    asyncio.run(main())
    # batches queued behind a held one carried the loop's pipe to their commit
    assert any(fd is not None for fd in backend.wake_fds)


def test_a_batch_failing_before_its_commit_still_wakes_the_loop(tmp_path: Path) -> None:
    backend = WakeLog(tmp_path / "s", fail_at=frozenset(range(3, 60, 4)))

    async def main() -> None:
        store = AsyncBundleStore(backend, max_batch=8)
        results = await _hammer(store, 0, 200, 32)  # wait_for: a lost wake-up fails here
        failed = [r for r in results if isinstance(r, StoreError)]
        assert failed and len(failed) < len(results)
        assert (await store.stats()).count == len(results) - len(failed)
        await store.aclose()

    asyncio.run(main())


def test_a_backend_without_wake_fd_is_woken_by_the_writer(tmp_path: Path) -> None:
    async def main() -> None:
        store = AsyncBundleStore(HookOnly(tmp_path / "s"), max_batch=16)
        results = await _hammer(store, 0, 300, 64)
        assert all(not isinstance(r, BaseException) for r in results)
        await store.aclose()

    asyncio.run(main())


def test_two_loops_share_one_writer(tmp_path: Path) -> None:
    """With two loops the writer wakes each itself (the commit writes only one pipe)."""
    import threading

    backend = LmdbBundleStore(tmp_path / "s")
    store_box: dict[str, AsyncBundleStore] = {}
    errors: list[BaseException] = []

    async def first() -> None:
        store_box["s"] = AsyncBundleStore(backend)
        await _hammer(store_box["s"], 0, 150, 16)

    async def second() -> None:
        await _hammer(store_box["s"], 1000, 150, 16)

    def run(coro: Any) -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # reported below
            errors.append(exc)

    run(first())
    t = threading.Thread(target=run, args=(second(),))
    t.start()
    run(_hammer(store_box["s"], 2000, 150, 16))
    t.join(60)
    assert errors == []
    store_box["s"].writer.close()
    assert backend.stats().count == 450
    backend.close()

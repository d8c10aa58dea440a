"""The pipelined writer: a batch's callers are told right before the *next* commit, never before
their own; the loop-side put is a plain future.

See docs/store.md "Pipelining". Real LMDB throughout (the hook is LMDB's ``before_commit``).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from waystation.store.api import DuplicateBundle, InvalidMeta
from waystation.store.group_commit import AsyncBundleStore, GroupCommitWriter
from waystation.store.lmdb_store import LmdbBundleStore
from waystation.store.ops import PutOp

from tests.store.bundles import make_wire, meta_for


class CommitLog(LmdbBundleStore):
    """Records, per batch, which ops it held and when its commit returned."""

    def __init__(self, *args: Any, gate: threading.Event | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.committed: set[bytes] = set()
        self.batch_sizes: list[int] = []
        self.hook_calls = 0
        self.gate = gate
        self.entered = threading.Event()

    def apply_batch(self, ops: Any, *, before_commit: Any = None) -> list[Any]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)

        def hook() -> None:
            self.hook_calls += 1
            if before_commit is not None:
                before_commit()

        results = super().apply_batch(ops, before_commit=hook)
        self.batch_sizes.append(len(ops))
        self.committed.update(op.key for op in ops if isinstance(op, PutOp))
        return results


def test_callers_learn_only_after_their_own_commit(tmp_path: Path) -> None:
    backend = CommitLog(tmp_path / "s")
    seen_early: list[bytes] = []
    bundles = [make_wire(i, payload_size=64) for i in range(400)]

    async def main() -> None:
        store = AsyncBundleStore(backend)

        async def producer(chunk: list[Any]) -> None:
            for bid, wire, bundle in chunk:
                await store.put(bid, wire, meta_for(bundle))
                if bid.key() not in backend.committed:
                    seen_early.append(bid.key())

        await asyncio.gather(*(producer(bundles[i::40]) for i in range(40)))
        assert (await store.stats()).count == 400
        await store.aclose()

    asyncio.run(main())
    assert seen_early == []
    assert backend.hook_calls >= len(backend.batch_sizes) - 1  # the hook ran before commits


def test_a_lone_put_is_answered_without_waiting_for_another(tmp_path: Path) -> None:
    backend = CommitLog(tmp_path / "s")
    writer = GroupCommitWriter(backend)
    bid, wire, bundle = make_wire(1)
    meta = writer.submit(PutOp(bid.key(), wire, meta_for(bundle))).result(5)
    assert meta.seq == 1
    writer.close()
    backend.close()


def test_a_held_batch_is_released_before_the_next_commit(tmp_path: Path) -> None:
    """While the writer is busy, a queue builds up; each batch's callers are answered once
    their commit is done, at the latest just before the following commit."""
    gate = threading.Event()
    backend = CommitLog(tmp_path / "s", gate=gate)
    writer = GroupCommitWriter(backend)
    wires = [make_wire(i, payload_size=32) for i in range(301)]
    first = writer.submit(PutOp(wires[0][0].key(), wires[0][1], meta_for(wires[0][2])))
    assert backend.entered.wait(10)
    futures = [writer.submit(PutOp(b.key(), w, meta_for(x))) for b, w, x in wires[1:]]
    gate.set()  # the writer was held in its first batch while 300 ops queued up
    assert all(f.result(10).size > 0 for f in [first, *futures])
    assert backend.batch_sizes == [1, 300]
    assert backend.hook_calls == 2
    writer.close()
    assert backend.stats().count == 301
    assert backend.check() == []
    backend.close()


def test_a_long_queue_of_event_loop_callers_is_committed_in_two_halves(tmp_path: Path) -> None:
    """With nothing in flight, a long asyncio queue is split so that one half commits while
    the loop resumes the other half's callers; thread callers are never split (above)."""
    gate = threading.Event()
    backend = CommitLog(tmp_path / "s", gate=gate)
    wires = [make_wire(i, payload_size=32) for i in range(301)]

    async def main() -> None:
        store = AsyncBundleStore(backend)
        bid, wire, bundle = wires[0]
        # a thread caller's op keeps the writer busy (and, never held, leaves nothing in flight)
        first = store.writer.submit(PutOp(bid.key(), wire, meta_for(bundle)))
        while not backend.entered.is_set():
            await asyncio.sleep(0.001)
        rest = [store.put(b, w, meta_for(x)) for b, w, x in wires[1:]]
        gate.set()  # ... while 300 puts queue up
        done = await asyncio.gather(*rest)
        assert all(meta.size > 0 for meta in done) and first.result(5).size > 0
        assert (await store.stats()).count == 301
        assert backend.check() == []
        await store.aclose()

    asyncio.run(main())
    assert backend.batch_sizes == [1, 150, 150]


def test_failures_in_a_held_batch_are_still_delivered(tmp_path: Path) -> None:
    backend = LmdbBundleStore(tmp_path / "s")
    bundles = [make_wire(i) for i in range(20)]

    async def main() -> None:
        store = AsyncBundleStore(backend)
        await asyncio.gather(*(store.put(b, w, meta_for(x)) for b, w, x in bundles))
        again = await asyncio.gather(
            *(store.put(b, w, meta_for(x)) for b, w, x in bundles), return_exceptions=True
        )
        assert all(isinstance(r, DuplicateBundle) for r in again)
        await store.aclose()

    asyncio.run(main())


def test_bad_put_arguments_surface_when_awaited(tmp_path: Path) -> None:
    backend = LmdbBundleStore(tmp_path / "s")

    async def main() -> None:
        store = AsyncBundleStore(backend)
        bid, wire, bundle = make_wire(1)
        pending = store.put(bid, "not bytes", meta_for(bundle))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await pending
        with pytest.raises(InvalidMeta):
            await store.put(bid, b"", meta_for(bundle))
        with pytest.raises(TypeError):
            await store.put(bid, wire, {"not": "meta"})  # type: ignore[arg-type]
        assert (await store.put(bid, wire, meta_for(bundle))).seq >= 1
        await store.aclose()

    asyncio.run(main())


def test_a_thread_callers_callback_may_write_to_the_store(tmp_path: Path) -> None:
    """Concurrent futures run done-callbacks in the writer thread: a callback that writes
    synchronously must not run inside the next batch's open transaction (it would deadlock)."""
    gate = threading.Event()
    backend = CommitLog(tmp_path / "s", gate=gate)
    writer = GroupCommitWriter(backend)
    done = threading.Event()
    b1, w1, x1 = make_wire(1)
    b2, w2, x2 = make_wire(2)

    def chained(_: Any) -> None:
        backend.put(b2, w2, meta_for(x2))  # a synchronous durable write from the callback
        done.set()

    writer.submit(PutOp(b1.key(), w1, meta_for(x1))).add_done_callback(chained)
    assert backend.entered.wait(10)  # the writer is in its first batch, held at the gate
    for i in range(3, 40):  # these queue up and become the second batch
        b, w, x = make_wire(i)
        writer.submit(PutOp(b.key(), w, meta_for(x)))
    gate.set()
    assert done.wait(10)
    writer.close()
    assert backend.stats().count == 39
    backend.close()

"""Group commit: many concurrent durable writes share one transaction and one fsync pair.

An LMDB durable commit costs two fsyncs (data pages, then the meta page) whatever it contains,
so one commit per bundle caps a node at a few thousand bundles per second. Here a dedicated
writer thread drains a queue of pending operations, applies everything that has accumulated in
one write transaction (``apply_batch``), commits once, then resolves every caller. While one
commit is syncing the next batch gathers, so under load the batch size grows by itself; at low
load a lone put is committed immediately (no timer, no added latency).

:class:`GroupCommitWriter` is thread-facing (``submit`` returns a
``concurrent.futures.Future``, or resolves an asyncio future through
``loop.call_soon_threadsafe`` — once per batch and loop, not once per bundle).
:class:`AsyncBundleStore` is the asyncio face: writes go through the writer, reads run in the
loop's default executor, so no LMDB call ever runs on the event loop thread.

Cancellation: cancelling an awaiting ``put`` does not withdraw it; once submitted it is
committed or refused like any other. A caller that must know should not cancel.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from waystation.store._common import check_wire
from waystation.store.api import (
    BundleKeyLike,
    BundleMeta,
    BundleStore,
    DeletionRecord,
    Disposition,
    ReasonCode,
    StoreClosed,
    StoredEntry,
    StoreError,
    StoreStats,
    bundle_key,
)
from waystation.store.ops import DeleteOp, PutOp, StoreOp, SweepOp, UpdateOp

__all__ = ["AsyncBundleStore", "BatchingStore", "GroupCommitWriter"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class BatchingStore(BundleStore, Protocol):
    """A backend that can apply a batch of operations under one durable commit."""

    def apply_batch(self, ops: Sequence[StoreOp]) -> list[Any]: ...


_WIRE_TYPES = (bytes, bytearray, memoryview)  # exact classes: a subclass is sized as 0


class _Group:
    """Ops from one ``put_many``/``delete_many`` call: one queue entry, one commit, one future.

    The writer never splits a group across transactions (it may exceed ``max_batch`` for it)
    and resolves the group's future with the list of per-op outcomes.
    """

    __slots__ = ("ops", "wire_bytes")

    def __init__(self, ops: list[StoreOp]) -> None:
        self.ops = ops
        self.wire_bytes = sum(
            len(op.wire)
            for op in ops
            if isinstance(op, PutOp) and isinstance(op.wire, bytes | bytearray | memoryview)
        )


# A pending op: (op or group, concurrent future or None, asyncio future or None, its loop or None)
_Pending = tuple[
    "StoreOp | _Group",
    "concurrent.futures.Future[Any] | None",
    "asyncio.Future[Any] | None",
    "asyncio.AbstractEventLoop | None",
]


class GroupCommitWriter:
    """The writer thread. ``max_batch`` ops / ``max_batch_bytes`` of wire per transaction."""

    def __init__(
        self,
        store: BatchingStore,
        *,
        max_batch: int = 1024,
        max_batch_bytes: int = 64 << 20,
        split_at: int = 128,
        name: str = "store-writer",
    ) -> None:
        self.store = store
        self.max_batch = max(1, max_batch)
        # A queue this long with nothing in flight is committed in two halves (_take_batch)
        self.split_at = max(2, split_at)
        self.max_batch_bytes = max(1, max_batch_bytes)
        self._pending: collections.deque[_Pending] = collections.deque()
        self._wake = threading.Event()
        self._idle = False
        self._stopping = False
        self.batches = 0  # statistics: commits done and ops applied
        self.ops = 0
        self._hook = _has_commit_hook(store)
        # Does the backend's apply_batch take wake_fd= (written by its commit, GIL-free, right
        # after before_commit)? See _LoopWaker.
        self._wake_kw = self._hook and _takes_kwarg(store, "wake_fd")
        self._commit_fd: int | None = None
        self._wakers: dict[asyncio.AbstractEventLoop, _LoopWaker | None] = {}
        self._wake_fds: list[int] = []  # wake-ups owed for results handed to _LoopWakers
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- submission -----------------------------------------------------------------------
    def submit(self, op: StoreOp) -> concurrent.futures.Future[Any]:
        """Queue ``op``; the future resolves after its batch is durable (or with its error)."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._enqueue((op, fut, None, None))
        return fut

    def submit_async(self, op: StoreOp) -> asyncio.Future[Any]:
        """Queue ``op`` from a running event loop; await the returned future."""
        loop = asyncio.get_running_loop()
        if loop not in self._wakers:
            self._attach(loop)
        fut = loop.create_future()
        self._enqueue((op, None, fut, loop))
        return fut

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give ``loop`` its wake-up pipe (in the loop's thread, as add_reader requires)."""
        self._wakers[loop] = _LoopWaker.create(loop)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remove ``loop``'s wake-up pipe; call in that loop's thread once its writes are done."""
        waker = self._wakers.pop(loop, None)
        if waker is not None:
            waker.close()

    def submit_group_async(self, ops: Sequence[StoreOp]) -> asyncio.Future[list[Any]]:
        """Queue ``ops`` to be applied in ONE commit; the future gets the list of outcomes.

        Each outcome is the op's result or the exception it failed with; the future itself
        fails only when the whole batch could not be applied (e.g. the commit failed).
        """
        loop = asyncio.get_running_loop()
        if loop not in self._wakers:
            self._attach(loop)
        fut: asyncio.Future[list[Any]] = loop.create_future()
        if not ops:
            fut.set_result([])
            return fut
        self._enqueue((_Group(list(ops)), None, fut, loop))
        return fut

    def _enqueue(self, item: _Pending) -> None:
        # Lock-free on the hot path: deque.append is atomic, and the writer is only woken when
        # it has said it is idle (see _take_batch for why no wake-up can be lost).
        if self._stopping:
            raise StoreClosed("store writer is stopped")
        self._pending.append(item)
        if self._idle:
            # Only the first producer after the writer went idle pays for Event.set (a lock
            # and a notify): while the writer waits for the GIL to wake up, hundreds of puts
            # may arrive, and each set() would cost more than the rest of the put.
            self._idle = False
            self._wake.set()

    def close(self, timeout: float | None = 30.0) -> None:
        """Finish everything already queued, then stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            # a producer that passed the _stopping check just as the writer exited
            leftovers = []
            while self._pending:
                leftovers.append(self._pending.popleft())
            if leftovers:
                closed = StoreClosed("store writer stopped before this operation ran")
                self._resolve(leftovers, [closed] * len(leftovers))
            self._write_wakes()
            for loop, waker in list(self._wakers.items()):
                if waker is None:
                    continue
                if loop.is_closed():
                    waker.close_fds()
                else:
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(waker.close)
            self._wakers.clear()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- the thread -----------------------------------------------------------------------
    def _take_batch(self, split: bool = False) -> list[_Pending] | None:
        """The next batch: up to ``max_batch`` ops / ``max_batch_bytes`` of wire, groups whole.

        ``split``: nothing is committed-but-unreleased, so take only half of a long queue
        (at least ``split_at`` entries): the other half then commits while the event loop
        resumes this half's callers (see :meth:`_run`), and the two halves keep alternating.
        """
        pending = self._pending
        while not pending:
            if self._stopping:
                return None
            # Announce idleness *before* the final emptiness check: a producer that appends
            # after that check sees _idle and sets the event; one that appended before it is
            # seen by the check. Either way the writer does not sleep on a non-empty queue.
            self._idle = True
            self._wake.clear()
            if not pending and not self._stopping:
                self._wake.wait()
            self._idle = False
        batch: list[_Pending] = []
        size = 0
        limit = self.max_batch
        if split and len(pending) >= self.split_at and pending[0][1] is None:
            # (a thread caller's batch is never held, so it gains nothing from halving)
            limit = min(limit, len(pending) // 2)
        max_bytes = self.max_batch_bytes
        popleft, append = pending.popleft, batch.append
        n = 0
        while pending and n < limit:
            op = pending[0][0]
            if op.__class__ is _Group:  # all or nothing: never split a caller's group
                k = len(op.ops)  # type: ignore[union-attr]
                size += op.wire_bytes  # type: ignore[union-attr]
                if n and (n + k > limit or size > max_bytes):
                    break
                append(popleft())
                n += k
                continue
            if op.__class__ is PutOp and op.wire.__class__ in _WIRE_TYPES:  # type: ignore[union-attr]
                size += len(op.wire)  # type: ignore[union-attr]
                if n and size > max_bytes:
                    break
            append(popleft())
            n += 1
        return batch

    def _run(self) -> None:
        # ``held``: a committed batch whose callers have not been told yet. It is released
        # right before the *next* batch's commit (when the backend offers that hook), so the
        # event loop resumes those callers while the next commit's fsyncs run without the GIL,
        # instead of both threads taking turns (see docs/store.md "Pipelining").
        held: list[tuple[list[_Pending], list[Any]]] = []

        def release_held(for_commit: bool = True) -> None:
            """Hand the held results over and wake their loops -- except the wake-up the
            backend's commit writes itself (GIL-free) when called as its ``before_commit``."""
            while held:
                self._finish(*held.pop())
            self._write_wakes(skip=self._commit_fd if for_commit else None)

        while True:
            if held and not self._pending:
                release_held(False)  # nothing queued behind it: tell its callers now
            batch = self._take_batch(split=self._hook and not held)
            if batch is None:
                release_held(False)
                return
            ops: list[StoreOp] = []
            grouped = False
            for item in batch:
                if item[0].__class__ is _Group:
                    ops.extend(item[0].ops)  # type: ignore[union-attr]
                    grouped = True
                else:
                    ops.append(item[0])  # type: ignore[arg-type]
            failed = False
            self._commit_fd = self._held_wake_fd() if held else None
            try:
                if self._commit_fd is not None:
                    results = self.store.apply_batch(  # type: ignore[call-arg]
                        ops, before_commit=release_held, wake_fd=self._commit_fd
                    )
                elif self._hook:
                    results = self.store.apply_batch(ops, before_commit=release_held)  # type: ignore[call-arg]
                else:
                    results = self.store.apply_batch(ops)
            except BaseException as exc:  # never let the writer die with callers waiting
                log.exception("store batch failed")
                err = (
                    exc
                    if isinstance(exc, StoreError)
                    else StoreError(f"store write failed: {exc!r}")
                )
                results = [err] * len(ops)
                failed = True
            release_held(False)  # the backend failed before its commit, or has no hook
            if not isinstance(results, list) or len(results) != len(ops):
                results = [StoreError("store returned the wrong number of results")] * len(ops)
                failed = True
            self.batches += 1
            self.ops += len(ops)
            if grouped:
                results = _regroup(batch, results, failed)
            if self._hook and not any(item[1] for item in batch):
                held.append((batch, results))
            else:
                # A concurrent future runs its done-callbacks right here, and a callback that
                # wrote to the store synchronously would deadlock inside the next batch's open
                # write transaction: such batches are resolved at once, outside any transaction.
                self._finish(batch, results)
                self._write_wakes()

    def _held_wake_fd(self) -> int | None:
        """The wake-up fd the backend's commit should write (one loop, backend able), else None."""
        if not self._wake_kw:
            return None
        wakers = list(self._wakers.values())  # a snapshot: loops attach from their threads
        if len(wakers) != 1 or wakers[0] is None:
            return None
        return wakers[0].wfd

    def _write_wakes(self, skip: int | None = None) -> None:
        """Wake the loops owed a wake-up, except ``skip`` (the fd the commit will write)."""
        fds, self._wake_fds = self._wake_fds, []
        for fd in fds:
            if fd != skip:
                _LoopWaker.wake(fd)

    def _finish(self, batch: list[_Pending], results: list[Any]) -> None:
        try:
            self._resolve(batch, results)
        except Exception:  # a caller's future must never take the writer down
            log.exception("resolving store results failed")

    def _resolve(self, batch: list[_Pending], results: list[Any]) -> None:
        per_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        last_loop: asyncio.AbstractEventLoop | None = None
        items: list[tuple[asyncio.Future[Any], Any]] = []
        for (_, cfut, afut, loop), result in zip(batch, results):
            if cfut is not None:
                if cfut.done():  # cancelled by its caller while queued
                    continue
                try:
                    if isinstance(result, BaseException):
                        cfut.set_exception(result)
                    else:
                        cfut.set_result(result)
                except concurrent.futures.InvalidStateError:
                    pass  # cancelled between the check and the set
            elif afut is not None and loop is not None:
                if loop is not last_loop:  # nearly always one loop: look it up once
                    items = per_loop.setdefault(loop, [])
                    last_loop = loop
                items.append((afut, result))
        for loop, items in per_loop.items():
            waker = self._wakers.get(loop)
            if waker is not None and not loop.is_closed():
                waker.ready.append(items)
                if waker.wfd not in self._wake_fds:
                    self._wake_fds.append(waker.wfd)
                continue
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # the loop was closed while its puts were in flight
                log.warning("event loop closed before %d store results were delivered", len(items))


class _LoopWaker:
    """A pipe the event loop watches, so the writer can wake it from inside a commit.

    ``loop.call_soon_threadsafe`` wakes the loop with a ``send`` that releases the GIL; the
    woken loop takes it, and the writer then queues for the GIL (up to a switch interval)
    before it can even start the next commit. Instead the writer appends the results to
    ``ready`` (under the GIL) and a backend whose ``apply_batch`` takes ``wake_fd=`` writes
    the wake-up byte in the same GIL-free stretch as its fsyncs (the LMDB backend's
    ``commit(txn, wake_fd)``): the loop settles the previous batch while this one syncs.
    Other backends get the byte from the writer; loops without ``add_reader`` (and several
    loops at once) keep ``call_soon_threadsafe``-style wake-ups.
    """

    __slots__ = ("loop", "ready", "rfd", "wfd")

    def __init__(self, loop: asyncio.AbstractEventLoop, rfd: int, wfd: int) -> None:
        self.loop = loop
        self.rfd, self.wfd = rfd, wfd
        self.ready: collections.deque[list[tuple[asyncio.Future[Any], Any]]] = collections.deque()

    @classmethod
    def create(cls, loop: asyncio.AbstractEventLoop) -> _LoopWaker | None:
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)  # a full pipe already holds a wake-up
        waker = cls(loop, rfd, wfd)
        try:
            loop.add_reader(rfd, waker._drain)
        except (NotImplementedError, RuntimeError):
            waker.close_fds()
            return None
        return waker

    @staticmethod
    def wake(fd: int) -> None:
        with contextlib.suppress(OSError):  # full (already woken) or closed
            os.write(fd, b"\0")

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            os.read(self.rfd, 4096)
        ready = self.ready
        while ready:
            _settle(ready.popleft())

    def close(self) -> None:
        """In the loop's thread: settle what is ready, stop watching, close the pipe."""
        self._drain()
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.rfd)
        self.close_fds()

    def close_fds(self) -> None:
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.rfd = self.wfd = -1


def _regroup(batch: list[_Pending], results: list[Any], failed: bool) -> list[Any]:
    """One result per queue entry: a group's entry is its list of per-op outcomes.

    A group fails as a whole (its future gets the exception) when the batch failed: the
    backend raised, or every one of its ops got the very same error instance, which is how
    ``apply_batch`` reports a failed commit (per-op errors are distinct instances). A failed
    batch that holds a single-op group is indistinguishable from that op failing and is
    reported as its list entry.
    """
    out: list[Any] = []
    pos = 0
    for item in batch:
        group = item[0]
        if group.__class__ is not _Group:
            out.append(results[pos])
            pos += 1
            continue
        k = len(group.ops)  # type: ignore[union-attr]
        part = results[pos : pos + k]
        pos += k
        first = part[0]
        if isinstance(first, BaseException) and (
            failed or (k > 1 and all(r is first for r in part))
        ):
            out.append(first)
        else:
            out.append(part)
    return out


def _has_commit_hook(store: Any) -> bool:
    """Does ``store.apply_batch`` take ``before_commit=`` (called once the batch is staged)?"""
    return _takes_kwarg(store, "before_commit")


def _takes_kwarg(store: Any, name: str) -> bool:
    try:
        params = inspect.signature(store.apply_batch).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return name in params


def _settle(items: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for fut, result in items:
        if fut.done():
            continue
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)


class AsyncBundleStore:
    """asyncio face of a store: group-committed writes, executor reads.

    Create it inside (or before) the running loop; ``await aclose()`` when done. The wrapped
    synchronous store stays available as ``.store`` for tools and tests.
    """

    def __init__(
        self, store: BatchingStore, *, max_batch: int = 1024, max_batch_bytes: int = 64 << 20
    ) -> None:
        self.store = store
        self.writer = GroupCommitWriter(store, max_batch=max_batch, max_batch_bytes=max_batch_bytes)

    # -- writes (group-committed) ---------------------------------------------------------
    def put(
        self, bundle_id: BundleKeyLike | bytes, wire: bytes, meta: BundleMeta
    ) -> asyncio.Future[BundleMeta]:
        """Store durably: await the result, which arrives once the batch holding this bundle
        has been committed.

        A plain function returning the writer's future rather than a coroutine (one frame and
        one task step less per put, on the event loop that is the node's bottleneck). Bad
        arguments still surface when the result is awaited, as with a coroutine.
        """
        try:
            op = PutOp(bundle_key(bundle_id), check_wire(wire), meta)
        except Exception as exc:  # TypeError / InvalidMeta: delivered through the future
            fut: asyncio.Future[BundleMeta] = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
            return fut
        return self.writer.submit_async(op)

    def put_many(
        self, items: Sequence[tuple[BundleKeyLike | bytes, bytes, BundleMeta]]
    ) -> asyncio.Future[list[BundleMeta | StoreError]]:
        """Store many bundles durably in ONE commit; one future for all of them.

        The result lists, in order, each put's stored :class:`BundleMeta` or the exception
        that put failed with (``DuplicateBundle``, ``StoreFull``, ``TypeError`` for a malformed
        item ...); one bad item never costs its neighbours their commit. The future resolves
        only after the commit holding all of them is durable, and fails only if that whole
        batch could not be applied.
        """
        return self._group([self._put_op(item) for item in items])

    def delete_many(
        self,
        keys: Sequence[BundleKeyLike | bytes],
        reason: int = ReasonCode.NO_ADDITIONAL_INFORMATION,
        *,
        disposition: Disposition = Disposition.DELETED,
        now_ms: int | None = None,
    ) -> asyncio.Future[list[DeletionRecord | StoreError]]:
        """Delete many bundles in ONE commit; outcomes as for :meth:`put_many`
        (a :class:`DeletionRecord` or e.g. ``BundleNotFound`` per key)."""
        ops: list[StoreOp | BaseException] = []
        for key in keys:
            try:
                ops.append(DeleteOp(bundle_key(key), reason, disposition, now_ms))
            except Exception as exc:  # a malformed key fails alone
                ops.append(exc)
        return self._group(ops)

    @staticmethod
    def _put_op(item: Any) -> StoreOp | BaseException:
        try:
            bundle_id, wire, meta = item
            return PutOp(bundle_key(bundle_id), check_wire(wire), meta)
        except Exception as exc:
            if isinstance(exc, ValueError) and not isinstance(exc, StoreError):
                return TypeError(f"put_many items are (key, wire, meta) tuples: {exc}")
            return exc

    def _group(self, ops: list[StoreOp | BaseException]) -> asyncio.Future[list[Any]]:
        """Submit the valid ops as one group; splice pre-validation failures back in."""
        good = [op for op in ops if not isinstance(op, BaseException)]
        if len(good) == len(ops):
            return self.writer.submit_group_async(good)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        out: asyncio.Future[list[Any]] = loop.create_future()
        inner = self.writer.submit_group_async(good)  # type: ignore[arg-type]

        def splice(done: asyncio.Future[list[Any]]) -> None:
            if out.done():
                return
            if done.cancelled():
                out.cancel()
                return
            exc = done.exception()
            if exc is not None:
                out.set_exception(exc)
                return
            results = iter(done.result())
            out.set_result([op if isinstance(op, BaseException) else next(results) for op in ops])

        inner.add_done_callback(splice)
        return out

    async def update_meta(self, bundle_id: BundleKeyLike | bytes, **changes: Any) -> BundleMeta:
        result: BundleMeta = await self.writer.submit_async(
            UpdateOp(bundle_key(bundle_id), changes)
        )
        return result

    async def delete(
        self,
        bundle_id: BundleKeyLike | bytes,
        reason: int = ReasonCode.NO_ADDITIONAL_INFORMATION,
        *,
        disposition: Disposition = Disposition.DELETED,
        now_ms: int | None = None,
    ) -> DeletionRecord:
        result: DeletionRecord = await self.writer.submit_async(
            DeleteOp(bundle_key(bundle_id), reason, disposition, now_ms)
        )
        return result

    async def sweep_expired(
        self, now_ms: int, *, batch: int = 256, max_batches: int | None = None
    ) -> list[DeletionRecord]:
        """Remove every expired bundle, ``batch`` per transaction, yielding between batches.

        Each batch is one short write transaction queued behind (and interleaved with) other
        writers, so a sweep of a million bundles never stalls puts or the event loop.
        """
        done: list[DeletionRecord] = []
        rounds = 0
        while max_batches is None or rounds < max_batches:
            records: list[DeletionRecord] = await self.writer.submit_async(SweepOp(now_ms, batch))
            done.extend(records)
            rounds += 1
            if len(records) < batch:
                break
            await asyncio.sleep(0)
        return done

    # -- reads (executor) -----------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: fn(*args, **kwargs))

    async def get(self, bundle_id: BundleKeyLike | bytes) -> bytes:
        return await self._call(self.store.get, bundle_id)

    async def get_meta(self, bundle_id: BundleKeyLike | bytes) -> BundleMeta:
        return await self._call(self.store.get_meta, bundle_id)

    async def contains(self, bundle_id: BundleKeyLike | bytes) -> bool:
        return await self._call(self.store.contains, bundle_id)

    async def by_destination(
        self, destination: str, *, limit: int | None = None
    ) -> list[StoredEntry]:
        return await self._call(self.store.by_destination, destination, limit=limit)

    async def expiring_before(self, t_ms: int, *, limit: int = 1000) -> list[StoredEntry]:
        return await self._call(self.store.expiring_before, t_ms, limit=limit)

    async def queue(self, neighbour: str, *, limit: int | None = None) -> list[StoredEntry]:
        return await self._call(self.store.queue, neighbour, limit=limit)

    async def queues(self) -> dict[str, int]:
        return await self._call(self.store.queues)

    async def pending_local(self, endpoint: str, *, limit: int | None = None) -> list[StoredEntry]:
        return await self._call(self.store.pending_local, endpoint, limit=limit)

    async def fragments(self, adu_key: bytes) -> list[StoredEntry]:
        return await self._call(self.store.fragments, adu_key)

    async def entries(
        self, *, limit: int | None = None, after: bytes | None = None
    ) -> list[StoredEntry]:
        return await self._call(self.store.entries, limit=limit, after=after)

    async def deletions(
        self, *, since_seq: int = 0, limit: int | None = None
    ) -> list[DeletionRecord]:
        return await self._call(self.store.deletions, since_seq=since_seq, limit=limit)

    async def stats(self) -> StoreStats:
        return await self._call(self.store.stats)

    async def aclose(self) -> None:
        """Drain queued writes, stop the writer and close the store (off the loop thread)."""
        await self._call(self.writer.close)
        self.writer.detach(asyncio.get_running_loop())
        await self._call(self.store.close)

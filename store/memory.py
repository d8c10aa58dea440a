"""The in-memory reference backend: the contract in its plainest form.

Nothing is durable across processes — "durable on return" here means "visible to every later
call". It exists to pin down behaviour (the LMDB backend must match it in the shared contract
suite) and for tests and tools that need a store without a directory. Index queries sort on
demand, which is O(n log n) per query; fine for a reference, not for a loaded node.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from waystation.store._common import (
    DEFAULT_DELETION_LOG,
    Quota,
    apply_changes,
    check_int,
    check_limit,
    check_meta,
    check_reason,
    check_text,
    check_time,
    check_wire,
    dtn_now_ms,
    fill_in,
    fragment_order,
    queue_order,
    stored_record,
)
from waystation.store.api import (
    BundleKeyLike,
    BundleMeta,
    BundleNotFound,
    DeletionRecord,
    Disposition,
    DuplicateBundle,
    InvalidMeta,
    ReasonCode,
    StoreClosed,
    StoredEntry,
    StoreError,
    StoreStats,
    bundle_key,
)
from waystation.store.ops import DeleteOp, PutOp, StoreOp, SweepOp, UpdateOp

__all__ = ["MemoryBundleStore"]


class MemoryBundleStore:
    """A thread-safe dict-backed :class:`~waystation.store.api.BundleStore`."""

    def __init__(
        self,
        *,
        max_bytes: int | None = None,
        max_count: int | None = None,
        deletion_log: int = DEFAULT_DELETION_LOG,
    ) -> None:
        self.quota = Quota(max_bytes, max_count)
        self._lock = threading.RLock()
        self._data: dict[bytes, tuple[bytes, BundleMeta]] = {}
        self._bytes = 0
        self._seq = 0
        self._del_seq = 0
        self._log: deque[DeletionRecord] = deque(maxlen=max(1, deletion_log))
        self._closed = False

    # -- writes ---------------------------------------------------------------------------
    def put(self, bundle_id: BundleKeyLike | bytes, wire: bytes, meta: BundleMeta) -> BundleMeta:
        key = bundle_key(bundle_id)
        wire = check_wire(wire)
        with self._lock:
            self._check_open()
            check_meta(meta)
            seq = self._seq + 1
            _, checksum = stored_record(meta, wire, seq)  # same refusals as a persistent backend
            if key in self._data:
                raise DuplicateBundle(key)
            self.quota.check(len(self._data), self._bytes, len(wire))
            fill_in(meta, len(wire), seq, checksum)
            self._seq = seq
            self._data[key] = (wire, meta.copy())
            self._bytes += len(wire)
            return meta

    def update_meta(self, bundle_id: BundleKeyLike | bytes, **changes: Any) -> BundleMeta:
        key = bundle_key(bundle_id)
        with self._lock:
            self._check_open()
            wire, meta = self._entry(key)
            new = apply_changes(meta, changes)
            new.to_cbor()
            self._data[key] = (wire, new)
            return new.copy()

    def delete(
        self,
        bundle_id: BundleKeyLike | bytes,
        reason: int = ReasonCode.NO_ADDITIONAL_INFORMATION,
        *,
        disposition: Disposition = Disposition.DELETED,
        now_ms: int | None = None,
    ) -> DeletionRecord:
        key = bundle_key(bundle_id)
        reason = check_reason(reason)
        if now_ms is not None:
            now_ms = check_time(now_ms, "now_ms")
        try:
            disposition = Disposition(disposition)
        except ValueError:
            raise InvalidMeta(f"unknown disposition {disposition!r}") from None
        with self._lock:
            self._check_open()
            wire, meta = self._entry(key)
            del self._data[key]
            self._bytes -= len(wire)
            self._del_seq += 1
            record = DeletionRecord(
                self._del_seq,
                key,
                disposition,
                reason,
                dtn_now_ms() if now_ms is None else now_ms,
                meta.copy(deletion_reason=reason),
            )
            self._log.append(record)
            return record

    def sweep_expired(self, now_ms: int, *, batch: int = 256) -> list[DeletionRecord]:
        now_ms = check_time(now_ms, "now_ms")
        batch = check_limit(batch) or 0
        with self._lock:
            due = self.expiring_before(now_ms + 1, limit=batch)
            return [
                self.delete(
                    e.key,
                    ReasonCode.LIFETIME_EXPIRED,
                    disposition=Disposition.EXPIRED,
                    now_ms=now_ms,
                )
                for e in due
            ]

    def apply_batch(self, ops: Sequence[StoreOp]) -> list[Any]:
        """Apply ``ops`` in order; one result (value or the error raised) per op."""
        results: list[Any] = []
        with self._lock:
            for op in ops:
                try:
                    results.append(self._apply_op(op))
                except (StoreError, TypeError) as exc:
                    results.append(exc)
        return results

    def _apply_op(self, op: StoreOp) -> Any:
        if isinstance(op, PutOp):
            return self.put(op.key, op.wire, op.meta)
        if isinstance(op, DeleteOp):
            return self.delete(op.key, op.reason, disposition=op.disposition, now_ms=op.now_ms)
        if isinstance(op, UpdateOp):
            return self.update_meta(op.key, **op.changes)
        if isinstance(op, SweepOp):
            return self.sweep_expired(op.now_ms, batch=op.batch)
        raise TypeError(f"unknown store operation {type(op).__name__}")

    # -- reads ----------------------------------------------------------------------------
    def get(self, bundle_id: BundleKeyLike | bytes) -> bytes:
        key = bundle_key(bundle_id)
        with self._lock:
            self._check_open()
            return self._entry(key)[0]

    def get_meta(self, bundle_id: BundleKeyLike | bytes) -> BundleMeta:
        key = bundle_key(bundle_id)
        with self._lock:
            self._check_open()
            return self._entry(key)[1].copy()

    def contains(self, bundle_id: BundleKeyLike | bytes) -> bool:
        key = bundle_key(bundle_id)
        with self._lock:
            self._check_open()
            return key in self._data

    def _select(self, pred: Any, order: Any, limit: int | None) -> list[StoredEntry]:
        limit = check_limit(limit)
        with self._lock:
            self._check_open()
            hits = [(k, m) for k, (_, m) in self._data.items() if pred(m)]
        hits.sort(key=lambda km: (order(km[1]), km[0]))
        if limit is not None:
            hits = hits[: max(0, limit)]
        return [StoredEntry(k, m.copy()) for k, m in hits]

    def by_destination(self, destination: str, *, limit: int | None = None) -> list[StoredEntry]:
        check_text(destination, "destination")
        return self._select(lambda m: m.destination == destination, lambda m: m.seq, limit)

    def expiring_before(self, t_ms: int, *, limit: int = 1000) -> list[StoredEntry]:
        check_int(t_ms, "t_ms")
        return self._select(lambda m: m.expiry_ms < t_ms, lambda m: m.expiry_ms, limit)

    def queue(self, neighbour: str, *, limit: int | None = None) -> list[StoredEntry]:
        check_text(neighbour, "neighbour")
        return self._select(lambda m: m.queue == neighbour, queue_order, limit)

    def queues(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            self._check_open()
            for _, m in self._data.values():
                if m.queue is not None:
                    counts[m.queue] = counts.get(m.queue, 0) + 1
        return dict(sorted(counts.items()))

    def pending_local(self, endpoint: str, *, limit: int | None = None) -> list[StoredEntry]:
        check_text(endpoint, "endpoint")
        return self._select(lambda m: m.local_endpoint == endpoint, lambda m: m.seq, limit)

    def fragments(self, adu_key: bytes) -> list[StoredEntry]:
        if not isinstance(adu_key, bytes):
            raise TypeError(f"adu_key must be bytes, not {type(adu_key).__name__}")
        return self._select(lambda m: m.adu_key == adu_key, fragment_order, None)

    def entries(self, *, limit: int | None = None, after: bytes | None = None) -> list[StoredEntry]:
        limit = check_limit(limit)
        after = None if after is None else bundle_key(after)
        if after is None:
            return self._select(lambda m: True, lambda m: 0, limit)
        with self._lock:
            self._check_open()
            keys = sorted(k for k in self._data if k > after)
            if limit is not None:
                keys = keys[: max(0, limit)]
            return [StoredEntry(k, self._data[k][1].copy()) for k in keys]

    def deletions(self, *, since_seq: int = 0, limit: int | None = None) -> list[DeletionRecord]:
        limit = check_limit(limit)
        since_seq = check_time(since_seq, "since_seq")
        with self._lock:
            out = [r for r in self._log if r.seq > since_seq]
        return out if limit is None else out[: max(0, limit)]

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(
                count=len(self._data),
                bytes=self._bytes,
                max_count=self.quota.max_count,
                max_bytes=self.quota.max_bytes,
                deletions_logged=len(self._log),
                backend="memory",
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- helpers --------------------------------------------------------------------------
    def _entry(self, key: bytes) -> tuple[bytes, BundleMeta]:
        try:
            return self._data[key]
        except KeyError:
            raise BundleNotFound(key) from None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("store is closed")

    def __enter__(self) -> MemoryBundleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

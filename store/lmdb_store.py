"""The LMDB backend: durable, crash-safe, bounded custody storage.

Layout (one LMDB environment, named sub-databases; every change to a bundle and all of its
index entries happens in one write transaction, so the indexes can never disagree with the
data, even after ``kill -9``)::

    data      key -> wire bytes (exactly what was put; the codec stays the only serialiser)
    meta      key -> BundleMeta CBOR
    ix_dest   h8(destination) | seq8 | key                    -> ''   (by destination)
    ix_exp    expiry_ms8 | key                                -> ''   (expiry sweep)
    ix_queue  h8(neighbour) | (2 - priority)1 | seq8 | key    -> ''   (outbound queues)
    ix_local  h8(endpoint) | seq8 | key                       -> ''   (pending local delivery)
    ix_adu    h8(adu_key) | offset8 | seq8 | key              -> ''   (fragments of an ADU)
    dellog    seq8 -> DeletionRecord CBOR                     (bounded deletion log)
    info      b'format', b'count', b'bytes', b'seq', b'del_seq', b'del_first' -> values

``h8`` is an 8-byte BLAKE2b of the text: LMDB keys are limited to 511 bytes and EIDs are not
short. Queries filter on the real field in the metadata, so a hash collision can cost a
wasted lookup but never a wrong answer.

Durability: the environment is opened with ``sync=True, metasync=True`` and without
``writemap``; a commit returns after LMDB's two fsyncs (data pages, then the meta page), so a
returned ``put`` survives a process kill and a power cut. Single-op calls (``put``) pay that
per call; :meth:`LmdbBundleStore.apply_batch` applies many operations under one commit, which
is what the group-commit writer uses.

Bounds: a :class:`~waystation.store._common.Quota` (bytes, count) refuses a put with
``StoreFull`` before anything is written. The LMDB map is sized with headroom over the quota
(B-tree pages are at most half empty after splits; metadata and indexes add ~300 bytes per
bundle; deleted pages are reused only once no reader needs them), and should LMDB still report
``MDB_MAP_FULL`` the map is grown and the batch retried, so the store never wedges on its own
map. A full *disk* (ENOSPC at commit) becomes ``StoreFull`` as well; LMDB has then aborted the
transaction and nothing is half-written.

Corruption: LMDB trusts its file. A truncated file would make reads SIGBUS, so before any data
page is touched the file size is checked against the committed meta page's last page number;
``verify="full"`` additionally walks every page with py-lmdb's offline verifier. Each bundle's
CRC-32 is stored in its metadata and checked on every ``get``. All of these raise
``StoreCorrupt`` with the path and the finding.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from waystation.store._common import (
    DEFAULT_DELETION_LOG,
    Quota,
    apply_changes,
    check_int,
    check_limit,
    check_meta,
    check_text,
    check_time,
    check_wire,
)
from waystation.store.api import (
    BundleKeyLike,
    BundleMeta,
    BundleNotFound,
    DeletionRecord,
    Disposition,
    DuplicateBundle,
    ReasonCode,
    StoreClosed,
    StoreCorrupt,
    StoredEntry,
    StoreError,
    StoreFull,
    StoreStats,
    bundle_key,
)
from waystation.store.lmdb_binding import driver as lmdb
from waystation.store.ops import DeleteOp, PutOp, StoreOp, SweepOp, UpdateOp
from waystation.store.records import (
    fill_in,
    fill_in_run,
    h8,
    index_keys,
    pack_put,
    stage_deletes,
    stage_puts,
    unpack_meta,
)

__all__ = ["FORMAT", "MARKER_FILE", "LmdbBundleStore", "verify_store"]

FORMAT = b"waystation-store/1"
MARKER_FILE = "waystation-store.json"
_U64 = struct.Struct(">Q")
_U64_LIMIT = 1 << 64
_DBS = ("data", "meta", "ix_dest", "ix_exp", "ix_queue", "ix_local", "ix_adu", "dellog", "info")
_MIN_MAP = 64 << 20
_UNLIMITED_MAP = 16 << 30  # address space only (no file preallocation); grows by doubling
_PER_BUNDLE_OVERHEAD = 2048  # meta + five index entries + B-tree slack, generous
_CORRUPT_ERRORS: tuple[type[BaseException], ...] = (
    lmdb.CorruptedError,
    lmdb.PageNotFoundError,
    lmdb.InvalidError,
    lmdb.VersionMismatchError,
    lmdb.IncompatibleError,
    lmdb.BadValsizeError,
    lmdb.PanicError,
)

Verify = Literal["none", "quick", "full"]


def map_size_for(max_bytes: int | None, max_count: int | None) -> int:
    """An LMDB map size that a store within its quota cannot fill (see module docstring)."""
    if max_bytes is None:
        return _UNLIMITED_MAP
    # Without a count quota assume bundles average >= 256 bytes; a store of tinier bundles may
    # still need the map to grow, which is handled (and costs only a brief pause).
    count_bound = max_count if max_count is not None else max(1, max_bytes // 256)
    return max(_MIN_MAP, 2 * max_bytes + count_bound * _PER_BUNDLE_OVERHEAD + _MIN_MAP)


class LmdbBundleStore:
    """A :class:`~waystation.store.api.BundleStore` in an LMDB environment directory.

    Thread-safe: LMDB serialises writers (one write transaction at a time, across processes
    too), and readers use their own MVCC snapshots. For many concurrent durable writes use
    :meth:`apply_batch` through :class:`~waystation.store.group_commit.GroupCommitWriter` /
    :class:`~waystation.store.group_commit.AsyncBundleStore`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        max_count: int | None = None,
        deletion_log: int = DEFAULT_DELETION_LOG,
        create: bool = True,
        readonly: bool = False,
        verify: Verify = "quick",
        map_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.quota = Quota(max_bytes, max_count)
        self._deletion_log = max(1, deletion_log)
        self._readonly = readonly
        self._closed = False
        self._resize_lock = threading.Condition()
        self._readers = 0
        self._resizing = False
        fresh, marked = self._check_files(create=create and not readonly)
        if verify == "full" and not fresh:
            verify_store(self.path)
        self._map_size = map_size or map_size_for(max_bytes, max_count)
        try:
            self._env = lmdb.open(
                str(self.path),
                map_size=self._map_size,
                max_dbs=len(_DBS) + 2,
                subdir=True,
                readonly=readonly,
                create=False,
                sync=True,
                metasync=True,
                writemap=False,
                readahead=False,
                lock=True,
                max_readers=256,
                max_spare_txns=8,
            )
        except _CORRUPT_ERRORS as exc:
            raise StoreCorrupt(f"{self.path}: not a usable LMDB store: {exc}") from exc
        except lmdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open store: {exc}") from exc
        try:
            if verify != "none":
                self._check_size()
            self._dbs = self._open_dbs(fresh)
            self._db_meta = self._dbs["meta"]
            self._db_data = self._dbs["data"]
            if not marked and not readonly:
                self._write_marker()
        except BaseException:
            self._env.close()
            raise

    # -- opening --------------------------------------------------------------------------
    def _check_files(self, *, create: bool) -> tuple[bool, bool]:
        """Create or recognise the directory: (brand-new store?, marker present?).

        The marker file is written only once the environment has been created and stamped
        with its format, so a crash during creation leaves either nothing or an unmarked
        store that the next open recognises by its format record.
        """
        data = self.path / "data.mdb"
        marker = self.path / MARKER_FILE
        if not self.path.exists():
            if not create:
                raise StoreError(f"{self.path}: no store here")
            self.path.mkdir(parents=True)
        if not self.path.is_dir():
            raise StoreCorrupt(f"{self.path}: not a directory")
        has_marker = marker.exists()
        size = data.stat().st_size if data.exists() else 0
        if has_marker and size == 0:
            # An empty data file would be silently initialised as a new, empty store.
            raise StoreCorrupt(
                f"{data}: data file is missing or empty, but {MARKER_FILE} says a store "
                "lived here (truncated or deleted?)"
            )
        if size == 0 and not create:
            raise StoreError(f"{self.path}: no store here")
        return size == 0, has_marker

    def _write_marker(self) -> None:
        marker = self.path / MARKER_FILE
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": FORMAT.decode()}) + "\n")
        os.replace(tmp, marker)

    def _check_size(self) -> None:
        """Refuse a data file shorter than its committed meta page says (reads would SIGBUS)."""
        info = self._env.info()
        psize = self._env.stat()["psize"]
        need = (info["last_pgno"] + 1) * psize
        have = (self.path / "data.mdb").stat().st_size
        if have < need:
            raise StoreCorrupt(
                f"{self.path / 'data.mdb'}: truncated: {have} bytes on disk, the committed "
                f"state needs {need} ({info['last_pgno'] + 1} pages of {psize})"
            )

    def _open_dbs(self, fresh: bool) -> dict[str, Any]:
        """Open (or, for a new store, create and stamp) the sub-databases.

        An existing environment is recognised before anything is written to it: a foreign or
        damaged one must be refused, not "repaired" by creating what is missing.
        """
        try:
            if fresh:
                with self._env.begin(write=True) as txn:
                    dbs = {n: self._env.open_db(n.encode(), txn=txn) for n in _DBS}
                    txn.put(b"format", FORMAT, db=dbs["info"])
                return dbs
            with self._env.begin() as txn:
                try:
                    info = self._env.open_db(b"info", txn=txn, create=False)
                except lmdb.NotFoundError:
                    raise StoreCorrupt(
                        f"{self.path}: an LMDB environment, but not a waystation store"
                    ) from None
                fmt = txn.get(b"format", db=info)
            if fmt != FORMAT:
                raise StoreCorrupt(f"{self.path}: unknown store format {fmt!r} (want {FORMAT!r})")
            dbs = {}
            for name in _DBS:
                try:
                    dbs[name] = self._env.open_db(name.encode(), create=False)
                except lmdb.NotFoundError:
                    raise StoreCorrupt(f"{self.path}: sub-database {name!r} missing") from None
            return dbs
        except _CORRUPT_ERRORS as exc:
            raise StoreCorrupt(f"{self.path}: damaged store: {exc}") from exc
        except lmdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open sub-databases: {exc}") from exc

    # -- transactions ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        self._enter_reader()
        try:
            with self._env.begin(buffers=False) as txn:
                yield txn
        except _CORRUPT_ERRORS as exc:
            raise StoreCorrupt(f"{self.path}: {exc}") from exc
        except lmdb.Error as exc:
            raise StoreError(f"{self.path}: read failed: {exc}") from exc
        finally:
            self._leave_reader()

    def _enter_reader(self) -> None:
        with self._resize_lock:
            if self._closed:
                raise StoreClosed("store is closed")
            while self._resizing:
                self._resize_lock.wait()
            self._readers += 1

    def _leave_reader(self) -> None:
        with self._resize_lock:
            self._readers -= 1
            if self._readers == 0:
                self._resize_lock.notify_all()

    def _grow_map(self, *, adopt: bool = False) -> None:
        """Double the map, or adopt the size another process set (``adopt``).

        LMDB requires no live transaction in this process while resizing, so new readers
        wait and the resize waits for current ones.
        """
        with self._resize_lock:
            self._resizing = True
            try:
                while self._readers > 0:
                    self._resize_lock.wait()
                new = 0 if adopt else self._map_size * 2
                try:
                    self._env.set_mapsize(new)
                    new = self._env.info()["map_size"]
                except lmdb.Error as exc:
                    raise StoreFull(
                        f"store map cannot grow beyond {self._map_size}: {exc}"
                    ) from exc
                self._map_size = new
            finally:
                self._resizing = False
                self._resize_lock.notify_all()

    # -- the write path -------------------------------------------------------------------
    def apply_batch(
        self,
        ops: Sequence[StoreOp],
        *,
        before_commit: Callable[[], None] | None = None,
        wake_fd: int | None = None,
    ) -> list[Any]:
        """Apply ``ops`` in one write transaction with one durable commit.

        Returns one result per op, in order: the op's return value, or the ``StoreError``
        (or ``TypeError``) it raised; a failed op changes nothing. If the commit itself fails
        every op gets the error and nothing is stored.

        ``before_commit`` is called (in this thread, possibly more than once if the batch is
        retried) once the transaction is staged, just before the commit: the group-commit
        writer resolves the previous batch's callers there, so the event loop works while this
        commit syncs (the commit releases the GIL). ``wake_fd``: the commit first writes one
        byte to it, in the same GIL-free stretch (the writer's event-loop wake-up, so the loop
        does not have to hand the GIL back before this commit can start).
        """
        if self._readonly:
            err = StoreError(f"{self.path}: opened read-only")
            return [err for _ in ops]
        fast = True
        for _attempt in range(8):
            self._enter_reader()
            grow: bool | None = None  # True: double the map; False: adopt another's growth
            try:
                return self._apply_once(
                    ops, fast=fast, before_commit=before_commit, wake_fd=wake_fd
                )
            except _SlowPath:  # a duplicate hid in a bulk put: redo the batch one op at a time
                fast = False
            except lmdb.MapFullError:
                grow = True
            except lmdb.MapResizedError:  # another process grew the map
                grow = False
            except StoreError as exc:
                return [exc for _ in ops]
            finally:
                self._leave_reader()
            if grow is not None:
                try:
                    self._grow_map(adopt=not grow)
                except StoreError as exc:
                    return [exc for _ in ops]
        full = StoreFull("store map still full after growing")
        return [full for _ in ops]

    def _apply_once(
        self,
        ops: Sequence[StoreOp],
        *,
        fast: bool = True,
        before_commit: Callable[[], None] | None = None,
        wake_fd: int | None = None,
    ) -> list[Any]:
        dbs = self._dbs
        try:
            txn = self._env.begin(write=True, buffers=False)
        except lmdb.MapResizedError:
            raise
        except lmdb.Error as exc:
            raise StoreError(f"{self.path}: cannot begin write: {exc}") from exc
        try:
            state = _Counters.load(txn, dbs["info"])
            results: list[Any] = []
            i, n = 0, len(ops)
            while i < n:
                if fast and isinstance(ops[i], PutOp):
                    j = i + 1
                    while j < n and isinstance(ops[j], PutOp):
                        j += 1
                    if j - i > 1:
                        results.extend(self._put_run(txn, state, ops[i:j]))  # type: ignore[arg-type]
                        i = j
                        continue
                if fast and isinstance(ops[i], DeleteOp):
                    j = i + 1
                    while j < n and isinstance(ops[j], DeleteOp):
                        j += 1
                    if j - i > 1:
                        results.extend(self._delete_ops(txn, state, ops[i:j]))  # type: ignore[arg-type]
                        i = j
                        continue
                try:
                    results.append(self._apply_op(txn, state, ops[i]))
                except (StoreError, TypeError) as exc:
                    results.append(exc)
                i += 1
            state.save(txn, dbs["info"])
        except BaseException as exc:
            txn.abort()
            if isinstance(exc, lmdb.MapFullError):
                raise
            if isinstance(exc, _CORRUPT_ERRORS):
                raise StoreCorrupt(f"{self.path}: {exc}") from exc
            if isinstance(exc, lmdb.Error):
                raise StoreError(f"{self.path}: write failed: {exc}") from exc
            raise
        if before_commit is not None:
            try:
                before_commit()
            except BaseException:
                txn.abort()
                raise
        try:
            lmdb.commit(txn, wake_fd)  # writes wake_fd (if any) GIL-free, then syncs
        except lmdb.MapFullError:
            raise
        except lmdb.Error as exc:
            if _is_enospc(exc) or self._disk_short(ops):
                raise StoreFull(
                    f"{self.path}: disk full; nothing from this batch was stored"
                ) from exc
            raise StoreError(f"{self.path}: commit failed: {exc}") from exc
        return results

    def _disk_short(self, ops: Sequence[StoreOp]) -> bool:
        """Is the filesystem too full for this batch? (LMDB reports a short write as EIO.)"""
        need = sum(len(op.wire) for op in ops if isinstance(op, PutOp)) + (1 << 20)
        try:
            fs = os.statvfs(self.path)
        except OSError:
            return False
        return fs.f_bavail * fs.f_frsize < need

    def _apply_op(self, txn: Any, state: _Counters, op: StoreOp) -> Any:
        if isinstance(op, PutOp):
            return self._put_in(txn, state, bundle_key(op.key), check_wire(op.wire), op.meta)
        if isinstance(op, DeleteOp):
            now_ms = None if op.now_ms is None else check_time(op.now_ms, "now_ms")
            return self._delete_in(
                txn, state, bundle_key(op.key), op.reason, op.disposition, now_ms
            )
        if isinstance(op, UpdateOp):
            if not isinstance(op.changes, dict):
                raise TypeError("UpdateOp.changes must be a dict")
            return self._update_in(txn, bundle_key(op.key), op.changes)
        if isinstance(op, SweepOp):
            return self._sweep_in(
                txn, state, check_time(op.now_ms, "now_ms"), check_limit(op.batch) or 0
            )
        raise TypeError(f"unknown store operation {type(op).__name__}")

    def _put_in(
        self, txn: Any, state: _Counters, key: bytes, wire: bytes, meta: BundleMeta
    ) -> BundleMeta:
        # The hot path (one call per bundle): locals instead of attribute chains, and the
        # quota's error path only when a limit is actually crossed.
        size = len(wire)
        seq = state.seq + 1
        quota = self.quota
        if (quota.max_count is not None and state.count >= quota.max_count) or (
            quota.max_bytes is not None and state.bytes + size > quota.max_bytes
        ):
            check_meta(meta)  # a bad meta is reported before anything else, as everywhere
            if txn.get(key, db=self._db_meta) is not None:
                raise DuplicateBundle(key)  # the more useful answer
            quota.check(state.count, state.bytes, size)
        packed, checksum, ix_entries = pack_put(key, wire, meta, seq)
        # overwrite=False doubles as the duplicate check: nothing is written if the key exists
        if not txn.put(key, packed, db=self._db_meta, overwrite=False):
            raise DuplicateBundle(key)
        put = txn.put
        put(key, wire, db=self._db_data)
        dbs = self._dbs
        for name, ix, value in ix_entries:
            put(ix, value, db=dbs[name])
        state.seq = seq
        state.count += 1
        state.bytes += size
        return fill_in(meta, size, seq, checksum)

    def _put_run(self, txn: Any, state: _Counters, run: Sequence[PutOp]) -> list[Any]:
        """Many consecutive puts with ONE bulk insert (``put_many``) for all sub-databases.

        Same outcome as ``_put_in`` for each op. The records of all accepted puts go to the
        binding in one list -- every meta first (with NOOVERWRITE: the duplicate check), then
        every data record, then the index entries one sub-database after another -- so the
        compiled binding inserts the whole batch in one C loop with the GIL released once
        (docs/store.md). A duplicate stops the insert at its meta; the batch is then redone
        op by op (``_SlowPath``), which reports exactly which ones.
        """
        results: list[Any] = [None] * len(run)
        quota = self.quota
        limits = (quota.max_count, quota.max_bytes)
        # APPEND: bundle keys (source, creation time) and the index keys after them mostly
        # ascend, and an appended key fills the last leaf page instead of splitting it in half
        # -- about a third fewer pages per commit. A key that does not sort last is put plainly.
        app = lmdb.APPEND
        flags = (lmdb.NOOVERWRITE | app, app)
        db_meta, dbs = self._db_meta, self._dbs
        meta_items: list[tuple[Any, bytes, bytes, int]] = []
        ix_items: dict[str, list[tuple[Any, bytes, bytes, int]]] = {}
        accepted: list[tuple[int, BundleMeta, int, int, int]] = []
        out = (meta_items, [], ix_items, accepted)
        counters = [state.seq, state.count, state.bytes]
        i, n = 0, len(run)
        while True:
            # the plain puts in one compiled loop (records.stage_puts); the op it stops at gets
            # the careful path here, which names its error or finds it a duplicate
            i = stage_puts(run, i, counters, limits, dbs, flags, out)
            if i >= n:
                break
            op = run[i]
            try:
                # ops may come straight from a caller (writer.submit), not via put()
                key, wire = bundle_key(op.key), check_wire(op.wire)
                meta = op.meta
                seq, count, used = counters
                size = len(wire)
                if (limits[0] is not None and count >= limits[0]) or (
                    limits[1] is not None and used + size > limits[1]
                ):
                    if any(item[1] == key for item in meta_items):
                        raise _SlowPath  # a duplicate within this run: let _put_in name it
                    check_meta(meta)
                    if txn.get(key, db=db_meta) is not None:
                        raise DuplicateBundle(key)
                    quota.check(count, used, size)
                # a bytes-like key or wire given as another type: stage it as bytes
                staged = stage_puts([PutOp(key, wire, meta)], 0, counters, limits, dbs, flags, out)
                if staged:
                    accepted[-1] = (i, *accepted[-1][1:])
                else:
                    pack_put(key, wire, meta, seq + 1)  # raises what is wrong with meta
                    raise StoreError(f"put of {key!r} could not be staged")
            except (StoreError, TypeError) as exc:
                results[i] = exc
            i += 1
        if meta_items:
            items = meta_items
            items += out[1]
            for lst in ix_items.values():
                items += lst
            if lmdb.put_many(txn, items) != len(items):
                raise _SlowPath  # only metas carry NOOVERWRITE: a duplicate key
        state.seq, state.count, state.bytes = counters
        fill_in_run(accepted, results)
        return results

    def _delete_ops(self, txn: Any, state: _Counters, run: Sequence[DeleteOp]) -> list[Any]:
        """Consecutive deletes as one run (see :meth:`_delete_run`); bad args fail alone."""
        specs: list[tuple[bytes, int, Disposition, int | None] | BaseException] = []
        append = specs.append
        for op in run:
            key, now_ms = op.key, op.now_ms
            # the node's ops: a plain key and a time in range pass as they are (what
            # bundle_key and check_time would return for them), without two calls per op
            if (
                type(key) is bytes
                and 0 < len(key) <= 400
                and (now_ms is None or (type(now_ms) is int and 0 <= now_ms < _U64_LIMIT))
            ):
                append((key, op.reason, op.disposition, now_ms))
                continue
            try:
                now_ms = None if op.now_ms is None else check_time(op.now_ms, "now_ms")
                specs.append((bundle_key(op.key), op.reason, op.disposition, now_ms))
            except (StoreError, TypeError) as exc:
                specs.append(exc)
        return self._delete_run(txn, state, specs)

    def _delete_run(
        self,
        txn: Any,
        state: _Counters,
        specs: Sequence[tuple[bytes, int, Disposition, int | None] | BaseException],
    ) -> list[Any]:
        """Delete many bundles: read every meta first, then ONE bulk delete and ONE bulk put.

        Each spec gets its result (a ``DeletionRecord``, or the error: ``BundleNotFound`` --
        also for a key deleted earlier in this run --, a bad reason or disposition); a failed
        one changes nothing. All reads happen before any
        write, so an error cannot leave a half-applied run behind.
        """
        dbs = self._dbs
        db_log = dbs["dellog"]
        results: list[Any] = []
        deletes: list[tuple[Any, bytes]] = []
        records: list[DeletionRecord] = []
        packed_log: list[bytes] = []
        get_meta = functools.partial(txn.get, db=self._db_meta)
        del_seq, removed, freed = stage_deletes(
            specs, get_meta, state.del_seq, dbs, (results, deletes, records, packed_log)
        )
        count, used = state.count - removed, state.bytes - freed
        if not records:
            return results
        # The log keeps the newest ``deletion_log`` records: trim what existed before this run
        # and drop this run's own records that are already too old, so the end state equals
        # writing each record and trimming after it.
        old_first, old_seq = state.del_first, state.del_seq
        first = max(old_first, del_seq - self._deletion_log)
        for seq_i in range(old_first + 1, min(first, old_seq) + 1):
            deletes.append((db_log, _U64.pack(seq_i)))
        lmdb.delete_many(txn, deletes)
        puts = [
            (db_log, _U64.pack(rec.seq), packed, lmdb.APPEND)  # log sequence numbers ascend
            for rec, packed in zip(records, packed_log)
            if rec.seq > first
        ]
        lmdb.put_many(txn, puts)
        state.count, state.bytes, state.del_seq, state.del_first = count, used, del_seq, first
        return results

    def _load_meta(self, txn: Any, key: bytes) -> BundleMeta:
        raw = txn.get(key, db=self._dbs["meta"])
        if raw is None:
            raise BundleNotFound(key)
        return unpack_meta(raw)

    def _update_in(self, txn: Any, key: bytes, changes: dict[str, Any]) -> BundleMeta:
        dbs = self._dbs
        old = self._load_meta(txn, key)
        new = apply_changes(old, changes)
        packed = new.to_cbor()
        old_ix = set(index_keys(key, old))
        new_ix = set(index_keys(key, new))
        for name, ix, _ in old_ix - new_ix:
            txn.delete(ix, db=dbs[name])
        for name, ix, value in new_ix - old_ix:
            txn.put(ix, value, db=dbs[name])
        txn.put(key, packed, db=dbs["meta"])
        return new

    def _delete_in(
        self,
        txn: Any,
        state: _Counters,
        key: bytes,
        reason: int,
        disposition: Disposition,
        now_ms: int | None,
    ) -> DeletionRecord:
        """One delete: a run of one (:meth:`_delete_run`), its error raised."""
        (result,) = self._delete_run(txn, state, [(key, reason, disposition, now_ms)])
        if isinstance(result, BaseException):
            raise result
        record: DeletionRecord = result
        return record

    def _sweep_in(
        self, txn: Any, state: _Counters, now_ms: int, batch: int
    ) -> list[DeletionRecord]:
        keys: list[bytes] = []
        with txn.cursor(db=self._dbs["ix_exp"]) as cur:
            for ix in cur.iternext(keys=True, values=False):
                if len(keys) >= batch or _U64.unpack_from(ix)[0] > now_ms:
                    break
                keys.append(ix[8:])
        expired = (ReasonCode.LIFETIME_EXPIRED, Disposition.EXPIRED, now_ms)
        results = self._delete_run(txn, state, [(k, *expired) for k in keys])
        for result in results:
            if isinstance(result, BaseException):
                raise result  # an index entry without its bundle: nothing was written
        return results

    def _one(self, op: StoreOp) -> Any:
        (result,) = self.apply_batch([op])
        if isinstance(result, BaseException):
            raise result
        return result

    # -- the BundleStore protocol: writes -------------------------------------------------
    def put(self, bundle_id: BundleKeyLike | bytes, wire: bytes, meta: BundleMeta) -> BundleMeta:
        result: BundleMeta = self._one(PutOp(bundle_key(bundle_id), check_wire(wire), meta))
        return result

    def update_meta(self, bundle_id: BundleKeyLike | bytes, **changes: Any) -> BundleMeta:
        result: BundleMeta = self._one(UpdateOp(bundle_key(bundle_id), changes))
        return result

    def delete(
        self,
        bundle_id: BundleKeyLike | bytes,
        reason: int = ReasonCode.NO_ADDITIONAL_INFORMATION,
        *,
        disposition: Disposition = Disposition.DELETED,
        now_ms: int | None = None,
    ) -> DeletionRecord:
        if now_ms is not None:
            now_ms = check_time(now_ms, "now_ms")
        result: DeletionRecord = self._one(
            DeleteOp(bundle_key(bundle_id), reason, disposition, now_ms)
        )
        return result

    def sweep_expired(self, now_ms: int, *, batch: int = 256) -> list[DeletionRecord]:
        op = SweepOp(check_time(now_ms, "now_ms"), check_limit(batch) or 0)
        result: list[DeletionRecord] = self._one(op)
        return result

    # -- reads ----------------------------------------------------------------------------
    def get(self, bundle_id: BundleKeyLike | bytes) -> bytes:
        key = bundle_key(bundle_id)
        with self._read() as txn:
            wire = txn.get(key, db=self._dbs["data"])
            raw = txn.get(key, db=self._dbs["meta"])
        if wire is None or raw is None:
            if (wire is None) != (raw is None):
                raise StoreCorrupt(f"{self.path}: bundle {key.hex()} has data or meta but not both")
            raise BundleNotFound(key)
        meta = unpack_meta(raw)
        if len(wire) != meta.size or zlib.crc32(wire) != meta.checksum:
            raise StoreCorrupt(f"{self.path}: bundle {key.hex()} fails its stored checksum")
        return bytes(wire)

    def get_meta(self, bundle_id: BundleKeyLike | bytes) -> BundleMeta:
        key = bundle_key(bundle_id)
        with self._read() as txn:
            return self._load_meta(txn, key)

    def contains(self, bundle_id: BundleKeyLike | bytes) -> bool:
        key = bundle_key(bundle_id)
        with self._read() as txn:
            return txn.get(key, db=self._dbs["meta"]) is not None

    def _scan(
        self, db: str, prefix: bytes, key_at: int, limit: int | None, want: Any = None
    ) -> list[StoredEntry]:
        """Walk index ``db`` from ``prefix``; the bundle key starts at ``key_at`` in each entry."""
        out: list[StoredEntry] = []
        limit = check_limit(limit)
        if limit == 0:
            return out
        with self._read() as txn, txn.cursor(db=self._dbs[db]) as cur:
            if not cur.set_range(prefix):
                return out
            for ix in cur.iternext(keys=True, values=False):
                if not ix.startswith(prefix):
                    break
                key = ix[key_at:]
                meta = self._load_meta(txn, key)
                if want is not None and not want(meta):
                    continue  # h8 collision
                out.append(StoredEntry(key, meta))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def by_destination(self, destination: str, *, limit: int | None = None) -> list[StoredEntry]:
        check_text(destination, "destination")
        return self._scan(
            "ix_dest", h8(destination), 16, limit, lambda m: m.destination == destination
        )

    def expiring_before(self, t_ms: int, *, limit: int = 1000) -> list[StoredEntry]:
        out: list[StoredEntry] = []
        t_ms = check_int(t_ms, "t_ms")
        if check_limit(limit) == 0:
            return out
        with self._read() as txn, txn.cursor(db=self._dbs["ix_exp"]) as cur:
            for ix in cur.iternext(keys=True, values=False):
                if _U64.unpack_from(ix)[0] >= t_ms:
                    break
                key = ix[8:]
                out.append(StoredEntry(key, self._load_meta(txn, key)))
                if len(out) >= limit:
                    break
        return out

    def queue(self, neighbour: str, *, limit: int | None = None) -> list[StoredEntry]:
        check_text(neighbour, "neighbour")
        return self._scan("ix_queue", h8(neighbour), 17, limit, lambda m: m.queue == neighbour)

    def queues(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._read() as txn, txn.cursor(db=self._dbs["ix_queue"]) as cur:
            for raw in cur.iternext(keys=False, values=True):
                try:
                    name = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise StoreCorrupt(f"{self.path}: damaged queue index entry") from None
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))

    def pending_local(self, endpoint: str, *, limit: int | None = None) -> list[StoredEntry]:
        check_text(endpoint, "endpoint")
        return self._scan(
            "ix_local", h8(endpoint), 16, limit, lambda m: m.local_endpoint == endpoint
        )

    def fragments(self, adu_key: bytes) -> list[StoredEntry]:
        if not isinstance(adu_key, bytes):
            raise TypeError(f"adu_key must be bytes, not {type(adu_key).__name__}")
        return self._scan("ix_adu", h8(adu_key), 24, None, lambda m: m.adu_key == adu_key)

    def entries(self, *, limit: int | None = None, after: bytes | None = None) -> list[StoredEntry]:
        out: list[StoredEntry] = []
        limit = check_limit(limit)
        after = None if after is None else bundle_key(after)
        if limit == 0:
            return out
        with self._read() as txn, txn.cursor(db=self._dbs["meta"]) as cur:
            if after is None:
                found = cur.first()
            else:
                found = cur.set_range(after)
                if found and cur.key() == after:
                    found = cur.next()
            while found:
                out.append(StoredEntry(cur.key(), unpack_meta(cur.value())))
                if limit is not None and len(out) >= limit:
                    break
                found = cur.next()
        return out

    def deletions(self, *, since_seq: int = 0, limit: int | None = None) -> list[DeletionRecord]:
        out: list[DeletionRecord] = []
        limit = check_limit(limit)
        since_seq = check_time(since_seq, "since_seq")
        if limit == 0 or since_seq >= (1 << 64) - 1:
            return out
        with self._read() as txn, txn.cursor(db=self._dbs["dellog"]) as cur:
            if not cur.set_range(_U64.pack(since_seq + 1)):
                return out
            for raw in cur.iternext(keys=False, values=True):
                out.append(DeletionRecord.from_cbor(raw))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def stats(self) -> StoreStats:
        with self._read() as txn:
            state = _Counters.load(txn, self._dbs["info"])
            info = self._env.info()
            psize = self._env.stat()["psize"]
        return StoreStats(
            count=state.count,
            bytes=state.bytes,
            max_count=self.quota.max_count,
            max_bytes=self.quota.max_bytes,
            deletions_logged=state.del_seq - state.del_first,
            backend="lmdb",
            path=str(self.path),
            map_size=info["map_size"],
            map_used=(info["last_pgno"] + 1) * psize,
        )

    def check(self) -> list[str]:
        """Cross-check data, meta, checksums and every index; return the problems found."""
        problems: list[str] = []
        with self._read() as txn:
            state = _Counters.load(txn, self._dbs["info"])
            want: dict[str, set[tuple[bytes, bytes]]] = {
                n: set() for n in _DBS if n.startswith("ix_")
            }
            count = total = 0
            for key, raw in txn.cursor(db=self._dbs["meta"]):
                try:
                    meta = unpack_meta(raw)
                except StoreCorrupt as exc:
                    problems.append(f"{key.hex()}: {exc}")
                    continue
                wire = txn.get(key, db=self._dbs["data"])
                if wire is None:
                    problems.append(f"{key.hex()}: metadata without data")
                elif len(wire) != meta.size or zlib.crc32(wire) != meta.checksum:
                    problems.append(f"{key.hex()}: checksum mismatch")
                count += 1
                total += meta.size
                for name, ix, value in index_keys(key, meta):
                    want[name].add((ix, value))
            for key in txn.cursor(db=self._dbs["data"]).iternext(keys=True, values=False):
                if txn.get(key, db=self._dbs["meta"]) is None:
                    problems.append(f"{key.hex()}: data without metadata")
            for name, keys in want.items():
                have = set(txn.cursor(db=self._dbs[name]).iternext(keys=True, values=True))
                if have != keys:
                    problems.append(
                        f"index {name}: {len(have - keys)} stale, "
                        f"{len(keys - have)} missing entries"
                    )
            if (count, total) != (state.count, state.bytes):
                problems.append(
                    f"counters say {state.count} bundles / {state.bytes} bytes, "
                    f"found {count} / {total}"
                )
        return problems

    def close(self) -> None:
        with self._resize_lock:
            if self._closed:
                return
            self._closed = True
            while self._readers:
                self._resize_lock.wait()
        self._env.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> LmdbBundleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SlowPath(Exception):
    """Internal: abort this transaction and apply the batch one operation at a time."""


class _Counters:
    """The ``info`` counters, read at the start of a write transaction and saved at its end."""

    __slots__ = ("bytes", "count", "del_first", "del_seq", "seq")
    _NAMES = ("count", "bytes", "seq", "del_seq", "del_first")

    def __init__(self, values: dict[str, int]) -> None:
        self.count = values["count"]
        self.bytes = values["bytes"]
        self.seq = values["seq"]
        self.del_seq = values["del_seq"]
        self.del_first = values["del_first"]

    @classmethod
    def load(cls, txn: Any, db: Any) -> _Counters:
        values = {}
        for name in cls._NAMES:
            raw = txn.get(name.encode(), db=db)
            if raw is not None and len(raw) != 8:
                raise StoreCorrupt(f"counter {name!r} is damaged")
            values[name] = 0 if raw is None else _U64.unpack(raw)[0]
        return cls(values)

    def save(self, txn: Any, db: Any) -> None:
        for name in self._NAMES:
            txn.put(name.encode(), _U64.pack(getattr(self, name)), db=db)


def _is_enospc(exc: lmdb.Error) -> bool:
    code = getattr(exc, "code", None) or (exc.args[1] if len(exc.args) > 1 else None)
    return code == errno.ENOSPC or "No space left" in str(exc)


def verify_store(path: str | os.PathLike[str]) -> None:
    """Walk every page of the store's data file offline; raise StoreCorrupt on any finding.

    Uses py-lmdb's pure-Python verifier (``lmdb.verify``), which never hands the file to the
    LMDB engine, so a damaged file cannot crash the process. It is O(file size) in Python.
    """
    try:
        from lmdb import verify as lmdb_verify
    except ImportError as exc:  # py-lmdb < 2
        raise StoreError("full verification needs py-lmdb with lmdb.verify") from exc
    data = Path(path) / "data.mdb"
    try:
        problems = lmdb_verify.verify(str(data))
    except lmdb_verify.VerifyError as exc:
        raise StoreCorrupt(f"{data}: {exc}") from exc
    except (OSError, ValueError, IndexError, struct.error) as exc:
        raise StoreCorrupt(f"{data}: unreadable: {exc}") from exc
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise StoreCorrupt(f"{data}: {len(problems)} problem(s): {shown}{more}")

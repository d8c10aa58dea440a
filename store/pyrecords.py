"""The store's per-bundle record building, in pure Python: the reference for ``ext/storerec``.

What the LMDB backend writes for one bundle is decided here and only here:

* :func:`pack_put` — validate the caller's :class:`BundleMeta`, build the stored metadata
  record (the CBOR array of :meth:`BundleMeta.to_cbor_obj` with the store-owned fields
  ``size``/``seq``/``checksum`` overridden and ``deletion_reason`` cleared), the CRC-32 of the
  wire bytes, and every index entry, in one call;
* :func:`index_keys` — the index entries of a bundle (used by put, update, delete and check);
* :func:`fill_in` — after a successful put, the caller's meta gets the store-owned fields
  (``waystation.store._common.fill_in``, re-exported here so it has a compiled twin);
* :func:`unpack_meta` — a stored metadata record back into a :class:`BundleMeta`
  (``BundleMeta.from_cbor``: StoreCorrupt on anything damaged);
* :func:`pack_deletion` — a deletion-log record (``DeletionRecord.to_cbor`` of the bundle's
  metadata with ``deletion_reason`` set), without copying the metadata;
* :func:`stage_puts` / :func:`fill_in_run` — :func:`pack_put` and :func:`fill_in` over a run
  of puts, producing the LMDB backend's bulk-insert items directly (the writer thread's
  per-bundle loop, which holds the GIL while the event loop waits for it);
* :func:`stage_deletes` — the same for a run of deletes: each bundle's metadata decoded, its
  keys to remove, its deletion-log record and its :class:`DeletionRecord`.

``waystation.ext.storerec`` is the compiled twin (same names, byte-identical output, the same
exceptions: anything it does not recognise it hands to these functions). Select between them
through :mod:`waystation.store.records`, never directly.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Sequence
from typing import Any

import cbor2
from waystation.store._common import (
    check_meta,
    check_reason,
    dtn_now_ms,
    fill_in,
    stored_record,
)
from waystation.store.api import (
    BundleMeta,
    BundleNotFound,
    DeletionRecord,
    Disposition,
    InvalidMeta,
    StoreError,
)

__all__ = [
    "fill_in",
    "fill_in_run",
    "h8",
    "index_keys",
    "pack_deletion",
    "pack_put",
    "stage_deletes",
    "stage_puts",
    "unpack_meta",
]

_U64 = struct.Struct(">Q")
_DELETION_REASON_AT = 14  # index of deletion_reason in BundleMeta.to_cbor_obj()

IndexEntry = tuple[str, bytes, bytes]  # (sub-database name, index key, value)


@functools.lru_cache(maxsize=8192)
def h8(text: str | bytes) -> bytes:
    """8-byte BLAKE2b of a text (UTF-8) or bytes: the fixed-size index prefix of a long name."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return hashlib.blake2b(raw, digest_size=8).digest()


@functools.lru_cache(maxsize=1024)
def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def index_keys(key: bytes, m: BundleMeta, seq_no: int | None = None) -> list[IndexEntry]:
    """Every index entry of one bundle, in a fixed order (dest, exp, queue, local, adu).

    Layouts (see :mod:`waystation.store.lmdb_store`): ``ix_dest`` h8(destination) | seq8 | key;
    ``ix_exp`` expiry8 | key; ``ix_queue`` h8(queue) | 2-priority | seq8 | key -> queue name;
    ``ix_local`` h8(endpoint) | seq8 | key; ``ix_adu`` h8(adu_key) | offset8 | seq8 | key.
    """
    seq = _U64.pack(m.seq if seq_no is None else seq_no)
    out = [
        ("ix_dest", h8(m.destination) + seq + key, b""),
        ("ix_exp", _U64.pack(m.expiry_ms) + key, b""),
    ]
    if m.queue is not None:  # the value names the queue, so queues() needs no meta decode
        out.append(
            ("ix_queue", h8(m.queue) + bytes((2 - int(m.priority),)) + seq + key, _utf8(m.queue))
        )
    if m.local_endpoint is not None:
        out.append(("ix_local", h8(m.local_endpoint) + seq + key, b""))
    if m.adu_key is not None:
        out.append(("ix_adu", h8(m.adu_key) + _U64.pack(m.fragment_offset or 0) + seq + key, b""))
    return out


def pack_put(key: bytes, wire: bytes, meta: Any, seq: int) -> tuple[bytes, int, list[IndexEntry]]:
    """(stored meta record, CRC-32 of ``wire``, index entries) for a put of ``wire`` as ``seq``.

    Raises ``TypeError`` if ``meta`` is not a :class:`BundleMeta`, :class:`InvalidMeta` if it
    does not validate or cannot be CBOR-encoded. ``meta`` itself is not changed.
    """
    meta = check_meta(meta)
    packed, checksum = stored_record(meta, wire, seq)
    return packed, checksum, index_keys(key, meta, seq)


def stage_puts(
    run: Sequence[Any],
    start: int,
    counters: list[int],
    limits: tuple[int | None, int | None],
    dbs: dict[str, Any],
    flags: tuple[int, int],
    out: tuple[list[Any], list[Any], dict[str, list[Any]], list[Any]],
) -> int:
    """Stage ``run[start:]`` (``PutOp``-like: ``.key``, ``.wire``, ``.meta``) for one bulk insert.

    ``counters`` is ``[seq, count, bytes]`` before the first op, updated in place; ``limits``
    ``(max_count, max_bytes)``; ``dbs`` maps ``"meta"``, ``"data"`` and each index name to its
    handle; ``flags`` ``(meta flags, data and index flags)``. Each staged put appends
    ``(db, key, value, flags)`` items to ``out = (meta items, data items, {index name: items},
    accepted)`` and ``(position, meta, size, seq, checksum)`` to ``accepted``, taking the next
    ``seq``. Stops at the first op that is not a plain valid put within the limits (bad key,
    wire or meta; a quota crossed) and returns its position -- ``len(run)`` when all are
    staged: the caller takes that one through its careful path, then calls again after it.
    """
    seq, count, used = counters
    max_count, max_bytes = limits
    meta_items, data_items, ix_items, accepted = out
    meta_flags, other_flags = flags
    db_meta, db_data = dbs["meta"], dbs["data"]
    i, n = start, len(run)
    while i < n:
        op = run[i]
        key, wire, meta = op.key, op.wire, op.meta
        if type(key) is not bytes or not 0 < len(key) <= 400 or type(wire) is not bytes:
            break
        size = len(wire)
        if not size or (max_count is not None and count >= max_count):
            break
        if max_bytes is not None and used + size > max_bytes:
            break
        try:
            packed, checksum, entries = pack_put(key, wire, meta, seq + 1)
        except (StoreError, TypeError):
            break
        seq += 1
        count += 1
        used += size
        meta_items.append((db_meta, key, packed, meta_flags))
        data_items.append((db_data, key, wire, other_flags))
        for name, ix, value in entries:
            lst = ix_items.get(name)
            if lst is None:
                lst = ix_items[name] = []
            lst.append((dbs[name], ix, value, other_flags))
        accepted.append((i, meta, size, seq, checksum))
        i += 1
    counters[0], counters[1], counters[2] = seq, count, used
    return i


def fill_in_run(accepted: Sequence[tuple[int, Any, int, int, int]], results: list[Any]) -> None:
    """``results[i] = fill_in(meta, size, seq, checksum)`` for each entry of ``accepted``."""
    for i, meta, size, seq, checksum in accepted:
        results[i] = fill_in(meta, size, seq, checksum)


def stage_deletes(
    specs: Sequence[Any],
    get_meta: Any,
    del_seq: int,
    dbs: dict[str, Any],
    out: tuple[list[Any], list[Any], list[Any], list[bytes]],
) -> tuple[int, int, int]:
    """Stage a run of deletes; returns ``(last deletion-log seq, bundles removed, bytes freed)``.

    ``specs`` holds ``(key, reason, disposition, now_ms or None)`` tuples, or an exception
    (passed through as that spec's result); ``get_meta(key)`` gives a bundle's stored metadata
    record or None. Appends to ``out = (results, keys to delete, records, packed log records)``:
    each spec's result -- its :class:`DeletionRecord` (numbered from ``del_seq + 1``) or the
    error (bad reason or disposition, ``BundleNotFound`` also for a key removed earlier in the
    run, ``StoreCorrupt``) -- and, for each removed bundle, ``(db, key)`` for its index
    entries, metadata and wire, and its packed deletion-log record. Only reads happen here.
    """
    results, deletes, records, packed_log = out
    db_meta, db_data = dbs["meta"], dbs["data"]
    gone: set[bytes] = set()
    removed = freed = 0
    for spec in specs:
        if isinstance(spec, BaseException):
            results.append(spec)
            continue
        key, reason, disposition, now_ms = spec
        try:
            reason = check_reason(reason)
            if disposition.__class__ is not Disposition:  # the enum call costs ~1 us
                try:
                    disposition = Disposition(disposition)
                except ValueError:
                    raise InvalidMeta(f"unknown disposition {disposition!r}") from None
            raw = None if key in gone else get_meta(key)
            if raw is None:
                raise BundleNotFound(key)
            meta = unpack_meta(raw)
        except (StoreError, TypeError) as exc:
            results.append(exc)
            continue
        gone.add(key)
        for name, ix, _ in index_keys(key, meta):
            deletes.append((dbs[name], ix))
        deletes.append((db_meta, key))
        deletes.append((db_data, key))
        removed += 1
        freed += meta.size
        del_seq += 1
        time_ms = dtn_now_ms() if now_ms is None else now_ms
        # the packed record is DeletionRecord.to_cbor() of this very record
        packed_log.append(pack_deletion(del_seq, key, disposition, reason, time_ms, meta))
        meta.deletion_reason = reason  # meta was just decoded: ours, no copy needed
        record = DeletionRecord(del_seq, key, disposition, reason, time_ms, meta)
        records.append(record)
        results.append(record)
    return del_seq, removed, freed


def pack_deletion(
    seq: int, key: bytes, disposition: str, reason: int, time_ms: int, meta: BundleMeta
) -> bytes:
    """``DeletionRecord(seq, key, disposition, reason, time_ms,
    meta.copy(deletion_reason=reason)).to_cbor()``, without the copy."""
    obj = meta.to_cbor_obj()
    obj[_DELETION_REASON_AT] = reason
    try:
        return cbor2.dumps([seq, key, str(disposition), reason, time_ms, obj])
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidMeta(f"metadata not CBOR-serialisable: {exc}") from exc


def unpack_meta(raw: bytes) -> BundleMeta:
    """A stored metadata record as a :class:`BundleMeta` (``BundleMeta.from_cbor``)."""
    return BundleMeta.from_cbor(raw)

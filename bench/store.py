"""Durable put throughput of the custody store vs raw py-lmdb, measured in the same run.

For 1 KiB and 64 KiB payloads: real BPv7 bundles (built and encoded by the project's codec
before timing) go through ``AsyncBundleStore`` -> group-commit writer -> ``LmdbBundleStore``
from many concurrent asyncio producers; a put counts when its future resolves, i.e. after the
durable commit (``sync=True, metasync=True``). The reference is raw py-lmdb: the same wire
bytes put into a fresh environment with the same sync flags, committed every B puts, where B
is the mean batch size the store's writer actually achieved in the matching run. The store
writes more per bundle (metadata CBOR, index entries, counters, deletion-log bookkeeping) —
the ratio is the price of those, plus asyncio. Because the writer commits a long queue in two
halves (so one half syncs while the event loop resumes the other), its batches are about half
the producer count; a second reference, raw py-lmdb committing ``--producers`` puts at a time
(every waiting put in one commit, the raw side's best case here), is printed next to it.

Each configuration runs ``--repeat`` times interleaved (store, raw, store, raw...) in fresh
directories; the table shows medians (and each repeat's ratio). The host drifts, so compare
only within one run.

A second table times deleting the same bundles again through ``AsyncBundleStore.delete``
(the node's release path: metadata decode, index removal, a deletion-log record carrying the
RFC 9171 reason code) against raw ``txn.delete`` of the wire bytes at the same batch size.

Run: ``.venv/bin/python bench/store.py`` (about 30-60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import lmdb
from waystation.bundle.codec import encode_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import IpnEID
from waystation.bundle.model import (
    BlockType,
    Bundle,
    BundleId,
    CanonicalBlock,
    CRCType,
    PrimaryBlock,
)
from waystation.store.api import BundleMeta, ReasonCode
from waystation.store.group_commit import AsyncBundleStore
from waystation.store.lmdb_store import LmdbBundleStore

T0 = 800_000_000_000


def make_bundles(n: int, payload: int, salt: int) -> list[tuple[bytes, bytes, BundleMeta]]:
    out = []
    body = bytes(range(256)) * (payload // 256 + 1)
    for i in range(n):
        primary = PrimaryBlock(
            flags=0,
            crc_type=CRCType.CRC32C,
            destination=IpnEID(2 + i % 8, 1),
            source=IpnEID(1, 1),
            report_to=IpnEID(1, 0),
            creation=CreationTimestamp(T0 + salt, i),
            lifetime_ms=86_400_000,
        )
        bundle = Bundle(
            primary, [CanonicalBlock(BlockType.PAYLOAD, 1, 0, CRCType.CRC32C, body[:payload])]
        )
        wire = encode_bundle(bundle)
        key = BundleId(primary.source, primary.creation).key()
        meta = BundleMeta(
            received_ms=T0,
            expiry_ms=T0 + 86_400_000,
            destination=str(primary.destination),
            source=str(primary.source),
        )
        out.append((key, wire, meta))
    return out


class Run(NamedTuple):
    put_s: float  # wall time of all puts
    put_batch: float  # mean ops per commit the writer achieved
    delete_s: float = 0.0  # wall time of deleting them all again (store: with reason + log)
    delete_batch: float = 0.0


async def _store_run(
    path: Path, items: list[tuple[bytes, bytes, BundleMeta]], producers: int
) -> Run:
    store = AsyncBundleStore(LmdbBundleStore(path, max_bytes=8 << 30))

    async def producer(chunk: list[tuple[bytes, bytes, BundleMeta]]) -> None:
        for key, wire, meta in chunk:
            await store.put(key, wire, meta)

    async def deleter(chunk: list[tuple[bytes, bytes, BundleMeta]]) -> None:
        for key, _, _ in chunk:
            await store.delete(key, ReasonCode.NO_ADDITIONAL_INFORMATION, now_ms=T0 + 1)

    t = time.perf_counter()
    await asyncio.gather(*(producer(items[i::producers]) for i in range(producers)))
    put_s = time.perf_counter() - t
    put_batch = store.writer.ops / max(1, store.writer.batches)  # mean ops per commit
    ops, batches = store.writer.ops, store.writer.batches
    t = time.perf_counter()
    await asyncio.gather(*(deleter(items[i::producers]) for i in range(producers)))
    delete_s = time.perf_counter() - t
    delete_batch = (store.writer.ops - ops) / max(1, store.writer.batches - batches)
    await store.aclose()
    return Run(put_s, put_batch, delete_s, delete_batch)


def store_run(path: Path, items: list[tuple[bytes, bytes, BundleMeta]], producers: int) -> Run:
    return asyncio.run(_store_run(path, items, producers))


def raw_run(
    path: Path, items: list[tuple[bytes, bytes, BundleMeta]], batch: int, delete_batch: int = 0
) -> Run:
    """The reference: the same wire bytes put (and then deleted) with raw py-lmdb."""
    env = lmdb.open(str(path), map_size=8 << 30, sync=True, metasync=True, readahead=False)
    t = time.perf_counter()
    for i in range(0, len(items), batch):
        with env.begin(write=True) as txn:
            for key, wire, _ in items[i : i + batch]:
                txn.put(key, wire)
    put_s = time.perf_counter() - t
    delete_s = 0.0
    if delete_batch:
        t = time.perf_counter()
        for i in range(0, len(items), delete_batch):
            with env.begin(write=True) as txn:
                for key, _, _ in items[i : i + delete_batch]:
                    txn.delete(key)
        delete_s = time.perf_counter() - t
    env.close()
    return Run(put_s, batch, delete_s, delete_batch)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--producers", type=int, default=256)
    ap.add_argument(
        "--dir", type=Path, default=None, help="scratch directory (default: a temp dir)"
    )
    args = ap.parse_args(argv)

    configs = [(1024, 30_000), (65_536, 2_500)]
    scratch = Path(tempfile.mkdtemp(prefix="ws-store-bench-", dir=args.dir))
    rows = []
    try:
        for payload, n in configs:
            stores: list[Run] = []
            raws: list[Run] = []
            fulls: list[Run] = []  # raw, committing ``producers`` puts at a time
            for r in range(args.repeat):
                items = make_bundles(n, payload, salt=r)
                run = store_run(scratch / f"s{payload}-{r}", items, args.producers)
                stores.append(run)
                raws.append(
                    raw_run(
                        scratch / f"r{payload}-{r}",
                        items,
                        max(1, round(run.put_batch)),
                        max(1, round(run.delete_batch)),
                    )
                )
                fulls.append(raw_run(scratch / f"f{payload}-{r}", items, args.producers))
                for side in "srf":
                    shutil.rmtree(scratch / f"{side}{payload}-{r}")
            rows.append((payload, len(items[0][1]), n, stores, raws, fulls))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def med(runs: list[Run], field: str) -> float:
        return statistics.median(getattr(x, field) for x in runs)

    load = os.getloadavg()[0]
    print(
        f"durable puts, {args.producers} asyncio producers, median of {args.repeat} "
        f"(raw py-lmdb: same bytes, same batch size, sync=True); load average {load:.1f}"
    )
    print(
        f"{'payload':>8} {'wire':>6} {'n':>6} | {'store/s':>9} {'MB/s':>7} | "
        f"{'raw/s':>9} {'MB/s':>7} | {'ratio':>5} {'batch':>6} | per-run ratios | "
        f"raw@{args.producers}/s ratio"
    )
    for payload, wire_len, n, stores, raws, fulls in rows:
        s, w, f = med(stores, "put_s"), med(raws, "put_s"), med(fulls, "put_s")
        each = " ".join(f"{r.put_s / x.put_s:.2f}" for x, r in zip(stores, raws))
        print(
            f"{payload:>8} {wire_len:>6} {n:>6} | {n / s:>9.0f} {n * wire_len / s / 1e6:>7.1f} | "
            f"{n / w:>9.0f} {n * wire_len / w / 1e6:>7.1f} | {w / s:>5.2f} "
            f"{med(stores, 'put_batch'):>6.0f} | {each} | {n / f:>9.0f} {f / s:>5.2f}"
        )
    print(
        "durable deletes of the same bundles (store: meta decode, index removal, deletion-log "
        "record with reason; raw: txn.delete of the wire)"
    )
    print(f"{'payload':>8} | {'store/s':>9} | {'raw/s':>9} | {'ratio':>5} {'batch':>6}")
    for payload, _, n, stores, raws, _ in rows:
        s, w = med(stores, "delete_s"), med(raws, "delete_s")
        print(
            f"{payload:>8} | {n / s:>9.0f} | {n / w:>9.0f} | {w / s:>5.2f} "
            f"{med(stores, 'delete_batch'):>6.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

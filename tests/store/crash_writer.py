"""Child process for the kill -9 test: write bundles as fast as possible, report each ack.

Usage: ``python crash_writer.py STORE_DIR FIRST_SEQ``. Many concurrent producers put through
the group-commit path; after each ``put`` returns (the bundle is durable) the child prints
``ack <seq>`` and flushes, so the parent knows exactly which bundles were acknowledged.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from waystation.store.group_commit import AsyncBundleStore
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire, meta_for

PRODUCERS = 64


def payload_size(seq: int) -> int:
    return 64 + (seq * 997) % 1500


async def producer(store: AsyncBundleStore, first: int, index: int) -> None:
    seq = first + index
    out = sys.stdout
    while True:
        bid, wire, bundle = make_wire(seq, payload_size=payload_size(seq))
        await store.put(bid, wire, meta_for(bundle, queue=f"ipn:{seq % 3}.0"))
        out.write(f"ack {seq}\n")
        out.flush()
        seq += PRODUCERS


async def main(path: str, first: int) -> None:
    store = AsyncBundleStore(LmdbBundleStore(path, max_bytes=1 << 30))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.gather(*(producer(store, first, i) for i in range(PRODUCERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

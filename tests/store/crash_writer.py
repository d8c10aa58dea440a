"""The writer killed by the kill -9 test: put bundles as fast as possible, report each ack.

``run(path, first_seq, fd)`` opens the store, runs many concurrent producers through the
group-commit path and, after each ``put`` returns (the bundle is durable), writes
``ack <seq>`` to ``fd`` — so the parent knows exactly which bundles were acknowledged. The test
forks it (no interpreter start-up per round); it also runs standalone:
``python crash_writer.py STORE_DIR FIRST_SEQ`` (acks on stdout).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from waystation.store.group_commit import AsyncBundleStore
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire, meta_for

PRODUCERS = 64


def payload_size(seq: int) -> int:
    return 64 + (seq * 997) % 1500


async def _producer(store: AsyncBundleStore, first: int, index: int, fd: int) -> None:
    seq = first + index
    while True:
        bid, wire, bundle = make_wire(seq, payload_size=payload_size(seq))
        await store.put(bid, wire, meta_for(bundle, queue=f"ipn:{seq % 3}.0"))
        os.write(fd, b"ack %d\n" % seq)
        seq += PRODUCERS


async def _main(path: str, first: int, fd: int) -> None:
    store = AsyncBundleStore(LmdbBundleStore(path, max_bytes=1 << 30))
    await asyncio.gather(*(_producer(store, first, i, fd) for i in range(PRODUCERS)))


def run(path: str, first: int, fd: int) -> None:
    asyncio.run(_main(path, first, fd))


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), sys.stdout.fileno())

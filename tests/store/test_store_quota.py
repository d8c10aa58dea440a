"""A full store refuses cleanly: StoreFull, nothing half-written, never MDB_MAP_FULL, and it
reopens intact. Also: an undersized LMDB map grows instead of failing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from waystation.store.api import ReasonCode, StoreFull
from waystation.store.group_commit import AsyncBundleStore
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire, meta_for

QUOTA = 2 << 20  # 2 MiB of bundles


def test_fill_churn_and_refill_without_corruption(tmp_path: Path) -> None:
    path = tmp_path / "s"
    rng = random.Random(3)
    accepted: dict[bytes, bytes] = {}

    async def main() -> None:
        store = AsyncBundleStore(LmdbBundleStore(path, max_bytes=QUOTA, max_count=5000))
        map_size = store.store.stats().map_size
        seq = 0
        refused = 0
        for _round in range(4):
            bundles = []
            for _ in range(300):
                seq += 1
                bundles.append(make_wire(seq, payload_size=rng.choice([200, 3000, 20000])))
            results = await asyncio.gather(
                *(store.put(b, w, meta_for(x)) for b, w, x in bundles), return_exceptions=True
            )
            for (bid, wire, _), result in zip(bundles, results):
                if isinstance(result, StoreFull):
                    refused += 1
                else:
                    assert not isinstance(result, BaseException), result
                    accepted[bid.key()] = wire
            stats = await store.stats()
            assert stats.bytes <= QUOTA
            assert stats.bytes == sum(len(w) for w in accepted.values())
            # make room: delete a random half (depleted storage, RFC 9171 §6.1.1 code 4)
            for key in rng.sample(sorted(accepted), len(accepted) // 2):
                await store.delete(key, ReasonCode.DEPLETED_STORAGE)
                del accepted[key]
        assert refused > 0, "the test never reached the quota"
        assert store.store.stats().map_size == map_size  # headroom: the map never had to grow
        assert store.store.check() == []
        await store.aclose()

    asyncio.run(main())
    with LmdbBundleStore(path, max_bytes=QUOTA, verify="full") as store:
        assert store.check() == []
        assert store.stats().count == len(accepted)
        for key, wire in accepted.items():
            assert store.get(key) == wire


def test_small_map_grows_instead_of_failing(tmp_path: Path) -> None:
    with LmdbBundleStore(tmp_path / "s", map_size=256 << 10) as store:
        start = store.stats().map_size
        wires = {}
        for i in range(60):
            bid, wire, bundle = make_wire(i, payload_size=30_000)
            store.put(bid, wire, meta_for(bundle))
            wires[bid.key()] = wire
        assert store.stats().map_size > start
        assert all(store.get(k) == w for k, w in wires.items())
        assert store.check() == []

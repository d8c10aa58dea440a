"""Child for the disk-full test: runs inside a private mount namespace on a tiny tmpfs.

Fills the disk (no quota, so the filesystem runs out first), then checks that the store
refused with StoreFull, still reads, frees space by deleting, accepts again, and reopens clean.
Prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from waystation.store.api import ReasonCode, StoreFull
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire, meta_for


def main(path: str) -> None:
    report: dict[str, object] = {}
    stored: dict[bytes, bytes] = {}
    with LmdbBundleStore(path, map_size=64 << 20) as store:
        error = None
        for i in range(1000):
            bid, wire, bundle = make_wire(i, payload_size=60_000)
            try:
                store.put(bid, wire, meta_for(bundle))
            except StoreFull as exc:
                error = str(exc)
                break
            stored[bid.key()] = wire
        report["stored_before_full"] = len(stored)
        report["error"] = error
        report["readable"] = all(store.get(k) == w for k, w in stored.items())
        for key in list(stored)[: len(stored) // 2]:
            store.delete(key, ReasonCode.DEPLETED_STORAGE)
            del stored[key]
        bid, wire, bundle = make_wire(5000, payload_size=60_000)
        store.put(bid, wire, meta_for(bundle))
        stored[bid.key()] = wire
        report["accepted_after_delete"] = True
        report["check"] = store.check()
    with LmdbBundleStore(path, verify="full") as store:
        report["reopened_intact"] = all(store.get(k) == w for k, w in stored.items())
        report["check_after_reopen"] = store.check()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])

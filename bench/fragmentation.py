"""Cost of the node's fragmentation (RFC 9171 §5.8) and reassembly (§5.9) steps.

For each payload size, a signed-size-agnostic BPv7 bundle (CRC-32C blocks, built before
timing) is:

* **fragment**: ``waystation.fragmentation.fragment_wire(wire, limit)`` — decode, split
  zero-copy, encode every fragment with its own CRCs (what the service does before a UDP send);
* **reassemble**: ``waystation.reassembly._reassemble_wires`` over a memory store holding
  the fragments — read, decode each, rebuild the ADU, encode the whole bundle (what the
  service runs in its executor);
* **reference**: decode + encode of the *whole* bundle (the codec's own round trip of the
  same bytes), measured in the same run.

Ratios are "times the reference" (median of ``--repeat`` interleaved runs); absolute MB/s is
for orientation only. Run: ``.venv/bin/python bench/fragmentation.py`` (a few seconds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from waystation.bundle.codec import IMPLEMENTATION, decode_bundle, encode_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundleops import inspect, originate
from waystation.fragmentation import fragment_wire
from waystation.reassembly import _reassemble_wires, fragment_meta
from waystation.store.memory import MemoryBundleStore

T0 = 800_000_000_000


def _timeit(fn: Callable[[], object], min_s: float = 0.2) -> float:
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return elapsed / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=16_000, help="link max bundle size (bytes)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"codec: {IMPLEMENTATION}; link limit {args.limit} bytes; median of {args.repeat}")
    print(f"{'payload':>10} {'frags':>6} {'ref ms':>8} {'frag ms':>8} {'x ref':>6} "
          f"{'reasm ms':>9} {'x ref':>6} {'reasm MB/s':>10}")
    for size in (64 * 1024, 200 * 1024, 1024 * 1024, 8 * 1024 * 1024):
        wire, _ = originate(
            source="dtn://a/", destination="dtn://b/in", payload=bytes(size),
            creation=CreationTimestamp(T0, 1), lifetime_ms=3_600_000,
        )
        pieces = fragment_wire(wire, args.limit)
        store = MemoryBundleStore()
        keys = []
        for p in pieces:
            info = inspect(p, T0, 1 << 31)
            store.put(info.key, p, fragment_meta(info, T0, 1, "dtn://b/in"))
            keys.append(info.key)
        assert len(_reassemble_wires(store, tuple(keys))) == len(wire)
        ref, frag, reasm = [], [], []
        k = tuple(keys)
        for _ in range(args.repeat):
            ref.append(_timeit(lambda w=wire: encode_bundle(decode_bundle(w, max_size=1 << 31))))
            frag.append(_timeit(lambda w=wire: fragment_wire(w, args.limit)))
            reasm.append(_timeit(lambda s=store, k=k: _reassemble_wires(s, k)))
        r, f, m = (statistics.median(x) for x in (ref, frag, reasm))
        print(f"{size // 1024:>8}Ki {len(pieces):>6} {r * 1e3:>8.3f} {f * 1e3:>8.3f} "
              f"{f / r:>6.1f} {m * 1e3:>9.3f} {m / r:>6.1f} {size / m / 1e6:>10.0f}")


if __name__ == "__main__":
    main()

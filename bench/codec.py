"""Bundle codec benchmark: the Cython twin vs the pure-Python reference vs pyD3TN.

For payloads of 64 B, 1 KiB, 64 KiB and 1 MiB (primary block and payload block both with
CRC-32C, ipn EIDs, no extension blocks) it prints encodes/s and decodes/s of

* ``cython``: ``waystation.ext.fastcodec`` (the compiled twin),
* ``pure``:   ``waystation.bundle.pycodec`` (the reference the twin must match),
* ``pyd3tn``: ``pyd3tn.bundle7`` (an independent Python implementation; ``bytes(bundle)`` and
  ``Bundle.parse``. Note: its parser does not verify CRCs, so its decode does less work),

and the ratios, all measured in the same run. The three are measured in interleaved rounds and
the best round counts, because this kind of host drifts by tens of percent over seconds; compare
figures only within one run. Decoding includes the RFC 9171 validation for both waystation
codecs. Run: ``.venv/bin/python bench/codec.py`` (about 30-60 s; ``--budget`` scales it).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
from waystation.bundle import pycodec
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import IpnEID
from waystation.bundle.model import Bundle, CanonicalBlock, CRCType, PrimaryBlock

try:
    from waystation.ext import fastcodec
except ImportError as exc:  # pragma: no cover - the benchmark is about the twin
    sys.exit(f"waystation.ext.fastcodec is not built ({exc}); run setup.py build_ext --inplace")

try:
    from pyd3tn import bundle7
except ImportError:  # pragma: no cover - optional third-party reference
    bundle7 = None

SIZES = (64, 1024, 64 * 1024, 1024 * 1024)
ROUNDS = 3
# targets from the issue: small bundle on one core, and the speed-up over the pure path
TARGET_DECODE_PER_S = 1_000_000
TARGET_ENCODE_PER_S = 500_000
TARGET_RATIO = 20.0


@dataclass
class Case:
    """One payload size: the same bundle as a waystation model and as pyD3TN objects."""

    size: int
    bundle: Bundle
    encoded: bytes
    d3tn_bundle: object | None
    d3tn_encoded: bytes | None


def make_case(size: int) -> Case:
    payload = bytes(i & 0xFF for i in range(size))
    primary = PrimaryBlock(
        flags=0,
        crc_type=CRCType.CRC32C,
        destination=IpnEID(2, 1),
        source=IpnEID(1, 1),
        report_to=IpnEID(1, 0),
        creation=CreationTimestamp(819_936_000_000, 42),
        lifetime_ms=86_400_000,
    )
    bundle = Bundle(primary, [CanonicalBlock(1, 1, 0, CRCType.CRC32C, payload)])
    encoded = pycodec.encode_bundle(bundle)
    if fastcodec.encode_bundle(bundle) != encoded:
        sys.exit("the twin and the reference disagree: run the tests first")
    d3tn_bundle = d3tn_encoded = None
    if bundle7 is not None:
        d3tn_bundle = bundle7.create_bundle7(
            "ipn:1.1",
            "ipn:2.1",
            payload,
            report_to_eid="ipn:1.0",
            crc_type_primary=bundle7.CRCType.CRC32,
            crc_type_canonical=bundle7.CRCType.CRC32,
            creation_timestamp=1_766_620_800,
            sequence_number=42,
            lifetime=86_400,
        )
        d3tn_encoded = bytes(d3tn_bundle)
    return Case(size, bundle, encoded, d3tn_bundle, d3tn_encoded)


def rate(func: Callable[[Any], object], arg: Any, budget: float) -> float:
    """Calls of ``func(arg)`` per CPU-second over about ``budget`` s (at least one call).

    The function and its argument are bound before timing and the loop is ``itertools.repeat``
    (as ``timeit`` does), so the figure is the codec's cost plus one call, not a lambda frame
    and attribute look-ups; every implementation is timed through the same loop.
    CPU time of this thread, not wall time: the host is shared, and time spent waiting for a
    core is not the codec's. (On an idle machine the two agree.)
    """
    start = time.thread_time()
    func(arg)
    single = max(time.thread_time() - start, 1e-7)
    number = max(1, int(budget / single))
    start = time.thread_time()
    for _ in itertools.repeat(None, number):
        func(arg)
    return number / max(time.thread_time() - start, 1e-9)


def measure(case: Case, budget: float) -> dict[tuple[str, str], float]:
    """Best of ROUNDS interleaved rounds for each (implementation, operation)."""
    ops: dict[tuple[str, str], tuple[Callable[[Any], object], Any]] = {
        ("cython", "encode"): (fastcodec.encode_bundle, case.bundle),
        ("cython", "decode"): (fastcodec.decode_bundle, case.encoded),
        ("pure", "encode"): (pycodec.encode_bundle, case.bundle),
        ("pure", "decode"): (pycodec.decode_bundle, case.encoded),
    }
    if bundle7 is not None:
        ops[("pyd3tn", "encode")] = (bytes, case.d3tn_bundle)
        ops[("pyd3tn", "decode")] = (bundle7.Bundle.parse, case.d3tn_encoded)
    best: dict[tuple[str, str], float] = {}
    for _ in range(ROUNDS):
        for key, (func, arg) in ops.items():
            best[key] = max(best.get(key, 0.0), rate(func, arg, budget))
    return best


def human(size: int) -> str:
    return (
        f"{size // 1024 // 1024} MiB"
        if size >= 1 << 20
        else (f"{size // 1024} KiB" if size >= 1024 else f"{size} B")
    )


def _crc_path() -> str:
    if fastcodec.CRC32C_CLMUL:
        return "PCLMULQDQ folding (>= 512 B) + SSE4.2 crc32"
    return "SSE4.2 crc32, 3 streams" if fastcodec.CRC32C_HARDWARE else "slicing-by-8"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{cpu}, {os.cpu_count()} CPUs, load {load}; Python {platform.python_version()}; "
        f"CRC-32C {_crc_path()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=0.25, help="seconds per measurement (default 0.25)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"codec benchmark - {machine()}")
    print(
        f"best of {ROUNDS} interleaved rounds, ~{args.budget:g} s each; "
        "operations per CPU-second of one thread (higher is better)"
    )
    header = (
        f"{'payload':>8} {'op':>6} | {'cython':>12} {'pure':>10} {'pyd3tn':>10} | "
        f"{'cy/pure':>8} {'cy/d3tn':>8} | {'cython MB/s':>11}"
    )
    print(header)
    print("-" * len(header))
    results: dict[int, dict[tuple[str, str], float]] = {}
    for size in SIZES:
        case = make_case(size)
        best = measure(case, args.budget)
        results[size] = best
        for op in ("encode", "decode"):
            cy = best[("cython", op)]
            pure = best[("pure", op)]
            d3tn = best.get(("pyd3tn", op))
            d3tn_txt = f"{d3tn:>10,.0f}" if d3tn else f"{'-':>10}"
            d3tn_ratio = f"{cy / d3tn:>7.1f}x" if d3tn else f"{'-':>8}"
            mbps = cy * len(case.encoded) / 1e6
            print(
                f"{human(size):>8} {op:>6} | {cy:>12,.0f} {pure:>10,.0f} {d3tn_txt} | "
                f"{cy / pure:>7.1f}x {d3tn_ratio} | {mbps:>11,.0f}"
            )
    # A yardstick for how fast this host is right now: cbor2 (Rust) decoding the 1 KiB bundle
    # was measured at about 410k/s on an idle machine of this kind (shared/DESIGN.md).
    yard_case = make_case(1024)
    yard = max(rate(cbor2.loads, yard_case.encoded, args.budget) for _ in range(ROUNDS))
    print(
        f"\nyardstick: cbor2.loads of the 1 KiB bundle {yard:,.0f}/s "
        f"(about 410,000/s on an idle host of this kind): host speed factor {yard / 410_000:.2f}"
    )
    small = results[SIZES[0]]
    checks = [
        (
            f"decode {human(SIZES[0])} >= {TARGET_DECODE_PER_S:,}/s",
            small[("cython", "decode")] >= TARGET_DECODE_PER_S,
        ),
        (
            f"encode {human(SIZES[0])} >= {TARGET_ENCODE_PER_S:,}/s",
            small[("cython", "encode")] >= TARGET_ENCODE_PER_S,
        ),
    ]
    for size, best in results.items():
        for op in ("encode", "decode"):
            ratio = best[("cython", op)] / best[("pure", op)]
            checks.append(
                (f"{op} {human(size)} cython/pure >= {TARGET_RATIO:g}x", ratio >= TARGET_RATIO)
            )
    print()
    for text, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

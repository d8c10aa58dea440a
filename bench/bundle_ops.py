"""Bundle-library operations a node performs per bundle, against references measured in the
same run.

* ``build+encode``: ``build_bundle`` + ``codec.encode_bundle`` of a 1 KiB bundle with hop count,
  vs ``cbor2.dumps`` of the same block structure (no CRCs, no validation) as the reference;
* ``decode`` with the selected codec vs ``cbor2.loads`` of the same bytes;
* ``BundleId.key()+from_key()`` vs ``cbor2.dumps/loads`` of the same (eid, time, seq) tuple;
* ``fragment+reassemble`` of a 1 MiB bundle into 64 KiB fragments (zero-copy payload views;
  reassembly copies once) vs one ``bytes`` copy of 1 MiB;
* ``status report`` (``status_report_for`` + ``status_report_bundle`` + encode) vs
  ``cbor2.dumps`` of the equivalent record.

Best of several interleaved rounds; rates are per second of one thread. Compare ratios, not
absolute figures: this kind of host drifts by tens of percent. Run:
``.venv/bin/python bench/bundle_ops.py`` (about 15 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cbor2
from waystation.bundle import codec
from waystation.bundle.admin import status_report_bundle, status_report_for
from waystation.bundle.builder import build_bundle
from waystation.bundle.dtntime import CreationTimestamp, ManualClock, TimestampSource
from waystation.bundle.eid import IpnEID
from waystation.bundle.fragment import fragment_bundle, reassemble
from waystation.bundle.model import BundleFlags, BundleId

ROUNDS = 5
ROUND_S = 0.3


def rate(fn: Callable[[], object]) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < ROUND_S:
        for _ in range(10):
            fn()
        n += 10
    return n / elapsed


def main() -> None:
    stamps = TimestampSource(ManualClock(817_000_000_000))
    payload = bytes(range(256)) * 4
    b = build_bundle("ipn:1.1", "ipn:2.1", payload, timestamps=stamps, hop_limit=16)
    wire = codec.encode_bundle(b)
    ref_obj = cbor2.loads(wire)
    big = build_bundle("ipn:1.1", "ipn:2.1", bytes(1 << 20), timestamps=stamps)
    bid = BundleId(IpnEID(1, 1), CreationTimestamp(817_000_000_000, 5))
    subject = build_bundle(
        "ipn:1.1", "ipn:2.1", b"x", timestamps=stamps, flags=BundleFlags.REPORT_DELIVERY
    )
    blob = bytes(1 << 20)

    def build_encode() -> bytes:
        return codec.encode_bundle(
            build_bundle("ipn:1.1", "ipn:2.1", payload, timestamps=stamps, hop_limit=16)
        )

    def frag_reasm() -> object:
        return reassemble(fragment_bundle(big, 64 * 1024))

    def report() -> bytes:
        r = status_report_for(subject, delivered_ms=1)
        return codec.encode_bundle(
            status_report_bundle(
                r, source=IpnEID(2, 0), destination=IpnEID(1, 0), timestamps=stamps
            )
        )

    cases: list[tuple[str, Callable[[], object], str, Callable[[], object]]] = [
        ("build+encode 1 KiB", build_encode, "cbor2.dumps", lambda: cbor2.dumps(ref_obj)),
        (
            "decode 1 KiB",
            lambda: codec.decode_bundle(wire),
            "cbor2.loads",
            lambda: cbor2.loads(wire),
        ),
        (
            "BundleId key+from_key",
            lambda: BundleId.from_key(bid.key()),
            "cbor2 round trip",
            lambda: cbor2.loads(cbor2.dumps([[2, [1, 1]], 817_000_000_000, 5])),
        ),
        ("fragment+reassemble 1 MiB", frag_reasm, "bytes copy 1 MiB", lambda: bytearray(blob)),
        (
            "status report bundle",
            report,
            "cbor2.dumps record",
            lambda: cbor2.dumps([1, [[[False], [False], [True], [False]], 0, [2, [1, 1]], [5, 1]]]),
        ),
    ]
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, fn, ref_name, ref in cases:
            best[name] = max(best.get(name, 0.0), rate(fn))
            best[ref_name] = max(best.get(ref_name, 0.0), rate(ref))
    print(
        f"bundle operations - codec implementation: {codec.IMPLEMENTATION}; best of {ROUNDS} rounds"
    )
    print(f"{'operation':28} {'ops/s':>12} | {'reference':18} {'ops/s':>12} | ratio")
    for name, _, ref_name, _ in cases:
        ours, theirs = best[name], best[ref_name]
        print(f"{name:28} {ours:12,.0f} | {ref_name:18} {theirs:12,.0f} | {ours / theirs:5.2f}x")


if __name__ == "__main__":
    main()

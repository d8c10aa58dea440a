"""``waystation bundle demo``: build, encode, decode and print a few bundles (an offline tour
of the BPv7 codec). Self-contained: no node, network or store is needed. (It was ``waystation
demo`` until that became the three-node contact-plan demo; the ``bundle`` command adds it.)"""

from __future__ import annotations

import argparse

from waystation.bundle import codec
from waystation.bundle.admin import StatusReportReason, status_report_bundle, status_report_for
from waystation.bundle.builder import build_bundle
from waystation.bundle.describe import format_bundle
from waystation.bundle.dtntime import ManualClock, TimestampSource
from waystation.bundle.eid import parse_eid
from waystation.bundle.fragment import fragment_bundle, reassemble
from waystation.bundle.model import BundleFlags


def run(args: argparse.Namespace) -> int:
    clock = ManualClock(817_000_000_000)  # a fixed DTN time so the output is reproducible
    stamps = TimestampSource(clock)
    print(f"codec implementation: {codec.IMPLEMENTATION}\n")

    hello = build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        b"hello, Mars",
        timestamps=stamps,
        hop_limit=16,
        flags=BundleFlags.REPORT_DELIVERY | BundleFlags.STATUS_TIME_REQUESTED,
    )
    wire = codec.encode_bundle(hello)
    print(f"1. an ipn bundle, {len(wire)} bytes on the wire:\n   {wire.hex()}")
    print(format_bundle(codec.decode_bundle(wire)), "\n")

    orbiter = build_bundle(
        "dtn://lander/telemetry",
        "dtn://ground/archive",
        bytes(range(256)) * 8,
        timestamps=TimestampSource(clock, accurate_clock=False),
        crc_type=1,
    )
    print("2. a dtn-scheme bundle from a node without a clock (creation time 0 + Bundle Age):")
    print(format_bundle(codec.decode_bundle(codec.encode_bundle(orbiter)), max_bytes=16), "\n")

    frags = fragment_bundle(orbiter, 700)
    sizes = [len(codec.encode_bundle(f)) for f in frags]
    whole = reassemble(codec.decode_bundle(codec.encode_bundle(f)) for f in reversed(frags))
    print(f"3. fragmented for a 700-byte link: {len(frags)} fragments of {sizes} bytes;")
    print(f"   reassembled from the wire in reverse order: identical = {whole == orbiter}\n")

    clock.advance(1500)
    report = status_report_for(
        hello, delivered_ms=clock.now_ms(), reason=StatusReportReason.NO_ADDITIONAL_INFORMATION
    )
    rb = status_report_bundle(
        report, source=parse_eid("ipn:2.0"), destination=hello.primary.report_to, timestamps=stamps
    )
    print("4. the delivery status report node 2 sends back for bundle 1:")
    print(format_bundle(codec.decode_bundle(codec.encode_bundle(rb))), "\n")

    damaged = bytearray(wire)
    damaged[len(damaged) // 2] ^= 0x40
    try:
        codec.decode_bundle(bytes(damaged))
    except Exception as exc:
        print(f"5. one flipped bit in bundle 1 is caught: {type(exc).__name__}: {exc}")
    return 0

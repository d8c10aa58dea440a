"""``waystation bundle decode|encode``: inspect and make BPv7 bundles offline (RFC 9171).

    waystation bundle decode FILE|-  [--json] [--hex] [--no-validate]
    waystation bundle encode --src EID --dst EID (--payload TEXT | --payload-file F) -o F|-

Decoding prints the bundle as readable text (or JSON) and exits 1 with the precise error (byte
offset and reason) when the input is not a valid bundle. Encoding builds a bundle the way a node
originates one (unique creation timestamp, CRC-32C by default, optional hop count / bundle age).
"""

from __future__ import annotations

import argparse
import json
import sys

from waystation.bundle import codec
from waystation.bundle.builder import DEFAULT_LIFETIME_MS, build_bundle
from waystation.bundle.describe import bundle_to_dict, format_bundle
from waystation.bundle.dtntime import SystemClock, TimestampSource
from waystation.bundle.errors import BundleError
from waystation.bundle.model import BundleFlags, CRCType

_CRC = {"none": CRCType.NONE, "crc16": CRCType.CRC16, "crc32c": CRCType.CRC32C}
_REPORTS = {
    "reception": BundleFlags.REPORT_RECEPTION,
    "forwarding": BundleFlags.REPORT_FORWARDING,
    "delivery": BundleFlags.REPORT_DELIVERY,
    "deletion": BundleFlags.REPORT_DELETION,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "bundle",
        help="decode or encode BPv7 bundles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)

    d = sub.add_parser("decode", help="print a bundle read from a file or stdin")
    d.add_argument("file", help="bundle file, or - for stdin")
    d.add_argument("--json", action="store_true", help="print JSON instead of text")
    d.add_argument("--hex", action="store_true", help="the input is hex text, not raw bytes")
    d.add_argument(
        "--no-validate",
        action="store_true",
        help="skip RFC 9171 rule checks (CBOR layout and CRCs are still checked)",
    )
    d.add_argument(
        "--max-size",
        type=int,
        default=codec.DEFAULT_MAX_BUNDLE_SIZE,
        help="refuse bundles larger than this many bytes",
    )
    d.add_argument("--max-bytes", type=int, default=64, help="hex bytes shown per block")
    d.set_defaults(func=run_decode)

    t = sub.add_parser("demo", help="offline tour: build, encode, decode a few bundles")
    t.set_defaults(func=_run_codec_tour)

    e = sub.add_parser("encode", help="build a bundle and write its encoding")
    e.add_argument("--src", required=True, help="source EID, e.g. ipn:1.1 or dtn://a/app")
    e.add_argument("--dst", required=True, help="destination EID")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--payload", help="payload text (UTF-8)")
    src.add_argument("--payload-file", help="payload file, or - for stdin")
    e.add_argument("-o", "--output", required=True, help="output file, or - for stdout")
    e.add_argument("--hex", action="store_true", help="write hex text instead of raw bytes")
    e.add_argument(
        "--lifetime",
        type=float,
        default=DEFAULT_LIFETIME_MS / 1000,
        help="lifetime in seconds (default one day)",
    )
    e.add_argument("--crc", choices=sorted(_CRC), default="crc32c", help="CRC type of every block")
    e.add_argument("--report-to", help="report-to EID (default: source node if reports requested)")
    e.add_argument(
        "--report",
        action="append",
        choices=sorted(_REPORTS),
        default=[],
        help="request a status report (repeatable)",
    )
    e.add_argument("--status-time", action="store_true", help="request times in status reports")
    e.add_argument("--must-not-fragment", action="store_true")
    e.add_argument("--hop-limit", type=int, help="add a Hop Count block with this limit")
    e.add_argument(
        "--no-clock",
        action="store_true",
        help="creation time 0 with a Bundle Age block (node without accurate clock)",
    )
    e.set_defaults(func=run_encode)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def _run_codec_tour(args: argparse.Namespace) -> int:
    from waystation.commands._codec_tour import run

    return run(args)


def run_decode(args: argparse.Namespace) -> int:
    try:
        data = _read(args.file)
    except OSError as exc:
        print(f"waystation: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.hex:
        try:
            data = bytes.fromhex(data.decode("ascii").strip().replace("\n", "").replace(" ", ""))
        except (UnicodeDecodeError, ValueError) as exc:
            print(f"waystation: input is not hex: {exc}", file=sys.stderr)
            return 1
    try:
        bundle = codec.decode_bundle(data, max_size=args.max_size, validate=not args.no_validate)
    except BundleError as exc:
        print(f"waystation: invalid bundle: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(bundle_to_dict(bundle, max_bytes=args.max_bytes), indent=2))
    else:
        print(format_bundle(bundle, max_bytes=args.max_bytes))
    return 0


def run_encode(args: argparse.Namespace) -> int:
    try:
        payload = args.payload.encode() if args.payload is not None else _read(args.payload_file)
    except OSError as exc:
        print(f"waystation: cannot read {args.payload_file}: {exc.strerror}", file=sys.stderr)
        return 1
    flags = 0
    for name in args.report:
        flags |= _REPORTS[name]
    if args.status_time:
        flags |= BundleFlags.STATUS_TIME_REQUESTED
    if args.must_not_fragment:
        flags |= BundleFlags.MUST_NOT_FRAGMENT
    try:
        bundle = build_bundle(
            args.src,
            args.dst,
            payload,
            lifetime_ms=round(args.lifetime * 1000),
            flags=flags,
            crc_type=_CRC[args.crc],
            report_to=args.report_to,
            timestamps=TimestampSource(SystemClock(), accurate_clock=not args.no_clock),
            hop_limit=args.hop_limit,
        )
        data = codec.encode_bundle(bundle)
    except BundleError as exc:
        print(f"waystation: cannot build bundle: {exc}", file=sys.stderr)
        return 1
    out = data.hex().encode() + b"\n" if args.hex else data
    if args.output == "-":
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    else:
        with open(args.output, "wb") as f:
            f.write(out)
        print(f"wrote {len(data)} bytes: bundle {bundle.bundle_id}", file=sys.stderr)
    return 0

"""``waystation recv ENDPOINT``: receive bundles delivered to an endpoint of the local node."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from waystation.client import ClientError, Delivery
from waystation.commands._common import add_client_options, connect, fail


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("recv", help="receive bundles", description=__doc__.replace("``", ""))
    p.add_argument("endpoint", help="local endpoint, e.g. dtn://HOST/inbox (registered if new)")
    p.add_argument("--count", "-n", type=int, help="stop after N bundles (default: run forever)")
    p.add_argument(
        "--wait",
        type=float,
        help="stop when no bundle arrives for this many seconds (default: wait forever)",
    )
    p.add_argument("--output-dir", "-o", type=Path, help="write each payload to a file here")
    p.add_argument("--verbose-header", "-H", action="store_true", help="print source and id")
    add_client_options(p)
    p.set_defaults(func=run)


def describe_admin_record(payload: bytes) -> str:
    """One readable line for an administrative record (RFC 9171 §6.1 status reports)."""
    from waystation.bundle.admin import BundleStatusReport, decode_admin_record
    from waystation.bundle.errors import BundleError

    try:
        record = decode_admin_record(payload)
    except BundleError as exc:
        return f"[undecodable administrative record, {len(payload)} bytes: {exc}]"
    if not isinstance(record, BundleStatusReport):
        return f"[administrative record type {record.record_type}, {len(payload)} bytes]"
    names = ("received", "forwarded", "delivered", "deleted")
    asserted = []
    for name in names:
        item = getattr(record, name)
        if item.asserted:
            asserted.append(name + (f" at {item.time_ms}" if item.time_ms is not None else ""))
    subject = f"{record.source} {record.creation.time_ms} {record.creation.sequence}"
    return f"status report: {', '.join(asserted) or 'nothing'} - {subject} (reason {record.reason})"


def _filename(d: Delivery) -> str:
    src = re.sub(r"[^A-Za-z0-9._-]+", "_", d.source).strip("_")
    return f"{src}-{d.creation_ms}-{d.sequence}.bin"


def _write(out_dir: Path, d: Delivery) -> Path:
    path = out_dir / _filename(d)
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as fh:
        fh.write(d.payload)
        fh.flush()
        # The node deletes the bundle once we ack, so the file must be durable first.
        import os

        os.fsync(fh.fileno())
    tmp.replace(path)
    return path


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count <= 0:
        print("waystation recv: --count must be positive", file=sys.stderr)
        return 2
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    got = 0
    try:
        with connect(args) as client:
            client.register(args.endpoint)
            for d in client.receive(args.endpoint, count=args.count, timeout=args.wait):
                got += 1
                if args.output_dir is not None:
                    path = _write(args.output_dir, d)
                    print(f"{path}\t{len(d.payload)} bytes from {d.source}", flush=True)
                    continue
                if args.verbose_header:
                    print(f"# from {d.source} at {d.creation_ms}.{d.sequence}", flush=True)
                if d.admin:
                    print(describe_admin_record(d.payload), flush=True)
                else:
                    sys.stdout.buffer.write(d.payload)
                    if not d.payload.endswith(b"\n"):
                        sys.stdout.buffer.write(b"\n")
                    sys.stdout.buffer.flush()
    except ClientError as exc:
        return fail(exc)
    if args.count is not None and got < args.count:
        print(f"waystation recv: only {got} of {args.count} bundles arrived", file=sys.stderr)
        return 1
    return 0

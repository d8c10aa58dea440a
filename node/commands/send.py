"""``waystation send DEST [TEXT | --file F]``: submit a bundle to the local node."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from waystation.appproto import REPORT_KINDS
from waystation.client import ClientError, default_endpoint
from waystation.commands._common import add_client_options, connect, fail, human_bytes, progress


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("send", help="send a bundle", description=__doc__.replace("``", ""))
    p.add_argument("destination", help="destination EID, e.g. dtn://mars/inbox or ipn:2.1")
    p.add_argument("text", nargs="?", help="payload text (else --file, else standard input)")
    p.add_argument("--file", "-f", type=Path, help="send this file's contents")
    p.add_argument("--lifetime", type=float, help="bundle lifetime in seconds (default 86400)")
    p.add_argument("--priority", choices=["bulk", "normal", "expedited"])
    p.add_argument(
        "--report",
        action="append",
        default=[],
        choices=sorted(REPORT_KINDS),
        help="request a status report (repeatable)",
    )
    p.add_argument("--report-to", help="where status reports go (default: this node)")
    p.add_argument("--source", help="source EID (an endpoint of this node)")
    add_client_options(p)
    p.set_defaults(func=run)


def _read_file(path: Path) -> bytes:
    total = path.stat().st_size
    chunks = []
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            chunks.append(chunk)
            done += len(chunk)
            progress(f"reading {path.name}", done, total)
    return b"".join(chunks)


def run(args: argparse.Namespace) -> int:
    if args.file is not None and args.text is not None:
        print("waystation send: give TEXT or --file, not both", file=sys.stderr)
        return 2
    endpoint = args.socket or default_endpoint()
    if args.file is not None and (endpoint.startswith("ipc://") or "://" not in endpoint):
        # On the local ipc socket the node reads the file itself (no copy through ZeroMQ).
        try:
            size = args.file.stat().st_size
            with connect(args) as client:
                if size > 1 << 20 and sys.stderr.isatty():
                    print(f"submitting {args.file} ({human_bytes(size)})...", file=sys.stderr)
                result = client.send_file(
                    args.destination,
                    args.file,
                    lifetime=args.lifetime,
                    priority=args.priority,
                    reports=args.report,
                    report_to=args.report_to,
                    source=args.source,
                    timeout=max(args.timeout, 10 + size / 20e6),
                )
        except OSError as exc:
            print(f"waystation send: {exc}", file=sys.stderr)
            return 2
        except ClientError as exc:
            return fail(exc)
        print(result.bundle_id)
        return 0
    try:
        if args.file is not None:
            payload = _read_file(args.file)
        elif args.text is not None:
            payload = args.text.encode()
        else:
            payload = sys.stdin.buffer.read()
    except OSError as exc:
        print(f"waystation send: {exc}", file=sys.stderr)
        return 2
    try:
        with connect(args) as client:
            if len(payload) > 1 << 20 and sys.stderr.isatty():
                print(f"submitting {human_bytes(len(payload))}...", file=sys.stderr)
            result = client.send(
                args.destination,
                payload,
                lifetime=args.lifetime,
                priority=args.priority,
                reports=args.report,
                report_to=args.report_to,
                source=args.source,
            )
    except ClientError as exc:
        return fail(exc)
    print(result.bundle_id)
    return 0

"""Options and helpers shared by the client-side commands (send, recv, ping, status)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from waystation.client import Client, ClientError, NodeError, NodeUnavailable, default_endpoint

__all__ = ["add_client_options", "connect", "fail", "human_bytes"]


def add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket",
        metavar="ENDPOINT",
        help="node socket: a path or a ZeroMQ endpoint (default: $WAYSTATION_SOCKET or "
        "ipc://$XDG_RUNTIME_DIR/waystation/node.sock)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the node (default 10)"
    )


def connect(args: argparse.Namespace) -> Client:
    endpoint = args.socket or default_endpoint()
    if "://" not in endpoint:
        endpoint = f"ipc://{endpoint}"
    return Client(endpoint, timeout=args.timeout)


def fail(exc: ClientError | Exception) -> int:
    """Print a one-line error and return the exit code for it."""
    if isinstance(exc, NodeUnavailable):
        print(f"waystation: {exc} (is `waystation node` running?)", file=sys.stderr)
        return 3
    if isinstance(exc, NodeError):
        print(f"waystation: node refused: {exc.code}: {exc.message}", file=sys.stderr)
        return 4
    print(f"waystation: {exc}", file=sys.stderr)
    return 1


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def progress(label: str, done: int, total: int, stream: Any = None) -> None:
    """A one-line progress indicator on stderr (only when it is a terminal)."""
    stream = stream or sys.stderr
    if not stream.isatty() or total <= 0:
        return
    pct = 100 * done // total
    stream.write(f"\r{label}: {human_bytes(done)} / {human_bytes(total)} ({pct}%)")
    if done >= total:
        stream.write("\n")
    stream.flush()

"""``waystation demo``: the README's main job - store-and-forward over a LEO pass.

Three ``waystation node`` processes (ground stations Darmstadt ipn:1 and Kourou ipn:3, the ISS
ipn:2 between them) run on one scaled clock with a contact plan computed from the TLE shipped
in the package; messages submitted at Darmstadt wait for the pass, hop via the satellite and
are delivered at Kourou. Engine: :mod:`waystation.demorun`; docs/demo.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="three nodes, a LEO pass, a scaled clock: store-and-forward live",
        description="Start two ground-station nodes and a LEO-satellite node on a scaled clock "
        "with a contact plan computed from a TLE, send messages from Darmstadt to Kourou and "
        "watch them wait for the pass, hop via the satellite and arrive. No configuration "
        "needed; writes plan.png. See docs/demo.md. (The offline codec tour is "
        "'waystation bundle demo'.)",
    )
    p.add_argument(
        "--scale", type=float, default=100.0,
        help="clock speed-up (default 100: the 95 simulated minutes take about a minute)",
    )
    p.add_argument("--messages", type=int, default=3, help="messages to send (default 3)")
    p.add_argument(
        "--workdir", type=Path,
        help="keep plan, logs and node stores here (default: a new directory under "
        "$XDG_DATA_HOME, node stores removed at the end)",
    )
    p.add_argument("--keep", action="store_true", help="keep the node stores too")
    p.add_argument(
        "--timeout", type=float, default=600.0, help="give up after this many wall seconds"
    )
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from waystation.demorun import DemoError, run_demo

    # Ctrl-C and SIGTERM both stop the three nodes cleanly (even when started from a shell
    # that ignores SIGINT in background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run_demo(
            scale=args.scale,
            messages=args.messages,
            workdir=args.workdir,
            keep=args.keep,
            timeout_s=args.timeout,
        )
    except DemoError as exc:
        print(f"waystation demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nwaystation demo: interrupted; nodes stopped", file=sys.stderr)
        return 130
    return 0 if result.ok else 1

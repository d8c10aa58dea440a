"""``waystation node``: run the bundle node (no configuration needed)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from waystation.config import ConfigError, LinkConfig, RouteConfig, load_config
from waystation.gctune import tune_gc
from waystation.logsetup import configure_logging

log = logging.getLogger("waystation.node")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "node",
        help="run the bundle node",
        description="Run a waystation bundle node. With no options it uses the host name as "
        "node ID (dtn://HOST/), keeps bundles under $XDG_DATA_HOME/waystation and listens on "
        "$XDG_RUNTIME_DIR/waystation/node.sock. See docs/node.md and docs/node.sample.toml.",
    )
    p.add_argument("--config", type=Path, help="node.toml with further settings")
    p.add_argument("--id", dest="node_id", help="node ID, e.g. dtn://mars/ or ipn:5.0")
    p.add_argument("--ipn", type=int, dest="ipn_node", help="also answer to ipn node number N")
    p.add_argument("--data-dir", type=Path, help="where the store and node state live")
    p.add_argument("--runtime-dir", type=Path, help="where the application socket lives")
    p.add_argument(
        "--plan", dest="contact_plan", type=Path, help="contact plan (ION/HDTN/native) for CGR"
    )
    p.add_argument("--tcp", dest="app_tcp", help="also listen on tcp://127.0.0.1:PORT")
    p.add_argument("--store", dest="store_backend", choices=["lmdb", "memory"])
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="accept TCPCLv4 sessions here (repeatable), e.g. 127.0.0.1:4556",
    )
    p.add_argument(
        "--connect",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="keep a TCPCLv4 session to this neighbour (repeatable; reconnects)",
    )
    p.add_argument(
        "--route",
        metavar="PATTERN=NEXTHOP",
        action="append",
        default=[],
        help="static route: destination EID glob -> neighbour node ID (repeatable)",
    )
    p.add_argument(
        "--contact-link",
        metavar="N=HOST:PORT",
        action="append",
        default=[],
        help="TCPCLv4 session to ipn node N, open only during its contacts in the plan "
        "(repeatable; docs/node.md, Scheduling)",
    )
    p.add_argument(
        "--watch-plan", action="store_true", default=None,
        help="reload the --plan file when it changes (a bad edit keeps the old plan)",
    )
    p.add_argument(
        "--clock-scale", type=float, metavar="X",
        help="run the node's clock X times faster than real time (e.g. 60), for replays",
    )
    p.add_argument(
        "--clock-start", metavar="T",
        help="simulated time at start (ISO 8601 UTC or DTN ms; default now)",
    )
    p.add_argument(
        "--clock-anchor", type=float, metavar="UNIX_S",
        help="wall-clock instant (Unix seconds) at which the clock reads --clock-start; "
        "give several nodes the same value to share one simulated time",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["text", "json"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        clock_start = None
        if args.clock_start is not None:
            from waystation.simclock import parse_clock_start

            try:
                clock_start = parse_clock_start(args.clock_start)
            except ValueError as exc:
                raise ConfigError(f"--clock-start: {exc}") from None
        cfg = load_config(
            args.config,
            node_id=args.node_id,
            ipn_node=args.ipn_node,
            data_dir=args.data_dir,
            runtime_dir=args.runtime_dir,
            app_tcp=args.app_tcp,
            contact_plan=args.contact_plan,
            store_backend=args.store_backend,
            log_level=args.log_level,
            log_format=args.log_format,
            watch_plan=args.watch_plan,
            clock_scale=args.clock_scale,
            clock_start=clock_start,
            clock_anchor=args.clock_anchor,
        )
        for i, where in enumerate(args.listen):
            cfg.links.append(LinkConfig(f"listen{i}", "tcpcl", {"listen": where}))
        for i, where in enumerate(args.connect):
            cfg.links.append(LinkConfig(f"connect{i}", "tcpcl", {"address": where}))
        for text in args.contact_link:
            number, sep, where = text.partition("=")
            if not sep or not number.strip().isdigit() or not where:
                raise ConfigError(f"--contact-link {text!r}: expected N=HOST:PORT (ipn node N)")
            cfg.links.append(
                LinkConfig(
                    f"contact-ipn{number.strip()}",
                    "tcpcl",
                    {"address": where, "scheduled": True, "neighbour": int(number)},
                )
            )
        for text in args.route:
            pattern, sep, hop = text.partition("=")
            if not sep or not pattern or not hop:
                raise ConfigError(f"--route {text!r}: expected PATTERN=NEXTHOP")
            cfg.routes.append(RouteConfig(pattern, hop))
    except ConfigError as exc:
        print(f"waystation node: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg.log_level, cfg.log_format)
    tune_gc()  # after imports and configuration: what exists now is frozen
    try:
        return asyncio.run(_main(cfg))
    except KeyboardInterrupt:
        return 130


async def _main(cfg: object) -> int:
    from waystation.bundle.bpsec.errors import BPSecError
    from waystation.service import DataDirInUse, NodeService
    from waystation.store.api import StoreError

    service = NodeService(cfg)  # type: ignore[arg-type]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
    except (StoreError, OSError, DataDirInUse, BPSecError) as exc:  # BPSec: unusable key files
        log.error("cannot start node: %s", exc)
        print(f"waystation node: {exc}", file=sys.stderr)
        if not isinstance(exc, DataDirInUse):
            await service.stop()
        return 1
    print(f"waystation node {service.identity.node_id} ready", file=sys.stderr, flush=True)
    await stop.wait()
    await service.stop()
    return 0

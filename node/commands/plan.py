"""``waystation plan``: contact plans - convert, compute from orbits, show, check, plot, route.

Library: :mod:`waystation.contact_plan`. Times on the command line are ISO 8601 UTC
(``2024-05-09T20:40:00Z``), ``now``, or DTN milliseconds (a bare integer).
"""

from __future__ import annotations

import argparse
import sys

from waystation.bundle.dtntime import dtn_ms_to_datetime, parse_dtn_time
from waystation.contact_plan.errors import ContactPlanError

__all__ = ["parse_time", "register"]

_FORMATS = ("ion", "hdtn", "native")


def parse_time(text: str) -> int:
    """DTN ms from ``now``, a bare integer (DTN ms) or an ISO 8601 time (UTC if no zone)."""
    try:
        return parse_dtn_time(text, "bad time")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _iso(ms: int) -> str:
    return dtn_ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _load(args: argparse.Namespace, path: str | None = None):  # type: ignore[no-untyped-def]
    from waystation.contact_plan.formats import load_plan

    return load_plan(
        path or args.plan,
        fmt=getattr(args, "from_format", None),
        reference_ms=getattr(args, "reference", None) or 0,
        lenient=getattr(args, "lenient", False),
    )


def _add_input(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", help="contact plan file (.ionrc, HDTN .json or waystation .json)")
    p.add_argument("--from-format", choices=_FORMATS, help="input format (default: detect)")
    p.add_argument(
        "--reference",
        type=parse_time,
        metavar="T",
        help="time that relative times (ION +N, HDTN seconds) count from (default: DTN epoch)",
    )
    p.add_argument(
        "--lenient",
        action="store_true",
        help="drop HDTN contacts that end before they start instead of failing",
    )


def _cmd_convert(args: argparse.Namespace) -> int:
    from waystation.contact_plan.formats import save_plan

    plan = _load(args)
    save_plan(plan, args.output, args.to, reference_ms=args.out_reference)
    print(
        f"wrote {len(plan.contacts)} contacts, {len(plan.ranges)} ranges to {args.output} "
        f"({args.to})"
    )
    return 0


def _cmd_compute(args: argparse.Namespace) -> int:
    import time

    from waystation.contact_plan.formats import save_plan
    from waystation.contact_plan.orbits import compute_plan, load_scenario, load_tles

    tles = load_tles(args.tle)
    scenario = load_scenario(args.stations, tles)
    t0 = time.perf_counter()
    plan = compute_plan(scenario, args.start, args.hours, isl=args.isl, step_s=args.step)
    took = time.perf_counter() - t0
    save_plan(plan, args.output, args.format)
    print(
        f"{len(scenario.satellites)} satellites x {len(scenario.stations)} stations, "
        f"{args.hours} h from {_iso(args.start)}: {len(plan.contacts)} contacts in {took:.2f} s "
        f"-> {args.output}"
    )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    plan = _load(args)
    w = plan.window
    print(
        f"{len(plan.contacts)} contacts, {len(plan.ranges)} ranges, {len(plan.nodes)} nodes"
        + (f", {_iso(w[0])} .. {_iso(w[1])}" if w else "")
    )
    print(
        f"{'from':>8} {'to':>8}  {'start (UTC)':<24} {'duration':>10} {'rate B/s':>12} "
        f"{'owlt ms':>8} {'conf':>5}"
    )
    shown = sorted(plan.contacts, key=lambda c: (c.start_ms, c.source, c.dest))
    if args.limit:
        shown = shown[: args.limit]
    for c in shown:
        owlt = plan.contact_owlt_ms(c)
        print(
            f"{c.source:>8} {c.dest:>8}  {_iso(c.start_ms):<24} {c.duration_ms / 1000:>9.1f}s "
            f"{c.rate:>12} {'-' if owlt is None else owlt:>8} {c.confidence:>5.2f}"
        )
    if args.limit and len(plan.contacts) > args.limit:
        print(f"... {len(plan.contacts) - args.limit} more")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    plan = _load(args)
    problems = plan.check()
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(f"{p.severity}: {p.message}")
    print(
        f"{args.plan}: {len(plan.contacts)} contacts, {len(errors)} errors, "
        f"{len(problems) - len(errors)} warnings"
    )
    return 1 if errors else 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from waystation.contact_plan.plot import plot_plan

    plan = _load(args)
    rows = plot_plan(plan, args.output, title=args.title or f"Contact plan {args.plan}")
    print(f"wrote {args.output} ({rows} links)")
    return 0


def _cmd_route(args: argparse.Namespace) -> int:
    from waystation.contact_plan.cgr import ContactGraph

    plan = _load(args)
    g = ContactGraph(plan)
    at = args.at if args.at is not None else (plan.window or (0, 0))[0]
    routes = g.k_routes(args.source, args.dest, at, args.k, size=args.size)
    if not routes:
        print(f"no route from {args.source} to {args.dest} at {_iso(at)}")
        return 1
    for i, r in enumerate(routes, 1):
        print(
            f"#{i} arrival {_iso(r.arrival_ms)} ({(r.arrival_ms - at) / 1000:.3f} s), "
            f"{r.hops} hops, next hop {r.next_hop}"
        )
        for c, (tx, arr) in zip(r.contacts, r.hop_times):
            print(f"    {c.source} -> {c.dest}  send {_iso(tx)}  arrive {_iso(arr)}")
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    import os

    from waystation.client import ClientError
    from waystation.commands._common import connect, fail

    path = os.path.abspath(args.plan)  # the node resolves paths from its own directory
    try:
        with connect(args) as client:
            reply = client.load_plan(path)
    except ClientError as exc:
        return fail(exc)
    print(f"node loaded {reply.get('contacts', '?')} contacts from {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    plan = subparsers.add_parser("plan", help="contact plans: convert, compute, show, check, plot")
    sub = plan.add_subparsers(dest="plan_command", metavar="ACTION", required=True)

    p = sub.add_parser("convert", help="convert between ION .ionrc, HDTN JSON and waystation JSON")
    _add_input(p)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--to", choices=_FORMATS, default="native", help="output format")
    p.add_argument(
        "--out-reference",
        type=parse_time,
        metavar="T",
        help="ION '@' reference / HDTN epoch for the output (default: plan start)",
    )
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("compute", help="contacts from TLEs and ground stations (skyfield/SGP4)")
    p.add_argument("--tle", required=True, help="TLE file (2- or 3-line sets)")
    p.add_argument("--stations", required=True, help="station/satellite scenario (JSON)")
    p.add_argument("--start", type=parse_time, required=True, metavar="T")
    p.add_argument("--hours", type=float, required=True)
    p.add_argument("--isl", action="store_true", help="add inter-satellite links")
    p.add_argument("--step", type=float, default=30.0, help="coarse grid step, s (default 30)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--format", choices=_FORMATS, help="output format (default: by extension)")
    p.set_defaults(func=_cmd_compute)

    p = sub.add_parser("show", help="list a plan's contacts")
    _add_input(p)
    p.add_argument("--limit", type=int, default=0, help="show at most N contacts")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("check", help="validate a plan (exit 1 on errors)")
    _add_input(p)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("plot", help="Gantt chart of contacts per link (PNG)")
    _add_input(p)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--title")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("route", help="CGR routes between two nodes (SABR order, Yen k-shortest)")
    _add_input(p)
    p.add_argument("--from", dest="source", type=int, required=True, metavar="NODE")
    p.add_argument("--to", dest="dest", type=int, required=True, metavar="NODE")
    p.add_argument(
        "--at", type=parse_time, metavar="T", help="departure time (default: plan start)"
    )
    p.add_argument("-k", type=int, default=3, help="number of routes (default 3)")
    p.add_argument("--size", type=int, default=0, help="bundle size in bytes (default 0)")
    p.set_defaults(func=_cmd_route)

    p = sub.add_parser(
        "load",
        help="make a running node load a plan (over its admin socket); it routes by CGR and "
        "opens scheduled links on the plan's contacts",
    )
    p.add_argument("plan", help="contact plan file (read by the node; relative times = now)")
    from waystation.commands._common import add_client_options

    add_client_options(p)
    p.set_defaults(func=_cmd_load)

    # Every action reports plan errors as one line naming file/line/field, exit status 2.
    for action in sub.choices.values():
        inner = action.get_default("func")
        action.set_defaults(func=_guarded(inner))


def _guarded(func):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except ContactPlanError as exc:
            print(f"waystation plan: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"waystation plan: {exc}", file=sys.stderr)
            return 2

    return run

"""``waystation status``: a readable summary of the running node."""

from __future__ import annotations

import argparse
import json
from typing import Any

from waystation.client import ClientError
from waystation.commands._common import add_client_options, connect, fail, human_bytes


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "status", help="show the node's status", description=__doc__.replace("``", "")
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_client_options(p)
    p.set_defaults(func=run)


def format_status(s: dict[str, Any]) -> str:
    lines = [
        f"node       {s.get('node_id')}  (waystation {s.get('version')}, up {s.get('uptime_s')} s)",
        f"eids       {', '.join(s.get('eids', []))}",
        f"echo       {', '.join(s.get('echo', []))}",
    ]
    store = s.get("store", {})
    b = s.get("bundles", {})
    lines.append(
        f"store      {store.get('count', '?')} bundles, {human_bytes(store.get('bytes', 0) or 0)}"
        f" ({store.get('backend', '?')}{', ' + store['path'] if store.get('path') else ''})"
    )
    lines.append(
        f"bundles    {b.get('held', 0)} held: {b.get('local', 0)} for local apps, "
        f"{b.get('queue', 0)} queued, {b.get('waiting', 0)} without route"
    )
    c = s.get("counters", {})
    lines.append("counters   " + ", ".join(f"{k} {v}" for k, v in c.items()))
    lines.append("registrations")
    for r in s.get("registrations", []) or []:
        flag = "receiving" if r.get("receiving") else "offline"
        extra = ", transient" if r.get("transient") else ""
        lines.append(f"  {r['endpoint']:<40} {r['pending']:>6} pending  ({flag}{extra})")
    if not s.get("registrations"):
        lines.append("  (none)")
    lines.append("links")
    for link in s.get("links", []) or []:
        state = "up" if link.get("up") else "down"
        lines.append(f"  {link.get('id')}  {link.get('kind')}  peer {link.get('peer')}  {state}")
    if not s.get("links"):
        lines.append("  (none)")
    lines.append("routes")
    for r in s.get("routes", []) or []:
        lines.append(f"  {r['pattern']:<30} -> {r['next_hop']}  ({r.get('kind', '')})")
    if not s.get("routes"):
        lines.append("  (none)")
    lines.extend(_contact_lines(s))
    queues = s.get("queues") or {}
    if queues:
        lines.append("queues")
        lines.extend(f"  {n}: {q}" for n, q in queues.items())
    return "\n".join(lines)


def _iso(ms: int) -> str:
    from waystation.bundle.dtntime import dtn_ms_to_datetime

    return dtn_ms_to_datetime(int(ms)).strftime("%Y-%m-%d %H:%M:%S UTC")


def _contact_lines(s: dict[str, Any]) -> list[str]:
    """Contact plan schedule (docs/node.md "Scheduling"): clock, open contacts, next ones."""
    sched = s.get("schedule")
    contacts = s.get("contacts") or []
    if not sched and not contacts:
        return []
    lines = ["contacts"]
    if s.get("clock_ms") is not None:
        lines.append(f"  node clock     {_iso(s['clock_ms'])}")
    if sched:
        lines.append(f"  in contact     {', '.join(sched.get('open', [])) or '(none)'}")
        for lk in sched.get("links", []):
            state = "open" if lk.get("open") else "closed until its contact"
            lines.append(f"  scheduled link {lk.get('id')} -> {lk.get('neighbour')}  {state}")
        if sched.get("next_event_ms") is not None:
            lines.append(f"  next event     {_iso(sched['next_event_ms'])}")
    for c in contacts[:5]:
        mark = "now " if c.get("active") else "next"
        lines.append(
            f"  {mark} {c.get('from')} -> {c.get('to')}  {_iso(c['start_ms'])} .. "
            f"{_iso(c['end_ms'])[11:]}  {c.get('rate')} B/s"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        with connect(args) as client:
            status = client.status()
    except ClientError as exc:
        return fail(exc)
    if args.json:
        print(
            json.dumps(
                status, indent=2, default=lambda o: o.hex() if isinstance(o, bytes) else str(o)
            )
        )
    else:
        print(format_status(status))
    return 0

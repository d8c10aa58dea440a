"""``waystation ping DEST``: round trips through a node's echo service (like ION's bping)."""

from __future__ import annotations

import argparse
import os
import struct
import time

from waystation.client import ClientError
from waystation.commands._common import add_client_options, connect, fail
from waystation.identity import ECHO_DEMUX, ECHO_SERVICE

_MAGIC = b"WSPG"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "ping", help="ping a node's echo service", description=__doc__.replace("``", "")
    )
    p.add_argument(
        "destination",
        help="a node ID (dtn://mars/ or ipn:2.0: its echo service is used) or an echo EID",
    )
    p.add_argument("--count", "-c", type=int, default=3, help="number of pings (default 3)")
    p.add_argument("--interval", "-i", type=float, default=1.0, help="seconds between pings")
    p.add_argument("--size", "-s", type=int, default=64, help="payload bytes (default 64)")
    p.add_argument("--lifetime", type=float, default=60.0, help="bundle lifetime in seconds")
    p.add_argument(
        "--wait", "-w", type=float, default=5.0, help="seconds to wait for the last echo"
    )
    add_client_options(p)
    p.set_defaults(func=run)


def echo_eid(dest: str) -> str:
    if dest.startswith("ipn:"):
        parts = dest[4:].split(".")
        if len(parts) == 2 and parts[1] == "0":
            return f"ipn:{parts[0]}.{ECHO_SERVICE}"
        return dest
    if dest.startswith("dtn://") and dest.endswith("/") and dest.count("/") == 3:
        return dest + ECHO_DEMUX
    return dest


def run(args: argparse.Namespace) -> int:
    target = echo_eid(args.destination)
    size = max(args.size, 24)
    try:
        with connect(args) as client:
            hello = client.hello()
            node = hello["node_id"]
            base = node if node.startswith("dtn:") else None
            me = (
                f"{base}ping-{os.getpid()}-{int(time.time() * 1000) % 100000}"
                if base
                else f"ipn:{node[4:].split('.')[0]}.{40000 + os.getpid() % 20000}"
            )
            client.register(me, transient=True)
            client.call("recv", endpoint=me, window=64)
            sent: dict[int, float] = {}
            rtts: list[float] = []
            print(f"PING {target} from {me}: {size} bytes")
            for seq in range(args.count):
                body = _MAGIC + struct.pack(">Id", seq, time.time())
                payload = body + b"\0" * (size - len(body))
                sent[seq] = time.perf_counter()
                client.send(target, payload, lifetime=args.lifetime, source=me)
                deadline = time.perf_counter() + (
                    args.interval if seq < args.count - 1 else args.wait
                )
                while time.perf_counter() < deadline and len(rtts) < len(sent):
                    d = client.next_delivery(me, max(0.0, deadline - time.perf_counter()))
                    if d is None:
                        break
                    client.ack(d)
                    if d.payload[:4] != _MAGIC:
                        continue
                    rseq = struct.unpack(">I", d.payload[4:8])[0]
                    if rseq in sent:
                        rtt = (time.perf_counter() - sent[rseq]) * 1000
                        rtts.append(rtt)
                        print(
                            f"{len(d.payload)} bytes from {d.source}: seq={rseq} time={rtt:.2f} ms",
                            flush=True,
                        )
                remaining = deadline - time.perf_counter()
                if remaining > 0 and seq < args.count - 1:
                    time.sleep(remaining)
            client.unregister(me)
    except ClientError as exc:
        return fail(exc)
    loss = 100 * (args.count - len(rtts)) / args.count if args.count else 0
    print(f"--- {target} ping statistics ---")
    print(f"{args.count} bundles sent, {len(rtts)} echoed, {loss:.0f}% loss")
    if rtts:
        print(f"rtt min/avg/max = {min(rtts):.2f}/{sum(rtts) / len(rtts):.2f}/{max(rtts):.2f} ms")
    return 0 if rtts else 1

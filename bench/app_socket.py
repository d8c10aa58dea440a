"""Submit+store rate of 1 KiB bundles through the node's app socket vs a raw ZeroMQ round trip.

Measured in the same run, interleaved:

* **node**: a real ``waystation node`` process (LMDB store in a fresh temporary directory,
  durable commits) and the sync client library's ``send_many`` (pipelined, 512 requests in
  flight). A send counts when its reply arrives, i.e. after the bundle was built, encoded and
  durably committed by the store's group-commit writer. The destination has no route, so the
  bundles stay stored and nothing else competes.
* **raw zmq**: the same client-side pattern (DEALER, same frame size, same 512-request window)
  against a minimal ROUTER echo process that polls and drains and answers each message at
  once: the cost of the transport and of Python on both ends, nothing else.

The node runs twice per round: with ``[security] sign_originated = false`` (the app socket,
agent and store alone) and with the default BPSec source signing (a COSE_Sign1 Ed25519 BIB on
every bundle that leaves the node, issue 7), so the cost of each is visible.

The ratio node/raw says how much of the transport ceiling the node reaches; the node's CPU
time per bundle (all its threads, from /proc) is less sensitive to a busy host. Each is run
``--repeat`` times (alternating); medians are printed. Run:
``.venv/bin/python bench/app_socket.py [--count N] [--repeat R]`` (about 20 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
from waystation.appproto import encode_frame
from waystation.client import Client

PAYLOAD = os.urandom(1024)
WINDOW = 512

ECHO_SERVER = r"""
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.SNDHWM, 100000); s.setsockopt(zmq.RCVHWM, 100000)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    s.poll()
    for _ in range(4096):
        try:
            ident, msg = s.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            break
        if msg == b"quit":
            sys.exit(0)
        s.send_multipart([ident, msg[:16]], zmq.NOBLOCK)
"""


def raw_round_trips(endpoint: str, count: int) -> float:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    # One frame the size of a real send request.
    frame = encode_frame("send", 1, {"destination": "dtn://nowhere/x", "payload": PAYLOAD})
    sock.send(frame)
    sock.recv()  # warm the connection
    start = time.perf_counter()
    outstanding = 0
    for _ in range(count):
        sock.send(frame)
        outstanding += 1
        if outstanding >= WINDOW:
            sock.recv()
            outstanding -= 1
    while outstanding:
        sock.recv()
        outstanding -= 1
    elapsed = time.perf_counter() - start
    sock.close()
    return count / elapsed


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_submits(endpoint: str, count: int, pid: int) -> tuple[float, float]:
    """(bundles/s, node CPU microseconds per bundle)."""
    with Client(endpoint, timeout=30) as c:
        c.send("dtn://nowhere/x", PAYLOAD)  # warm up
        cpu0 = cpu_seconds(pid)
        start = time.perf_counter()
        results = c.send_many("dtn://nowhere/x", (PAYLOAD for _ in range(count)))
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu0
    assert len(results) == count
    return count / elapsed, cpu / count * 1e6


def start_node(tmp: Path, sign: bool) -> tuple[subprocess.Popen[bytes], str]:
    sock = tmp / "run" / "node.sock"
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "node.toml"
    # BPSec source signing (on by default) can be switched off to see the app-socket path alone.
    config.write_text(f"[security]\nsign_originated = {'true' if sign else 'false'}\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "waystation",
            "node",
            "--config",
            str(config),
            "--id",
            "dtn://bench/",
            "--data-dir",
            str(tmp / "data"),
            "--runtime-dir",
            str(tmp / "run"),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"ipc://{sock}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sock.exists():
            try:
                with Client(endpoint, timeout=0.5) as c:
                    c.hello()
                return proc, endpoint
            except Exception:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("node did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    node_rates: dict[bool, list[float]] = {True: [], False: []}
    node_cpu: dict[bool, list[float]] = {True: [], False: []}
    raw_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmpname:
        tmp = Path(tmpname)
        raw_endpoint = f"ipc://{tmp / 'raw.sock'}"
        echo = subprocess.Popen(
            [sys.executable, "-c", ECHO_SERVER, raw_endpoint], stdout=subprocess.PIPE
        )
        assert echo.stdout is not None and echo.stdout.readline().strip() == b"ready"
        try:
            for r in range(args.repeat):
                raw_rates.append(raw_round_trips(raw_endpoint, args.count))
                for sign in (False, True):
                    run_dir = tmp / f"node{r}-{sign}"
                    proc, endpoint = start_node(run_dir, sign)
                    try:
                        rate, cpu = node_submits(endpoint, args.count, proc.pid)
                        node_rates[sign].append(rate)
                        node_cpu[sign].append(cpu)
                    finally:
                        proc.terminate()
                        proc.wait(20)
                        shutil.rmtree(run_dir, ignore_errors=True)
        finally:
            ctx = zmq.Context.instance()
            q = ctx.socket(zmq.DEALER)
            q.connect(raw_endpoint)
            q.send(b"quit")
            q.close(linger=500)
            echo.wait(5)

    raw = statistics.median(raw_rates)
    print(f"app socket, 1 KiB payloads, {args.count} per run, median of {args.repeat}")
    print(f"  raw zmq DEALER/ROUTER round trip           : {raw:>8,.0f} msgs/s")
    for sign, label in ((False, "unsigned"), (True, "BPSec-signed")):
        node = statistics.median(node_rates[sign])
        cpu = statistics.median(node_cpu[sign])
        print(
            f"  node submit + durable store, {label:<14}: {node:>8,.0f} bundles/s"
            f"  ratio {node / raw:.3f}  node CPU {cpu:.0f} us/bundle"
        )
    print(f"  load average at the end                    : {os.getloadavg()[0]:>8.2f} (2 vCPU)")


if __name__ == "__main__":
    main()

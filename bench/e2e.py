"""End to end: two ``waystation node`` processes over TCPCLv4 on loopback, durable at both ends.

Node A (``--connect``) and node B (``--listen``), both with the LMDB store (synced commits).
An application on A submits bundles for ``dtn://b/inbox`` through A's socket (pipelined with
``Client.send_many``); an application on B receives and acknowledges them.

Prints, for 1 KiB and 1 MiB payloads: bundles/s and MB/s *app to app* (first submit to last
delivery to B's application) and *node to node* (bundles pre-loaded durably into A's store with
its link closed; the clock starts when the link is opened, see ``node_to_node``). Node to node
at 1 KiB is timed twice: to *stored durably at B* (the issue's measure: the bundles go to an
endpoint with no application yet, so B keeps them; the bench counts B's committed bundles by
reading B's LMDB file read-only, ``StoreWatcher``), and to *delivered to B's application*
(B also hands each bundle to an application over its socket and deletes it on the ack). A bundle
stored at B was committed at A, transferred, and committed at B (the final XFER_ACK waits for
that). Then an application registers for the stored bundles and the bench times their delivery.
Also: latency p50/p99 of single bundles on an idle path (submit at A -> delivery at B); the raw
loopback TCP throughput measured in the same run (two threads, plain sockets, 1 MiB writes) as
the yardstick; and, in the same run, the durable sequential write bandwidth of the disk the node
stores live on (1 GiB in 1 MiB writes, fdatasync every 64 MiB), the physical ceiling for the
1 MiB node-to-node phase (both stores share that disk; B's durable write is inside the clock).
Issue targets: >= 10,000 bundles/s at 1 KiB (ION publishes about 2,400/s on loopback TCPCL)
and >= 50 % of raw TCP for 1 MiB bundles. The host drifts +-30 %: compare
within one run. ``--tls`` runs the link over TLS with certificates made on the fly.

``--sign on|off|both`` (default both): BPSec. *on* is the node default (A signs every bundle
with a COSE_Sign1 Ed25519 BIB) with B trusting A's key, so B's destination check verifies every
signature (and removes the BIB); *off* sets ``sign_originated = false`` and
``require_signature = false``. *both* runs the two on fresh node pairs and prints the ratio.

Run: ``.venv/bin/python bench/e2e.py`` (about 2-4 minutes; ``--sign on`` halves it).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
from _loopback import raw_tcp_mb_s
from _nodeproc import free_port, spawn_node, wait_until_up
from waystation.bundle.bpsec.keystore import KeyStore
from waystation.client import Client
from waystation.convergence.tls import make_ca, make_node_certificate

PY = sys.executable


class Node:
    def __init__(
        self, root: Path, name: str, link: dict[str, str], tls: Path | None, sign: bool = True
    ) -> None:
        self.name = name
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "run" / "node.sock"
        lines = [
            f'[node]\nid = "dtn://{name}/"\ndata_dir = "{self.dir / "data"}"\n'
            f'runtime_dir = "{self.dir / "run"}"\n',
            '[logging]\nlevel = "warning"\n',
            "[[links]]\n" + "".join(f'{k} = "{v}"\n' for k, v in link.items()),
        ]
        if tls is not None:
            lines[-1] += (
                f'tls = true\nrequire_tls = true\ncert = "{tls / name}.crt"\n'
                f'key = "{tls / name}.key"\nca = "{tls}/ca.crt"\n'
            )
        if not sign:
            lines.append("[security]\nsign_originated = false\nrequire_signature = false\n")
        self.config = self.dir / "node.toml"
        self.config.write_text("\n".join(lines))
        log = self.dir / "node.log"
        env = dict(os.environ, MALLOC_TOP_PAD_=str(64 << 20))
        self.proc = spawn_node(["--config", str(self.config)], log=log, env=env)
        wait_until_up(self.proc, self.socket, log=log, label=f"node {name}")

    def client(self, timeout: float = 60.0) -> Client:
        return Client(f"ipc://{self.socket}", timeout=timeout)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Receiver:
    """One application on B for the whole run: receives and acknowledges, counts arrivals."""

    def __init__(self, b: Node, endpoint: str = "dtn://b/inbox") -> None:
        self.endpoint = endpoint
        self.count = 0
        self.last = 0.0
        self.cond = threading.Condition()
        self.stopping = False
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(b,), daemon=True)
        self.thread.start()
        self.ready.wait(30)

    def _run(self, b: Node) -> None:
        with b.client() as cl:
            cl.register(self.endpoint)
            self.ready.set()
            for _ in cl.receive(self.endpoint, timeout=1.0, window=256):
                with self.cond:
                    self.count += 1
                    self.last = time.perf_counter()
                    self.cond.notify_all()
            # timeout with nothing to do: keep listening until told to stop
            while not self.stopping:
                for _ in cl.receive(self.endpoint, timeout=1.0, window=256):
                    with self.cond:
                        self.count += 1
                        self.last = time.perf_counter()
                        self.cond.notify_all()

    def waiter(self, count: int) -> Callable[[], float]:
        """A callable that blocks until ``count`` more deliveries than now; see ``wait_for``."""
        target = self.count + count
        return lambda: self.wait_for(target, 300)

    def wait_for(self, target: int, timeout: float) -> float:
        """Block until ``target`` deliveries in total; returns the time of the last one."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.count >= target, timeout):
                raise RuntimeError(f"only {self.count} of {target} bundles arrived")
            return self.last


def throughput(a: Node, rx: Receiver, size: int, count: int) -> float:
    """Bundles/s from the first submit at A to the last delivery at B."""
    payload = bytes(size)
    target = rx.count + count
    t0 = time.perf_counter()
    with a.client() as cl:
        cl.send_many("dtn://b/inbox", (payload for _ in range(count)), lifetime=3600)
    last = rx.wait_for(target, 300)
    return count / (last - t0)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StoreWatcher:
    """Counts the bundles committed in B's store by reading its LMDB file read-only from this
    process (LMDB serves any number of reader processes beside the writer), so observing B
    costs B nothing -- polling its admin socket would, and its status walks every held bundle."""

    def __init__(self, b: Node) -> None:
        self.env = lmdb.open(
            str(b.dir / "data" / "store"), readonly=True, max_dbs=16, lock=True, subdir=True
        )
        self.data = self.env.open_db(b"data", create=False)

    def count(self) -> int:
        try:
            with self.env.begin() as txn:
                return int(txn.stat(self.data)["entries"])
        except lmdb.MapResizedError:  # B grew its map since we opened it
            self.env.set_mapsize(0)
            return self.count()

    def waiter(self, count: int) -> Callable[[], float]:
        """A callable that blocks until ``count`` bundles are committed, and returns when it saw
        that (polled every 2 ms). First waits for B's store to empty: every earlier phase ends
        with B's application acknowledging, and B deletes those bundles a moment later."""
        deadline = time.monotonic() + 60
        while self.count():
            if time.monotonic() > deadline:
                raise RuntimeError(f"B's store still holds {self.count()} bundles")
            time.sleep(0.01)
        target = count

        def wait() -> float:
            deadline = time.monotonic() + 300
            while self.count() < target:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {self.count()} of {target} bundles stored at B")
                time.sleep(0.002)
            return time.perf_counter()

        return wait

    def close(self) -> None:
        self.env.close()


def node_to_node(
    a: Node,
    b: Node,
    size: int,
    count: int,
    link: dict[str, Any],
    dest: str,
    done: Callable[[], float],
    cpu: list[tuple[float, float]] | None = None,
) -> float:
    """Bundles/s node to node: ``count`` bundles for ``dest`` pre-loaded into A's store (durable)
    while its link to B is closed, then the link is opened and the clock runs until ``done``
    returns (the time the last one arrived). So the application submit path is outside the timed
    phase; everything in it is A's queue drain over TCPCLv4, B's durable commit before each
    XFER_ACK, and A's release (delete) of each acknowledged bundle -- plus, when ``done`` waits
    for B's application, delivery to it and B's release after the application's ack."""
    payload = bytes(size)
    with a.client() as cl:
        cl.del_link("to-b")
        while any(link.get("id") == "to-b" for link in cl.status().get("links", [])):
            time.sleep(0.01)
        cl.send_many(dest, (payload for _ in range(count)), lifetime=3600)
        c0 = (proc_cpu_s(a.proc.pid), proc_cpu_s(b.proc.pid))
        t0 = time.perf_counter()
        cl.add_link("to-b", "tcpcl", **link)
    last = done()
    if cpu is not None:
        # CPU per bundle of each node process inside the clock (all threads: loop, store
        # writer, BPSec worker), appended as (A us, B us).
        c1 = (proc_cpu_s(a.proc.pid), proc_cpu_s(b.proc.pid))
        cpu.append(((c1[0] - c0[0]) / count * 1e6, (c1[1] - c0[1]) / count * 1e6))
    return count / (last - t0)


def drain_stored(b: Node, endpoint: str, count: int) -> float:
    """Bundles/s from B's store to a new application: ``count`` bundles wait at B for
    ``endpoint`` (no registration yet, RFC 9171 §5.7 step 2); the clock runs from the moment
    an application registers until it has received the last one (it acknowledges in batches as it goes)."""
    t0 = time.perf_counter()
    rx = Receiver(b, endpoint)
    last = rx.wait_for(count, 300)
    rx.stopping = True
    return count / (last - t0)


def _cpu(samples: list[tuple[float, float]]) -> str:
    a = statistics.median(c[0] for c in samples)
    b = statistics.median(c[1] for c in samples)
    return f"A {a:.0f} us, B {b:.0f} us"


def durable_write_mb_s(directory: Path, total: int = 1 << 30, chunk: int = 1 << 20) -> float:
    """Durable sequential write bandwidth of the disk under ``directory`` (where both node stores
    live): ``total`` bytes in ``chunk``-sized ``os.write`` calls to a fresh file, fdatasync every
    64 MiB and at the end, then the file is deleted. This is the physical ceiling for the 1 MiB
    node-to-node phase, where every byte is written durably once (at B) inside the clock."""
    path = directory / "disk-ceiling.tmp"
    block = os.urandom(chunk)  # incompressible, in case the filesystem compresses
    sync_every = max(1, (64 << 20) // chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.perf_counter()
        for i in range(1, total // chunk + 1):
            os.write(fd, block)
            if i % sync_every == 0:
                os.fdatasync(fd)
        os.fdatasync(fd)
        dt = time.perf_counter() - t0
    finally:
        os.close(fd)
        path.unlink()
    return total / dt / 1e6


def latency(a: Node, rx: Receiver, samples: int) -> list[float]:
    out = []
    with a.client() as ca:
        for i in range(samples):
            target = rx.count + 1
            t0 = time.perf_counter()
            ca.send("dtn://b/inbox", i.to_bytes(4, "big") * 256, lifetime=3600)
            out.append(rx.wait_for(target, 30) - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=20_000, help="1 KiB bundles per run")
    ap.add_argument("--large", type=int, default=300, help="1 MiB bundles per run")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--samples", type=int, default=300, help="latency samples")
    ap.add_argument(
        "--disk-mib", type=int, default=1024, help="MiB written for the durable-write ceiling"
    )
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--sign", choices=["on", "off", "both"], default="both")
    args = ap.parse_args()
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.sign]
    results = {sign: run_pair(args, sign) for sign in modes}
    if len(results) == 2:
        on, off = results[True], results[False]
        print("BPSec signing on vs off (same run):")
        print(f"  1 KiB bundles/s: {on[0]:,.0f} vs {off[0]:,.0f}  ratio {on[0] / off[0]:.2f}")
        print(f"  1 MiB bundles/s: {on[1]:,.1f} vs {off[1]:,.1f}  ratio {on[1] / off[1]:.2f}")
        print(f"  latency p50 ms : {on[2]:.2f} vs {off[2]:.2f}")


def run_pair(args: argparse.Namespace, sign: bool) -> tuple[float, float, float]:
    """One A->B node pair; prints its figures, returns (1 KiB/s, 1 MiB/s, p50 ms)."""
    root = Path(tempfile.mkdtemp(prefix="ws-e2e-"))
    if sign:
        # B trusts A, so the default ("trusted") policy verifies every signature at B.
        a_key = KeyStore.for_data_dir(root / "a" / "data").identity()
        KeyStore.for_data_dir(root / "b" / "data").trust("node-a", a_key.public, "dtn://a/")
    tls = None
    if args.tls:
        tls = root / "pki"
        tls.mkdir()
        ca = make_ca()
        (tls / "ca.crt").write_bytes(ca.cert_pem)
        for n in ("a", "b"):
            make_node_certificate(f"dtn://{n}/", ca).write(tls, n)
    port = free_port()
    b = Node(root, "b", {"id": "in", "kind": "tcpcl", "listen": f"127.0.0.1:{port}"}, tls, sign)
    a = Node(
        root,
        "a",
        {"id": "to-b", "kind": "tcpcl", "address": f"127.0.0.1:{port}", "peer": "dtn://b/"},
        tls,
        sign,
    )
    a_link: dict[str, Any] = {"address": f"127.0.0.1:{port}", "peer": "dtn://b/"}
    if tls is not None:
        a_link.update(
            tls=True, require_tls=True, cert=f"{tls}/a.crt", key=f"{tls}/a.key", ca=f"{tls}/ca.crt"
        )
    try:
        rx = Receiver(b)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with a.client() as cl:
                links = cl.status().get("links", [])
            if any(link.get("up") for link in links):
                break
            time.sleep(0.1)
        throughput(a, rx, 1024, 500)  # warm-up: sessions, LMDB maps, allocator
        small, large, raw, disk, n2n_small, n2n_large = [], [], [], [], [], []
        stored_small, drained = [], []
        n2n_cpu: list[tuple[float, float]] = []
        stored_cpu: list[tuple[float, float]] = []
        inbox = "dtn://b/inbox"
        watcher = StoreWatcher(b)
        for i in range(args.repeat):
            raw.append(raw_tcp_mb_s())
            disk.append(durable_write_mb_s(root, args.disk_mib << 20))
            small.append(throughput(a, rx, 1024, args.small))
            large.append(throughput(a, rx, 1 << 20, args.large))
            # Stored at B: a fresh endpoint per repeat with no application yet, so B keeps
            # each bundle (the "stored durably at both ends"); then an application
            # registers and drains them.
            keep = f"dtn://b/keep-{i}"
            done = watcher.waiter(args.small)
            stored_small.append(
                node_to_node(a, b, 1024, args.small, a_link, keep, done, stored_cpu)
            )
            drained.append(drain_stored(b, keep, args.small))
            done = rx.waiter(args.small)
            n2n_small.append(node_to_node(a, b, 1024, args.small, a_link, inbox, done, n2n_cpu))
            done = rx.waiter(args.large)
            n2n_large.append(node_to_node(a, b, 1 << 20, args.large, a_link, inbox, done))
        watcher.close()
        lat = sorted(latency(a, rx, args.samples))
        rx.stopping = True
        with a.client() as cl:
            sec_a = cl.status().get("security", {})
        with b.client() as cl:
            sec_b = cl.status().get("security", {})
    finally:
        a.stop()
        b.stop()

    s, l_, r = statistics.median(small), statistics.median(large), statistics.median(raw)
    ns, nl = statistics.median(n2n_small), statistics.median(n2n_large)
    st, dr = statistics.median(stored_small), statistics.median(drained)
    d = statistics.median(disk)
    p50 = lat[len(lat) // 2] * 1e3
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
    print(
        f"waystation e2e: two node processes, TCPCLv4{' + TLS' if tls else ''} on loopback, "
        f"LMDB durable at both ends, BPSec signing {'on (B verifies)' if sign else 'off'} "
        f"(medians of {args.repeat})"
    )
    print("  app to app (A's app submits while the link runs):")
    print(f"  1 KiB bundles : {s:10,.0f} bundles/s  ({s * 1024 / 1e6:.1f} MB/s)")
    print(f"  1 MiB bundles : {l_ * 1.048576:10,.1f} MB/s      ({l_:.0f} bundles/s)")
    print("  node to node (pre-loaded in A's store, then the link opens):")
    print(
        f"  1 KiB, stored durably at B      : {st:10,.0f} bundles/s  ({st * 1024 / 1e6:.1f} MB/s)"
        f"  CPU per bundle {_cpu(stored_cpu)}"
    )
    print(
        f"  1 KiB, delivered to B's app     : {ns:10,.0f} bundles/s  ({ns * 1024 / 1e6:.1f} MB/s)"
        f"  CPU per bundle {_cpu(n2n_cpu)}"
    )
    print(
        f"  1 MiB, delivered to B's app     : {nl * 1.048576:10,.1f} MB/s      ({nl:.0f} bundles/s)"
    )
    print(f"  then B's store to a new app, 1 KiB: {dr:8,.0f} bundles/s  (registration to last delivery)")
    print(f"  latency 1 KiB : p50 {p50:.2f} ms, p99 {p99:.2f} ms ({args.samples} single bundles)")
    print(f"  raw loopback TCP (plain sockets, same run): {r:,.0f} MB/s")
    print(
        f"  durable sequential write, store disk (1 MiB writes, fdatasync/64 MiB, same run): "
        f"{d:,.0f} MB/s"
    )
    best_l = max(l_, nl)
    print(f"  1 MiB vs raw TCP: {best_l * 1.048576 / r:.1%}  (target >= 50%)")
    print(
        f"  1 MiB node to node vs durable-write ceiling: {nl * 1.048576 / d:.1%}  "
        f"(each byte written durably once at B inside the clock; raw TCP x 50% = "
        f"{r / 2:,.0f} MB/s is {'above' if r / 2 > d else 'below'} that ceiling)"
    )
    print(
        f"  1 KiB target >= 10,000/s node to node, stored durably at both ends: "
        f"{'met' if st >= 10_000 else 'NOT met'} ({st:,.0f}/s; with delivery to B's app "
        f"{ns:,.0f}/s)"
    )
    print(
        f"  BPSec: A signed {sec_a.get('protected', 0):,}, B checked {sec_b.get('checked', 0):,}"
        f" (rejected {sec_b.get('rejected', 0)})"
    )
    return s, l_, p50


if __name__ == "__main__":
    main()

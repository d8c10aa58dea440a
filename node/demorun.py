"""``waystation demo``: three node processes, a LEO pass, store-and-forward on a scaled clock.

What it does (docs/demo.md):

1. computes the contact plan of the demo scenario from the ISS TLE shipped in
   ``waystation.contact_plan`` (Darmstadt = ipn:1, ISS = ipn:2, Kourou = ipn:3), writes it as
   ``plan.json`` and its Gantt chart as ``plan.png``;
2. starts three ``python -m waystation node`` processes on one scaled clock (all anchored to the
   same wall-clock instant, so they agree on simulated time): the satellite listens for TCPCLv4
   on a free loopback port; each ground station holds a *scheduled* TCPCLv4 link to it
   (``--contact-link 2=127.0.0.1:PORT``) that the node opens at contact start and closes at
   contact end (node/contacts.py, APScheduler);
3. submits messages for ``ipn:3.1`` at Darmstadt with the client library; CGR (volume-booked)
   routes them via the satellite; they wait in Darmstadt's store for the pass, cross to the
   satellite, wait aboard for the Kourou pass and are delivered there;
4. prints a live account - contacts opening and closing, sessions, bundles stored, forwarded
   and delivered, end-to-end delays in simulated and wall time - by polling each node's
   ``status`` and streaming deliveries at Kourou; then stops the nodes (also on Ctrl-C).

:func:`run_demo` is the engine (used by the CLI and tests/integration/test_demo.py); it returns
a :class:`DemoResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from waystation.bundle.dtntime import dtn_ms_to_datetime
from waystation.simclock import AnchoredScaledClock

__all__ = ["DEFAULT_SCALE", "DemoError", "DemoResult", "run_demo"]

DEFAULT_SCALE = 100.0
#: Wall seconds between launching the nodes and the clock reaching the scenario start: room
#: for three Python processes to start before the first pass.
LEAD_S = 3.0
SAT, GS_A, GS_B = 2, 1, 3
DEST = f"ipn:{GS_B}.1"


class DemoError(RuntimeError):
    """The demo could not run (a node did not start, ports, files); the message says why."""


@dataclass
class DemoResult:
    messages: int
    delivered: dict[int, int] = field(default_factory=dict)  # message index -> deliveries
    sim_delays_s: dict[int, float] = field(default_factory=dict)
    wall_delays_s: dict[int, float] = field(default_factory=dict)
    png: Path | None = None
    workdir: Path | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.timed_out and all(
            self.delivered.get(i) == 1 for i in range(1, self.messages + 1)
        ) and set(self.delivered) <= set(range(1, self.messages + 1))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hms(ms: int) -> str:
    return dtn_ms_to_datetime(ms).strftime("%H:%M:%S")


class _Account:
    """Prints the live account lines, stamped with simulated and wall time."""

    def __init__(self, clock: AnchoredScaledClock, out: TextIO, names: dict[int, str]) -> None:
        self.clock = clock
        self.out = out
        self.names = names
        self.t0 = time.monotonic()

    def name(self, node: int | str) -> str:
        if isinstance(node, str):
            num = node.removeprefix("ipn:").split(".")[0]
            node = int(num) if num.isdigit() else -1
        return self.names.get(node, f"ipn:{node}")

    def say(self, text: str) -> None:
        sim = _hms(self.clock.now_ms())
        wall = time.monotonic() - self.t0
        print(f"[sim {sim} UTC | wall {wall:6.1f} s] {text}", file=self.out, flush=True)


async def _wait_ready(proc: subprocess.Popen[bytes], runtime: Path, log: Path, name: str,
                      timeout_s: float) -> Any:
    from waystation.client import AsyncClient, ClientError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise DemoError(f"node {name} exited with status {proc.returncode}:\n{tail}")
        if (runtime / "node.sock").exists():
            client = AsyncClient(runtime_dir=runtime, timeout=2.0)
            try:
                await client.status()
                return client
            except ClientError:
                await client.close()
        await asyncio.sleep(0.05)
    raise DemoError(f"node {name} not ready after {timeout_s:.0f} s (log: {log})")


def _die_with_parent() -> None:
    """Child side of the node launch: ask Linux to SIGTERM this node when the demo dies.

    The nodes run in their own session (a terminal's Ctrl-C reaches only the demo, which stops
    them in order), so without this a demo killed by SIGKILL would leave three nodes running.
    Elsewhere prctl is missing and the demo's own cleanup is all there is."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_demo(
    *,
    scale: float = DEFAULT_SCALE,
    messages: int = 3,
    workdir: Path | None = None,
    keep: bool = False,
    timeout_s: float = 600.0,
    out: TextIO | None = None,
    on_ready: Callable[[Path], None] | None = None,
) -> DemoResult:
    """Run the whole demo (see module docstring). Cleans up its processes on any exit."""
    if not scale > 0:
        raise DemoError("--scale must be positive")
    if not 1 <= messages <= 10_000:
        raise DemoError("--messages must be in 1..10000")
    out = out or sys.stdout
    own_dir = workdir is None
    if workdir is None:
        from waystation.config import default_data_dir

        base = default_data_dir().parent
        base.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="waystation-demo-", dir=base))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Unix socket paths are limited to ~107 bytes: keep runtime dirs short, under /tmp or XDG.
    from waystation.config import default_runtime_dir

    rt_base = default_runtime_dir()
    rt_base.mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime_root = Path(tempfile.mkdtemp(prefix="demo-", dir=rt_base))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        return asyncio.run(
            _demo(scale, messages, workdir, runtime_root, timeout_s, out, procs, on_ready)
        )
    finally:
        _stop_processes(procs)
        shutil.rmtree(runtime_root, ignore_errors=True)
        if own_dir and not keep:
            # the node stores go; plan.json, plan.png and the node logs stay for the user
            shutil.rmtree(workdir / "nodes", ignore_errors=True)


async def _demo(
    scale: float, messages: int, workdir: Path, runtime_root: Path, timeout_s: float,
    out: TextIO, procs: list[subprocess.Popen[bytes]],
    on_ready: Callable[[Path], None] | None,
) -> DemoResult:
    from waystation.contact_plan.demo import DEMO_START_MS, demo_plan, demo_scenario
    from waystation.contact_plan.formats import save_plan
    from waystation.contact_plan.plot import plot_plan

    scenario = demo_scenario()
    names = {s.node: s.name for s in scenario.stations}
    names.update({s.node: s.tle.name.split(" (")[0] for s in scenario.satellites})
    plan = demo_plan(DEMO_START_MS, hours=2.0)
    plan_path = workdir / "plan.json"
    save_plan(plan, plan_path, "native")
    png = workdir / "plan.png"
    plot_plan(plan, png, title="waystation demo: Darmstadt - ISS - Kourou", names=names)
    result = DemoResult(messages=messages, png=png, workdir=workdir)

    print(f"waystation demo: {names[GS_A]} (ipn:{GS_A}) -> {names[SAT]} (ipn:{SAT}, LEO) -> "
          f"{names[GS_B]} (ipn:{GS_B}), clock x{scale:g}", file=out)
    print(f"  contact plan from the TLE in waystation.contact_plan: {plan_path}", file=out)
    print(f"  plan chart: {png}", file=out)
    seen_pairs: set[tuple[int, int, int]] = set()
    for c in sorted(plan.contacts, key=lambda c: c.start_ms):
        key = (min(c.source, c.dest), max(c.source, c.dest), c.start_ms)
        if key in seen_pairs:
            continue
        seen_pairs.add(key)
        print(f"  pass {_hms(c.start_ms)}-{_hms(c.end_ms)} UTC "
              f"{names.get(key[0])} <-> {names.get(key[1])} ({(c.end_ms - c.start_ms) / 60000:.1f} "
              f"min, {c.rate * 8 // 1000} kbit/s)", file=out)
    out.flush()

    anchor = time.time() + LEAD_S
    clock = AnchoredScaledClock(scale, DEMO_START_MS, anchor)
    port = _free_port()
    nodes_dir = workdir / "nodes"
    common = [
        "--plan", str(plan_path), "--clock-scale", repr(scale), "--clock-start",
        str(DEMO_START_MS), "--clock-anchor", repr(anchor), "--log-level", "info",
    ]
    extra = {
        SAT: ["--listen", f"127.0.0.1:{port}"],
        GS_A: ["--contact-link", f"{SAT}=127.0.0.1:{port}"],
        GS_B: ["--contact-link", f"{SAT}=127.0.0.1:{port}"],
    }
    # A reused --workdir must not replay an earlier run's stored bundles.
    shutil.rmtree(nodes_dir, ignore_errors=True)
    runtimes: dict[int, Path] = {}
    logs: dict[int, Path] = {}
    env = dict(os.environ)
    env.pop("WAYSTATION_SOCKET", None)
    for n in (SAT, GS_A, GS_B):
        data = nodes_dir / f"ipn{n}"
        data.mkdir(parents=True, exist_ok=True)
        runtimes[n] = runtime_root / str(n)
        logs[n] = workdir / f"node-ipn{n}.log"
        cmd = [sys.executable, "-m", "waystation", "node", "--id", f"ipn:{n}.0", "--ipn", str(n),
               "--data-dir", str(data), "--runtime-dir", str(runtimes[n]), *common, *extra[n]]
        with open(logs[n], "wb") as logf:
            procs.append(subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=_die_with_parent))
    account = _Account(clock, out, names)
    clients: dict[int, Any] = {}
    try:
        for n, proc in zip((SAT, GS_A, GS_B), procs):
            clients[n] = await _wait_ready(proc, runtimes[n], logs[n], names[n], 60.0)
        account.say(f"three nodes up (logs in {workdir}); TCPCLv4 listener {names[SAT]} "
                    f"127.0.0.1:{port}")
        if on_ready is not None:
            on_ready(workdir)
        await clients[GS_B].register(DEST)
        submitted: dict[int, float] = {}
        for i in range(1, messages + 1):
            payload = f"demo message {i}/{messages} from {names[GS_A]}".encode()
            await clients[GS_A].send(DEST, payload)
            submitted[i] = time.time()
        account.say(f"{names[GS_A]}: {messages} message(s) for {DEST} submitted and stored; "
                    f"waiting for the pass")
        await _follow(clients, clock, account, result, submitted, plan, timeout_s)
    finally:
        for c in clients.values():
            with contextlib.suppress(Exception):
                await c.close()
    _summary(result, account, out)
    return result


async def _follow(
    clients: dict[int, Any], clock: AnchoredScaledClock, account: _Account, result: DemoResult,
    submitted: dict[int, float], plan: Any, timeout_s: float,
) -> None:
    names = account.names
    last_contact_end = max(c.end_ms for c in plan.contacts)
    done = asyncio.Event()
    prev: dict[int, dict[str, Any]] = {}
    seen_history: set[tuple[Any, ...]] = set()
    poll_lock = asyncio.Lock()

    async def poll_once() -> None:
        # One round over the nodes; serialised so a delivery is printed after the status
        # changes that led to it (contact opened, bundles forwarded).
        async with poll_lock:
            for n in (SAT, GS_A, GS_B):  # the satellite first: it announces the contacts
                try:
                    st = await clients[n].status()
                except Exception:
                    continue
                _report(n, st, prev.get(n), account, seen_history, plan)
                prev[n] = st

    async def deliveries() -> None:
        async for d in clients[GS_B].receive(DEST):
            arrived_ms = clock.now_ms()
            arrived_wall = time.time()
            await poll_once()
            text = bytes(d.payload).decode(errors="replace")
            try:
                idx = int(text.split()[2].split("/")[0])
            except (IndexError, ValueError):
                idx = -1
            result.delivered[idx] = result.delivered.get(idx, 0) + 1
            sim_s = (arrived_ms - d.creation_ms) / 1000
            wall_s = arrived_wall - submitted.get(idx, arrived_wall)
            result.sim_delays_s.setdefault(idx, sim_s)
            result.wall_delays_s.setdefault(idx, wall_s)
            dup = "" if result.delivered[idx] == 1 else "  DUPLICATE"
            account.say(f"{names[GS_B]}: DELIVERED '{text}' - end-to-end {sim_s / 60:.1f} min "
                        f"simulated, {wall_s:.1f} s wall{dup}")
            if all(result.delivered.get(i) for i in range(1, result.messages + 1)):
                done.set()

    async def watch() -> None:
        while True:
            await poll_once()
            await asyncio.sleep(0.1)

    tasks = [asyncio.create_task(deliveries()), asyncio.create_task(watch())]
    t_end = time.monotonic() + timeout_s
    try:
        while not done.is_set():
            if time.monotonic() > t_end or clock.now_ms() > last_contact_end + 60_000:
                result.timed_out = True
                account.say("giving up: the plan's last contact is over and messages are missing")
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await done.wait()
        await asyncio.sleep(0.3)  # would catch a duplicate delivery arriving right after
    finally:
        for t in tasks:
            t.cancel()
        # asyncio.wait never raises the tasks' outcomes, so a cancellation of *this* task
        # (Ctrl-C) still propagates instead of being swallowed here.
        await asyncio.wait(tasks)


def _report(n: int, st: dict[str, Any], prev: dict[str, Any] | None, account: _Account,
            seen: set[tuple[Any, ...]], plan: Any) -> None:
    name = account.name(n)
    sched = st.get("schedule") or {}
    for h in sched.get("history", []):
        if n != SAT:
            continue  # one voice for contacts: the satellite sees both stations
        pair = (min(h["from"], h["to"]), max(h["from"], h["to"]))
        key = (h["event"], pair, h["start_ms"])
        if key in seen:
            continue
        seen.add(key)
        what = "OPENS" if h["event"] == "contact-start" else "closes"
        account.say(f"contact {account.name(pair[0])} <-> {account.name(pair[1])} {what} "
                    f"(window {_hms(h['start_ms'])}-{_hms(h['end_ms'])} UTC)")
        held = st.get("bundles", {}).get("held", 0)
        if h["event"] == "contact-end" and held:
            nxt = [c for c in plan.contacts if c.source == SAT and c.dest == GS_B
                   and c.start_ms >= h["at_ms"]]
            if nxt:
                c = min(nxt, key=lambda c: c.start_ms)
                wait_ms = c.start_ms - account.clock.now_ms()
                account.say(f"{account.name(SAT)}: {held} bundle(s) stored aboard, waiting for "
                            f"{account.name(GS_B)} at {_hms(c.start_ms)} UTC (in "
                            f"{wait_ms / 60000:.0f} min simulated, "
                            f"{account.clock.real_seconds(wait_ms):.0f} s wall)")
    links = {lk.get("id"): lk for lk in st.get("links", []) if lk.get("peer")}
    old_links = {lk.get("id"): lk for lk in (prev or {}).get("links", []) if lk.get("peer")}
    if n != SAT:
        for lid, lk in links.items():
            was = old_links.get(lid, {}).get("up", False)
            if lk.get("up") and not was:
                account.say(f"{name}: TCPCLv4 session to {account.name(lk['peer'])} up")
        for lid, lk in old_links.items():
            if lk.get("up") and not links.get(lid, {}).get("up", False):
                account.say(f"{name}: TCPCLv4 session to {account.name(lk['peer'])} closed")
    c = st.get("counters", {})
    pc = (prev or {}).get("counters", {})
    held = st.get("bundles", {}).get("held", 0)
    for key, verb in (("received", "received"), ("forwarded", "forwarded"),
                      ("expired", "EXPIRED"), ("rejected", "REJECTED")):
        delta = c.get(key, 0) - pc.get(key, 0)
        if prev is not None and delta > 0:
            account.say(f"{name}: {verb} {delta} bundle(s); {held} in store")


def _summary(result: DemoResult, account: _Account, out: TextIO) -> None:
    n = result.messages
    once = sum(1 for i in range(1, n + 1) if result.delivered.get(i) == 1)
    print("", file=out)
    print(f"delivered exactly once: {once}/{n}", file=out)
    if result.sim_delays_s:
        sims = sorted(result.sim_delays_s.values())
        walls = sorted(result.wall_delays_s.values())
        print(f"end-to-end delay: simulated {sims[0] / 60:.1f}-{sims[-1] / 60:.1f} min, "
              f"wall {walls[0]:.1f}-{walls[-1]:.1f} s", file=out)
    print(f"plan chart written: {result.png}", file=out)
    print("OK" if result.ok else "FAILED: not every message was delivered exactly once",
          file=out, flush=True)

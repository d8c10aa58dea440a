"""Userspace link emulator: a TCP or UDP relay that delays, drops, reorders and rate-limits.

This kernel has no ``netem`` qdisc, so tests and demos that need satellite-like links put this
relay on the path instead (in the same namespace, or between network namespaces). Each direction
of a link has its own :class:`LinkProfile`:

- ``delay`` (s) one-way latency, plus uniform ``jitter`` (s);
- ``rate`` (bytes/s) serialisation limit: a chunk of *n* bytes occupies the link for n/rate s;
- UDP only: ``loss`` (probability a datagram vanishes) and ``reorder`` (probability a datagram
  is held back an extra ``reorder_delay`` s, so later ones overtake it). Jitter also reorders.
- TCP only: ``stall_every``/``stall_for`` (s): the byte stream freezes periodically, the way a
  TCP connection looks from above during loss recovery. TCP itself never loses or reorders
  bytes, so a TCP relay cannot emulate loss any other way without breaking the stream.

A TCP relay keeps byte order: each chunk's delivery time is max(arrival + delay, previous
delivery + chunk/rate). It bounds what it holds in flight (``max_buffer`` bytes per direction)
and stops reading when that is full, so a rate-limited link back-pressures the sender the way a
real bottleneck does.

Run standalone::

    python -m waystation.convergence.linkemu tcp 127.0.0.1:5000 127.0.0.1:4556 --delay 0.3
    python -m waystation.convergence.linkemu udp 127.0.0.1:5000 127.0.0.1:4556 --loss 0.01
    python -m waystation.convergence.linkemu tun tunF tunB --delay 0.3 --loss 0.01

The ``tun`` mode (:class:`TunForwarder`) works on IP packets instead: run in a router namespace
with policy routing (see ``tests/convergence/test_netns_tcpcl.py``), it delays and drops real
packets, so the kernel's TCP above it retransmits for real -- the ``netem`` replacement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """Impairments of one direction of a link."""

    delay: float = 0.0
    jitter: float = 0.0
    rate: float | None = None  # bytes per second; None = unlimited
    loss: float = 0.0  # UDP only
    reorder: float = 0.0  # UDP only
    reorder_delay: float = 0.05
    stall_every: float | None = None  # TCP only
    stall_for: float = 0.0

    def __post_init__(self) -> None:
        if self.delay < 0 or self.jitter < 0 or self.reorder_delay < 0 or self.stall_for < 0:
            raise ValueError("delays must be >= 0")
        if not 0 <= self.loss <= 1 or not 0 <= self.reorder <= 1:
            raise ValueError("loss and reorder are probabilities in [0, 1]")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0 bytes/s (or None for unlimited)")


@dataclass
class LinkStats:
    chunks: int = 0
    bytes: int = 0
    dropped: int = 0
    reordered: int = 0


class _Pacer:
    """Computes delivery times for one direction (order-preserving for TCP)."""

    def __init__(self, profile: LinkProfile, rng: random.Random, keep_order: bool) -> None:
        self.p = profile
        self.rng = rng
        self.keep_order = keep_order
        self.link_free_at = 0.0  # when the serialiser finishes the previous chunk
        self.last_delivery = 0.0

    def delivery_time(self, now: float, size: int) -> float:
        p = self.p
        start = max(now, self.link_free_at)
        if p.rate:
            self.link_free_at = start + size / p.rate
            start = self.link_free_at
        at = start + p.delay + (self.rng.uniform(0, p.jitter) if p.jitter else 0.0)
        if p.stall_every:
            # Freeze the stream for stall_for at every multiple of stall_every.
            phase = at % p.stall_every
            if phase < p.stall_for:
                at += p.stall_for - phase
        if self.keep_order:
            at = max(at, self.last_delivery)
            self.last_delivery = at
        return at


# ----------------------------------------------------------------------------------- TCP


@dataclass
class TcpRelay:
    """Accepts on ``listen`` and relays each connection to ``target`` through the profiles."""

    target: tuple[str, int]
    forward: LinkProfile = field(default_factory=LinkProfile)  # client -> target
    backward: LinkProfile = field(default_factory=LinkProfile)  # target -> client
    seed: int | None = None
    max_buffer: int = 8 * 1024 * 1024
    stats_forward: LinkStats = field(default_factory=LinkStats)
    stats_backward: LinkStats = field(default_factory=LinkStats)
    server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._rng = random.Random(self.seed)
        self.server = await asyncio.start_server(self._accept, host, port)
        addr = self.server.sockets[0].getsockname()
        return addr[0], addr[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def cut(self) -> None:
        """Break every relayed connection now (a link outage)."""
        for w in list(self._writers):
            transport = w.transport
            transport.abort()

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            t_reader, t_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log.info("linkemu: cannot reach target %s: %s", self.target, exc)
            c_writer.close()
            return
        self._writers.update((c_writer, t_writer))
        fwd = _Pacer(self.forward, self._rng, keep_order=True)
        bwd = _Pacer(self.backward, self._rng, keep_order=True)
        pumps = [
            asyncio.ensure_future(self._pump(c_reader, t_writer, fwd, self.stats_forward)),
            asyncio.ensure_future(self._pump(t_reader, c_writer, bwd, self.stats_backward)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for w in (c_writer, t_writer):
                self._writers.discard(w)
                w.close()
            self._tasks.difference_update(pumps)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pacer: _Pacer,
        stats: LinkStats,
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: deque[tuple[float, bytes]] = deque()
        held = 0
        wake = asyncio.Event()
        room = asyncio.Event()
        room.set()
        eof = False

        async def deliver() -> None:
            nonlocal held
            while True:
                while not queue:
                    if eof:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    wake.clear()
                    await wake.wait()
                at, chunk = queue[0]
                delay = at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                queue.popleft()
                writer.write(chunk)
                await writer.drain()
                held -= len(chunk)
                if held < self.max_buffer:
                    room.set()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                await room.wait()
                chunk = await reader.read(64 * 1024)
                if not chunk:
                    break
                stats.chunks += 1
                stats.bytes += len(chunk)
                queue.append((pacer.delivery_time(loop.time(), len(chunk)), chunk))
                held += len(chunk)
                if held >= self.max_buffer:
                    room.clear()
                wake.set()
        except (ConnectionError, OSError):
            sender.cancel()
            raise
        eof = True
        wake.set()
        with contextlib.suppress(ConnectionError, OSError):
            await sender


# ----------------------------------------------------------------------------------- UDP


class _UdpSide(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)


@dataclass
class UdpRelay:
    """Relays datagrams between the last client seen on ``listen`` and ``target``."""

    target: tuple[str, int]
    forward: LinkProfile = field(default_factory=LinkProfile)
    backward: LinkProfile = field(default_factory=LinkProfile)
    seed: int | None = None
    stats_forward: LinkStats = field(default_factory=LinkStats)
    stats_backward: LinkStats = field(default_factory=LinkStats)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._rng = random.Random(self.seed)
        self._client: Any = None
        self._fwd = _Pacer(self.forward, self._rng, keep_order=False)
        self._bwd = _Pacer(self.backward, self._rng, keep_order=False)
        _, self._front = await loop.create_datagram_endpoint(
            lambda: _UdpSide(self._from_client), local_addr=(host, port)
        )
        _, self._back = await loop.create_datagram_endpoint(
            lambda: _UdpSide(self._from_target), remote_addr=self.target
        )
        addr = self._front.transport.get_extra_info("sockname")
        return addr[0], addr[1]

    async def close(self) -> None:
        for side in (self._front, self._back):
            if side.transport is not None:
                side.transport.close()

    def _schedule(self, data: bytes, pacer: _Pacer, stats: LinkStats, send: Any) -> None:
        p = pacer.p
        stats.chunks += 1
        stats.bytes += len(data)
        if p.loss and self._rng.random() < p.loss:
            stats.dropped += 1
            return
        loop = asyncio.get_running_loop()
        at = pacer.delivery_time(loop.time(), len(data))
        if p.reorder and self._rng.random() < p.reorder:
            stats.reordered += 1
            at += p.reorder_delay
        loop.call_at(at, send, data)

    def _from_client(self, data: bytes, addr: Any) -> None:
        self._client = addr
        self._schedule(data, self._fwd, self.stats_forward, self._send_target)

    def _from_target(self, data: bytes, addr: Any) -> None:
        if self._client is not None:
            self._schedule(data, self._bwd, self.stats_backward, self._send_client)

    def _send_target(self, data: bytes) -> None:
        if self._back.transport is not None and not self._back.transport.is_closing():
            self._back.transport.sendto(data)

    def _send_client(self, data: bytes) -> None:
        if self._front.transport is not None and not self._front.transport.is_closing():
            self._front.transport.sendto(data, self._client)


# ----------------------------------------------------------------------------------- TUN

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    """Create (or attach to) TUN device ``name`` without packet info; returns a non-blocking fd.

    Linux only; needs CAP_NET_ADMIN (root in the test's network namespace).
    """
    import fcntl
    import os
    import struct

    if len(name.encode()) > 15:
        raise ValueError(f"interface name {name!r} is longer than 15 bytes")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


@dataclass
class TunForwarder:
    """Packet-level link emulator between two TUN devices: what ``tc netem`` would do.

    Every IP packet read from ``forward_dev`` is delayed/dropped per ``forward`` and written to
    ``backward_dev``, and vice versa. With policy routing (packets arriving from one side are
    routed into one TUN; packets written into a TUN are routed normally), a router namespace
    sends all traffic between two subnets through this process -- so TCP above it sees real
    loss and real retransmissions, unlike the stream relay. Loss, delay, jitter, reordering
    and rate apply per packet.
    """

    forward_dev: str
    backward_dev: str
    forward: LinkProfile = field(default_factory=LinkProfile)
    backward: LinkProfile = field(default_factory=LinkProfile)
    seed: int | None = None
    stats_forward: LinkStats = field(default_factory=LinkStats)
    stats_backward: LinkStats = field(default_factory=LinkStats)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._rng = random.Random(self.seed)
        self._fd_f = open_tun(self.forward_dev)
        self._fd_b = open_tun(self.backward_dev)
        fwd = _Pacer(self.forward, self._rng, keep_order=False)
        bwd = _Pacer(self.backward, self._rng, keep_order=False)
        loop.add_reader(self._fd_f, self._pump, self._fd_f, self._fd_b, fwd, self.stats_forward)
        loop.add_reader(self._fd_b, self._pump, self._fd_b, self._fd_f, bwd, self.stats_backward)

    def close(self) -> None:
        import os

        loop = asyncio.get_running_loop()
        for fd in (self._fd_f, self._fd_b):
            loop.remove_reader(fd)
            os.close(fd)

    def _pump(self, src: int, dst: int, pacer: _Pacer, stats: LinkStats) -> None:
        import os

        loop = asyncio.get_running_loop()
        for _ in range(64):  # drain what is there, but let the loop breathe
            try:
                packet = os.read(src, 65536)
            except BlockingIOError:
                return
            stats.chunks += 1
            stats.bytes += len(packet)
            p = pacer.p
            if p.loss and self._rng.random() < p.loss:
                stats.dropped += 1
                continue
            at = pacer.delivery_time(loop.time(), len(packet))
            if p.reorder and self._rng.random() < p.reorder:
                stats.reordered += 1
                at += p.reorder_delay
            loop.call_at(at, self._write, dst, packet)

    @staticmethod
    def _write(fd: int, packet: bytes) -> None:
        import os

        with contextlib.suppress(OSError):  # a full queue drops the packet, like a router
            os.write(fd, packet)


# ----------------------------------------------------------------------------------- CLI


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m waystation.convergence.linkemu", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("kind", choices=["tcp", "udp", "tun"])
    ap.add_argument("listen", help="HOST:PORT (tcp/udp) or the forward TUN device name (tun)")
    ap.add_argument("target", help="HOST:PORT (tcp/udp) or the backward TUN device name (tun)")
    ap.add_argument("--delay", type=float, default=0.0, help="one-way delay, s (both ways)")
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--rate", type=float, default=None, help="bytes/s each way")
    ap.add_argument("--loss", type=float, default=0.0, help="UDP datagram loss probability")
    ap.add_argument("--reorder", type=float, default=0.0, help="UDP reorder probability")
    ap.add_argument("--stall-every", type=float, default=None, help="TCP stall period, s")
    ap.add_argument("--stall-for", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    profile = LinkProfile(
        delay=args.delay,
        jitter=args.jitter,
        rate=args.rate,
        loss=args.loss,
        reorder=args.reorder,
        stall_every=args.stall_every,
        stall_for=args.stall_for,
    )

    async def run() -> None:
        relay: TcpRelay | UdpRelay
        if args.kind == "tun":
            fwd = TunForwarder(args.listen, args.target, profile, profile, seed=args.seed)
            fwd.start()
            print(f"linkemu tun {args.listen} <-> {args.target} ready", flush=True)
            await asyncio.Event().wait()
            return
        args.listen, args.target = _hostport(args.listen), _hostport(args.target)
        if args.kind == "tcp":
            relay = TcpRelay(args.target, profile, profile, seed=args.seed)
        else:
            relay = UdpRelay(args.target, profile, profile, seed=args.seed)
        addr = await relay.start(*args.listen)
        print(
            f"linkemu {args.kind} {addr[0]}:{addr[1]} -> {args.target[0]}:{args.target[1]}",
            flush=True,
        )
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()

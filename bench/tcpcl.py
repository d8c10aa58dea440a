"""TCPCLv4 session throughput vs raw asyncio TCP on loopback, measured in the same run.

Two processes (sender here, receiver in a child process, so each side has its own core and
GIL). For each payload size:

- **raw**: the same bytes over plain asyncio TCP -- 8-byte length prefix + payload, the receiver
  (a ``BufferedProtocol``) answers each message with an 8-byte acknowledgement, and the sender
  keeps a window of unacknowledged messages. This is the floor any acknowledged protocol pays
  on asyncio: it is what TCPCL costs *minus* the protocol.
- **stream**: the same raw protocol with an unbounded window -- a throughput ceiling for
  Python on this loopback, not a fair comparison (nothing waits for acknowledgements).
- **socket** (1 MiB only): plain blocking sockets, two threads, 1 MiB ``sendall`` into
  ``recv_into`` -- the loopback's raw TCP throughput from Python, for scale.
- **tcpcl**: ``TcpclConnection.send_nowait`` with the same window; a transfer counts when its
  final XFER_ACK arrives (the receiver accepts synchronously, i.e. it stores nothing). Plain
  TCP, no TLS; ``--tls`` adds a TLS run with certificates made on the fly.

Prints transfers/s and MB/s for 1 KiB and 1 MiB payloads and the TCPCL/raw ratio; medians of
``--repeat`` interleaved runs. Targets from the issue: >= 10,000 transfers/s at 1 KiB, and
>= 50 % of raw TCP throughput at 1 MiB. The host drifts +-30 %: compare within one run.

Run: ``.venv/bin/python bench/tcpcl.py`` (about 20-40 s).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from _loopback import raw_tcp_mb_s
from waystation.convergence.tcpcl import SessionConfig
from waystation.convergence.tcpcl.adapter import TcpclConnection, connect, start_server
from waystation.convergence.tls import TlsSettings, make_ca, make_node_certificate

_LEN = struct.Struct(">Q")


# ------------------------------------------------------------------------- raw reference


class RawReceiver(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.pending = bytearray()
        self.need: int | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, n: int) -> None:
        self.pending += self.view[:n]
        acks = 0
        pos = 0
        p = self.pending
        while True:
            if len(p) - pos < 8:
                break
            (length,) = _LEN.unpack_from(p, pos)
            if len(p) - pos - 8 < length:
                break
            _ = bytes(p[pos + 8 : pos + 8 + length])  # the copy a real receiver makes
            pos += 8 + length
            acks += 1
        if pos:
            del p[:pos]
        if acks:
            self.transport.write(_LEN.pack(0) * acks)


class RawSender(asyncio.Protocol):
    def __init__(self) -> None:
        self.acked = 0
        self.buffer = b""
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        n = len(self.buffer) // 8
        self.buffer = self.buffer[n * 8 :]
        self.acked += n
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


def _receiver_main(kind: str, port_q: mp.Queue, tls_dir: str | None) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        if kind == "raw":
            srv = await loop.create_server(RawReceiver, "127.0.0.1", 0)
        else:
            ctx = None
            cfg = SessionConfig("dtn://receiver/", keepalive_interval=0)
            if tls_dir:
                d = Path(tls_dir)
                ctx = TlsSettings(d / "r.crt", d / "r.key", d / "ca.crt").context(True)
                cfg = SessionConfig("dtn://receiver/", keepalive_interval=0, can_tls=True)
            srv = await start_server("127.0.0.1", 0, cfg, None, ctx)
        port_q.put(srv.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _run_raw(port: int, size: int, count: int, window: int) -> float:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(RawSender, "127.0.0.1", port)
    payload = bytes(size)
    msg = _LEN.pack(size) + payload  # header and data in one write, as TCPCL does
    t0 = time.perf_counter()
    sent = 0
    while proto.acked < count:
        while sent < count and sent - proto.acked < window:
            transport.write(_LEN.pack(size) + payload if size > 65536 else msg)
            sent += 1
        proto.waiter = loop.create_future()
        await proto.waiter
    dt = time.perf_counter() - t0
    transport.close()
    return dt


async def _run_tcpcl(port: int, size: int, count: int, window: int, ctx) -> float:
    cfg = SessionConfig("dtn://sender/", keepalive_interval=0, can_tls=ctx is not None)
    conn: TcpclConnection = await connect("127.0.0.1", port, cfg, None, ctx)
    payload = bytes(size)
    loop = asyncio.get_running_loop()
    done = 0
    sent = 0
    wake: asyncio.Future[None] = loop.create_future()

    def on_done(_f: asyncio.Future[None]) -> None:
        nonlocal done, wake
        done += 1
        if not wake.done():
            wake.set_result(None)

    t0 = time.perf_counter()
    while done < count:
        while sent < count and sent - done < window:
            conn.send_nowait(payload).add_done_callback(on_done)
            sent += 1
        wake = loop.create_future()
        await wake
    dt = time.perf_counter() - t0
    await conn.close()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, default=50_000, help="1 KiB transfers per run")
    ap.add_argument("--large", type=int, default=400, help="1 MiB transfers per run")
    ap.add_argument("--tls", action="store_true", help="also measure TCPCL over TLS")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp()
    ca = make_ca()
    (Path(tmp) / "ca.crt").write_bytes(ca.cert_pem)
    make_node_certificate("dtn://receiver/", ca).write(Path(tmp), "r")
    make_node_certificate("dtn://sender/", ca).write(Path(tmp), "s")

    ctx_mp = mp.get_context("spawn")
    procs = []
    ports = {}
    kinds = ["raw", "stream", "tcpcl"] + (["tls"] if args.tls else [])
    for kind in kinds:
        q: mp.Queue = ctx_mp.Queue()
        p = ctx_mp.Process(
            target=_receiver_main,
            args=(
                "raw" if kind in ("raw", "stream") else "tcpcl",
                q,
                tmp if kind == "tls" else None,
            ),
            daemon=True,
        )
        p.start()
        procs.append(p)
        ports[kind] = q.get(timeout=30)

    client_ctx = TlsSettings(
        Path(tmp) / "s.crt", Path(tmp) / "s.key", Path(tmp) / "ca.crt"
    ).context(False)
    cases = [("1 KiB", 1024, args.small, 256), ("1 MiB", 1 << 20, args.large, 8)]
    results: dict[tuple[str, str], list[float]] = {}

    async def run_all() -> None:
        for _ in range(args.repeat):
            for label, size, count, window in cases:
                for kind in kinds:
                    if kind == "raw":
                        dt = await _run_raw(ports[kind], size, count, window)
                    elif kind == "stream":
                        dt = await _run_raw(ports[kind], size, count, count)
                    else:
                        ctx = client_ctx if kind == "tls" else None
                        dt = await _run_tcpcl(ports[kind], size, count, window, ctx)
                    results.setdefault((label, kind), []).append(count / dt)

    asyncio.run(run_all())
    sock = statistics.median(raw_tcp_mb_s() for _ in range(args.repeat))
    for p in procs:
        p.terminate()

    print(
        f"TCPCLv4 vs raw asyncio TCP, loopback, medians of {args.repeat} (python {sys.version.split()[0]})"
    )
    print(f"{'payload':8} {'kind':6} {'transfers/s':>12} {'MB/s':>9} {'vs raw':>7}")
    for label, size, _, _ in cases:
        raw = statistics.median(results[(label, "raw")])
        for kind in kinds:
            rate = statistics.median(results[(label, kind)])
            print(f"{label:8} {kind:6} {rate:12,.0f} {rate * size / 1e6:9.1f} {rate / raw:7.2f}")
    tcpcl_mb = statistics.median(results[("1 MiB", "tcpcl")]) * (1 << 20) / 1e6
    print(f"1 MiB    socket {'':>12} {sock:9.1f} {'':>7}   (tcpcl = {tcpcl_mb / sock:.0%} of it)")
    small = statistics.median(results[("1 KiB", "tcpcl")])
    large_ratio = statistics.median(results[("1 MiB", "tcpcl")]) / statistics.median(
        results[("1 MiB", "raw")]
    )
    print(f"target 1 KiB >= 10,000/s: {'met' if small >= 10_000 else 'NOT met'} ({small:,.0f}/s)")
    print(
        f"target 1 MiB >= 50% of raw: {'met' if large_ratio >= 0.5 else 'NOT met'} "
        f"({large_ratio:.0%})"
    )


if __name__ == "__main__":
    main()

"""The yardstick the transport benchmarks print their ratios against: raw loopback TCP."""

from __future__ import annotations

import socket
import threading
import time


def raw_tcp_mb_s(seconds: float = 1.0) -> float:
    """Plain-socket loopback throughput with 1 MiB writes (sender and receiver threads)."""
    srv = socket.create_server(("127.0.0.1", 0))
    total = 0

    def sink() -> None:
        nonlocal total
        conn, _ = srv.accept()
        view = memoryview(bytearray(1 << 20))
        while n := conn.recv_into(view):
            total += n
        conn.close()

    t = threading.Thread(target=sink)
    t.start()
    s = socket.create_connection(srv.getsockname())
    block = bytes(1 << 20)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    t.join()
    dt = time.perf_counter() - t0
    s.close()
    srv.close()
    return total / dt / 1e6

"""asyncio adapter for the UDP convergence layer: one endpoint socket, many peers.

``await endpoint.send(bundle, addr)`` sends one datagram (after the optional rate limiter);
received bundles go to ``handler.bundle_received(endpoint, data, addr)``. UDP has no
acknowledgement: ``send`` returning means "handed to the kernel", not "delivered". Use it where
loss is acceptable or a higher layer (BP custody, retransmission by the application) covers it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
from typing import Any

from ..errors import LinkClosed, MessageDecodeError
from .datagram import DEFAULT_MAX_BUNDLE, DatagramKind, check_bundle_size, classify_datagram

log = logging.getLogger(__name__)


class UdpEndpoint(asyncio.DatagramProtocol):
    """A bound UDP socket speaking the UDP convergence layer."""

    def __init__(
        self,
        handler: Any = None,
        *,
        max_bundle_size: int = DEFAULT_MAX_BUNDLE,
        rate_bytes_per_s: float | None = None,
    ) -> None:
        self.handler = handler
        self.max_bundle_size = max_bundle_size
        self.rate = rate_bytes_per_s
        self.transport: asyncio.DatagramTransport | None = None
        self.counters = {
            "bundles_sent": 0,
            "bundles_received": 0,
            "keepalives": 0,
            "dropped": 0,
            "errors": 0,
        }
        self.last_error: str | None = None
        self._next_send = 0.0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closed = asyncio.get_running_loop().create_future()

    @property
    def local_address(self) -> Any:
        return None if self.transport is None else self.transport.get_extra_info("sockname")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            dgram = classify_datagram(data)
        except MessageDecodeError as exc:
            self.counters["dropped"] += 1
            self.last_error = f"from {addr}: {exc.reason}"
            log.info("UDPCL dropped a datagram %s", self.last_error)
            return
        if dgram.kind is DatagramKind.KEEPALIVE:
            self.counters["keepalives"] += 1
            return
        if len(data) > self.max_bundle_size:
            self.counters["dropped"] += 1
            self.last_error = f"from {addr}: bundle of {len(data)} bytes above our limit"
            return
        self.counters["bundles_received"] += 1
        fn = getattr(self.handler, "bundle_received", None)
        if fn is None:
            return
        result = fn(self, data, addr)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: UDP gives no delivery guarantee, so just count.
        self.counters["errors"] += 1
        self.last_error = str(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)

    async def send(self, bundle: bytes, addr: Any) -> None:
        """Send one bundle as one datagram. Raises ``TransferTooLarge`` above the limit."""
        check_bundle_size(len(bundle), self.max_bundle_size)
        if self.transport is None or self.transport.is_closing():
            raise LinkClosed("UDP endpoint is closed")
        if self.rate:
            loop = asyncio.get_running_loop()
            now = loop.time()
            if self._next_send > now:
                await asyncio.sleep(self._next_send - now)
            self._next_send = max(now, self._next_send) + len(bundle) / self.rate
        self.transport.sendto(bundle, addr)
        self.counters["bundles_sent"] += 1

    def send_keepalive(self, addr: Any) -> None:
        """UDPCL §3.3: an empty datagram keeps NAT/firewall state alive."""
        if self.transport is None:
            return
        # asyncio's sendto() silently skips empty data, and its socket wrapper has no sendto(),
        # so send through a duplicate of the same socket.
        wrapped = self.transport.get_extra_info("socket")
        try:
            with socket.socket(wrapped.family, wrapped.type, fileno=os.dup(wrapped.fileno())) as s:
                s.sendto(b"", addr)
        except OSError as exc:
            self.counters["errors"] += 1
            self.last_error = str(exc)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        await asyncio.shield(self._closed)


async def open_endpoint(host: str, port: int, handler: Any = None, **kw: Any) -> UdpEndpoint:
    """Bind a UDP convergence-layer endpoint (port 4556 is the IANA DTN bundle UDP port)."""
    loop = asyncio.get_running_loop()
    _, endpoint = await loop.create_datagram_endpoint(
        lambda: UdpEndpoint(handler, **kw), local_addr=(host, port)
    )
    return endpoint

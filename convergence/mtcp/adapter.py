"""Thin asyncio adapter for MTCP: a BufferedProtocol around :class:`MtcpDecoder`.

``await conn.send(bundle)`` returns once the frame is handed to TCP (and the write buffer is
below its high-water mark); MTCP has no acknowledgement, so that is all a sender can know.
Received bundles go to ``handler.bundle_received(conn, data)`` (sync or async; the result is
ignored: MTCP cannot refuse).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from typing import Any

from ..errors import LinkClosed, RemoteProtocolError
from .framing import MtcpDecoder, check_size, encode_frame

log = logging.getLogger(__name__)


class MtcpConnection(asyncio.BufferedProtocol):
    """One MTCP connection (either direction may carry bundles)."""

    def __init__(self, handler: Any = None, max_bundle_size: int = 1 << 32) -> None:
        self.handler = handler
        self.max_bundle_size = max_bundle_size
        self.decoder = MtcpDecoder(max_bundle_size)
        self.transport: asyncio.Transport | None = None
        self.peername: Any = None
        self.error: RemoteProtocolError | None = None
        self._buf = memoryview(bytearray(256 * 1024))
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Future[Any]] = set()
        self.counters = {"bundles_sent": 0, "bundles_received": 0}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buf

    def buffer_updated(self, nbytes: int) -> None:
        try:
            bundles = self.decoder.feed(self._buf[:nbytes])
        except RemoteProtocolError as exc:
            log.warning("MTCP peer %s: %s", self.peername, exc)
            self.error = exc
            assert self.transport is not None
            self.transport.abort()
            return
        for bundle in bundles:
            self.counters["bundles_received"] += 1
            fn = getattr(self.handler, "bundle_received", None)
            if fn is None:
                continue
            result = fn(self, bundle)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def eof_received(self) -> bool:
        if self.decoder.pending:
            self.error = RemoteProtocolError(
                f"MTCP stream truncated: {self.decoder.pending} bytes of an unfinished frame"
            )
            log.warning("MTCP peer %s: %s", self.peername, self.error)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        if not self._closed.done():
            self._closed.set_result(None)
        fn = getattr(self.handler, "connection_closed", None)
        if fn is not None:
            fn(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    @property
    def is_up(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def send(self, bundle: bytes) -> None:
        check_size(len(bundle), self.max_bundle_size)
        if not self.is_up:
            raise LinkClosed("MTCP connection is closed")
        assert self.transport is not None
        self.transport.write(encode_frame(bundle))
        self.counters["bundles_sent"] += 1
        if self._paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
            if not self.is_up:
                raise LinkClosed("MTCP connection closed while sending")

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)


async def connect(host: str, port: int, handler: Any = None, **kw: Any) -> MtcpConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: MtcpConnection(handler, **kw), host, port)
    return conn


async def start_server(host: str, port: int, handler: Any = None, **kw: Any) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: MtcpConnection(handler, **kw), host, port)

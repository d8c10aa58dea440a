"""Thin asyncio adapter around the sans-I/O TCPCLv4 :class:`~.session.Session`.

:class:`TcpclConnection` is an ``asyncio.BufferedProtocol`` (reads land in a preallocated
buffer), sets TCP_NODELAY, and writes everything the core queued -- segment header and bundle
data together -- in one ``transport.write``. When both contact headers carry CAN_TLS it pauses
reading and upgrades the same connection with ``loop.start_tls`` (§4.4: the active entity is
the TLS client), then hands the peer certificate's NODE-IDs to the core.

Bundles go out with ``await conn.send(data)``, which returns only when the peer acknowledged the
whole transfer (or refused it as "Completed"), and raises :class:`TransferFailed` otherwise.
Incoming bundles are passed to ``handler.bundle_received(conn, data)``; it returns (or resolves
to) ``None`` to accept -- the final XFER_ACK goes out only then -- or a
:class:`~.messages.RefuseReason` to refuse (``NO_RESOURCES`` when the store is full,
``COMPLETED`` for a duplicate).

:func:`connect`, :func:`start_server` and :class:`ReconnectingClient` (reconnect with
exponential backoff and jitter) build on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..errors import ConvergenceError, LinkClosed, RemoteProtocolError
from ..tls import peer_node_ids
from . import events as ev
from .messages import RefuseReason, SessTermReason
from .session import Role, Session, SessionConfig

log = logging.getLogger(__name__)

_READ_BUFFER = 256 * 1024


class TransferFailed(ConvergenceError):
    """A transfer was refused by the peer, or the session ended before it was acknowledged."""

    def __init__(self, message: str, reason: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason


BundleVerdict = RefuseReason | None


class TcpclHandler(Protocol):
    """What a :class:`TcpclConnection` calls. Every method is optional (see ``_call``)."""

    def session_established(self, conn: TcpclConnection, info: ev.SessionEstablished) -> None: ...

    def bundle_received(
        self, conn: TcpclConnection, data: bytes
    ) -> BundleVerdict | Awaitable[BundleVerdict]: ...

    def session_closed(self, conn: TcpclConnection, info: ev.SessionTerminated) -> None: ...


class TcpclConnection(asyncio.BufferedProtocol):
    """One TCPCLv4 session over one TCP (optionally TLS) connection."""

    def __init__(
        self,
        role: Role,
        config: SessionConfig,
        handler: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        if config.can_tls and ssl_context is None:
            raise ConvergenceError("can_tls needs an ssl_context")
        self.role = role
        self.config = config
        self.handler = handler
        self.ssl_context = ssl_context
        self.session = Session(role, config, self.loop.time())
        self.transport: asyncio.Transport | None = None
        self.peer_node_id: str | None = None
        self.established_info: ev.SessionEstablished | None = None
        self.terminated_info: ev.SessionTerminated | None = None
        self.peername: Any = None
        self._buf = bytearray(_READ_BUFFER)
        self._view = memoryview(self._buf)
        # transfer ID -> its future (send_nowait) or its done-callback (send_with_callback)
        self._pending: dict[int, Any] = {}
        self._awaiting: set[int] = set()  # received transfers answered through a callback
        self._established = self.loop.create_future()
        self._closed = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._write_paused = False
        self._flush_scheduled = False
        self._tls_upgrading = False
        self._early_tls_data = bytearray()
        self._drain: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counters = {
            "bundles_sent": 0,
            "bundles_received": 0,
            "bytes_sent": 0,
            "bytes_received": 0,
            "refused_in": 0,
            "refused_out": 0,
        }

    # ------------------------------------------------------------------ asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.transport is not None:
            # start_tls re-announces the connection on the TLS transport; keep the new one.
            self.transport = transport
            return
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # The core already joins header and data; NODELAY keeps small acks from waiting
            # on Nagle + delayed ACK (the 40 ms per-bundle stall).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._flush()
        self._arm_timer()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.counters["bytes_received"] += nbytes
        if self._tls_upgrading:
            # Only the TLS layer can deliver now (the plain transport is paused): application
            # data the peer sent right behind its last handshake message (SESS_INIT, typically)
            # can arrive before start_tls() returns. Hold it until the core knows TLS is up.
            self._early_tls_data += self._view[:nbytes]
            return
        try:
            events = self.session.receive_data(self._view[:nbytes], self.loop.time())
        except RemoteProtocolError as exc:
            log.warning("TCPCL peer %s violated the protocol: %s", self.peername, exc)
            self._handle(getattr(exc, "events", []))
        else:
            self._handle(events)
        self._flush()
        self._arm_timer()

    def eof_received(self) -> bool:
        # The peer will send no more. Whatever it left half-sent is a truncated stream, which
        # still gets its SESS_TERM (our side is open); then close our side too.
        try:
            events = self.session.connection_lost(self.loop.time(), half_closed=True)
        except RemoteProtocolError as exc:
            log.warning("TCPCL peer %s: %s", self.peername, exc)
            events = getattr(exc, "events", [])
        self._handle(events)
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        try:
            events = self.session.connection_lost(self.loop.time())
        except RemoteProtocolError as err:
            events = getattr(err, "events", [])
        self._handle(events)
        self._finish_closed()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # ------------------------------------------------------------------ public API

    async def wait_established(self, timeout: float | None = None) -> ev.SessionEstablished:
        """Wait for SESS_INIT negotiation; raises :class:`LinkClosed` if the session ended."""
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._established)

    async def wait_closed(self) -> ev.SessionTerminated | None:
        return await asyncio.shield(self._closed)

    @property
    def is_up(self) -> bool:
        return self.session.established

    async def send(self, data: bytes) -> None:
        """Transfer one bundle; return once the peer acknowledged all of it (§5.2.3).

        Waits first while the transport's write buffer is above its high-water mark, so a
        fast producer cannot queue unbounded data.
        """
        if self._write_paused and self.session.established:
            if self._drain is None:
                self._drain = self.loop.create_future()
            await asyncio.shield(self._drain)
        await self.send_nowait(data)

    def send_nowait(self, data: bytes) -> asyncio.Future[None]:
        """Queue one bundle now (no flow control); the future resolves on the final XFER_ACK
        and fails with :class:`TransferFailed` / :class:`LinkClosed`. For pipelining callers
        that bound their own window."""
        fut: asyncio.Future[None] = self.loop.create_future()
        self._queue_transfer(data, fut)
        return fut

    def send_with_callback(
        self, data: bytes, done: Callable[[BaseException | None], None]
    ) -> None:
        """:meth:`send_nowait` without a future: ``done(None)`` is called on the final
        XFER_ACK, ``done(exc)`` (:class:`TransferFailed`) on a refusal or when the session
        ends first -- synchronously, from inside this connection's event processing, so
        ``done`` must only record the outcome (the node queues it for its next pass). Saves
        a future, its scheduled callback and a loop handle per transfer."""
        self._queue_transfer(data, done)

    def _queue_transfer(self, data: bytes, outcome: Any) -> None:
        """Start a transfer whose outcome goes to ``outcome`` (a future or a done-callback,
        settled by :func:`_settle`)."""
        if not self.session.established:
            raise LinkClosed(f"TCPCL session is {self.session.state.value}, not established")
        tid = self.session.send_transfer(data, self.loop.time())
        self._pending[tid] = outcome
        self.counters["bytes_sent"] += len(data)
        if len(data) >= 65536:
            self._flush()
        else:
            # Coalesce the small transfers queued in this loop iteration into one write (one
            # syscall) -- still header and data together, and no Nagle-style waiting.
            self._flush_soon()

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()
        self._arm_timer()

    def _flush_soon(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    @property
    def write_paused(self) -> bool:
        """True while the transport asks us to stop writing (above its high-water mark)."""
        return self._write_paused

    async def close(
        self, reason: SessTermReason = SessTermReason.UNKNOWN, timeout: float = 5.0
    ) -> None:
        """§6.1 orderly termination; force-close after ``timeout``."""
        if self.transport is None or self._closed.done():
            return
        self._handle(self.session.terminate(self.loop.time(), reason))
        self._flush()
        self._arm_timer()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._closed)
        except TimeoutError:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ internals

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        if self.session.closed and self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None:
            return
        # Keep an earlier timer: firing early is harmless (handle_timer only runs what is due),
        # and not rescheduling on every message keeps the hot path cheap.
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._handle(self.session.handle_timer(self.loop.time()))
        self._flush()
        self._arm_timer()

    def _handle(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.TransferReceived):
                self._on_bundle(event)
            elif isinstance(event, ev.TransferCompleted):
                self.counters["bundles_sent"] += 1
                fut = self._pending.pop(event.transfer_id, None)
                if fut is not None:
                    _settle(fut, None)
            elif isinstance(event, ev.TransferRefused):
                self.counters["refused_out"] += 1
                fut = self._pending.pop(event.transfer_id, None)
                if fut is not None:
                    _settle(
                        fut,
                        TransferFailed(
                            f"peer refused the transfer: {_reason_name(event.reason)}", event.reason
                        ),
                    )
            elif isinstance(event, ev.TlsNegotiationAgreed):
                self._start_tls(event.server_side)
            elif isinstance(event, ev.SessionEstablished):
                self.peer_node_id = event.peer_node_id
                self.established_info = event
                if not self._established.done():
                    self._established.set_result(event)
                self._call("session_established", event)
            elif isinstance(event, ev.SessionTerminated):
                self.terminated_info = event
                self._fail_pending(event)

    def _fail_pending(self, info: ev.SessionTerminated) -> None:
        why = info.error or f"session terminated (reason {_reason_name(info.reason)})"
        pending = list(self._pending.values())
        self._pending.clear()
        for fut in pending:
            _settle(fut, TransferFailed(f"not acknowledged: {why}"))
        if not self._established.done():
            self._established.set_exception(LinkClosed(f"session not established: {why}"))
            self._established.exception()  # mark retrieved: nobody may be waiting
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _finish_closed(self) -> None:
        if self.terminated_info is not None:
            self._fail_pending(self.terminated_info)
        if not self._closed.done():
            self._closed.set_result(self.terminated_info)
            if self.terminated_info is not None:
                self._call("session_closed", self.terminated_info)

    def _call(self, name: str, *args: Any) -> Any:
        fn: Callable[..., Any] | None = getattr(self.handler, name, None)
        if fn is None:
            return None
        if name == "bundle_received":
            return fn(self, *args)  # _on_bundle turns its failures into a refusal
        try:
            return fn(self, *args)
        except Exception:
            # A broken observer must not take the protocol down with it.
            log.exception("TCPCL handler %s failed", name)
            return None

    def _on_bundle(self, event: ev.TransferReceived) -> None:
        self.counters["bundles_received"] += 1
        with_cb = getattr(self.handler, "bundle_received_cb", None)
        if with_cb is not None:
            # The handler answers through a callback: no future, no Task, no loop handle.
            tid = event.transfer_id
            self._awaiting.add(tid)
            try:
                with_cb(self, event.data, functools.partial(self._answer_cb, tid))
            except Exception:
                log.exception("bundle_received handler failed; refusing transfer")
                self._answer_cb(tid, RefuseReason.UNKNOWN)
            return
        try:
            verdict = self._call("bundle_received", event.data)
        except Exception:
            log.exception("bundle_received handler failed; refusing transfer")
            verdict = RefuseReason.UNKNOWN
        if inspect.isawaitable(verdict):
            task = asyncio.ensure_future(verdict)
            self._tasks.add(task)
            task.add_done_callback(lambda t, tid=event.transfer_id: self._answered(tid, t))
        else:
            self._answer(event.transfer_id, verdict)

    def _answered(self, tid: int, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            verdict: BundleVerdict = RefuseReason.UNKNOWN
        elif task.exception() is not None:
            log.error("bundle_received handler failed; refusing", exc_info=task.exception())
            verdict = RefuseReason.UNKNOWN
        else:
            verdict = task.result()
        self._answer(tid, verdict)
        # The node answers a whole group commit's transfers in one loop pass (its futures
        # resolve together): their XFER_ACKs go out in one write after that pass, not one
        # write each.
        self._flush_soon()

    def _answer_cb(self, tid: int, verdict: Any) -> None:
        """The callback given to ``bundle_received_cb``: the verdict for transfer ``tid``
        (None/True: XFER_ACK; False: refuse with NO_RESOURCES; a RefuseReason: refuse so).
        Only the first call counts; the XFER_ACKs answered in one loop pass share a write."""
        if tid not in self._awaiting:
            return
        self._awaiting.discard(tid)
        self._answer(tid, verdict)
        self._flush_soon()

    def _answer(self, tid: int, verdict: Any) -> None:
        now = self.loop.time()
        if verdict is None or verdict is True:
            self._handle(self.session.accept_transfer(tid, now))
        else:
            reason = RefuseReason.NO_RESOURCES if verdict is False else RefuseReason(verdict)
            self.counters["refused_in"] += 1
            self._handle(self.session.refuse_transfer(tid, reason, now))

    def _start_tls(self, server_side: bool) -> None:
        assert self.transport is not None
        # Stop reading now, synchronously: the next bytes are the TLS handshake and must not
        # reach the plaintext parser.
        self.transport.pause_reading()
        self._tls_upgrading = True
        task = asyncio.ensure_future(self._do_tls(server_side))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _do_tls(self, server_side: bool) -> None:
        assert self.transport is not None and self.ssl_context is not None
        old = self.transport
        self._flush()  # our contact header must go out in the clear first
        try:
            async with asyncio.timeout(self.config.tls_timeout):
                new = await self.loop.start_tls(
                    old, self, self.ssl_context, server_side=server_side
                )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.warning("TLS handshake with %s failed: %s", self.peername, exc)
            self._tls_upgrading = False
            self.session.terminate(self.loop.time())
            old.abort()
            return
        self._tls_upgrading = False
        if new is None or self.session.closed:
            return
        self.transport = new  # type: ignore[assignment]
        ids = peer_node_ids(new.get_extra_info("ssl_object"))
        self._handle(self.session.tls_established(self.loop.time(), ids))
        if self._early_tls_data:
            early, self._early_tls_data = bytes(self._early_tls_data), bytearray()
            try:
                events = self.session.receive_data(early, self.loop.time())
            except RemoteProtocolError as exc:
                log.warning("TCPCL peer %s violated the protocol: %s", self.peername, exc)
                events = getattr(exc, "events", [])
            self._handle(events)
        self._flush()
        self._arm_timer()


def _settle(target: Any, exc: BaseException | None) -> None:
    """Report a transfer's outcome to its future or its done-callback."""
    if isinstance(target, asyncio.Future):
        if not target.done():
            if exc is None:
                target.set_result(None)
            else:
                target.set_exception(exc)
        return
    try:
        target(exc)
    except Exception:  # a broken observer must not take the protocol down with it
        log.exception("TCPCL transfer callback failed")


def _reason_name(reason: int | None) -> str:
    if reason is None:
        return "none"
    for enum in (RefuseReason, SessTermReason):
        if isinstance(reason, enum):
            return reason.name
    return str(int(reason))


async def connect(
    host: str,
    port: int,
    config: SessionConfig,
    handler: Any = None,
    ssl_context: ssl.SSLContext | None = None,
    *,
    timeout: float = 30.0,
) -> TcpclConnection:
    """Open a TCPCLv4 session as the active entity and wait until it is established."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        _, conn = await loop.create_connection(
            lambda: TcpclConnection(Role.ACTIVE, config, handler, ssl_context), host, port
        )
    try:
        await conn.wait_established(timeout)
    except BaseException:
        conn.abort()
        raise
    return conn


async def start_server(
    host: str,
    port: int,
    config: SessionConfig,
    handler: Any = None,
    ssl_context: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Listen for TCPCLv4 sessions (passive entity); one :class:`TcpclConnection` each."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: TcpclConnection(Role.PASSIVE, config, handler, ssl_context), host, port
    )


class ReconnectingClient:
    """Keeps one outgoing session to ``host:port`` up: reconnect with exponential backoff.

    ``on_up(conn)`` / ``on_down(conn, info)`` bracket each session. Backoff starts at
    ``initial_backoff``, doubles to ``max_backoff``, has +-25 % jitter, and resets only after a
    session lasted ``stable_after`` seconds (so a peer that ends every session at once does not
    cause a reconnect storm).
    """

    def __init__(
        self,
        host: str,
        port: int,
        config: SessionConfig,
        handler: Any = None,
        ssl_context: ssl.SSLContext | None = None,
        *,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        stable_after: float = 10.0,
        on_up: Callable[[TcpclConnection], None] | None = None,
        on_down: Callable[[TcpclConnection | None, str], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.config, self.handler, self.ssl_context = config, handler, ssl_context
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.stable_after = stable_after
        self.on_up, self.on_down = on_up, on_down
        self.conn: TcpclConnection | None = None
        self.attempts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._up = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def wait_up(self, timeout: float | None = None) -> TcpclConnection:
        async with asyncio.timeout(timeout):
            await self._up.wait()
        assert self.conn is not None
        return self.conn

    async def stop(self) -> None:
        self._stopping = True
        if self.conn is not None:
            await self.conn.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = self.initial_backoff
        while not self._stopping:
            self.attempts += 1
            try:
                conn = await connect(
                    self.host,
                    self.port,
                    self.config,
                    self.handler,
                    self.ssl_context,
                    timeout=self.config.sess_init_timeout,
                )
            except (OSError, ConvergenceError, TimeoutError) as exc:
                if self.on_down is not None:
                    self.on_down(None, f"connect failed: {exc}")
                await asyncio.sleep(backoff * random.uniform(0.75, 1.25))
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self.conn = conn
            self._up.set()
            if self.on_up is not None:
                self.on_up(conn)
            started = asyncio.get_running_loop().time()
            info = await conn.wait_closed()
            self._up.clear()
            if self.on_down is not None:
                self.on_down(conn, (info.error if info else None) or "session closed")
            if asyncio.get_running_loop().time() - started >= self.stable_after:
                backoff = self.initial_backoff  # it worked for a while: retry promptly
            else:
                # A session that ends at once (wrong peer, policy refusal) must not turn into
                # a tight reconnect loop: keep backing off.
                backoff = min(backoff * 2, self.max_backoff)
            if not self._stopping:
                await asyncio.sleep(backoff * random.uniform(0.75, 1.25))


__all__ = [
    "ReconnectingClient",
    "TcpclConnection",
    "TcpclHandler",
    "TransferFailed",
    "connect",
    "start_server",
]

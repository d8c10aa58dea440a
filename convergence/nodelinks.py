"""Glue between the convergence adapters and the node's link interface (``waystation.links``).

The node sees each neighbour as a ``Link`` (``link_id``, ``peer``, ``kind``, ``is_up``,
``await send(wire)``, ``close()``, ``describe()``) and is a ``LinkHandler`` (``link_up``,
``link_down``, ``await bundle_received(link, wire) -> bool``). This module provides link
factories for ``LinkManager.register_factory``; :func:`register_all` registers every kind:

``tcpcl`` (RFC 9174) -- options::

    address = "host:port"        # connect out (active), reconnecting with backoff; or
    listen = "host:port"         # accept sessions (passive); one Link per peer node ID
    peer = "dtn://b/"            # optional: expected peer Node ID (mismatch -> session ended)
    tls = true                   # offer TLS (CAN_TLS); require_tls = true to insist on it
    cert = "node.crt"  key = "node.key"  ca = "ca.crt"
    node_id_policy = "if-present"  # | "require" | "ignore"  (RFC 9174 §4.4.3)
    keepalive = 30  segment_mru = 67108864  transfer_mru = 4294967296
    max_segment = 4194304  reconnect_min = 0.5  reconnect_max = 30

``mtcp`` -- ``address`` or ``listen`` as above (no acknowledgements: ``send`` returns once the
frame is written). ``udp`` -- ``listen`` (local) and ``address`` (peer), ``max_bundle``,
``rate`` (bytes/s).

``send`` maps failures to the node's errors: not connected -> ``LinkDown``; refused by the peer
-> ``TransferRefused``; anything else (session ended before the final XFER_ACK, too large) ->
``LinkError``. In every failure case the node keeps the bundle and retries it later.

This is the one module of ``waystation.convergence`` that imports from the node package (for
its error classes); the protocol modules themselves never do.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConvergenceError, LinkClosed, TransferTooLarge
from .mtcp import adapter as mtcp
from .tcpcl import NodeIdPolicy, RefuseReason, SessionConfig
from .tcpcl.adapter import ReconnectingClient, TcpclConnection, TransferFailed, start_server
from .tls import TlsSettings
from .udp import adapter as udp

log = logging.getLogger(__name__)

_background: set[asyncio.Future[Any]] = set()


def _spawn(coro: Any) -> None:
    """Run a fire-and-forget coroutine, keeping a reference so it is not collected early."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _verdict_of(fut: asyncio.Future[Any]) -> Any:
    """A finished verdict future as the adapter's verdict (a failure refuses: UNKNOWN)."""
    if fut.cancelled():
        return RefuseReason.UNKNOWN
    exc = fut.exception()
    if exc is not None:
        log.error("node failed to take a bundle; refusing", exc_info=exc)
        return RefuseReason.UNKNOWN
    return fut.result()


def _link_errors() -> tuple[type[Exception], type[Exception], type[Exception]]:
    from waystation.links import LinkDown, LinkError, TransferRefused

    return LinkError, LinkDown, TransferRefused


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _local_node_id(handler: Any, options: dict[str, Any]) -> str:
    if "node_id" in options:
        return str(options["node_id"])
    ident = getattr(handler, "identity", None)
    if ident is not None and getattr(ident, "node_id", None):
        return str(ident.node_id)
    cfg = getattr(handler, "config", None)
    if cfg is not None and getattr(cfg, "node_id", None):
        return str(cfg.node_id)
    raise ValueError("cannot tell the local node ID (give the link a node_id option)")


def tcpcl_config(node_id: str, options: dict[str, Any]) -> SessionConfig:
    """A :class:`SessionConfig` from a ``[[links]]`` table."""
    policy = NodeIdPolicy(str(options.get("node_id_policy", "if-present")))
    return SessionConfig(
        node_id=node_id,
        keepalive_interval=int(options.get("keepalive", 30)),
        segment_mru=int(options.get("segment_mru", 64 * 1024 * 1024)),
        transfer_mru=int(options.get("transfer_mru", 1 << 32)),
        max_segment_size=int(options.get("max_segment", 4 * 1024 * 1024)),
        can_tls=bool(options.get("tls", False)),
        require_tls=bool(options.get("require_tls", False)),
        node_id_policy=policy,
        session_idle_timeout=options.get("session_idle_timeout"),
    )


def _tls(options: dict[str, Any], base: Path | None = None) -> TlsSettings | None:
    if not options.get("tls"):
        return None
    missing = [k for k in ("cert", "key", "ca") if not options.get(k)]
    if missing:
        raise ValueError(f"tls = true needs {', '.join(missing)}")
    return TlsSettings(
        Path(options["cert"]),
        Path(options["key"]),
        Path(options["ca"]),
        verify_peer=bool(options.get("verify_peer", True)),
    )


class TcpclLink:
    """One TCPCLv4 neighbour as the node sees it; survives reconnects (same object, new
    session), so the node's link table never holds a stale session."""

    kind = "tcpcl"

    def __init__(self, link_id: str, handler: Any, expected_peer: str | None = None) -> None:
        self.link_id = link_id
        self.handler = handler
        self.peer: str | None = expected_peer
        self.expected_peer = expected_peer
        self.conn: TcpclConnection | None = None
        self.address: str | None = None
        self.client: ReconnectingClient | None = None
        self.sessions = 0
        self.last_down: str | None = None

    # adapter-facing handler --------------------------------------------------------------
    def session_established(self, conn: TcpclConnection, info: Any) -> None:
        if self.expected_peer and info.peer_node_id != self.expected_peer:
            log.warning(
                "TCPCL link %s: peer says %s, expected %s; ending session",
                self.link_id,
                info.peer_node_id,
                self.expected_peer,
            )
            _spawn(conn.close())
            return
        self.peer = info.peer_node_id
        self.conn = conn
        self.sessions += 1
        self.handler.link_up(self)

    def session_closed(self, conn: TcpclConnection, info: Any) -> None:
        if conn is not self.conn:
            return
        self.conn = None
        self.last_down = info.error or f"session terminated (reason {info.reason})"
        self.handler.link_down(self, self.last_down)

    def bundle_received(self, conn: TcpclConnection, data: bytes) -> Any:
        """The node's verdict: a future of True (XFER_ACK once durable) / False (refuse,
        NO_RESOURCES), or :attr:`RefuseReason.UNKNOWN` now if the node failed. The adapter
        resolves either form; a failed future also becomes a refusal, so the sender keeps
        the bundle."""
        nowait = getattr(self.handler, "receive_nowait", None)
        try:
            if nowait is not None:
                # The node's own future, so the adapter creates no Task per bundle (profiled:
                # a coroutine pair and a Task per 1 KiB bundle were a visible share).
                return nowait(self, data)
            return self._received(data)
        except Exception:  # the node failed; refuse so the sender keeps the bundle
            log.exception("node failed to take a bundle from %s", self.link_id)
            return RefuseReason.UNKNOWN

    def bundle_received_cb(
        self, conn: TcpclConnection, data: bytes, answer: Callable[[Any], None]
    ) -> None:
        """The adapter's callback form of :meth:`bundle_received`: the node calls ``answer``
        with True (XFER_ACK, once durable) or False (refuse, NO_RESOURCES) -- no future and
        no loop handle per bundle. A node without ``receive_cb`` is served through
        :meth:`bundle_received` and the same verdict mapping."""
        direct = getattr(self.handler, "receive_cb", None)
        if direct is not None:
            try:
                direct(self, data, answer)
            except Exception:  # the node failed; refuse so the sender keeps the bundle
                log.exception("node failed to take a bundle from %s", self.link_id)
                answer(RefuseReason.UNKNOWN)
            return
        verdict = self.bundle_received(conn, data)
        if not inspect.isawaitable(verdict):
            answer(verdict)
            return
        fut = asyncio.ensure_future(verdict)
        _background.add(fut)
        fut.add_done_callback(lambda f: (_background.discard(f), answer(_verdict_of(f))))

    async def _received(self, data: bytes) -> RefuseReason | None:
        try:
            ok = await self.handler.bundle_received(self, data)
        except Exception:  # the node failed; refuse so the sender keeps the bundle
            log.exception("node failed to take a bundle from %s", self.link_id)
            return RefuseReason.UNKNOWN
        return None if ok else RefuseReason.NO_RESOURCES

    # node-facing Link ----------------------------------------------------------------------
    @property
    def is_up(self) -> bool:
        return self.conn is not None and self.conn.is_up

    async def send(self, wire: bytes) -> None:
        link_error, link_down, refused = _link_errors()
        conn = self.conn
        if conn is None or not conn.is_up:
            raise link_down(f"TCPCL link {self.link_id} is not up")
        try:
            await conn.send(wire)
        except TransferFailed as exc:
            if exc.reason is not None:
                raise refused(str(exc)) from exc
            raise link_error(str(exc)) from exc
        except LinkClosed as exc:
            raise link_down(str(exc)) from exc
        except (TransferTooLarge, ConvergenceError) as exc:
            raise link_error(str(exc)) from exc

    @property
    def ready_now(self) -> bool:
        """Can :meth:`send_nowait` take a bundle now (session up, write buffer has room)?"""
        conn = self.conn
        return conn is not None and conn.is_up and not conn.write_paused

    def send_nowait(self, wire: bytes) -> asyncio.Future[None]:
        """Queue one transfer now (check :attr:`ready_now` first: this skips the wait for
        flow control); the future resolves on the final XFER_ACK and fails as :meth:`send`
        would raise. For the node's per-bundle path: no coroutine per bundle."""
        conn = self.conn
        if conn is None or not conn.is_up:
            raise _link_errors()[1](f"TCPCL link {self.link_id} is not up")
        try:
            return conn.send_nowait(wire)
        except LinkClosed as exc:
            raise _link_errors()[1](str(exc)) from exc
        except (TransferTooLarge, ConvergenceError) as exc:
            # (the node's error classes are looked up only when needed: this runs per bundle)
            raise _link_errors()[0](str(exc)) from exc

    def send_with_callback(self, wire: bytes, done: Callable[[BaseException | None], None]) -> None:
        """:meth:`send_nowait` with a done-callback instead of a future (check
        :attr:`ready_now` first): ``done(None)`` on the final XFER_ACK, ``done(exc)`` with the
        adapter's :class:`TransferFailed` otherwise, called from inside the session's event
        processing (so ``done`` only records the outcome). Raises as :meth:`send_nowait`."""
        conn = self.conn
        if conn is None or not conn.is_up:
            raise _link_errors()[1](f"TCPCL link {self.link_id} is not up")
        try:
            conn.send_with_callback(wire, done)
        except LinkClosed as exc:
            raise _link_errors()[1](str(exc)) from exc
        except (TransferTooLarge, ConvergenceError) as exc:
            raise _link_errors()[0](str(exc)) from exc

    async def close(self) -> None:
        if self.client is not None:
            await self.client.stop()
        elif self.conn is not None:
            await self.conn.close()

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": self.link_id,
            "kind": self.kind,
            "peer": self.peer,
            "up": self.is_up,
            "address": self.address,
            "sessions": self.sessions,
        }
        if self.conn is not None:
            info.update(self.conn.counters)
            est = self.conn.established_info
            if est is not None:
                info.update(
                    tls=est.tls,
                    authenticated=est.peer_node_id_authenticated,
                    keepalive=est.keepalive_interval,
                )
        if self.last_down:
            info["last_down"] = self.last_down
        return info


class TcpclListener:
    """Accepts TCPCLv4 sessions; one :class:`TcpclLink` per peer node ID."""

    kind = "tcpcl-listener"

    def __init__(self, link_id: str, handler: Any) -> None:
        self.link_id = link_id
        self.handler = handler
        self.peer = None
        self.server: asyncio.Server | None = None
        self.links: dict[str, TcpclLink] = {}
        self.address: str | None = None

    # Each accepted connection starts with this object as its handler; once SESS_INIT names
    # the peer, it is handed to that peer's TcpclLink.
    def session_established(self, conn: TcpclConnection, info: Any) -> None:
        link = self.links.get(info.peer_node_id)
        if link is None:
            link = TcpclLink(f"{self.link_id}/{info.peer_node_id}", self.handler)
            link.address = str(conn.peername)
            self.links[info.peer_node_id] = link
        old = link.conn
        conn.handler = link
        link.session_established(conn, info)
        if old is not None and old is not conn:
            _spawn(old.close())

    async def bundle_received(self, conn: TcpclConnection, data: bytes) -> RefuseReason | None:
        handler = conn.handler
        if handler is self:  # cannot happen after SESS_INIT; refuse rather than guess
            return RefuseReason.NOT_ACCEPTABLE
        result = handler.bundle_received(conn, data)
        if inspect.isawaitable(result):
            result = await result
        if result is True:
            return None
        return RefuseReason.NO_RESOURCES if result is False else result

    @property
    def is_up(self) -> bool:
        return self.server is not None and self.server.is_serving()

    async def send(self, wire: bytes) -> None:
        _, link_down, _ = _link_errors()
        raise link_down("a listener is not a link to one peer; send on its per-peer links")

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for link in list(self.links.values()):
            with contextlib.suppress(Exception):
                await link.close()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.link_id,
            "kind": self.kind,
            "listen": self.address,
            "up": self.is_up,
            "peers": sorted(self.links),
        }


async def tcpcl_factory(link_id: str, options: dict[str, Any], handler: Any) -> Any:
    """``LinkManager`` factory for ``kind = "tcpcl"``."""
    node_id = _local_node_id(handler, options)
    cfg = tcpcl_config(node_id, options)
    tls = _tls(options)
    if "listen" in options:
        host, port = _hostport(options["listen"])
        listener = TcpclListener(link_id, handler)
        listener.server = await start_server(
            host, port, cfg, listener, tls.context(server_side=True) if tls else None
        )
        sock = listener.server.sockets[0].getsockname()
        listener.address = f"{sock[0]}:{sock[1]}"
        return listener
    if "address" not in options:
        raise ValueError(f"link {link_id!r}: tcpcl needs 'address' (connect) or 'listen'")
    host, port = _hostport(options["address"])
    link = TcpclLink(link_id, handler, options.get("peer"))
    link.address = f"{host}:{port}"
    link.client = ReconnectingClient(
        host,
        port,
        cfg,
        link,
        tls.context(server_side=False) if tls else None,
        initial_backoff=float(options.get("reconnect_min", 0.5)),
        max_backoff=float(options.get("reconnect_max", 30.0)),
    )
    link.client.start()
    return link


# ------------------------------------------------------------------------------------ MTCP


class MtcpLink:
    """An MTCP neighbour (outgoing, reconnecting). No acknowledgements: see module docs."""

    kind = "mtcp"

    def __init__(
        self,
        link_id: str,
        handler: Any,
        host: str,
        port: int,
        peer: str | None,
        backoff: tuple[float, float],
    ) -> None:
        self.link_id, self.handler, self.peer = link_id, handler, peer
        self.host, self.port = host, port
        self.conn: mtcp.MtcpConnection | None = None
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stopping:
            try:
                self.conn = await mtcp.connect(self.host, self.port, self)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            self.handler.link_up(self)
            await self.conn.wait_closed()
            self.conn = None
            self.handler.link_down(self, "MTCP connection closed")
            await asyncio.sleep(delay)

    async def bundle_received(self, conn: Any, data: bytes) -> None:
        await self.handler.bundle_received(self, data)

    @property
    def is_up(self) -> bool:
        return self.conn is not None and self.conn.is_up

    async def send(self, wire: bytes) -> None:
        link_error, link_down, _ = _link_errors()
        if self.conn is None or not self.conn.is_up:
            raise link_down(f"MTCP link {self.link_id} is not up")
        try:
            await self.conn.send(wire)
        except LinkClosed as exc:
            raise link_down(str(exc)) from exc
        except ConvergenceError as exc:
            raise link_error(str(exc)) from exc

    async def close(self) -> None:
        self._stopping = True
        if self.conn is not None:
            await self.conn.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.link_id,
            "kind": self.kind,
            "peer": self.peer,
            "up": self.is_up,
            "address": f"{self.host}:{self.port}",
        }
        if self.conn is not None:
            d.update(self.conn.counters)
        return d


class MtcpListenerLink:
    """Accepts MTCP connections; bundles from any of them arrive on this one link."""

    kind = "mtcp-listener"

    def __init__(self, link_id: str, handler: Any, peer: str | None) -> None:
        self.link_id, self.handler, self.peer = link_id, handler, peer
        self.server: asyncio.Server | None = None
        self.conns: set[mtcp.MtcpConnection] = set()

    async def bundle_received(self, conn: Any, data: bytes) -> None:
        self.conns.add(conn)
        await self.handler.bundle_received(self, data)

    def connection_closed(self, conn: Any) -> None:
        self.conns.discard(conn)

    @property
    def is_up(self) -> bool:
        return any(c.is_up for c in self.conns)

    async def send(self, wire: bytes) -> None:
        _, link_down, _ = _link_errors()
        for c in list(self.conns):
            if c.is_up:
                await c.send(wire)
                return
        raise link_down(f"no MTCP peer connected to {self.link_id}")

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for c in list(self.conns):
            await c.close()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.link_id,
            "kind": self.kind,
            "up": self.is_up,
            "connections": len(self.conns),
        }


async def mtcp_factory(link_id: str, options: dict[str, Any], handler: Any) -> Any:
    """``LinkManager`` factory for ``kind = "mtcp"``."""
    if "listen" in options:
        host, port = _hostport(options["listen"])
        link = MtcpListenerLink(link_id, handler, options.get("peer"))
        link.server = await mtcp.start_server(host, port, link)
        handler.link_up(link)
        return link
    if "address" not in options:
        raise ValueError(f"link {link_id!r}: mtcp needs 'address' or 'listen'")
    host, port = _hostport(options["address"])
    out = MtcpLink(
        link_id,
        handler,
        host,
        port,
        options.get("peer"),
        (float(options.get("reconnect_min", 0.5)), float(options.get("reconnect_max", 30.0))),
    )
    out.start()
    return out


# ------------------------------------------------------------------------------------- UDP


class UdpLink:
    """A UDP neighbour: datagrams to ``address``, from anyone to ``listen``."""

    kind = "udp"

    def __init__(
        self, link_id: str, handler: Any, peer: str | None, address: tuple[str, int] | None
    ) -> None:
        self.link_id, self.handler, self.peer, self.address = link_id, handler, peer, address
        self.endpoint: udp.UdpEndpoint | None = None

    @property
    def max_bundle_size(self) -> int:
        """The node fragments bundles above this (RFC 9171 §5.8) before sending on UDP."""
        return self.endpoint.max_bundle_size if self.endpoint else udp.DEFAULT_MAX_BUNDLE

    def bundle_received(self, endpoint: Any, data: bytes, addr: Any) -> Any:
        return self.handler.bundle_received(self, data)

    @property
    def is_up(self) -> bool:
        return self.endpoint is not None and self.address is not None

    async def send(self, wire: bytes) -> None:
        link_error, link_down, _ = _link_errors()
        if self.endpoint is None or self.address is None:
            raise link_down(f"UDP link {self.link_id} has no peer address")
        try:
            await self.endpoint.send(wire, self.address)
        except TransferTooLarge as exc:
            raise link_error(f"{exc}; fragment the bundle to {exc.limit} bytes") from exc
        except ConvergenceError as exc:
            raise link_error(str(exc)) from exc

    async def close(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.close()

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.link_id,
            "kind": self.kind,
            "peer": self.peer,
            "up": self.is_up,
            "address": self.address,
        }
        if self.endpoint is not None:
            d.update(self.endpoint.counters)
            d["max_bundle"] = self.endpoint.max_bundle_size
        return d


async def udp_factory(link_id: str, options: dict[str, Any], handler: Any) -> Any:
    """``LinkManager`` factory for ``kind = "udp"``."""
    host, port = _hostport(options.get("listen", "0.0.0.0:0"))
    address = _hostport(options["address"]) if "address" in options else None
    link = UdpLink(link_id, handler, options.get("peer"), address)
    link.endpoint = await udp.open_endpoint(
        host,
        port,
        link,
        max_bundle_size=int(options.get("max_bundle", udp.DEFAULT_MAX_BUNDLE)),
        rate_bytes_per_s=options.get("rate"),
    )
    handler.link_up(link)
    return link


FACTORIES = {"tcpcl": tcpcl_factory, "mtcp": mtcp_factory, "udp": udp_factory}


def register_all(manager: Any) -> None:
    """Register every convergence layer with a ``waystation.links.LinkManager``."""
    for kind, factory in FACTORIES.items():
        manager.register_factory(kind, factory)


__all__ = [
    "FACTORIES",
    "MtcpLink",
    "MtcpListenerLink",
    "TcpclLink",
    "TcpclListener",
    "UdpLink",
    "mtcp_factory",
    "register_all",
    "tcpcl_config",
    "tcpcl_factory",
    "udp_factory",
]

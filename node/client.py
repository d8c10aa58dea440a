"""Client library for the node's application socket (docs/app-protocol.md).

Two variants with the same operations: :class:`Client` (blocking, for scripts and the CLI) and
:class:`AsyncClient` (asyncio). Both speak protocol version 1 over a ZeroMQ DEALER socket to
the node's ROUTER at ``ipc://<runtime dir>/node.sock`` (or the optional loopback TCP endpoint).

Delivery is at-least-once: the node keeps a bundle for a registered endpoint until the client
acknowledges it. :meth:`Client.receive` acknowledges a delivery only after the caller asked for
the next one (so a crash while handling it means it is delivered again), and :meth:`Client.ack`
does it explicitly. Against a node speaking protocol minor 1, ``receive`` asks for batched
deliveries (several per frame) and sends its acknowledgements in batches (``ack`` with
``keys``): those of the deliveries already handled go out before the client would wait for
more, or once a quarter of the window has piled up, and when the iteration ends.

Error tree::

    ClientError
     +-- NodeUnavailable     no reply within the timeout (node not running, socket path wrong)
     +-- NodeError(code)     the node answered with an ``error`` frame; ``code`` is stable
     +-- ProtocolMismatch    the node's reply was not a valid protocol frame
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from waystation.appproto import (
    KIND_DELIVERIES,
    KIND_DELIVERY,
    KIND_ERROR,
    KIND_KEEPALIVE,
    AppProtocolError,
    Frame,
    decode_frame,
    encode_frame,
)
from waystation.config import default_runtime_dir, socket_endpoint

__all__ = [
    "ClientError",
    "NodeUnavailable",
    "NodeError",
    "ProtocolMismatch",
    "Delivery",
    "SendResult",
    "Client",
    "AsyncClient",
    "default_endpoint",
]

DEFAULT_TIMEOUT_S = 10.0
# Outstanding sends in flight before the sync client waits for replies (pipelining window).
SEND_WINDOW = 512
# send_many against a node speaking protocol minor 2: payloads per ``send`` frame (and bytes,
# whichever comes first). One frame and one reply per batch instead of per bundle roughly
# halves the submitting node's socket work per bundle.
SEND_BATCH = 64
SEND_BATCH_BYTES = 256 * 1024
# A receiving client hears a keepalive every second; this much silence means the node is gone.
SILENCE_S = 10.0
# Deliveries per frame a receiving client asks for (protocol minor 1; capped by its window).
RECV_BATCH = 64


def _deliveries(body: dict[str, Any]) -> list[Delivery]:
    """The deliveries of a ``deliveries`` frame (protocol minor 1)."""
    items = body.get("items")
    if not isinstance(items, list) or not all(isinstance(b, dict) for b in items):
        raise ProtocolMismatch("malformed deliveries frame: items must be a list of maps")
    return [Delivery.from_body(b) for b in items]


def _recv_args(endpoint: str, window: int, batch: int) -> dict[str, Any]:
    args: dict[str, Any] = {"endpoint": endpoint, "window": window}
    if min(batch, window) > 1:
        args["batch"] = min(batch, window)
    return args


class ClientError(Exception):
    """Root of the client library's errors."""


class NodeUnavailable(ClientError):
    """The node did not answer within the timeout."""


class NodeError(ClientError):
    """The node rejected a request; ``code`` is one of the protocol's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ProtocolMismatch(ClientError):
    """The node sent something that is not a valid protocol frame."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One bundle delivered to a registered endpoint."""

    endpoint: str
    key: bytes
    source: str
    destination: str
    creation_ms: int
    sequence: int
    payload: bytes
    lifetime_ms: int
    admin: bool = False

    @staticmethod
    def from_body(body: dict[str, Any]) -> Delivery:
        try:
            creation = body["creation"]
            return Delivery(
                endpoint=str(body["endpoint"]),
                key=bytes(body["key"]),
                source=str(body["source"]),
                destination=str(body["destination"]),
                creation_ms=int(creation[0]),
                sequence=int(creation[1]),
                payload=bytes(body["payload"]),
                lifetime_ms=int(body["lifetime_ms"]),
                admin=bool(body.get("admin", False)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ProtocolMismatch(f"malformed delivery: {exc}") from None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The node's answer to ``send``: the bundle is durable in the node's store."""

    bundle_id: str
    key: bytes
    source: str
    creation_ms: int
    sequence: int

    @staticmethod
    def from_body(body: dict[str, Any]) -> SendResult:
        try:
            creation = body["creation"]
            return SendResult(
                bundle_id=str(body["bundle_id"]),
                key=bytes(body["key"]),
                source=str(body["source"]),
                creation_ms=int(creation[0]),
                sequence=int(creation[1]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ProtocolMismatch(f"malformed send reply: {exc}") from None


def default_endpoint() -> str:
    """The endpoint a client uses when given none: ``$WAYSTATION_SOCKET`` or the XDG default."""
    env = os.environ.get("WAYSTATION_SOCKET")
    if env:
        return env if "://" in env else f"ipc://{env}"
    return socket_endpoint(default_runtime_dir())


def _send_args(
    destination: str,
    payload: bytes,
    lifetime: float | None,
    priority: str | None,
    reports: Iterable[str],
    source: str | None,
    report_to: str | None,
) -> dict[str, Any]:
    args: dict[str, Any] = {"destination": destination, "payload": payload}
    if lifetime is not None:
        args["lifetime_ms"] = int(lifetime * 1000)
    if priority is not None:
        args["priority"] = priority
    reports = list(reports)
    if reports:
        args["reports"] = reports
    if source is not None:
        args["source"] = source
    if report_to is not None:
        args["report_to"] = report_to
    return args


def _send_file_args(
    destination: str,
    path: str | os.PathLike[str],
    lifetime: float | None,
    priority: str | None,
    reports: Iterable[str],
    source: str | None,
    report_to: str | None,
) -> dict[str, Any]:
    """``send`` arguments that name a file for the node to read instead of carrying a payload."""
    args = _send_args(destination, b"", lifetime, priority, reports, source, report_to)
    del args["payload"]
    args["file"] = os.path.abspath(path)
    return args


def _connect(sock: Any, endpoint: str) -> None:
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise ClientError(f"cannot use endpoint {endpoint!r}: {exc}") from None


def _check_reply(frame: Frame) -> dict[str, Any]:
    if frame.kind == KIND_ERROR:
        raise NodeError(str(frame.body.get("code", "?")), str(frame.body.get("message", "")))
    return frame.body


def _decode(data: bytes) -> Frame:
    try:
        return decode_frame(data, from_node=True)
    except AppProtocolError as exc:
        raise ProtocolMismatch(str(exc)) from None


class Client:
    """Blocking client. Use as a context manager; not thread-safe (one socket per thread)."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        runtime_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if endpoint is None:
            endpoint = socket_endpoint(runtime_dir) if runtime_dir else default_endpoint()
        self.endpoint = endpoint
        self.timeout = timeout
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 1000)
        _connect(self._sock, endpoint)
        self._rids = itertools.count(1)
        self._replies: dict[int, Frame] = {}
        self._deliveries: collections.deque[Delivery] = collections.deque()
        self._last_heard = time.monotonic()
        self.async_errors: list[NodeError] = []
        self._minor: int | None = None  # the node's protocol minor, asked once (hello)

    # -- plumbing --------------------------------------------------------------------------
    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, op: str, args: dict[str, Any], *, reply: bool = True) -> int:
        rid = next(self._rids) if reply else 0
        self._sock.send(encode_frame(op, rid, args), copy=len(args.get("payload", b"")) < 65536)
        return rid

    def _pump(self, deadline: float) -> bool:
        """Receive whatever is ready (waiting until ``deadline``); False on timeout."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # poll in bounded slices: "wait forever" is a far deadline, not a huge timeout
            if self._sock.poll(int(min(remaining, 1.0) * 1000) + 1, zmq.POLLIN):
                break
        while True:
            try:
                data = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return True
            frame = _decode(data)
            self._last_heard = time.monotonic()
            if frame.kind == KIND_KEEPALIVE:
                continue
            if frame.kind == KIND_DELIVERY:
                self._deliveries.append(Delivery.from_body(frame.body))
            elif frame.kind == KIND_DELIVERIES:
                self._deliveries.extend(_deliveries(frame.body))
            elif frame.rid == 0:
                if frame.kind == KIND_ERROR:
                    self.async_errors.append(
                        NodeError(str(frame.body.get("code")), str(frame.body.get("message")))
                    )
            else:
                self._replies[frame.rid] = frame

    def _wait(self, rid: int, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while rid not in self._replies:
            if not self._pump(deadline):
                raise NodeUnavailable(f"no reply from the node at {self.endpoint}")
        return _check_reply(self._replies.pop(rid))

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request and wait for its reply body (raises :class:`NodeError`)."""
        return self._wait(self._post(op, args))

    # -- operations --------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        return self.call("hello", client=f"waystation.client pid {os.getpid()}")

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def register(self, endpoint: str, *, transient: bool = False) -> dict[str, Any]:
        return self.call("register", endpoint=endpoint, transient=transient)

    def unregister(self, endpoint: str) -> dict[str, Any]:
        return self.call("unregister", endpoint=endpoint)

    def send(
        self,
        destination: str,
        payload: bytes,
        *,
        lifetime: float | None = None,
        priority: str | None = None,
        reports: Iterable[str] = (),
        source: str | None = None,
        report_to: str | None = None,
    ) -> SendResult:
        """Submit one bundle; returns once the node has stored it durably."""
        args = _send_args(destination, payload, lifetime, priority, reports, source, report_to)
        return SendResult.from_body(self.call("send", **args))

    def send_file(
        self,
        destination: str,
        path: str | os.PathLike[str],
        *,
        lifetime: float | None = None,
        priority: str | None = None,
        reports: Iterable[str] = (),
        source: str | None = None,
        report_to: str | None = None,
        timeout: float | None = None,
    ) -> SendResult:
        """Have the node read ``path`` itself (ipc socket only): no copy through the socket."""
        args = _send_file_args(destination, path, lifetime, priority, reports, source, report_to)
        return SendResult.from_body(self._wait(self._post("send", args), timeout))

    def protocol_minor(self) -> int:
        """The node's protocol minor version (from ``hello``, asked once per client)."""
        if self._minor is None:
            self._minor = int(self.hello().get("protocol_minor", 0))
        return self._minor

    def send_many(
        self, destination: str, payloads: Iterable[bytes], **options: Any
    ) -> list[SendResult]:
        """Submit many bundles pipelined (up to ``SEND_WINDOW`` in flight); results in order.

        Against a node speaking protocol minor 2 the payloads go in batches (``SEND_BATCH``
        per frame, all sharing ``options``), one reply per batch. A refusal raises
        :class:`NodeError` as a single ``send`` would. The bundles of earlier batches are
        stored; a batch the node refuses as a whole (say, one payload over ``max_payload``)
        stores none of its bundles, and in a batch it accepted only the refused one is missing.
        """
        args = _send_args(
            destination,
            b"",
            options.get("lifetime"),
            options.get("priority"),
            options.get("reports", ()),
            options.get("source"),
            options.get("report_to"),
        )
        del args["payload"]  # each frame adds its own
        if self.protocol_minor() >= 2:
            return self._send_batched(args, payloads)
        results: list[SendResult] = []
        pending: collections.deque[int] = collections.deque()
        for payload in payloads:
            pending.append(self._post("send", dict(args, payload=payload)))
            if len(pending) >= SEND_WINDOW:
                results.append(SendResult.from_body(self._wait(pending.popleft())))
        while pending:
            results.append(SendResult.from_body(self._wait(pending.popleft())))
        return results

    def _send_batched(self, args: dict[str, Any], payloads: Iterable[bytes]) -> list[SendResult]:
        results: list[SendResult] = []
        pending: collections.deque[tuple[int, int]] = collections.deque()  # (rid, count)
        in_flight = 0

        def collect() -> None:
            nonlocal in_flight
            rid, count = pending.popleft()
            in_flight -= count
            body = self._wait(rid)
            items = body.get("results")
            if not isinstance(items, list) or len(items) != count:
                raise ProtocolMismatch(f"malformed batched send reply: {str(body)[:80]}")
            for item in items:
                error = item.get("error") if isinstance(item, dict) else None
                if error is not None:
                    raise NodeError(str(error.get("code", "?")), str(error.get("message", "")))
                results.append(SendResult.from_body(item))

        batch: list[bytes] = []
        size = 0
        for payload in payloads:
            batch.append(payload)
            size += len(payload)
            if len(batch) >= SEND_BATCH or size >= SEND_BATCH_BYTES:
                pending.append((self._post("send", dict(args, payloads=batch)), len(batch)))
                in_flight += len(batch)
                batch, size = [], 0
                while in_flight >= SEND_WINDOW:
                    collect()
        if batch:
            pending.append((self._post("send", dict(args, payloads=batch)), len(batch)))
            in_flight += len(batch)
        while pending:
            collect()
        return results

    def ack(self, delivery: Delivery) -> None:
        """Tell the node the delivery is safely handled; it may then delete the bundle."""
        self._post("ack", {"endpoint": delivery.endpoint, "key": delivery.key}, reply=False)

    def _ack_keys(self, endpoint: str, keys: list[bytes]) -> None:
        """One ``ack`` for several deliveries (protocol minor 1)."""
        self._post("ack", {"endpoint": endpoint, "keys": keys}, reply=False)

    def receive(
        self,
        endpoint: str,
        *,
        count: int | None = None,
        timeout: float | None = None,
        window: int = 64,
        batch: int = RECV_BATCH,
    ) -> Iterator[Delivery]:
        """Stream deliveries for a registered endpoint.

        Each delivery is acknowledged only once the next one is requested (or the iterator
        ends after ``count``); a delivery the caller was still handling when it stopped
        iterating is not acknowledged. ``timeout`` bounds the wait for each delivery; ``None``
        waits forever. ``batch`` > 1 asks for up to that many deliveries per frame and lets
        acknowledgements go out in batches (when the node supports it: minor >= 1); 1 gives
        one frame per delivery and one ``ack`` per delivery.
        """
        reply = self.call("recv", **_recv_args(endpoint, window, batch))
        self._last_heard = time.monotonic()
        batched = "batch" in reply
        ack_every = max(1, window // 4)
        acks: list[bytes] = []
        received = 0
        try:
            while count is None or received < count:
                if acks and (len(acks) >= ack_every or not self._has_delivery(endpoint)):
                    self._ack_keys(endpoint, acks)
                    acks = []
                delivery = self.next_delivery(endpoint, timeout)
                if delivery is None:
                    return
                received += 1
                yield delivery
                if batched:
                    acks.append(delivery.key)
                else:
                    self.ack(delivery)
        finally:
            with contextlib.suppress(ClientError, zmq.ZMQError):
                if acks:
                    self._ack_keys(endpoint, acks)
                self._post("stop", {"endpoint": endpoint}, reply=False)

    def _has_delivery(self, endpoint: str) -> bool:
        return any(d.endpoint == endpoint for d in self._deliveries)

    def next_delivery(self, endpoint: str, timeout: float | None) -> Delivery | None:
        """The next delivery for ``endpoint`` (None after ``timeout`` seconds without one).

        While receiving, the node sends a keepalive every second; silence for
        ``SILENCE_S`` means the node is gone and raises :class:`NodeUnavailable`.
        """
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while True:
            for i, d in enumerate(self._deliveries):
                if d.endpoint == endpoint:
                    del self._deliveries[i]
                    return d
            now = time.monotonic()
            if now >= deadline:
                return None
            if now - self._last_heard > SILENCE_S:
                raise NodeUnavailable(
                    f"the node at {self.endpoint} went silent (no keepalive for {SILENCE_S:.0f} s)"
                )
            self._pump(min(deadline, now + 1.0))

    # -- admin -------------------------------------------------------------------------------
    def add_route(self, pattern: str, next_hop: str) -> dict[str, Any]:
        return self.call("add_route", pattern=pattern, next_hop=next_hop)

    def del_route(self, pattern: str) -> dict[str, Any]:
        return self.call("del_route", pattern=pattern)

    def add_link(self, link_id: str, kind: str, **options: Any) -> dict[str, Any]:
        return self.call("add_link", id=link_id, kind=kind, options=options)

    def del_link(self, link_id: str) -> dict[str, Any]:
        return self.call("del_link", id=link_id)

    def load_plan(self, path: str) -> dict[str, Any]:
        return self.call("load_plan", path=path)

    # -- store administration (docs/app-protocol.md, "Store administration") ------------------
    def store_list(
        self,
        *,
        destination: str | None = None,
        state: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
        after: bytes | None = None,
    ) -> dict[str, Any]:
        """``{"entries": [{"key": bytes, "meta": {...}}, ...], "more": bool}``."""
        return self.call(
            "store_list",
            destination=destination,
            state=state,
            queue=queue,
            limit=limit,
            after=after,
        )

    def store_get(self, key: bytes | str) -> dict[str, Any]:
        """One stored bundle: ``key``, raw ``wire`` bytes, ``meta`` and the node's view
        (``node``). ``key`` is the store key, or its hex text (a unique prefix is enough)."""
        return self.call("store_get", key=key)

    def store_delete(self, key: bytes | str, reason: int = 3) -> dict[str, Any]:
        """Delete a bundle the node holds, citing an RFC 9171 §6.1.1 reason code (default 3,
        transmission canceled); returns once the deletion is durable."""
        return self.call("store_delete", key=key, reason=reason)

    def store_stats(self) -> dict[str, Any]:
        return self.call("store_stats")


class AsyncClient:
    """asyncio client: many requests may be in flight at once from many tasks."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        runtime_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if endpoint is None:
            endpoint = socket_endpoint(runtime_dir) if runtime_dir else default_endpoint()
        self.endpoint = endpoint
        self.timeout = timeout
        self._ctx = zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 1000)
        _connect(self._sock, endpoint)
        self._rids = itertools.count(1)
        self._futures: dict[int, asyncio.Future[Frame]] = {}
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._last_heard = time.monotonic()
        self.async_errors: list[NodeError] = []

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            # asyncio.wait never raises the reader's outcome, yet a cancellation of the caller
            # still propagates (suppressing CancelledError here would swallow it).
            await asyncio.wait([self._reader])
        self._sock.close()

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        while True:
            data = await self._sock.recv()
            self._last_heard = time.monotonic()
            try:
                frame = _decode(data)
                if frame.kind == KIND_KEEPALIVE:
                    continue
                if frame.kind == KIND_DELIVERY:
                    d = Delivery.from_body(frame.body)
                    self._queues.setdefault(d.endpoint, asyncio.Queue()).put_nowait(d)
                    continue
                if frame.kind == KIND_DELIVERIES:
                    for d in _deliveries(frame.body):
                        self._queues.setdefault(d.endpoint, asyncio.Queue()).put_nowait(d)
                    continue
            except ProtocolMismatch as exc:
                for fut in self._futures.values():
                    if not fut.done():
                        fut.set_exception(exc)
                self._futures.clear()
                continue
            fut = self._futures.pop(frame.rid, None)
            if fut is not None and not fut.done():
                fut.set_result(frame)
            elif frame.rid == 0 and frame.kind == KIND_ERROR:
                self.async_errors.append(
                    NodeError(str(frame.body.get("code")), str(frame.body.get("message")))
                )

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        self._ensure_reader()
        rid = next(self._rids)
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._futures[rid] = fut
        await self._sock.send(encode_frame(op, rid, args))
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # arrives in the same loop pass as the reply, and the caller then never stops.
        try:
            async with asyncio.timeout(self.timeout):
                frame = await fut
        except TimeoutError:
            raise NodeUnavailable(f"no reply from the node at {self.endpoint}") from None
        finally:
            self._futures.pop(rid, None)
        return _check_reply(frame)

    async def hello(self) -> dict[str, Any]:
        return await self.call("hello", client=f"waystation.client async pid {os.getpid()}")

    async def status(self) -> dict[str, Any]:
        return await self.call("status")

    async def register(self, endpoint: str, *, transient: bool = False) -> dict[str, Any]:
        return await self.call("register", endpoint=endpoint, transient=transient)

    async def unregister(self, endpoint: str) -> dict[str, Any]:
        return await self.call("unregister", endpoint=endpoint)

    async def send(
        self,
        destination: str,
        payload: bytes,
        *,
        lifetime: float | None = None,
        priority: str | None = None,
        reports: Iterable[str] = (),
        source: str | None = None,
        report_to: str | None = None,
    ) -> SendResult:
        args = _send_args(destination, payload, lifetime, priority, reports, source, report_to)
        return SendResult.from_body(await self.call("send", **args))

    async def send_file(
        self,
        destination: str,
        path: str | os.PathLike[str],
        *,
        lifetime: float | None = None,
        priority: str | None = None,
        reports: Iterable[str] = (),
        source: str | None = None,
        report_to: str | None = None,
    ) -> SendResult:
        """Async twin of :meth:`Client.send_file` (the node reads the file; ipc only)."""
        args = _send_file_args(destination, path, lifetime, priority, reports, source, report_to)
        return SendResult.from_body(await self.call("send", **args))

    async def ack(self, delivery: Delivery) -> None:
        await self._sock.send(
            encode_frame("ack", 0, {"endpoint": delivery.endpoint, "key": delivery.key})
        )

    async def _ack_keys(self, endpoint: str, keys: list[bytes]) -> None:
        await self._sock.send(encode_frame("ack", 0, {"endpoint": endpoint, "keys": keys}))

    async def receive(
        self,
        endpoint: str,
        *,
        count: int | None = None,
        timeout: float | None = None,
        window: int = 64,
        batch: int = RECV_BATCH,
    ) -> AsyncIterator[Delivery]:
        """Async twin of :meth:`Client.receive` (acks after the next delivery is requested;
        batched deliveries and acks when the node supports them)."""
        queue = self._queues.setdefault(endpoint, asyncio.Queue())
        reply = await self.call("recv", **_recv_args(endpoint, window, batch))
        self._last_heard = time.monotonic()
        batched = "batch" in reply
        ack_every = max(1, window // 4)
        acks: list[bytes] = []
        loop = asyncio.get_running_loop()
        received = 0
        try:
            while count is None or received < count:
                if acks and (len(acks) >= ack_every or queue.empty()):
                    await self._ack_keys(endpoint, acks)
                    acks = []
                deadline = None if timeout is None else loop.time() + timeout
                delivery = None
                while delivery is None:
                    # wake at least every second to notice a silent node (keepalives stop)
                    step = 1.0 if deadline is None else min(1.0, deadline - loop.time())
                    if step <= 0:
                        return
                    try:
                        async with asyncio.timeout(step):
                            delivery = await queue.get()
                    except TimeoutError:
                        if time.monotonic() - self._last_heard > SILENCE_S:
                            raise NodeUnavailable(
                                f"the node at {self.endpoint} went silent "
                                f"(no keepalive for {SILENCE_S:.0f} s)"
                            ) from None
                received += 1
                yield delivery
                if batched:
                    acks.append(delivery.key)
                else:
                    await self.ack(delivery)
        finally:
            with contextlib.suppress(Exception):
                if acks:
                    await self._ack_keys(endpoint, acks)
                await self._sock.send(encode_frame("stop", 0, {"endpoint": endpoint}))

    async def add_route(self, pattern: str, next_hop: str) -> dict[str, Any]:
        return await self.call("add_route", pattern=pattern, next_hop=next_hop)

    async def add_link(self, link_id: str, kind: str, **options: Any) -> dict[str, Any]:
        return await self.call("add_link", id=link_id, kind=kind, options=options)

    async def load_plan(self, path: str) -> dict[str, Any]:
        return await self.call("load_plan", path=path)

    async def store_list(self, **filters: Any) -> dict[str, Any]:
        """See :meth:`Client.store_list` (filters: destination, state, queue, limit, after)."""
        return await self.call("store_list", **filters)

    async def store_get(self, key: bytes | str) -> dict[str, Any]:
        return await self.call("store_get", key=key)

    async def store_delete(self, key: bytes | str, reason: int = 3) -> dict[str, Any]:
        return await self.call("store_delete", key=key, reason=reason)

    async def store_stats(self) -> dict[str, Any]:
        return await self.call("store_stats")

"""The application socket: a ZeroMQ ROUTER speaking docs/app-protocol.md.

Throughput: the socket's file descriptor is registered with the event loop; on each wake-up
every queued message is drained with non-blocking reads (``poll and drain``) instead of
awaiting each message through ``zmq.asyncio`` — the latter caps near 55k msgs/s, the former
is bounded by our own work. Replies and deliveries are sent non-blocking on the same socket.

Robustness: every message is decoded and validated by :mod:`waystation.appproto` and every
handler runs inside one error boundary, so garbage frames, unknown operations, mistyped
arguments and oversize payloads get a precise ``error`` reply and nothing else happens.
``ROUTER_MANDATORY`` makes sends to a vanished client fail (``EHOSTUNREACH``) instead of being
silently dropped; a ``keepalive`` frame sent every second to clients that are receiving finds
clients that disappeared mid-stream, whose unacknowledged deliveries are then re-queued.
(libzmq's ``ROUTER_NOTIFY`` would tell us directly, but it is a draft API not built here.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

import zmq
from waystation import __version__
from waystation.agent import SubmitRequest
from waystation.appproto import (
    KIND_DELIVERIES,
    KIND_DELIVERY,
    KIND_ERROR,
    KIND_KEEPALIVE,
    KIND_OK,
    MAX_BATCH,
    PRIORITIES,
    PROTOCOL_MINOR,
    PROTOCOL_VERSION,
    REPORT_KINDS,
    AppProtocolError,
    ErrorCode,
    decode_frame,
    encode_frame,
    optional,
    require,
)
from waystation.bundle.errors import EIDError
from waystation.bundleops import BundleInfo, cached_eid
from waystation.config import NodeConfig, socket_endpoint
from waystation.links import LinkError
from waystation.logsetup import kv
from waystation.store.api import (
    BundleMeta,
    BundleNotFound,
    CustodyState,
    Disposition,
    ReasonCode,
    StoreError,
    iter_all,
    resolve_key,
    store_summary,
)

__all__ = ["AppServer", "KIND_KEEPALIVE", "meta_to_map"]

log = logging.getLogger("waystation.app")

DRAIN_BATCH = 4096  # messages handled per wake-up before yielding to the loop
KEEPALIVE_S = 1.0

Consumer = tuple[int, bytes]  # (socket index, ZeroMQ routing id)
# A batch of deliveries is sent as soon as it holds this many payload bytes; a payload at least
# this large goes out alone in a plain ``delivery`` frame (zero-copy send, no list encode).
BATCH_BYTES = 256 * 1024
_COPY_MAX = 2 * BATCH_BYTES
_SEND = zmq.Socket.send
_MORE = zmq.NOBLOCK | zmq.SNDMORE


def _socket_answers(path: Any) -> bool:
    """True if something accepts connections on the Unix socket ``path``."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class AppServer:
    """Serves the app protocol on the ipc socket and (optionally) loopback TCP."""

    def __init__(self, service: Any, config: NodeConfig) -> None:
        self.service = service
        self.config = config
        self.endpoints = [socket_endpoint(config.runtime_dir)]
        if config.app_tcp:
            self.endpoints.append(config.app_tcp)
        self._ctx = zmq.Context.instance()
        self._sync: list[zmq.Socket[bytes]] = []
        self._scheduled: list[bool] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False
        self.stats = {"requests": 0, "errors": 0}
        # Batched deliveries (protocol minor 1): (consumer, endpoint) -> the batch size the
        # client asked for in ``recv``; per consumer, the delivery bodies not yet sent (flushed
        # once the loop has run the callbacks already queued, so one group commit's worth of
        # deliveries shares a frame) and their payload bytes.
        self._batch: dict[tuple[Consumer, str], int] = {}
        self._outbox: dict[Consumer, list[dict[str, Any]]] = {}
        self._outbox_bytes: dict[Consumer, int] = {}
        self._flush_scheduled = False
        self._handlers: dict[str, Callable[[Consumer, int, dict[str, Any]], Any]] = {
            "hello": self._hello,
            "register": self._register,
            "unregister": self._unregister,
            "recv": self._recv,
            "stop": self._stop,
            "ack": self._ack,
            "send": self._send,
            "status": self._status,
            "add_route": self._add_route,
            "del_route": self._del_route,
            "add_link": self._add_link,
            "del_link": self._del_link,
            "load_plan": self._load_plan,
            "store_list": self._store_list,
            "store_get": self._store_get,
            "store_delete": self._store_delete,
            "store_stats": self._store_stats,
        }

    # -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        path = self.config.socket_path
        if path.exists() or path.is_symlink():
            # A stale socket from a crashed node. A live node on this runtime dir would
            # normally also hold our data dir's lock (taken before this), but two nodes may
            # share a runtime dir with different data dirs: refuse to steal a live socket.
            if _socket_answers(path):
                raise OSError(f"a node is already listening on {path}; use another --runtime-dir")
            path.unlink()
        limit = self.config.max_payload + (1 << 20)
        loop = self._loop = asyncio.get_running_loop()
        for endpoint in self.endpoints:
            sock: zmq.Socket[bytes] = self._ctx.socket(zmq.ROUTER)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 100_000)
            sock.setsockopt(zmq.RCVHWM, 100_000)
            sock.setsockopt(zmq.MAXMSGSIZE, limit)
            sock.bind(endpoint)
            self._sync.append(sock)
            self._scheduled.append(False)
        if path.exists():
            path.chmod(0o600)
        for i, sock in enumerate(self._sync):
            loop.add_reader(sock.getsockopt(zmq.FD), self._drain, i)
            self._schedule(i)
        self._tasks.append(loop.create_task(self._keepalive()))
        log.info("app socket listening", extra=kv(endpoints=",".join(self.endpoints)))

    async def close(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for s in self._sync:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(s.getsockopt(zmq.FD))
            s.close(linger=0)
        self._sync = []
        with contextlib.suppress(OSError):
            self.config.socket_path.unlink()

    # -----------------------------------------------------------------------------------------
    # The ZeroMQ file descriptor is edge-triggered: it signals "something changed", and any
    # operation on the socket (a send from a store callback, say) may consume that signal.
    # So after every wake-up *and* after every send we re-check ZMQ_EVENTS and drain until it
    # says no input is pending - the pattern libzmq documents for ZMQ_FD.
    def _schedule(self, index: int) -> None:
        if not self._scheduled[index] and not self._closing and self._loop is not None:
            self._scheduled[index] = True
            self._loop.call_soon(self._drain, index)

    def _drain(self, index: int) -> None:
        self._scheduled[index] = False
        if self._closing or index >= len(self._sync):
            return
        sock = self._sync[index]
        for _ in range(DRAIN_BATCH):
            if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            self._handle(index, parts)
        self._schedule(index)  # more queued: let replies, store callbacks and timers run first

    def _handle(self, index: int, parts: list[bytes]) -> None:
        peer: Consumer = (index, parts[0])
        self.stats["requests"] += 1
        rid = 0
        try:
            if len(parts) != 2:
                raise AppProtocolError(
                    ErrorCode.BAD_FRAME, f"expected a single-part message, got {len(parts) - 1}"
                )
            frame = decode_frame(parts[1])
            rid = frame.rid
            if self._closing:
                raise AppProtocolError(ErrorCode.SHUTTING_DOWN, "node is shutting down", rid)
            result = self._handlers[frame.kind](peer, rid, frame.body)
            if result is not None and rid:
                self._send_frame(peer, encode_frame(KIND_OK, rid, result))
        except AppProtocolError as exc:
            self.stats["errors"] += 1
            self._error(peer, exc.rid or rid, exc.code, exc.message)
        except Exception as exc:  # the error boundary: a bug answers "internal", node lives
            self.stats["errors"] += 1
            log.exception("request handler failed")
            self._error(peer, rid, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    def _send_frame(self, peer: Consumer, data: bytes) -> bool:
        if self._closing and not self._sync:
            return False
        try:
            sock = self._sync[peer[0]]
            # Two plain sends: pyzmq's send_multipart adds per-call Python overhead that shows
            # on the per-bundle reply path. ROUTER_MANDATORY fails the first part for a
            # vanished peer, so a half-sent message is impossible.
            _SEND(sock, peer[1], _MORE)
            # Copy anything up to a full delivery batch: a zero-copy send hands the buffer to
            # pyzmq's garbage-collector thread, a thread wake-up per message that costs more
            # than copying a few hundred KiB.
            _SEND(sock, data, zmq.NOBLOCK, len(data) <= _COPY_MAX)
            return True
        except zmq.ZMQError:
            # EHOSTUNREACH: the client is gone; EAGAIN: it stopped reading (HWM full).
            return False
        finally:
            self._schedule(peer[0])

    def _error(self, peer: Consumer, rid: int, code: str, message: str) -> None:
        self._send_frame(
            peer, encode_frame(KIND_ERROR, rid, {"code": str(code), "message": message})
        )

    # -----------------------------------------------------------------------------------------
    # used by the service
    # -----------------------------------------------------------------------------------------
    def submission_done(self, token: Hashable, info: BundleInfo) -> None:
        if type(token) is _BatchSlot:
            self._batch_settled(token, _send_result(info))
            return
        peer, rid = token  # type: ignore[misc]
        if rid:
            self._send_frame(peer, encode_frame(KIND_OK, rid, _send_result(info)))

    def submission_failed(self, token: Hashable, code: str, message: str) -> None:
        if type(token) is _BatchSlot:
            self._batch_settled(token, {"error": {"code": str(code), "message": message}})
            return
        peer, rid = token  # type: ignore[misc]
        self._error(peer, rid, code, message)

    def _batch_settled(self, slot: _BatchSlot, result: dict[str, Any]) -> None:
        """One bundle of a ``payloads`` batch is durable (or failed); the reply goes once
        every one of them is, with the results in submission order."""
        batch = slot.batch
        batch.results[slot.index] = result
        batch.remaining -= 1
        if batch.remaining == 0 and batch.rid:
            self._send_frame(batch.peer, encode_frame(KIND_OK, batch.rid, {"results": batch.results}))

    def push_delivery(self, consumer: Hashable, body: dict[str, Any]) -> bool:
        """Send one delivery to ``consumer``; False if it cannot be sent (client gone).

        A client that asked for batches (``recv`` with ``batch`` > 1) gets the delivery in a
        ``deliveries`` frame with the others decided in the same loop pass (up to its batch
        size or :data:`BATCH_BYTES`). Then this returns True and a failed send is reported to
        the service for the whole batch (``NodeService.deliveries_failed``) when it is flushed.
        """
        peer: Consumer = consumer  # type: ignore[assignment]
        limit = self._batch.get((peer, body["endpoint"]), 0)
        size = len(body["payload"])
        if limit <= 1 or size >= BATCH_BYTES:
            if peer in self._outbox:
                self._flush(peer)  # keep arrival order
            return self._send_frame(peer, encode_frame(KIND_DELIVERY, 0, body))
        box = self._outbox.get(peer)
        if box is None:
            box = self._outbox[peer] = []
            self._outbox_bytes[peer] = 0
        box.append(body)
        self._outbox_bytes[peer] += size
        if len(box) >= limit or self._outbox_bytes[peer] >= BATCH_BYTES:
            self._flush(peer)
        elif not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_all)
        return True

    def _flush_all(self) -> None:
        self._flush_scheduled = False
        for peer in list(self._outbox):
            self._flush(peer)

    def _flush(self, peer: Consumer) -> None:
        items = self._outbox.pop(peer, None)
        self._outbox_bytes.pop(peer, None)
        if not items:
            return
        if len(items) == 1:
            frame = encode_frame(KIND_DELIVERY, 0, items[0])
        else:
            frame = encode_frame(KIND_DELIVERIES, 0, {"items": items})
        if not self._send_frame(peer, frame):
            self._forget(peer)
            self.service.deliveries_failed(peer, [(b["endpoint"], b["key"]) for b in items])

    def _forget(self, peer: Consumer) -> None:
        """Drop a vanished client's batch settings."""
        for k in [k for k in self._batch if k[0] == peer]:
            del self._batch[k]

    async def _keepalive(self) -> None:
        frame = encode_frame(KIND_KEEPALIVE, 0, {})
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            consumers = {
                reg.consumer
                for reg in self.service.agent.registrations.values()
                if reg.consumer is not None
            }
            for consumer in consumers:
                if consumer in self._outbox:
                    self._flush(consumer)
                if not self._send_frame(consumer, frame):
                    log.info("client vanished", extra=kv(client=consumer[1]))
                    self._forget(consumer)
                    self.service.execute(self.service.agent.consumer_gone(consumer))

    # -----------------------------------------------------------------------------------------
    # operation handlers: validate arguments, call the service; return the reply body
    # -----------------------------------------------------------------------------------------
    def _eid(self, body: dict[str, Any], key: str, rid: int, *, local: bool = False) -> str:
        text = require(body, key, str, rid)
        try:
            eid = str(cached_eid(text))
        except EIDError as exc:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, f"{key}: {exc}", rid) from None
        if local and not self.service.identity.owns(eid):
            raise AppProtocolError(
                ErrorCode.BAD_ARGUMENT,
                f"{key} {eid} is not an endpoint of this node ({self.service.identity.node_id})",
                rid,
            )
        return eid

    def _hello(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        client = optional(body, "client", str, "?", rid)
        log.debug("client hello", extra=kv(client=client[:80]))
        ident = self.service.identity
        return {
            "protocol": PROTOCOL_VERSION,
            "protocol_minor": PROTOCOL_MINOR,
            "node_id": ident.node_id,
            "eids": ident.admin_eids,
            "version": __version__,
            "max_payload": self.config.max_payload,
            "echo": ident.echo_eids[0] if ident.echo_eids else "",
        }

    def _register(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._eid(body, "endpoint", rid, local=True)
        transient = optional(body, "transient", bool, False, rid)
        if endpoint in self.service.identity.echo_eids:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, "the echo endpoint is reserved", rid)
        pending = self.service.register(endpoint, transient)
        return {"endpoint": endpoint, "pending": pending}

    def _unregister(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._eid(body, "endpoint", rid, local=True)
        if not self.service.agent.is_registered(endpoint):
            raise AppProtocolError(ErrorCode.NOT_REGISTERED, f"{endpoint} is not registered", rid)
        self.service.unregister(endpoint)
        return {"endpoint": endpoint}

    def _recv(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._eid(body, "endpoint", rid, local=True)
        if endpoint in self.service.identity.echo_eids:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, "the echo endpoint is reserved", rid)
        window = optional(body, "window", int, 64, rid)
        if not 1 <= window <= 65536:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, "window must be in 1..65536", rid)
        batch = optional(body, "batch", int, 1, rid)
        if not 1 <= batch <= MAX_BATCH:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, f"batch must be in 1..{MAX_BATCH}", rid)
        agent = self.service.agent
        bound = agent.bound_consumer(endpoint)
        if bound is not None and bound != peer:
            raise AppProtocolError(
                ErrorCode.ALREADY_BOUND, f"another client is receiving on {endpoint}", rid
            )
        if not agent.is_registered(endpoint):
            self.service.register(endpoint, False)
        pending = agent.pending_count(endpoint)
        if batch > 1:
            self._batch[(peer, endpoint)] = batch
        else:
            self._batch.pop((peer, endpoint), None)
        # Reply first, then start streaming, so the client sees the ok before deliveries. The
        # reply carries ``batch`` only when the node batches (minor >= 1): that is how a client
        # knows it may send ``ack`` with ``keys``.
        if rid:
            result: dict[str, Any] = {"endpoint": endpoint, "pending": pending}
            if batch > 1:
                result["batch"] = batch
            self._send_frame(peer, encode_frame(KIND_OK, rid, result))
        self.service.execute(agent.bind(endpoint, peer, window))
        return None  # type: ignore[return-value]

    def _stop(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._eid(body, "endpoint", rid, local=True)
        if not self.service.agent.is_registered(endpoint):
            raise AppProtocolError(ErrorCode.NOT_REGISTERED, f"{endpoint} is not registered", rid)
        self._batch.pop((peer, endpoint), None)
        # Deliveries decided but not sent yet are dropped: unbinding puts them back in line
        # (sending them would only make the client see them twice, and, if it is closing its
        # socket, fail and count as "client gone").
        box = self._outbox.get(peer)
        if box:
            box[:] = [b for b in box if b["endpoint"] != endpoint]
            self._outbox_bytes[peer] = sum(len(b["payload"]) for b in box)
        self.service.execute(self.service.agent.unbind(endpoint, peer))
        return {}

    def _ack(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._eid(body, "endpoint", rid, local=True)
        keys = optional(body, "keys", list, None, rid)
        if keys is None:
            keys = [require(body, "key", bytes, rid)]
        elif not 1 <= len(keys) <= MAX_BATCH or not all(isinstance(k, bytes) for k in keys):
            raise AppProtocolError(
                ErrorCode.BAD_ARGUMENT, f"keys must be a list of 1..{MAX_BATCH} byte strings", rid
            )
        agent = self.service.agent
        if not agent.is_registered(endpoint):
            raise AppProtocolError(ErrorCode.NOT_REGISTERED, f"{endpoint} is not registered", rid)
        if agent.bound_consumer(endpoint) != peer:
            # Only the receiving client can release what was delivered to it; anything it had
            # in flight before a stop/disconnect is queued again and will be redelivered.
            raise AppProtocolError(
                ErrorCode.NOT_FOUND, f"this client is not receiving on {endpoint}", rid
            )
        # One pass over the batch, one execute: the releases go to the store writer together,
        # and the next deliveries start once.
        outputs, missing = agent.app_acked_many(self.service.now_ms(), endpoint, keys)
        self.service.execute(outputs)
        if missing:
            more = f" (and {len(missing) - 1} more of {len(keys)})" if len(missing) > 1 else ""
            raise AppProtocolError(
                ErrorCode.NOT_FOUND,
                f"bundle {missing[0].hex()[:32]} is not awaiting ack on {endpoint}{more}",
                rid,
            )
        return {}

    def _send(self, peer: Consumer, rid: int, body: dict[str, Any]) -> None:
        destination = self._eid(body, "destination", rid)
        path = optional(body, "file", str, None, rid)
        payloads: list[bytes] | None = None
        if path is not None:
            # The node reads the file itself: only over the ipc socket, whose 0700 directory
            # guarantees the client is the node's own user (a TCP client could be anyone).
            if peer[0] != 0:
                raise AppProtocolError(
                    ErrorCode.BAD_ARGUMENT, "'file' is only accepted over the ipc socket", rid
                )
            if "payload" in body or "payloads" in body:
                raise AppProtocolError(
                    ErrorCode.BAD_ARGUMENT, "give 'payload', 'payloads' or 'file', not two", rid
                )
            payload = b""
        elif "payloads" in body:
            # minor 2: a batch of payloads sharing every other argument, one reply for all
            if "payload" in body:
                raise AppProtocolError(
                    ErrorCode.BAD_ARGUMENT, "give 'payload' or 'payloads', not both", rid
                )
            payloads = optional(body, "payloads", list, None, rid)
            if not payloads or len(payloads) > MAX_BATCH:
                raise AppProtocolError(
                    ErrorCode.BAD_ARGUMENT, f"payloads must hold 1..{MAX_BATCH} items", rid
                )
            for item in payloads:
                if type(item) is not bytes:
                    raise AppProtocolError(
                        ErrorCode.BAD_ARGUMENT, "payloads must be byte strings", rid
                    )
                self._check_payload_size(item, rid)
            payload = b""
        else:
            payload = require(body, "payload", bytes, rid)
            self._check_payload_size(payload, rid)
        lifetime = optional(body, "lifetime_ms", int, None, rid)
        if lifetime is not None and not 0 < lifetime < 2**63:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, "lifetime_ms must be positive", rid)
        priority_name = optional(body, "priority", str, "normal", rid)
        if priority_name not in PRIORITIES:
            raise AppProtocolError(
                ErrorCode.BAD_ARGUMENT,
                f"priority must be one of {', '.join(PRIORITIES)}, not {priority_name[:32]!r}",
                rid,
            )
        reports = optional(body, "reports", list, [], rid)
        for r in reports:
            if r not in REPORT_KINDS:
                raise AppProtocolError(
                    ErrorCode.BAD_ARGUMENT,
                    f"reports: {str(r)[:32]!r} is not one of {', '.join(sorted(REPORT_KINDS))}",
                    rid,
                )
        report_to = self._eid(body, "report_to", rid) if body.get("report_to") else None
        source = self._eid(body, "source", rid, local=True) if body.get("source") else None
        req = SubmitRequest(
            destination=destination,
            payload=payload,
            lifetime_ms=lifetime,
            priority=PRIORITIES[priority_name],
            reports=frozenset(reports),
            report_to=report_to,
            source=source,
        )
        if payloads is not None:
            # one request per payload, built positionally (dataclasses.replace costs ~2 us)
            batch = _SendBatch(peer, rid, len(payloads))
            lifetime_ms, priority, kinds = req.lifetime_ms, req.priority, req.reports
            for i, item in enumerate(payloads):
                self.service.submit(
                    _BatchSlot(batch, i),
                    SubmitRequest(destination, item, lifetime_ms, priority, kinds, report_to, source),
                )
        elif path is None:
            self.service.submit((peer, rid), req)
        else:
            self.service._spawn(self._send_file(peer, rid, path, req))
        return None

    def _check_payload_size(self, payload: bytes, rid: int) -> None:
        if len(payload) > self.config.max_payload:
            raise AppProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"payload of {len(payload)} bytes exceeds max_payload {self.config.max_payload}",
                rid,
            )

    async def _send_file(self, peer: Consumer, rid: int, path: str, req: SubmitRequest) -> None:
        """Read ``path`` off the event loop, then submit it like a payload."""
        limit = self.config.max_payload

        def read() -> bytes:
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
            if len(data) > limit:
                raise AppProtocolError(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"file {path} exceeds max_payload {limit}", rid
                )
            return data

        try:
            data = await asyncio.get_running_loop().run_in_executor(None, read)
        except AppProtocolError as exc:
            self._error(peer, rid, exc.code, exc.message)
            return
        except OSError as exc:
            self._error(peer, rid, ErrorCode.BAD_ARGUMENT, f"cannot read {path}: {exc.strerror}")
            return
        self.service.submit((peer, rid), replace(req, payload=data))

    def _status(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        status: dict[str, Any] = self.service.status()
        status["app"] = dict(self.stats)
        return status

    def _add_route(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        pattern = require(body, "pattern", str, rid)
        next_hop = self._eid(body, "next_hop", rid)
        if not pattern:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, "pattern must not be empty", rid)
        self.service.add_route(pattern, next_hop)
        return {"pattern": pattern, "next_hop": next_hop}

    def _del_route(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        pattern = require(body, "pattern", str, rid)
        if not self.service.del_route(pattern):
            raise AppProtocolError(ErrorCode.NOT_FOUND, f"no route {pattern!r}", rid)
        return {"pattern": pattern}

    def _add_link(self, peer: Consumer, rid: int, body: dict[str, Any]) -> None:
        link_id = require(body, "id", str, rid)
        kind = require(body, "kind", str, rid)
        options = optional(body, "options", dict, {}, rid)
        if kind not in self.service.links.factories:
            known = ", ".join(sorted(self.service.links.factories)) or "none"
            raise AppProtocolError(
                ErrorCode.NOT_AVAILABLE, f"no link kind {kind!r} (available: {known})", rid
            )

        async def open_link() -> None:
            try:
                await self.service.links.open(link_id, kind, options)
            except (LinkError, OSError, ValueError, TypeError) as exc:
                self._error(peer, rid, ErrorCode.BAD_ARGUMENT, f"cannot open link: {exc}")
                return
            if rid:
                self._send_frame(peer, encode_frame(KIND_OK, rid, {"id": link_id}))

        self.service._spawn(open_link())
        return None

    def _del_link(self, peer: Consumer, rid: int, body: dict[str, Any]) -> None:
        link_id = require(body, "id", str, rid)
        if link_id not in self.service.links.links:
            raise AppProtocolError(ErrorCode.NOT_FOUND, f"no link {link_id!r}", rid)

        async def close_link() -> None:
            await self.service.links.close(link_id)
            if rid:
                self._send_frame(peer, encode_frame(KIND_OK, rid, {"id": link_id}))

        self.service._spawn(close_link())
        return None

    def _load_plan(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        path = require(body, "path", str, rid)
        try:
            count = self.service.load_plan(path)
        except ImportError as exc:
            raise AppProtocolError(
                ErrorCode.NOT_AVAILABLE, f"contact-plan support unavailable: {exc}", rid
            ) from None
        except ValueError as exc:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, str(exc), rid) from None
        return {"path": path, "contacts": count}

    # -----------------------------------------------------------------------------------------
    # store administration (``waystation store`` on a running node). Reads go straight to the
    # store (LMDB read transactions are short and never block the writer); deletion goes
    # through the agent so queues, pending deliveries and the wire cache stay consistent.
    # -----------------------------------------------------------------------------------------
    def _sync_store(self, rid: int) -> Any:
        store = self.service.store
        if store is None:
            raise AppProtocolError(ErrorCode.NOT_AVAILABLE, "the store is not open", rid)
        return store.store

    def _store_key(self, body: dict[str, Any], rid: int) -> bytes:
        """``key``: the full store key as bytes, or hex text (a unique prefix is enough)."""
        value = require(body, "key", (bytes, str), rid)
        store = self._sync_store(rid)
        if isinstance(value, bytes):
            if not store.contains(value):
                raise AppProtocolError(
                    ErrorCode.NOT_FOUND, f"no bundle with key {value.hex()}", rid
                )
            return value
        try:
            return resolve_key(store, value)
        except StoreError as exc:
            code = ErrorCode.BAD_ARGUMENT if "not a hex key" in str(exc) else ErrorCode.NOT_FOUND
            raise AppProtocolError(code, str(exc), rid) from None

    def _store_list(self, peer: Consumer, rid: int, body: dict[str, Any]) -> None:
        destination = optional(body, "destination", str, None, rid)
        state = optional(body, "state", str, None, rid)
        queue = optional(body, "queue", str, None, rid)
        limit = optional(body, "limit", int, STORE_LIST_MAX, rid)
        after = optional(body, "after", bytes, None, rid)
        if state is not None and state not in _STATES:
            raise AppProtocolError(
                ErrorCode.BAD_ARGUMENT,
                f"state must be one of {', '.join(sorted(_STATES))}, not {state[:32]!r}",
                rid,
            )
        if not 0 <= limit <= STORE_LIST_MAX:
            raise AppProtocolError(
                ErrorCode.BAD_ARGUMENT, f"limit must be in 0..{STORE_LIST_MAX}", rid
            )
        store = self._sync_store(rid)

        def walk() -> dict[str, Any]:
            if queue is not None:
                candidates: Any = store.queue(queue)
            elif destination is not None:
                candidates = store.by_destination(destination)
            else:
                candidates = iter_all(store)
            entries = []
            more = False
            for e in candidates:
                if after is not None and queue is None and destination is None and e.key <= after:
                    continue
                if destination is not None and e.meta.destination != destination:
                    continue
                if state is not None and e.meta.state != state:
                    continue
                if len(entries) == limit:
                    more = True
                    break
                entries.append({"key": e.key, "meta": meta_to_map(e.meta)})
            return {"entries": entries, "more": more}

        self._reply_off_loop(peer, rid, walk)
        return None

    def _reply_off_loop(self, peer: Consumer, rid: int, work: Callable[[], Any]) -> None:
        """Run ``work`` (a walk over the store: seconds for a large one) in the default
        executor so the event loop keeps forwarding meanwhile; reply with its result, or with
        an ``internal`` error naming the store's complaint."""

        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled():
                return
            exc = fut.exception()
            if isinstance(exc, AppProtocolError):
                self._error(peer, exc.rid or rid, exc.code, exc.message)
            elif isinstance(exc, StoreError):
                self._error(peer, rid, ErrorCode.INTERNAL, f"store: {exc}")
            elif exc is not None:
                log.error("store walk failed", exc_info=exc)
                self._error(peer, rid, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            elif rid:
                self._send_frame(peer, encode_frame(KIND_OK, rid, fut.result()))

        asyncio.get_running_loop().run_in_executor(None, work).add_done_callback(done)

    def _store_get(self, peer: Consumer, rid: int, body: dict[str, Any]) -> dict[str, Any]:
        key = self._store_key(body, rid)
        store = self._sync_store(rid)
        try:
            meta = store.get_meta(key)
            wire = self.service.wires.get(key) or store.get(key)
        except BundleNotFound:
            raise AppProtocolError(
                ErrorCode.NOT_FOUND, f"no bundle with key {key.hex()}", rid
            ) from None
        except StoreError as exc:
            raise AppProtocolError(ErrorCode.INTERNAL, f"store: {exc}", rid) from None
        h = self.service.agent.held.get(key)
        node = {"place": h.place, "neighbour": h.neighbour, "endpoint": h.endpoint} if h else None
        return {"key": key, "wire": bytes(wire), "meta": meta_to_map(meta), "node": node}

    def _store_delete(self, peer: Consumer, rid: int, body: dict[str, Any]) -> None:
        key = self._store_key(body, rid)
        reason = optional(body, "reason", int, int(ReasonCode.TRANSMISSION_CANCELED), rid)
        if not 0 <= reason <= 255:
            raise AppProtocolError(ErrorCode.BAD_ARGUMENT, "reason must be in 0..255", rid)
        try:
            done = self.service.delete_bundle(key, reason)
        except KeyError:
            # Stored but not (yet) in the agent's custody: its store write is still being
            # confirmed, or it is being released right now. Either way: nothing done.
            raise AppProtocolError(
                ErrorCode.NOT_FOUND,
                f"bundle {key.hex()} is not held by the node (being stored or released); retry",
                rid,
            ) from None
        reply = {"key": key, "reason": reason}
        if done is None:
            if rid:
                self._send_frame(peer, encode_frame(KIND_OK, rid, reply))
            return None

        def durable(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                exc = None if fut.cancelled() else fut.exception()
                self._error(peer, rid, ErrorCode.INTERNAL, f"store delete failed: {exc}")
            elif rid:
                self._send_frame(peer, encode_frame(KIND_OK, rid, reply))

        done.add_done_callback(durable)
        return None

    def _store_stats(self, peer: Consumer, rid: int, body: dict[str, Any]) -> None:
        store = self._sync_store(rid)
        snap = self.service.agent.snapshot()  # on the loop: the agent is not thread-safe

        def walk() -> dict[str, Any]:
            return {**store_summary(store), "held": {"count": snap["held"], **snap["places"]}}

        self._reply_off_loop(peer, rid, walk)
        return None


STORE_LIST_MAX = 100_000  # entries per store_list reply; page on with ``after``
_STATES = frozenset(s.value for s in CustodyState)


def _send_result(info: BundleInfo) -> dict[str, Any]:
    """The result of ``send`` for one durable bundle (docs/app-protocol.md)."""
    return {
        "bundle_id": info.bundle_id_text,
        "key": info.key,
        "source": info.source,
        "creation": [info.creation_ms, info.sequence],
    }


class _SendBatch:
    """A ``send`` with ``payloads`` (protocol minor 2) waiting for its bundles to settle."""

    __slots__ = ("peer", "remaining", "results", "rid")

    def __init__(self, peer: Consumer, rid: int, count: int) -> None:
        self.peer = peer
        self.rid = rid
        self.results: list[dict[str, Any] | None] = [None] * count
        self.remaining = count


class _BatchSlot:
    """The submission token of one bundle of a batch (hashed by identity)."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: _SendBatch, index: int) -> None:
        self.batch = batch
        self.index = index


def meta_to_map(meta: BundleMeta) -> dict[str, Any]:
    """Store metadata as a CBOR map keyed by field name (enums as their values)."""
    out: dict[str, Any] = {}
    for name in BundleMeta.__dataclass_fields__:
        value = getattr(meta, name)
        if isinstance(value, CustodyState | Disposition):
            value = value.value
        elif name == "priority":
            value = int(value)
        out[name] = value
    return out


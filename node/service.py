"""The node service: the asyncio shell that executes the agent's actions.

It wires the sans-I/O :class:`~waystation.agent.Agent` to real things: the custody store
(LMDB through the store's group-commit writer, so puts never block the loop and many bundles
share one fsync), the application socket (:mod:`waystation.appserver`), convergence-layer links
(:mod:`waystation.links`) and the clock. Each agent output is executed here and its outcome fed
back as another agent input; nothing else decides anything.

Start-up (and restart after a crash): open the store, load registrations and runtime routes
from ``node-state.json``, hand every stored bundle back to the agent (``restore``), then open
the app socket and the configured links. Shutdown (SIGTERM/SIGINT): stop taking requests,
close links, let the store writer drain, close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from waystation import __version__
from waystation.agent import (
    Action,
    AdminRecordReceived,
    Agent,
    AgentConfig,
    BundleAccepted,
    BundleDeleted,
    BundleDelivered,
    BundleForwarded,
    BundleRejected,
    CompleteReception,
    CompleteSubmission,
    DeleteBundle,
    DeliverBundle,
    DuplicateSuppressed,
    FailSubmission,
    StatusReportGenerated,
    StoreBundle,
    SubmitRequest,
    TransmissionFailed,
    TransmitBundle,
)
from waystation.bundle.dtntime import Clock, TimestampSource
from waystation.bundle.errors import BundleError
from waystation.bundleops import payload_of, prepare_forward
from waystation.config import NodeConfig, local_node_ids
from waystation.fragmentation import (
    MUST_NOT_FRAGMENT_REASON,
    MustNotFragment,
    link_limit,
    send_within_limit,
)
from waystation.identity import LocalIdentity
from waystation.links import Link, LinkError, LinkManager
from waystation.logsetup import kv
from waystation.reassembly import ReassembleBundle, run_reassembly
from waystation.routing import Route, StaticRouter
from waystation.security import NodeSecurity
from waystation.simclock import clock_from_config
from waystation.state import NodeState, load_state, save_state
from waystation.store.api import (
    DuplicateBundle,
    StoreClosed,
    StoreError,
    StoreFull,
)
from waystation.store.group_commit import AsyncBundleStore
from waystation.store.ops import DeleteOp, PutOp
from waystation.wirecache import WireCache

__all__ = ["DataDirInUse", "NodeService", "open_store"]

log = logging.getLogger("waystation.node")


def open_store(config: NodeConfig) -> Any:
    """The configured backend: LMDB under ``<data dir>/store`` (default) or memory."""
    if config.store_backend == "memory":
        from waystation.store.memory import MemoryBundleStore

        return MemoryBundleStore()
    from waystation.store.lmdb_store import LmdbBundleStore

    return LmdbBundleStore(config.data_dir / "store", map_size=config.store_map_size)


def _private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700 (and insist on it: the socket's access control)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()  # follows a symlink: what matters is who owns the real directory
    if not os.path.isdir(path) or st.st_uid != os.getuid():
        # e.g. /tmp/waystation-<uid> pre-created (or symlinked) by another user: never trust it
        raise OSError(f"{path} is not a directory owned by this user; refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


class DataDirInUse(RuntimeError):
    """Another node process is running on the same data directory."""


def _lock_data_dir(data_dir: Path) -> int:
    """Take an exclusive lock on ``<data dir>/node.lock`` for the life of the process.

    LMDB itself lets several processes open one store, so without this two nodes could run
    on the same bundles (double deliveries) and the second would replace the first's socket.
    The kernel drops the lock when the process dies, so a SIGKILLed node never blocks a restart.
    """
    import fcntl

    path = data_dir / "node.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)
        raise DataDirInUse(
            f"another waystation node (pid {other}) is using {data_dir}; stop it first "
            "or give this one its own --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class NodeService:
    """One running node. ``await start()``, ``await serve_forever()``, ``await stop()``."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        store: Any = None,
        clock: Clock | None = None,
        app_socket: bool = True,
    ) -> None:
        self.config = config
        # Real time, or the scaled clock of --clock-scale/--clock-start (node/simclock.py).
        self.clock: Clock = clock or clock_from_config(config)
        self.identity = LocalIdentity(config.node_id, config.ipn_node)
        self.router = StaticRouter([Route(r.pattern, r.next_hop) for r in config.routes])
        self._config_routes = {r.pattern for r in config.routes}
        self.agent = Agent(
            self.identity,
            router=self.router,
            config=AgentConfig(
                max_bundle_size=config.max_payload + 65536,
                default_lifetime_ms=config.default_lifetime_s * 1000,
                hop_limit=config.hop_limit,
            ),
            timestamps=TimestampSource(self.clock),
        )
        self.plan_router: Any = None
        # BPSec (issue 7): identity key, policy, crypto in a worker thread (waystation.security).
        self.security = NodeSecurity(config.data_dir, local_node_ids(config), config.security)
        self.contact_links: Any = None  # waystation.contacts.ContactLinks, made in start()
        self._lock_fd: int | None = None
        self._sync_store = store
        # The wire of bundles just put, so transmit and deliver need not read them back.
        self.wires = WireCache()
        self.store: AsyncBundleStore | None = None
        self.links = LinkManager(self)
        self._links_by_id: dict[str, Link] = {}
        self._app_enabled = app_socket
        self.app: Any = None
        self.state = NodeState()
        self._state_path = config.data_dir / "node-state.json"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._started_at = time.monotonic()
        self.admin_records: list[dict[str, Any]] = []  # recent reports addressed to us
        # Store writes decided in this loop pass (puts and releases), submitted as ONE group
        # (one queue entry, one commit, one future) when the pass ends; see _queue_write.
        self._writes: list[Any] = []
        self._write_keys: list[tuple[bool, bytes]] = []  # (is_put, key) per queued op
        self._writes_armed = False
        self._tx_done: list[tuple[TransmitBundle, BaseException | None]] = []
        self._tx_armed = False
        self._handlers: dict[type, Any] = {
            StoreBundle: self._store_bundle,
            TransmitBundle: self._transmit_action,
            DeliverBundle: self._deliver,
            DeleteBundle: self._delete,
            CompleteReception: self._complete_reception,
            ReassembleBundle: self._reassemble,
            CompleteSubmission: self._submission_done,
            FailSubmission: self._submission_failed,
        }
        self.on_output: list[Any] = []  # test hooks: callables receiving every output

    # -----------------------------------------------------------------------------------------
    # lifecycle
    # -----------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.clock.now_ms()

    async def start(self) -> None:
        _private_dir(self.config.data_dir)
        self._lock_fd = _lock_data_dir(self.config.data_dir)
        self.security.start()  # creates <data dir>/keys/identity.pem (0600) on first start
        sync_store = self._sync_store or open_store(self.config)
        self.store = AsyncBundleStore(sync_store)
        self.state = load_state(self._state_path)
        for r in self.state.routes:
            self.router.add(r["pattern"], r["next_hop"])
        for endpoint in self.state.registrations:
            self.agent.register(endpoint)
        await self._restore()
        if self._app_enabled:
            from waystation.appserver import AppServer

            _private_dir(self.config.runtime_dir)
            self.app = AppServer(self, self.config)
            await self.app.start()
        if self.config.contact_plan is not None:
            try:
                self.load_plan(str(self.config.contact_plan))
            except ValueError as exc:
                log.error("contact plan not loaded", extra=kv(error=str(exc)))
        self._register_convergence_layers()
        from waystation.contacts import ContactLinks, is_scheduled

        self.contact_links = ContactLinks(self)
        for link_cfg in self.config.links:
            if is_scheduled(link_cfg.options):
                continue  # opened and closed by the contact plan (node/contacts.py)
            try:
                await self.links.open(link_cfg.id, link_cfg.kind, link_cfg.options)
            except (LinkError, OSError, ValueError) as exc:
                log.error("cannot open link", extra=kv(link=link_cfg.id, error=str(exc)))
        self._spawn(self._timer_loop())
        self.contact_links.start()
        log.info(
            "node started",
            extra=kv(
                node=self.identity.node_id,
                bundles=len(self.agent.held),
                registrations=len(self.agent.registrations),
                socket=str(self.config.socket_path) if self._app_enabled else "-",
            ),
        )

    def _register_convergence_layers(self) -> None:
        """Make every convergence layer of ``waystation.convergence`` available as a link kind."""
        try:
            from waystation.convergence.nodelinks import register_all
        except ImportError as exc:  # a broken optional adapter must not stop the node
            log.warning("convergence layers unavailable", extra=kv(error=str(exc)))
            return
        for kind in ("tcpcl", "mtcp", "udp"):
            self.links.factories.pop(kind, None)
        preset = dict(self.links.factories)
        register_all(self.links)
        self.links.factories.update(preset)  # factories registered by the embedder win

    async def _restore(self) -> None:
        assert self.store is not None
        from waystation.store.api import iter_all

        entries = list(iter_all(self.store.store))
        now = self.now_ms()
        self.execute(self.agent.restore(now, entries))
        # Bundles released before the restart stay duplicates until they expire: the deletion
        # log (bounded, newest last) remembers them across the crash.
        try:
            records = self.store.store.deletions()
        except StoreError as exc:
            log.error("deletion log unreadable", extra=kv(error=str(exc)))
            records = []
        self.agent.remember_released(now, ((r.key, r.meta.expiry_ms) for r in records))
        # Bundles for node services (echo, admin sink) need their payloads re-read.
        for entry in entries:
            dest = entry.meta.destination
            if entry.key in self.agent.held and self.agent.needs_payload(dest):
                try:
                    payload, _ = payload_of(self.store.store.get(entry.key))
                except (StoreError, BundleError) as exc:
                    log.error("unreadable stored bundle", extra=kv(key=entry.key, error=str(exc)))
                    continue
                self.agent.note_payload(entry.key, payload)
                self.execute(self.agent.redispatch(now, entry.key))

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("node stopping", extra=kv(node=self.identity.node_id))
        if self.app is not None:
            await self.app.close()
        if self.contact_links is not None:
            await self.contact_links.stop()
        await self.links.close_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.security.close()
        if self.store is not None:
            await self.store.aclose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        log.info("node stopped")

    async def serve_forever(self, stop: asyncio.Event) -> None:
        await stop.wait()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def _timer_loop(self) -> None:
        """Run ``agent.tick`` at the agent's next deadline (bundle expiry)."""
        while True:
            deadline = self.agent.next_deadline()
            now = self.now_ms()
            delay = 1.0 if deadline is None else min(1.0, max(0.0, (deadline - now) / 1000))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self.execute(self.agent.tick(self.now_ms()))

    # -----------------------------------------------------------------------------------------
    # executing agent outputs
    # -----------------------------------------------------------------------------------------
    def execute(self, outputs: Iterable[Any]) -> None:
        hooks = self.on_output
        handlers = self._handlers
        for out in outputs:
            for hook in hooks:
                hook(out)
            # One dict lookup per action instead of a chain of isinstance checks; events
            # (and an action subclass, see _do) take the general path.
            handler = handlers.get(out.__class__)
            if handler is not None:
                handler(out)
            elif isinstance(out, Action):
                self._do(out)
            else:
                self._log_event(out)

    def _transmit_action(self, action: TransmitBundle) -> None:
        if not self._transmit_now(action):
            self._spawn(self._transmit(action))

    def _complete_reception(self, action: CompleteReception) -> None:
        token = action.token
        if isinstance(token, asyncio.Future):
            if not token.done():
                token.set_result(action.accepted)
        elif callable(token):  # receive_cb's answer callback
            token(action.accepted)

    def _do(self, action: Action) -> None:
        """An action whose exact class is not a key of ``_handlers`` (a subclass): the
        handler of the first class it is an instance of."""
        for cls, handler in self._handlers.items():
            if isinstance(action, cls):
                handler(action)
                return

    def _reassemble(self, action: ReassembleBundle) -> None:
        self._spawn(run_reassembly(self, action))

    def _submission_done(self, action: CompleteSubmission) -> None:
        if self.app is not None:
            self.app.submission_done(action.token, action.info)

    def _submission_failed(self, action: FailSubmission) -> None:
        if self.app is not None:
            self.app.submission_failed(action.token, action.code, action.message)

    def _store_bundle(self, action: StoreBundle) -> None:
        sec = self.security
        dest = action.meta.destination
        if action.origin.startswith("link:"):
            if sec.wants_inbound(dest):
                self._spawn(self._secure_then_store(action, inbound=True))
                return
        elif action.origin and sec.wants_outbound(dest):
            self._spawn(self._secure_then_store(action, inbound=False))
            return
        self._put(action)

    async def _secure_then_store(self, action: StoreBundle, *, inbound: bool) -> None:
        """BPSec before custody: check a received bundle / protect an originated one."""
        try:
            if inbound:
                result = await self.security.check(action.wire)
                if not result.accepted:
                    self.execute(
                        self.agent.security_rejected(
                            self.now_ms(), action.key, result.reason_code, result.reason
                        )
                    )
                    return
                wire = result.wire
                if wire is not action.wire:
                    # The policy changed the bytes (a BIB removed...): offsets found on the
                    # received wire no longer hold.
                    self.agent.wire_replaced(action.key)
            else:
                wire = await self.security.protect(action.wire)
        except Exception as exc:  # LocalSecurityError (our config), or a bug: never delete
            log.error("bpsec processing failed", extra=kv(key=action.key, error=repr(exc)))
            code = "security" if action.origin == "app" else "internal"
            self.execute(self.agent.store_failed(self.now_ms(), action.key, code, str(exc)))
            return
        self._put(action if wire is action.wire else dataclasses.replace(action, wire=wire))

    def _put(self, action: StoreBundle) -> None:
        assert self.store is not None
        if self.agent.needs_payload(action.meta.destination):
            try:
                self.agent.note_payload(action.key, payload_of(action.wire)[0])
            except BundleError:
                pass
        self.wires.put(action.key, action.wire)
        self._queue_write(_put_op(action), True, action.key)

    # -- one store group per loop pass ----------------------------------------------------------
    def _queue_write(self, op: Any, is_put: bool, key: bytes) -> None:
        """Queue a put or a release for the group submitted at the end of this loop pass.

        Everything the node decides in one pass -- the bundles of one TCPCL read, the releases
        of the XFER_ACKs of one read, an application's acks -- goes to the store writer as one
        group (``submit_group_async``): one queue entry, one commit, one future and one
        callback instead of one each per bundle. Custody is unchanged: a put's outcome still
        reaches the agent only once its commit is durable, and only then is the bundle
        acknowledged to the previous hop or the application."""
        self._writes.append(op)
        self._write_keys.append((is_put, key))
        if not self._writes_armed:
            self._writes_armed = True
            # call_soon runs after every callback already ready in this pass (asyncio runs the
            # ready queue as it stood when the pass began), so the group takes all of them.
            asyncio.get_running_loop().call_soon(self._submit_writes)

    def _submit_writes(self) -> None:
        self._writes_armed = False
        ops, refs = self._writes, self._write_keys
        if not ops:
            return
        self._writes, self._write_keys = [], []
        assert self.store is not None
        try:
            fut = self.store.writer.submit_group_async(ops)
        except StoreError as exc:  # writer stopped (shutting down)
            self._writes_done(refs, None, exc)
            return
        fut.add_done_callback(lambda f: self._writes_done(refs, f, None))

    def _writes_done(
        self,
        refs: list[tuple[bool, bytes]],
        fut: asyncio.Future[Any] | None,
        error: BaseException | None,
    ) -> None:
        results: Any
        if fut is not None and fut.cancelled():
            error = _CANCELLED
        elif fut is not None:
            error = fut.exception()
        if error is None and fut is not None:
            results = fut.result()
            if not isinstance(results, list) or len(results) != len(refs):
                results = [StoreError("store returned the wrong number of results")] * len(refs)
        else:
            results = [error] * len(refs)
        # The durable puts of the group go to the agent first and their outputs (XFER_ACKs,
        # deliveries, transmissions) are executed together: one execute per group, not per
        # bundle. A failed put is reported on its own (``_store_failed``).
        now = self.now_ms()
        stored = self.agent.stored
        outputs: list[Any] = []
        for (is_put, key), result in zip(refs, results):
            if is_put:
                if isinstance(result, BaseException):
                    self._store_failed(now, key, result)
                else:
                    outputs += stored(now, key, getattr(result, "seq", None))
            elif isinstance(result, BaseException):
                _log_delete_failure(key, result)
        if outputs:
            self.execute(outputs)

    def _store_failed(self, now: int, key: bytes, exc: BaseException) -> None:
        """A put failed: drop its cached wire and tell the agent why, in its terms."""
        self.wires.discard(key)
        if exc is _CANCELLED:
            self.execute(self.agent.store_failed(now, key, "internal", "store write cancelled"))
        elif isinstance(exc, StoreClosed):
            self.execute(self.agent.store_failed(now, key, "internal", str(exc)))
        elif isinstance(exc, DuplicateBundle):
            self.execute(self.agent.store_failed(now, key, "duplicate", str(exc)))
        elif isinstance(exc, StoreFull):
            self.execute(self.agent.store_failed(now, key, "store-full", str(exc)))
        else:
            log.error("store put failed", extra=kv(key=key, error=repr(exc)))
            self.execute(self.agent.store_failed(now, key, "internal", f"store error: {exc}"))

    def _transmit_now(self, action: TransmitBundle) -> bool:
        """The per-bundle fast path: queue the transfer on a link that can take it right now
        (``ready_now`` / ``send_nowait``: session up, write buffer below its high-water mark,
        no fragmentation limit) and report the outcome from the transfer's own future --
        no Task and no coroutine chain per bundle. The bundle still counts as forwarded only
        when that future resolves, i.e. on the final XFER_ACK. False: use ``_transmit``
        (which waits for flow control and reports every error)."""
        link = self.links.links.get(action.link_id)
        if link is None or not getattr(link, "ready_now", False) or link_limit(link) is not None:
            return False
        assert self.store is not None
        try:
            wire = prepare_forward(
                self.wires.get(action.key) or self.store.store.get(action.key),
                node_eid=self.identity.node_eid,
                received_ms=action.received_ms,
                now_ms=self.now_ms(),
            )
            with_cb = getattr(link, "send_with_callback", None)
            if with_cb is not None:
                with_cb(wire, lambda exc, a=action: self._transmit_finished(a, exc))
                return True
            fut = link.send_nowait(wire)  # type: ignore[attr-defined]
        except Exception:  # the awaiting path redoes the work and reports the error
            return False
        fut.add_done_callback(lambda f, a=action: self._transmit_done(a, f))
        return True

    def _transmit_finished(self, action: TransmitBundle, exc: BaseException | None) -> None:
        """A transfer's outcome from ``send_with_callback``, called inside the link's event
        processing: only queue it. The outcomes of one loop pass (typically all the final
        XFER_ACKs of one read) reach the agent together on the next pass."""
        self._tx_done.append((action, exc))
        if not self._tx_armed:
            self._tx_armed = True
            asyncio.get_running_loop().call_soon(self._report_transmits)

    def _report_transmits(self) -> None:
        self._tx_armed = False
        done, self._tx_done = self._tx_done, []
        outcomes = [(a.key, a.link_id, exc is None, _error_text(exc)) for a, exc in done]
        self.execute(self.agent.transmitted_many(self.now_ms(), outcomes))

    def _transmit_done(self, action: TransmitBundle, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.execute(
                self.agent.transmitted(
                    self.now_ms(), action.key, action.link_id, False, "transfer cancelled"
                )
            )
        else:
            self._transmitted(self.now_ms(), action, fut.exception())

    def _transmitted(self, now: int, action: TransmitBundle, exc: BaseException | None) -> None:
        """Tell the agent how ``action``'s transfer ended (``exc`` None: the final XFER_ACK)."""
        self.execute(
            self.agent.transmitted(now, action.key, action.link_id, exc is None, _error_text(exc))
        )

    async def _transmit(self, action: TransmitBundle) -> None:
        assert self.store is not None
        link = self.links.links.get(action.link_id)
        ok, error = False, ""
        try:
            if link is None:
                raise LinkError(f"no link {action.link_id}")
            wire = self.wires.get(action.key) or self.store.store.get(action.key)
            wire = prepare_forward(
                wire,
                node_eid=self.identity.node_eid,
                received_ms=action.received_ms,
                now_ms=self.now_ms(),
            )
            await send_within_limit(link, wire)  # fragments to the link's limit (§5.8)
            ok = True
        except MustNotFragment as exc:  # §5.4.2: forwarding failed, retrying cannot help
            self.execute(
                self.agent.forwarding_failed(
                    self.now_ms(), action.key, action.link_id, MUST_NOT_FRAGMENT_REASON, str(exc)
                )
            )
            return
        except (LinkError, StoreError, BundleError, OSError) as exc:
            error = str(exc)
        self.execute(self.agent.transmitted(self.now_ms(), action.key, action.link_id, ok, error))

    def _deliver(self, action: DeliverBundle) -> None:
        assert self.store is not None
        try:
            info = self.agent.held[action.key].info
            wire = self.wires.get(action.key) or self.store.store.get(action.key)
            span = info.payload_span
            if span is not None:
                # Sliced at the offsets found when the bundle was received: no second decode
                # (bundleops.payload_span; the wire stored is the one inspected).
                payload = bytes(wire[span[0] : span[1]])
                admin = info.is_admin
            else:
                payload, admin = payload_of(wire)
        except (StoreError, BundleError, KeyError) as exc:
            log.error("cannot read bundle for delivery", extra=kv(key=action.key, error=str(exc)))
            self.execute(self.agent.delivery_failed(action.endpoint, action.key))
            return
        body = {
            "endpoint": action.endpoint,
            "key": action.key,
            "source": info.source,
            "destination": info.destination,
            "creation": [info.creation_ms, info.sequence],
            "lifetime_ms": info.lifetime_ms,
            "payload": payload,
            "admin": admin,
        }
        if self.app is None or not self.app.push_delivery(action.consumer, body):
            self.deliveries_failed(action.consumer, [(action.endpoint, action.key)])

    def deliveries_failed(self, consumer: Hashable, items: Iterable[tuple[str, bytes]]) -> None:
        """A batch of deliveries (``(endpoint, key)``) could not be sent to ``consumer`` (the
        client is gone): each goes back in line, then the client is unbound."""
        agent = self.agent
        for endpoint, key in items:
            self.execute(agent.delivery_failed(endpoint, key))
        # Unbind on the next loop pass, not now: what the client sent before it went (its last
        # acks, a stop) may still be queued on the socket, and the app server's drain, already
        # scheduled by the failed send, reads it first - so those acks still release bundles
        # instead of being refused and the bundles delivered twice.
        asyncio.get_running_loop().call_soon(self._consumer_gone, consumer)

    def _consumer_gone(self, consumer: Hashable) -> None:
        self.execute(self.agent.consumer_gone(consumer))

    def _delete(self, action: DeleteBundle) -> None:
        """Queue the removal for this pass's store group (``_queue_write``; a failure is only
        logged: the agent already let go of the bundle, and a restart re-holds it)."""
        assert self.store is not None
        self.wires.discard(action.key)
        self._queue_write(
            DeleteOp(action.key, action.reason, action.disposition, self.now_ms()), False, action.key
        )

    def _delete_now(self, action: DeleteBundle) -> asyncio.Future[Any] | None:
        """``_delete`` with its own store future (the operator's deletion waits for it)."""
        assert self.store is not None
        self.wires.discard(action.key)
        try:
            fut = self.store.writer.submit_async(
                DeleteOp(action.key, action.reason, action.disposition, self.now_ms())
            )
        except StoreError as exc:  # writer stopped (shutting down): restart re-holds it
            log.warning("delete failed", extra=kv(key=action.key, error=str(exc)))
            return None
        fut.add_done_callback(lambda f, key=action.key: _delete_done(key, f))
        return fut

    def delete_bundle(self, key: bytes, reason: int) -> asyncio.Future[Any] | None:
        """Operator deletion (``store_delete``): the agent releases the bundle from wherever it
        is (queue, route wait, pending delivery; see ``Agent.cancel``), the wire cache drops it
        and the store deletes it with ``reason`` in its deletion log - the same path as expiry.

        Returns the store write's future (done once the deletion is durable). Raises
        ``KeyError`` if the node does not hold the bundle."""
        outputs = self.agent.cancel(self.now_ms(), key, reason)
        done: asyncio.Future[Any] | None = None
        for out in outputs:
            if isinstance(out, DeleteBundle) and out.key == key:
                for hook in self.on_output:
                    hook(out)
                done = self._delete_now(out)
            else:
                self.execute([out])
        log.info("bundle deleted by operator", extra=kv(key=key, reason=reason))
        return done

    def _log_event(self, event: Any) -> None:
        if type(event) in _DEBUG_EVENTS and not log.isEnabledFor(logging.DEBUG):
            return  # the per-bundle happy path: do not even build the fields
        if isinstance(event, BundleAccepted):
            log.debug(
                "bundle accepted",
                extra=kv(
                    key=event.key, src=event.source, dst=event.destination, origin=event.origin
                ),
            )
        elif isinstance(event, BundleForwarded):
            log.debug("bundle forwarded", extra=kv(key=event.key, link=event.link_id))
        elif isinstance(event, BundleDelivered):
            log.debug("bundle delivered", extra=kv(key=event.key, endpoint=event.endpoint))
        elif isinstance(event, BundleDeleted):
            log.debug(
                "bundle released",
                extra=kv(key=event.key, reason=event.reason, disposition=str(event.disposition)),
            )
        elif isinstance(event, DuplicateSuppressed):
            log.info("duplicate suppressed", extra=kv(key=event.key, origin=event.origin))
        elif isinstance(event, BundleRejected):
            log.warning("bundle rejected", extra=kv(origin=event.origin, reason=event.reason))
        elif isinstance(event, TransmissionFailed):
            log.info(
                "transmission failed",
                extra=kv(key=event.key, link=event.link_id, error=event.error),
            )
        elif isinstance(event, StatusReportGenerated):
            log.info(
                "status report", extra=kv(kind=event.kind, reason=event.reason, to=event.report_to)
            )
        elif isinstance(event, AdminRecordReceived):
            self.admin_records.append({"source": event.source, "record": event.payload})
            del self.admin_records[:-100]
            log.info("admin record received", extra=kv(src=event.source, size=len(event.payload)))

    # -----------------------------------------------------------------------------------------
    # LinkHandler (called by convergence adapters)
    # -----------------------------------------------------------------------------------------
    def link_up(self, link: Link) -> None:
        self.links.links.setdefault(link.link_id, link)
        log.info("link up", extra=kv(link=link.link_id, peer=link.peer or "?"))
        self.execute(self.agent.link_up(self.now_ms(), link.link_id, link.peer))

    def link_down(self, link: Link, reason: str) -> None:
        log.info("link down", extra=kv(link=link.link_id, reason=reason))
        self.execute(self.agent.link_down(self.now_ms(), link.link_id))

    async def bundle_received(self, link: Link, wire: bytes) -> bool:
        return await self.receive_nowait(link, wire)

    def receive_cb(self, link: Link, wire: bytes, answer: Any) -> None:
        """``bundle_received`` with a callback: ``answer(True)`` once the bundle is durable
        (acknowledge it), ``answer(False)`` to refuse it -- called exactly once, possibly
        before this returns (a duplicate, an invalid bundle). The TCPCL adapter's per-bundle
        path: no future, no Task and no loop handle per received bundle."""
        self.execute(self.agent.receive(self.now_ms(), wire, link.link_id, answer))

    def receive_nowait(self, link: Link, wire: bytes) -> asyncio.Future[bool]:
        """``bundle_received`` as a plain future: True once the bundle is durable (acknowledge
        it), False to refuse it. For adapters on the per-bundle hot path (TCPCL): no coroutine
        and no Task per received bundle."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.execute(self.agent.receive(self.now_ms(), wire, link.link_id, fut))
        return fut

    # -----------------------------------------------------------------------------------------
    # operations used by the app server
    # -----------------------------------------------------------------------------------------
    def submit(self, token: Hashable, req: SubmitRequest) -> None:
        self.execute(self.agent.submit(self.now_ms(), token, req))

    def register(self, endpoint: str, transient: bool) -> int:
        was = self.agent.is_registered(endpoint)
        self.execute(self.agent.register(endpoint, transient=transient))
        if not transient and endpoint not in self.state.registrations:
            self.state.registrations.append(endpoint)
            self._save_state()
        elif not was:
            pass
        return self.agent.pending_count(endpoint)

    def unregister(self, endpoint: str) -> None:
        self.execute(self.agent.unregister(endpoint))
        if endpoint in self.state.registrations:
            self.state.registrations.remove(endpoint)
            self._save_state()

    def add_route(self, pattern: str, next_hop: str) -> None:
        self.router.add(pattern, next_hop)
        if pattern not in self._config_routes:
            self.state.routes = [r for r in self.state.routes if r["pattern"] != pattern]
            self.state.routes.append({"pattern": pattern, "next_hop": next_hop})
            self._save_state()
        self.execute(self.agent.routes_changed(self.now_ms()))

    def del_route(self, pattern: str) -> bool:
        removed = self.router.remove(pattern)
        before = len(self.state.routes)
        self.state.routes = [r for r in self.state.routes if r["pattern"] != pattern]
        if len(self.state.routes) != before:
            self._save_state()
        return removed

    def load_plan(self, path: str) -> int:
        """Load a contact plan (ION, HDTN or native format) and route ipn traffic by CGR.

        Relative times in the plan are anchored at now. Raises ``ValueError`` with a precise
        message (file, line, field) when the plan cannot be used."""
        from waystation.contact_plan import ContactPlanError, load_plan
        from waystation.planrouter import PlanRouter
        from waystation.routing import ChainRouter

        if self.identity.ipn_node is None:
            raise ValueError("contact plans route by ipn node number: start the node with --ipn N")
        try:
            plan = load_plan(path, reference_ms=self.now_ms())
        except ContactPlanError as exc:
            raise ValueError(str(exc)) from None
        if self.plan_router is None:
            self.plan_router = PlanRouter(plan, self.identity.ipn_node)
            self.agent.router = ChainRouter([self.plan_router, self.router])
        else:
            self.plan_router.update_plan(plan)
        log.info("contact plan loaded", extra=kv(path=path, contacts=len(plan.contacts)))
        if self.contact_links is not None:
            self.contact_links.plan_changed(plan)  # scheduled links follow the new plan
        self.execute(self.agent.routes_changed(self.now_ms()))
        return len(plan.contacts)

    def _save_state(self) -> None:
        try:
            save_state(self._state_path, self.state)
        except OSError as exc:
            log.error(
                "cannot save node state", extra=kv(path=str(self._state_path), error=str(exc))
            )

    def status(self) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        if self.store is not None:
            try:
                s = self.store.store.stats()
                stats = {
                    "count": s.count,
                    "bytes": s.bytes,
                    "backend": s.backend,
                    "path": s.path,
                    "max_bytes": s.max_bytes,
                    "max_count": s.max_count,
                }
            except StoreError as exc:
                stats = {"error": str(exc)}
            stats["commits"] = self.store.writer.batches
            stats["writes"] = self.store.writer.ops
        regs = [
            {
                "endpoint": ep,
                "pending": self.agent.pending_count(ep),
                "receiving": reg.consumer is not None,
                "transient": reg.transient,
            }
            for ep, reg in sorted(self.agent.registrations.items())
            if self.agent.is_registered(ep)
        ]
        links = []
        for link in self.links.links.values():
            try:
                links.append(link.describe())
            except Exception as exc:  # an adapter's bug must not break status
                links.append({"id": getattr(link, "link_id", "?"), "error": str(exc)})
        snap = self.agent.snapshot()
        return {
            "node_id": self.identity.node_id,
            "eids": self.identity.admin_eids,
            "echo": self.identity.echo_eids,
            "version": __version__,
            "uptime_s": round(time.monotonic() - self._started_at, 1),
            "store": stats,
            "bundles": {"held": snap["held"], **snap["places"]},
            "queues": snap["queues"],
            "links": links,
            "routes": self.agent.router.describe(),
            "registrations": regs,
            "contacts": self.plan_router.contacts(self.now_ms()) if self.plan_router else [],
            "schedule": self.contact_links.describe() if self.contact_links else None,
            "clock_ms": self.now_ms(),
            "counters": snap["counters"],
            "admin_records": len(self.admin_records),
            # local fragments waiting for the rest of their ADU (§5.9; waystation.reassembly)
            "reassembly": {
                "pending_adus": len(self.agent.reassembly),
                **self.agent.reassembly.counters,
            },
            "security": {
                "signing": self.security.settings.signs,
                "require_signature": self.security.settings.require,
                **self.security.counters,
            },
        }


# The outcome of every op of a store group whose future was cancelled (never raised).
_CANCELLED = StoreError("store write cancelled")

_DEBUG_EVENTS = frozenset({BundleAccepted, BundleForwarded, BundleDelivered, BundleDeleted})


def _error_text(exc: BaseException | None) -> str:
    """How a transfer's failure is told to the agent ("" for success)."""
    return "" if exc is None else str(exc) or type(exc).__name__


def _delete_done(key: bytes, fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        _log_delete_failure(key, exc)


def _log_delete_failure(key: bytes, exc: BaseException) -> None:
    if isinstance(exc, StoreError):
        log.warning("delete failed", extra=kv(key=key, error=str(exc)))
    elif exc is not None:
        log.error("delete failed", extra=kv(key=key, error=repr(exc)))


def _put_op(action: StoreBundle) -> Any:
    return PutOp(action.key, action.wire, action.meta)

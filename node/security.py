"""BPSec in the node: the identity key, the ``[security]`` policy, and where crypto runs.

This module is the node's side of issue 7 (RFC 9172 with RFC 9173 and the COSE context, all
implemented in :mod:`waystation.bundle.bpsec`). It decides *which* policy applies and runs it
off the event loop; the bundle-level work is the library's.

Roles (RFC 9172 §1.4 / §5)
--------------------------
* **Security source** — bundles this node originates (applications, echo replies, status
  reports) and that leave the node get the policy's ``source`` rules: by default one
  COSE_Sign1 (Ed25519) BIB over the payload whose AAD covers the whole primary block
  (draft-ietf-dtn-bpsec-cose, AAD scope ``{0:1,-1:1,-2:1}``), plus any configured BIB/BCB rules.
  Bundles whose destination is this node itself never leave it and are not secured.
* **Security acceptor** — at the bundle's destination, ``acceptor`` rules decrypt (BCBs first,
  §5.1) and verify, and remove what they processed; delivery gets the plaintext.
* **Security verifier** — at other nodes only explicit ``verifier`` rules run. With none
  configured a forwarder does no cryptography and forwards the bytes it received unchanged.

The default trust rule ("verify when the signer is trusted")
-------------------------------------------------------------
Signing is on by default, but two fresh nodes have not exchanged keys, so *requiring* a
trusted signature on everything (the library's ``require_signature = true``) would stop them
talking. The node's default, ``require_signature = "trusted"``, is:

* a bundle whose **source node has a trusted key** (``waystation keys trust NAME FILE --node
  N``, or this node itself — a node always trusts its own identity key) must carry a COSE_Sign1
  BIB over its payload that verifies with that trust: unsigned → deleted with reason code 12
  (missing security operation), a bad signature or a key not trusted for that node → 15
  (failed security operation);
* a bundle from a node we hold **no key for** is accepted; its signature cannot be checked and
  is left in the bundle (logged at debug level);
* ``require_signature = true`` requires a trusted signature on every bundle delivered here;
  ``false`` turns signature checking off (explicit ``[[security.rules]]`` still apply).

Keys bound to any node (``--node '*'``) can verify signatures but do not make signatures
mandatory for any source.

Performance
-----------
Ed25519 sign/verify costs hundreds of microseconds per bundle, several times the rest of the
node's per-bundle work. :class:`NodeSecurity` runs every operation in one dedicated worker
thread (FIFO, so bundles keep their order) and the service awaits the result, so the event
loop never blocks on crypto; bundles that need no security operation (forwarded bundles
without verifier rules, local-only bundles, security off) never touch the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waystation.bundle.bpsec.errors import PolicyError, SecurityReason
from waystation.bundle.bpsec.keys import SigningKey, SymmetricKey, TrustedKey, fingerprint
from waystation.bundle.bpsec.keystore import KeyStore
from waystation.bundle.bpsec.policy import (
    InboundVerdict,
    SecurityPolicy,
    SecurityRule,
    apply_inbound_policy,
    apply_outbound_policy,
)
from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.eid import parse_eid
from waystation.bundle.errors import BundleError

__all__ = [
    "REQUIRE_MODES",
    "InboundResult",
    "NodeSecurity",
    "SecuritySettings",
    "parse_security_table",
]

log = logging.getLogger("waystation.security")

#: ``require_signature`` values: "trusted" (node default), True (all), False (off).
REQUIRE_MODES = ("trusted", True, False)


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """The parsed ``[security]`` table: the library's policy plus the node's trust mode."""

    policy: SecurityPolicy
    require: str | bool = "trusted"

    @property
    def signs(self) -> bool:
        return any(r.role == "source" for r in self.policy.rules)


def parse_security_table(
    local_nodes: Iterable[str], doc: Mapping[str, Any] | None
) -> SecuritySettings:
    """Validate ``[security]`` (``None``: defaults). Raises :class:`PolicyError` naming the key.

    ``require_signature`` additionally accepts ``"trusted"`` (the node default, see the module
    docstring); everything else is :meth:`SecurityPolicy.from_config`'s.
    """
    table = dict(doc or {})
    require = table.pop("require_signature", "trusted")
    if require not in REQUIRE_MODES or (isinstance(require, int) and not isinstance(require, bool)):
        raise PolicyError(
            f"[security]: require_signature must be \"trusted\", true or false, got {require!r}"
        )
    table["require_signature"] = require is True
    policy = SecurityPolicy.from_config(list(local_nodes), table)
    return SecuritySettings(policy, require)


def _source_glob(node_id: str) -> str:
    """Glob matching every endpoint of ``node_id`` (ipn:N.0 -> ipn:N.*, dtn://x/ -> dtn://x/*)."""
    if node_id.startswith("ipn:"):
        return _glob_escape(node_id[: node_id.rindex(".")]) + ".*"
    return _glob_escape(node_id) + "*"


def _glob_escape(text: str) -> str:
    # fnmatch has no escape() before Python 3.14: a metacharacter in brackets matches itself.
    return re.sub(r"([*?\[])", r"[\1]", text)


class _NodeKeys:
    """The key store as the policy sees it, with this node's own public key trusted for its own
    node IDs (a node trusts itself).

    The identity and the trust list are re-read from the key store (which itself re-parses a
    file only when it changed) at most every ``refresh_s``: looking at the key files for every
    bundle cost about a third of a 1 KiB verification. ``generation`` changes whenever the
    trust list does."""

    def __init__(
        self, store: KeyStore, local_nodes: Iterable[str], refresh_s: float = 1.0
    ) -> None:
        self.store = store
        self.local_nodes = tuple(local_nodes)
        self.refresh_s = refresh_s
        self.generation = 0
        self._checked = -float("inf")
        self._identity: SigningKey | None = None
        self._trusted: list[TrustedKey] = []
        self._signature: tuple[object, ...] = ()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.refresh_s and self._identity is not None:
            return
        identity = self.store.identity()
        peers = self.store.trusted()
        signature = (identity.kid, *((k.name, k.node, k.kid) for k in peers))
        if signature != self._signature:
            own = [TrustedKey(f"self:{n}", identity.public, n) for n in self.local_nodes]
            self._trusted = own + peers
            self._signature = signature
            self.generation += 1
        self._identity = identity
        self._checked = now

    def identity(self) -> SigningKey:
        self._refresh()
        assert self._identity is not None
        return self._identity

    def symmetric(self, name: str) -> SymmetricKey:
        return self.store.symmetric(name)

    def trusted(self) -> list[TrustedKey]:
        self._refresh()
        return self._trusted


@dataclass(frozen=True, slots=True)
class InboundResult:
    """The outcome of :meth:`NodeSecurity.check`: keep ``wire`` or delete with ``reason_code``."""

    accepted: bool
    wire: bytes
    reason_code: int = 0
    reason: str = ""


class NodeSecurity:
    """The node's BPSec: identity key (created at start, mode 0600), policy, worker thread."""

    def __init__(
        self,
        data_dir: Path,
        local_nodes: Iterable[str],
        security_table: Mapping[str, Any] | None = None,
    ) -> None:
        self.local_nodes = tuple(str(parse_eid(n).node_id) for n in local_nodes)
        self.settings = parse_security_table(self.local_nodes, security_table)
        self.store = KeyStore.for_data_dir(data_dir)
        self.keys = _NodeKeys(self.store, self.local_nodes)
        self._base = self.settings.policy
        self._trust_generation = -1
        self._inbound = self._base
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._queue: list[tuple[Callable[[bytes], Any], bytes, asyncio.Future[Any]]] = []
        self._lock = threading.Lock()
        self._draining = False
        self._has_verifier = any(r.role == "verifier" for r in self._base.rules)
        self._has_acceptor = any(r.role == "acceptor" for r in self._base.rules)
        self._local_cache: dict[str, bool] = {}
        self.counters = {"protected": 0, "checked": 0, "rejected": 0}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the identity key if absent (issue 7: on first start, mode 0600)."""
        key = self.store.identity()
        log.info(
            "bpsec identity",
            extra={"fields": {"fingerprint": fingerprint(key.public)[:16],
                              "signing": self.settings.signs,
                              "require_signature": str(self.settings.require).lower()}},
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            # One thread: FIFO keeps bundle order; the loop only waits on futures.
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bpsec")
        return self._pool

    # ------------------------------------------------------------------ decisions
    def is_local(self, eid: str) -> bool:
        hit = self._local_cache.get(eid)
        if hit is None:
            try:
                hit = str(parse_eid(eid).node_id) in self.local_nodes
            except BundleError:
                hit = False
            if len(self._local_cache) >= 4096:  # bounded: destinations are few in practice
                self._local_cache.clear()
            self._local_cache[eid] = hit
        return hit

    def wants_outbound(self, destination: str) -> bool:
        """Whether a bundle we originate for ``destination`` gets source rules at all."""
        return self.settings.signs and not self.is_local(destination)

    def wants_inbound(self, destination: str) -> bool:
        """Whether a received bundle must go through the policy (destination or verifier)."""
        local_wants = self._has_acceptor or self.settings.require == "trusted"
        if local_wants is self._has_verifier:
            return local_wants  # the same either way (e.g. no policy): no EID parse per bundle
        if self.is_local(destination):
            return local_wants
        return self._has_verifier

    def inbound_policy(self) -> SecurityPolicy:
        """The base policy plus, in "trusted" mode, one required-signature acceptor rule per
        source node we hold a key for (rebuilt when ``trusted.json`` changes)."""
        if self.settings.require != "trusted":
            return self._base
        trusted = self.keys.trusted()
        if self.keys.generation != self._trust_generation:
            nodes = set(self.local_nodes)
            nodes.update(k.node for k in trusted if k.node is not None)
            extra = tuple(
                SecurityRule(f"signed-by-trusted-{n}", "acceptor", "cose-sign1",
                             source=_source_glob(n))
                for n in sorted(nodes)
            )
            self._inbound = SecurityPolicy(self._base.local_nodes, self._base.rules + extra,
                                           self._base.crc_type)
            self._trust_generation = self.keys.generation
        return self._inbound

    # ------------------------------------------------------------------ synchronous cores
    def protect_sync(self, wire: bytes) -> bytes:
        """Source rules on an encoded bundle we originate. Raises LocalSecurityError when our
        configuration cannot be applied (missing key), BundleError for an unencodable bundle."""
        bundle = decode_bundle(wire, max_size=len(wire) + 1)
        out = apply_outbound_policy(bundle, self._base, self.keys, originated=True)
        if out is bundle:
            return wire
        self.counters["protected"] += 1
        return bytes(encode_bundle(out))

    def check_sync(self, wire: bytes) -> InboundResult:
        """Acceptor/verifier rules on a received bundle; never raises for a bad bundle.

        Raises :class:`LocalSecurityError` for our own misconfiguration (the bundle is then
        refused at the convergence layer, so the peer keeps it, rather than deleted)."""
        try:
            bundle = decode_bundle(wire, max_size=len(wire) + 1)
        except BundleError as exc:
            return InboundResult(False, wire, SecurityReason.BLOCK_UNINTELLIGIBLE, str(exc))
        verdict: InboundVerdict = apply_inbound_policy(bundle, self.inbound_policy(), self.keys)
        self.counters["checked"] += 1
        if not verdict.accepted:
            self.counters["rejected"] += 1
            return InboundResult(False, wire, int(verdict.reason_code or 0), verdict.reason)
        if verdict.bundle is bundle:
            return InboundResult(True, wire)
        return InboundResult(True, bytes(encode_bundle(verdict.bundle)))

    # ------------------------------------------------------------------ off-loop forms
    async def protect(self, wire: bytes) -> bytes:
        result: bytes = await self._submit(self.protect_sync, wire)
        return result

    async def check(self, wire: bytes) -> InboundResult:
        result: InboundResult = await self._submit(self.check_sync, wire)
        return result

    def _submit(self, fn: Callable[[bytes], Any], wire: bytes) -> asyncio.Future[Any]:
        """Queue one operation; a single worker job drains the queue in batches.

        Batching matters under load: one executor job and one loop wake-up per *batch*
        instead of per bundle (the per-item thread hand-offs cost about as much as an
        HMAC). Order is kept: the queue is FIFO and there is one worker at a time."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queue.append((fn, wire, fut))
            start = not self._draining
            self._draining = True
        if start:
            self._executor().submit(self._drain, loop)
        return fut

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Worker thread: run queued operations, hand results back once per batch."""
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._draining = False
                    return
            done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            for fn, wire, fut in batch:
                try:
                    done.append((fut, fn(wire), None))
                except Exception as exc:  # delivered to the awaiting task, which handles it
                    done.append((fut, None, exc))
            try:
                loop.call_soon_threadsafe(_resolve, done)
            except RuntimeError:  # loop closed during shutdown: nobody is waiting any more
                return


def _resolve(done: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, value, exc in done:
        if fut.cancelled():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

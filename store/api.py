"""The custody store's public contract: errors, per-bundle metadata and the ``BundleStore`` Protocol.

A bundle node takes *custody* (in the everyday sense of RFC 9171 §5: retention of the bundle
until its retention constraints are released) the moment a ``put`` returns. Every backend
promises:

* ``put`` returns only once the bundle and its metadata are durable (for LMDB: a synced
  commit). That is the moment the node may acknowledge the bundle to the previous hop (a
  TCPCLv4 XFER_ACK) or to the originating application.
* A bundle leaves the store only through ``delete``, and every deletion records *why*: its
  :class:`Disposition` (forwarded, delivered, expired, deleted) and its RFC 9171 §6.1.1 status
  report reason code (see :class:`ReasonCode`, the IANA registry of RFC 9171 §9.5). A bounded
  deletion log keeps the most recent records for status reports and operators.
* Bundles are keyed by ``BundleId.key()`` bytes (source, creation timestamp, fragment offset and
  length, RFC 9171 §5.9/§4.3.1); a second ``put`` of the same key is a duplicate.
* A configurable quota (bytes and count) refuses puts with :class:`StoreFull` *before* anything is
  written, so a full store is never a corrupt or wedged store.

Error tree (one root, see ``DESIGN.md``)::

    StoreError                     root of everything this package raises on purpose
    +-- StoreFull                  quota (bytes or count) would be exceeded: back-pressure
    +-- DuplicateBundle            a bundle with this ID is already stored
    +-- BundleNotFound             no bundle with this ID
    +-- StoreCorrupt               the on-disk store is damaged or not a store at all
    +-- StoreClosed                the store was closed (or its writer stopped)
    +-- InvalidMeta (ValueError)   metadata that cannot be stored (bad field type/value)

``BundleMeta`` is node-local bookkeeping, serialised as CBOR by :meth:`BundleMeta.to_cbor`. Its
``priority`` is node-local too: BPv7 has no priority field in the primary block (RFC 9171 dropped
RFC 5050's class-of-service bits), so the node assigns one (0 bulk, 1 normal, 2 expedited) from
policy or from an extension block it understands.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cbor2

__all__ = [
    "BundleKeyLike",
    "BundleMeta",
    "BundleNotFound",
    "BundleStore",
    "CustodyState",
    "DeletionRecord",
    "Disposition",
    "DuplicateBundle",
    "InvalidMeta",
    "Priority",
    "ReasonCode",
    "StoreClosed",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreStats",
    "StoredEntry",
    "bundle_key",
]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
class StoreError(Exception):
    """Root of every error the store raises on purpose."""


class StoreFull(StoreError):
    """The quota would be exceeded; nothing was written. Turn this into back-pressure."""

    def __init__(
        self,
        message: str,
        *,
        needed_bytes: int = 0,
        free_bytes: int = 0,
        count: int = 0,
        max_count: int = 0,
    ) -> None:
        super().__init__(message)
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes
        self.count = count
        self.max_count = max_count


class DuplicateBundle(StoreError):
    """A bundle with this bundle ID is already in the store (RFC 9171 §5.6 step 1 duplicates)."""

    def __init__(self, key: bytes) -> None:
        super().__init__(f"duplicate bundle {key.hex()}")
        self.key = key


class BundleNotFound(StoreError, KeyError):
    """No bundle with this ID is stored."""

    def __init__(self, key: bytes) -> None:
        super().__init__(f"no such bundle {key.hex()}")
        self.key = key

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class StoreCorrupt(StoreError):
    """The on-disk store is damaged (truncated, overwritten, not a store, checksum mismatch)."""


class StoreClosed(StoreError):
    """The store has been closed, or its writer thread has stopped."""


class InvalidMeta(StoreError, ValueError):
    """Metadata that cannot be stored (wrong type or out-of-range value)."""


# ---------------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------------
class ReasonCode(enum.IntEnum):
    """RFC 9171 §6.1.1 / §9.5 bundle status report reason codes (IANA registry, BP version 7).

    Any ``int`` 0..255 is accepted by ``delete``; this enum names the registered ones. It mirrors
    ``waystation.bundle.admin.StatusReportReason`` (both are plain ints, so they interoperate).
    """

    NO_ADDITIONAL_INFORMATION = 0
    LIFETIME_EXPIRED = 1
    FORWARDED_OVER_UNIDIRECTIONAL_LINK = 2
    TRANSMISSION_CANCELED = 3
    DEPLETED_STORAGE = 4
    DESTINATION_ENDPOINT_ID_UNAVAILABLE = 5
    NO_KNOWN_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8
    HOP_LIMIT_EXCEEDED = 9
    TRAFFIC_PARED = 10
    BLOCK_UNSUPPORTED = 11


class Disposition(enum.StrEnum):
    """Why a bundle left the store (what released its retention constraints, RFC 9171 §5.10)."""

    FORWARDED = "forwarded"  # the next hop acknowledged all of it (§5.4 step 5)
    DELIVERED = "delivered"  # delivered to, and acknowledged by, the application (§5.7)
    EXPIRED = "expired"  # lifetime elapsed (§5.10, reason 1)
    DELETED = "deleted"  # any other deletion: policy, operator, unintelligible, ... (§5.10)


class CustodyState(enum.StrEnum):
    """Where a stored bundle is in the node's processing (node-local)."""

    RECEIVED = "received"  # accepted and durable; not yet routed
    QUEUED = "queued"  # assigned to an outbound neighbour queue (``meta.queue``)
    IN_FLIGHT = "in_flight"  # handed to a convergence layer; awaiting the transfer ack
    WAITING = "waiting"  # no route / no contact yet (§5.4.1 forwarding contraindicated)
    LOCAL = "local"  # awaiting delivery to / ack from a local application (``local_endpoint``)
    REASSEMBLY = "reassembly"  # a fragment held until its ADU is complete (§5.9)


class Priority(enum.IntEnum):
    """Node-local priority (BPv7's primary block has none; see the module docstring)."""

    BULK = 0
    NORMAL = 1
    EXPEDITED = 2


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------
class BundleKeyLike(Protocol):
    """Anything with ``key() -> bytes``: ``waystation.bundle.model.BundleId`` is the real one."""

    def key(self) -> bytes: ...


def bundle_key(bundle_id: BundleKeyLike | bytes) -> bytes:
    """The store key of a bundle ID (``BundleId.key()``), or the key itself if given bytes."""
    if type(bundle_id) is bytes and 0 < len(bundle_id) <= 400:
        return bundle_id  # the hot path
    if isinstance(bundle_id, bytes | bytearray | memoryview):
        key = bytes(bundle_id)
    else:
        try:
            key = bundle_id.key()
        except AttributeError:
            raise TypeError(
                f"bundle id must be bytes or have .key(), not {type(bundle_id).__name__}"
            ) from None
        if not isinstance(key, bytes):
            raise TypeError("bundle_id.key() must return bytes")
    if not key:
        raise InvalidMeta("empty bundle key")
    if len(key) > 400:  # LMDB's default max key size is 511; index keys add a prefix
        raise InvalidMeta(f"bundle key too long ({len(key)} bytes, max 400)")
    return key


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------
_META_VERSION = 1
_MAX_TEXT = 256  # index keys carry EIDs/queue names; LMDB keys are <= 511 bytes


@dataclass(slots=True)
class BundleMeta:
    """Node-local bookkeeping for one stored bundle (stored as CBOR beside the wire bytes).

    Times are DTN milliseconds (RFC 9171 §4.2.6: ms since 2000-01-01T00:00:00Z).
    ``size``, ``seq`` and ``checksum`` are filled in by the store on ``put``; callers leave them.
    """

    received_ms: int
    expiry_ms: int  # creation time + lifetime (or received + remaining lifetime, §4.4.2 age)
    destination: str  # destination EID text
    source: str  # source node ID / EID text
    state: CustodyState = CustodyState.RECEIVED
    queue: str | None = None  # neighbour node ID whose outbound queue holds this bundle
    priority: Priority = Priority.NORMAL
    local_endpoint: str | None = None  # application endpoint awaiting delivery + ack
    retries: int = 0  # failed forwarding / delivery attempts
    adu_key: bytes | None = None  # fragments of one ADU share this (source + creation), §5.9
    fragment_offset: int | None = None
    total_adu_length: int | None = None
    report_to: str | None = None  # status reports for this bundle go here (§4.2.2)
    deletion_reason: int | None = None  # set on the DeletionRecord's copy
    extra: dict[str, Any] = field(default_factory=dict)
    size: int = 0  # wire length in bytes (filled by the store)
    seq: int = 0  # arrival order within this store (filled by the store)
    checksum: int = 0  # CRC-32 of the wire bytes, checked on read (filled by the store)

    def validate(self) -> None:
        """Raise :class:`InvalidMeta` unless every field has a storable type and value.

        Written for speed (it runs on every put): one flat expression for the common case;
        only when that fails does the field-by-field pass run to name the problem.
        """
        if (
            type(self.received_ms) is int
            and type(self.expiry_ms) is int
            and type(self.retries) is int
            and type(self.size) is int
            and type(self.seq) is int
            and type(self.checksum) is int
            and 0 <= self.received_ms < _U64_LIMIT
            and 0 <= self.expiry_ms < _U64_LIMIT
            and 0 <= self.retries < _U64_LIMIT
            and 0 <= self.size < _U64_LIMIT
            and 0 <= self.seq < _U64_LIMIT
            and 0 <= self.checksum < _U64_LIMIT
            and self.fragment_offset is None
            and self.total_adu_length is None
            and self.deletion_reason is None
            and self.adu_key is None
            and (
                self.local_endpoint is None
                or (type(self.local_endpoint) is str and 0 < len(self.local_endpoint) <= _FAST_TEXT)
            )
            and (
                self.report_to is None
                or (type(self.report_to) is str and 0 < len(self.report_to) <= _FAST_TEXT)
            )
            and (
                self.queue is None
                or (type(self.queue) is str and 0 < len(self.queue) <= _FAST_TEXT)
            )
            and type(self.destination) is str
            and type(self.source) is str
            and len(self.destination) <= _FAST_TEXT
            and len(self.source) <= _FAST_TEXT
            and self.state.__class__ is CustodyState
            and self.priority.__class__ is Priority
            and type(self.extra) is dict
        ):
            return  # the shape of a freshly received bundle's meta
        self._validate_slow()

    def _validate_slow(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if (type(value) is not int or not 0 <= value < _U64_LIMIT) and (
                type(value) is bool or not isinstance(value, int) or not 0 <= value < _U64_LIMIT
            ):
                raise InvalidMeta(f"{name} must be an int in 0..2**64-1, not {value!r}")
        for name in _OPT_INT_FIELDS:
            value = getattr(self, name)
            if value is not None and (
                type(value) is bool or not isinstance(value, int) or not 0 <= value < _U64_LIMIT
            ):
                raise InvalidMeta(f"{name} must be None or an int in 0..2**64-1, not {value!r}")
        for name in ("destination", "source"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _short_text(value):
                raise InvalidMeta(f"{name} must be a str of at most {_MAX_TEXT} UTF-8 bytes")
        for name in ("queue", "local_endpoint", "report_to"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, str) or not value or not _short_text(value)
            ):
                raise InvalidMeta(f"{name} must be None or a non-empty str of <= {_MAX_TEXT} bytes")
        adu = self.adu_key
        if adu is not None and (not isinstance(adu, bytes) or not adu or len(adu) > _MAX_TEXT):
            raise InvalidMeta(f"adu_key must be None or non-empty bytes of <= {_MAX_TEXT}")
        if self.state.__class__ is not CustodyState:
            try:
                CustodyState(self.state)
            except ValueError:
                raise InvalidMeta(f"unknown custody state {self.state!r}") from None
        prio = self.priority
        if type(prio) is bool or not isinstance(prio, int) or not 0 <= prio <= 2:
            raise InvalidMeta(f"priority must be 0, 1 or 2, not {prio!r}")
        if not isinstance(self.extra, dict):
            raise InvalidMeta("extra must be a dict")

    def to_cbor_obj(self) -> list[Any]:
        """A CBOR array: the format version, then every field in declaration order.

        Positional rather than a map because it is encoded on every put and decoded on every
        index hit (half the cost of a map). New fields are only ever appended, and a reader
        ignores trailing items it does not know, so the format can grow compatibly.
        """
        return [
            _META_VERSION,
            self.received_ms,
            self.expiry_ms,
            self.destination,
            self.source,
            str(self.state),
            self.queue,
            int(self.priority),
            self.local_endpoint,
            self.retries,
            self.adu_key,
            self.fragment_offset,
            self.total_adu_length,
            self.report_to,
            self.deletion_reason,
            self.extra,
            self.size,
            self.seq,
            self.checksum,
        ]

    def to_cbor(self) -> bytes:
        try:
            return cbor2.dumps(self.to_cbor_obj())
        except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidMeta(f"metadata not CBOR-serialisable: {exc}") from exc

    @classmethod
    def from_cbor_obj(cls, obj: Any) -> BundleMeta:
        if not isinstance(obj, list) or len(obj) < _N_FIELDS + 1 or obj[0] != _META_VERSION:
            raise StoreCorrupt(f"unrecognised metadata record: {obj!r:.80}")
        try:
            meta = cls(*obj[1 : _N_FIELDS + 1])
            meta.state = CustodyState(meta.state)
            meta.priority = Priority(meta.priority)
            meta.validate()
        except (ValueError, TypeError, InvalidMeta) as exc:
            raise StoreCorrupt(f"malformed metadata record: {exc}") from exc
        return meta

    @classmethod
    def from_cbor(cls, data: bytes) -> BundleMeta:
        try:
            obj = cbor2.loads(data)
        except Exception as exc:  # cbor2 raises several types on garbage
            raise StoreCorrupt(f"undecodable metadata record: {exc}") from exc
        return cls.from_cbor_obj(obj)

    def copy(self, **changes: Any) -> BundleMeta:
        """A copy with ``changes`` applied (``extra`` is copied, not shared)."""
        if changes:
            unknown = set(changes).difference(_FIELD_NAMES)
            if unknown:
                raise TypeError(f"unknown BundleMeta field(s): {sorted(unknown)}")
        values = [changes[n] if n in changes else getattr(self, n) for n in _FIELD_NAMES]
        new = BundleMeta(*values)
        if "extra" not in changes:
            new.extra = dict(self.extra)
        return new

    @classmethod
    def for_bundle(cls, bundle: Any, *, received_ms: int, **changes: Any) -> BundleMeta:
        """Metadata for a decoded ``waystation.bundle.model.Bundle`` (duck-typed).

        Fills destination, source, report-to, expiry and the fragment bookkeeping from the
        primary block (RFC 9171 §4.3.1); ``changes`` override or add node-local fields.
        """
        primary = bundle.primary
        # §4.2.7/§4.4.2: creation + lifetime, or (no clock at the source) receipt - age + lifetime
        expiry = bundle.expiry_ms(received_ms)
        if expiry is None:  # no creation time and no Bundle Age block: count from receipt
            expiry = received_ms + int(primary.lifetime_ms)
        fields: dict[str, Any] = {
            "received_ms": received_ms,
            "expiry_ms": max(0, int(expiry)),
            "destination": str(primary.destination),
            "source": str(primary.source),
            "report_to": str(getattr(primary, "report_to", "")) or None,
        }
        if getattr(bundle, "is_fragment", False):
            bid = bundle.bundle_id
            fields["adu_key"] = adu_key_of(str(primary.source), bid.creation)
            fields["fragment_offset"] = int(bid.fragment_offset)
            fields["total_adu_length"] = int(getattr(primary, "total_adu_length", 0) or 0) or None
            fields["state"] = CustodyState.REASSEMBLY
        fields.update(changes)
        return cls(**fields)


def adu_key_of(source: str, creation: Any) -> bytes:
    """The key shared by all fragments of one ADU: source EID + creation timestamp (§5.9)."""
    time_ms, sequence = (int(creation[0]), int(creation[1]))
    return cbor2.dumps([source, time_ms, sequence])


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(BundleMeta))
_N_FIELDS = len(_FIELD_NAMES)
_INT_FIELDS = ("received_ms", "expiry_ms", "retries", "size", "seq", "checksum")
_OPT_INT_FIELDS = ("fragment_offset", "total_adu_length", "deletion_reason")
_U64_LIMIT = 1 << 64
_FAST_TEXT = _MAX_TEXT // 4  # any str this short is within _MAX_TEXT bytes of UTF-8


def _short_text(text: str) -> bool:
    if len(text) * 4 <= _MAX_TEXT:  # cannot exceed the limit even if all 4-byte UTF-8
        return True
    try:
        return len(text.encode("utf-8")) <= _MAX_TEXT
    except UnicodeEncodeError:  # lone surrogates cannot go into CBOR text
        return False


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One result of an index query: the bundle's store key and its metadata."""

    key: bytes
    meta: BundleMeta


@dataclass(frozen=True, slots=True)
class DeletionRecord:
    """A bundle's departure, kept in the bounded deletion log (for status reports, §6.1.1)."""

    seq: int  # position in the deletion log (monotonic)
    key: bytes
    disposition: Disposition
    reason: int  # RFC 9171 §6.1.1 reason code
    time_ms: int  # when it left (DTN ms)
    meta: BundleMeta  # its metadata at that moment (``deletion_reason`` set)

    def to_cbor(self) -> bytes:
        return cbor2.dumps(
            [
                self.seq,
                self.key,
                str(self.disposition),
                self.reason,
                self.time_ms,
                self.meta.to_cbor_obj(),
            ]
        )

    @classmethod
    def from_cbor(cls, data: bytes) -> DeletionRecord:
        try:
            seq, key, disposition, reason, time_ms, meta = cbor2.loads(data)
            return cls(
                seq, key, Disposition(disposition), reason, time_ms, BundleMeta.from_cbor_obj(meta)
            )
        except StoreCorrupt:
            raise
        except Exception as exc:
            raise StoreCorrupt(f"malformed deletion record: {exc}") from exc


@dataclass(frozen=True, slots=True)
class StoreStats:
    count: int
    bytes: int  # wire bytes stored (what the quota counts)
    max_count: int | None
    max_bytes: int | None
    deletions_logged: int
    backend: str
    path: str | None = None
    map_size: int | None = None  # LMDB only
    map_used: int | None = None  # LMDB only


# ---------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------
@runtime_checkable
class BundleStore(Protocol):
    """What every backend implements (memory reference, LMDB). Synchronous and thread-safe.

    ``bundle_id`` arguments accept a ``BundleId`` (anything with ``.key() -> bytes``) or the
    key bytes. Index queries return :class:`StoredEntry` lists taken from one consistent
    snapshot; ``limit`` bounds them (callers page by processing and deleting, or by state).
    """

    def put(self, bundle_id: BundleKeyLike | bytes, wire: bytes, meta: BundleMeta) -> BundleMeta:
        """Store durably; return ``meta`` itself with ``size``/``seq``/``checksum`` filled in.

        The store keeps its own copy (later changes to ``meta`` do not reach it); filling in
        the caller's object instead of copying it keeps the put path lean.

        Raises StoreFull (nothing written), DuplicateBundle, InvalidMeta.
        """
        ...

    def get(self, bundle_id: BundleKeyLike | bytes) -> bytes:
        """The wire bytes, byte-identical to what was put. BundleNotFound / StoreCorrupt."""
        ...

    def get_meta(self, bundle_id: BundleKeyLike | bytes) -> BundleMeta: ...

    def contains(self, bundle_id: BundleKeyLike | bytes) -> bool: ...

    def update_meta(self, bundle_id: BundleKeyLike | bytes, **changes: Any) -> BundleMeta:
        """Apply field changes atomically (indexes follow); return the new meta.

        ``size``, ``seq`` and ``checksum`` cannot be changed. BundleNotFound / InvalidMeta.
        """
        ...

    def delete(
        self,
        bundle_id: BundleKeyLike | bytes,
        reason: int = ReasonCode.NO_ADDITIONAL_INFORMATION,
        *,
        disposition: Disposition = Disposition.DELETED,
        now_ms: int | None = None,
    ) -> DeletionRecord:
        """Remove the bundle durably, logging disposition and RFC 9171 reason code."""
        ...

    def by_destination(self, destination: str, *, limit: int | None = None) -> list[StoredEntry]:
        """Bundles for a destination EID, in arrival order."""
        ...

    def expiring_before(self, t_ms: int, *, limit: int = 1000) -> list[StoredEntry]:
        """Bundles with ``expiry_ms < t_ms``, soonest first, at most ``limit``."""
        ...

    def queue(self, neighbour: str, *, limit: int | None = None) -> list[StoredEntry]:
        """A neighbour's outbound queue: highest priority first, then arrival order."""
        ...

    def queues(self) -> dict[str, int]:
        """Every non-empty outbound queue and its length."""
        ...

    def pending_local(self, endpoint: str, *, limit: int | None = None) -> list[StoredEntry]:
        """Bundles awaiting delivery to a local application endpoint, in arrival order."""
        ...

    def fragments(self, adu_key: bytes) -> list[StoredEntry]:
        """All stored fragments of one ADU, by fragment offset."""
        ...

    def entries(self, *, limit: int | None = None, after: bytes | None = None) -> list[StoredEntry]:
        """All bundles in key order (``after``: resume after this key)."""
        ...

    def sweep_expired(self, now_ms: int, *, batch: int = 256) -> list[DeletionRecord]:
        """Delete at most ``batch`` bundles whose lifetime has elapsed (reason 1), durably."""
        ...

    def deletions(self, *, since_seq: int = 0, limit: int | None = None) -> list[DeletionRecord]:
        """The bounded deletion log, oldest first, entries with ``seq > since_seq``."""
        ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


def iter_all(
    store: BundleStore, page: int = 1000, *, after: bytes | None = None
) -> Iterator[StoredEntry]:
    """Every entry of ``store`` (after key ``after``, if given) in key order, fetched in pages
    (no long-lived snapshot)."""
    while True:
        batch = store.entries(limit=page, after=after)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].key


def store_summary(store: BundleStore) -> dict[str, Any]:
    """What ``waystation store stats`` shows, offline or through the node: the store's stats,
    a count of bundles per custody state (a walk over the store) and the neighbour queues."""
    s = store.stats()
    states: dict[str, int] = {}
    for e in iter_all(store):
        states[e.meta.state.value] = states.get(e.meta.state.value, 0) + 1
    return {
        "path": s.path,
        "backend": s.backend,
        "count": s.count,
        "bytes": s.bytes,
        "max_count": s.max_count,
        "max_bytes": s.max_bytes,
        "deletions_logged": s.deletions_logged,
        "map_size": s.map_size,
        "map_used": s.map_used,
        "by_state": states,
        "queues": store.queues(),
    }


def resolve_key(store: BundleStore, text: str) -> bytes:
    """A full store key from hex text or a unique hex prefix; raises ``StoreError`` with a
    precise message otherwise (the CLI and the node's store admin operations share it).

    Keys sort like their hex, so the scan starts at the prefix's whole bytes and stops past
    the prefix's range: it reads the matching keys, not the whole store."""
    text = text.strip().lower()
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise StoreError(f"not a hex key: {text[:80]!r}")
    whole = bytes.fromhex(text[: len(text) // 2 * 2])
    if len(text) % 2 == 0 and store.contains(whole):
        return whole
    hits: list[bytes] = []
    for entry in iter_all(store, page=64, after=whole or None):
        h = entry.key.hex()
        if h.startswith(text):
            hits.append(entry.key)
        elif h > text:
            break
    if not hits:
        raise StoreError(f"no bundle with key {text}")
    if len(hits) > 1:
        raise StoreError(f"key prefix {text} is ambiguous ({len(hits)} bundles)")
    return hits[0]

"""Rules shared by every backend: quota arithmetic, meta preparation and index orderings.

Keeping these in one place is what lets the memory reference and the LMDB backend pass one
contract suite: both call the same functions to decide *whether* and *in what order*.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

import cbor2
from waystation.store.api import (
    BundleMeta,
    CustodyState,
    InvalidMeta,
    Priority,
    StoreFull,
)

DTN_EPOCH_UNIX_S = 946684800  # RFC 9171 §4.2.6: 2000-01-01T00:00:00Z
DEFAULT_DELETION_LOG = 10_000
_FROZEN_FIELDS = frozenset({"size", "seq", "checksum"})
_ENUM_FIELDS: dict[str, Any] = {"state": CustodyState, "priority": Priority}
_DELETION_REASON_AT = 14  # index of deletion_reason in BundleMeta.to_cbor_obj()


def dtn_now_ms() -> int:
    """Current DTN time in ms (used only when the caller gives no ``now_ms``)."""
    return int(time.time() * 1000) - DTN_EPOCH_UNIX_S * 1000


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits on what the store may hold; ``None`` means unlimited."""

    max_bytes: int | None = None
    max_count: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_count"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be None or a non-negative int")

    def check(self, count: int, used_bytes: int, adding: int) -> None:
        """Raise StoreFull if one more bundle of ``adding`` bytes would not fit."""
        if self.max_count is not None and count + 1 > self.max_count:
            raise StoreFull(
                f"store full: {count} bundles stored, limit {self.max_count}",
                needed_bytes=adding,
                free_bytes=self.free_bytes(used_bytes),
                count=count,
                max_count=self.max_count,
            )
        if self.max_bytes is not None and used_bytes + adding > self.max_bytes:
            raise StoreFull(
                f"store full: {adding} bytes needed, {self.free_bytes(used_bytes)} free "
                f"of {self.max_bytes}",
                needed_bytes=adding,
                free_bytes=self.free_bytes(used_bytes),
                count=count,
                max_count=self.max_count or 0,
            )

    def free_bytes(self, used_bytes: int) -> int:
        return -1 if self.max_bytes is None else max(0, self.max_bytes - used_bytes)


def check_wire(wire: Any) -> bytes:
    if type(wire) is bytes and wire:
        return wire  # the hot path
    if not isinstance(wire, bytes | bytearray | memoryview):
        raise TypeError(f"wire must be bytes, not {type(wire).__name__}")
    wire = bytes(wire)
    if not wire:
        raise InvalidMeta("empty bundle")
    return wire


def check_meta(meta: Any) -> BundleMeta:
    """Refuse anything but a valid :class:`BundleMeta` (TypeError / InvalidMeta)."""
    if not isinstance(meta, BundleMeta):
        raise TypeError(f"meta must be a BundleMeta, not {type(meta).__name__}")
    meta.validate()
    return meta


def stored_record(meta: BundleMeta, wire: bytes, seq: int) -> tuple[bytes, int]:
    """The CBOR record a backend keeps for a put of ``wire`` as arrival ``seq``, and its CRC.

    Built from the caller's (already validated) meta with the store-owned fields overridden,
    without copying the dataclass: this runs once per put on the hot path.
    """
    checksum = zlib.crc32(wire)
    obj = meta.to_cbor_obj()
    obj[_DELETION_REASON_AT] = None
    obj[-3:] = (len(wire), seq, checksum)
    try:
        return cbor2.dumps(obj), checksum
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidMeta(f"metadata not CBOR-serialisable: {exc}") from exc


def fill_in(meta: BundleMeta, size: int, seq: int, checksum: int) -> BundleMeta:
    """After a successful put: the caller's meta gets the store-owned fields (and enums)."""
    meta.size = size
    meta.seq = seq
    meta.checksum = checksum
    meta.deletion_reason = None
    if meta.state.__class__ is not CustodyState:
        meta.state = CustodyState(meta.state)
    if meta.priority.__class__ is not Priority:
        meta.priority = Priority(meta.priority)
    return meta


def apply_changes(meta: BundleMeta, changes: dict[str, Any]) -> BundleMeta:
    """``meta`` with ``changes`` applied and validated; the store-owned fields are refused."""
    bad = _FROZEN_FIELDS.intersection(changes)
    if bad:
        raise InvalidMeta(f"fields owned by the store cannot be changed: {sorted(bad)}")
    try:
        new = meta.copy(**changes)
    except TypeError as exc:  # unknown field name
        raise InvalidMeta(str(exc)) from None
    for name, enum_type in _ENUM_FIELDS.items():
        if name in changes:
            try:
                setattr(new, name, enum_type(getattr(new, name)))
            except (ValueError, TypeError):
                raise InvalidMeta(f"bad {name}: {changes[name]!r}") from None
    new.validate()
    return new


def check_reason(reason: Any) -> int:
    if not isinstance(reason, int) or isinstance(reason, bool) or not 0 <= reason <= 255:
        raise InvalidMeta(f"reason code must be an int 0..255 (RFC 9171 §6.1.1), not {reason!r}")
    return int(reason)


def queue_order(meta: BundleMeta) -> tuple[int, int]:
    """Outbound queue order: highest priority first, then arrival."""
    return (2 - int(meta.priority), meta.seq)


def fragment_order(meta: BundleMeta) -> tuple[int, int]:
    return (meta.fragment_offset or 0, meta.seq)


def check_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def check_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def check_limit(limit: Any) -> int | None:
    """``None`` (no limit) or a non-negative int (negative counts as zero)."""
    if limit is None:
        return None
    return max(0, check_int(limit, "limit"))


def check_time(value: Any, name: str) -> int:
    """A DTN time in ms, clamped into the unsigned 64-bit range the indexes use."""
    return min(max(0, check_int(value, name)), (1 << 64) - 1)

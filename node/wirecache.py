"""A byte-budgeted cache of the wire form of bundles the node holds.

Why: every bundle the node stores is, moments later, read back -- to transmit it (the
forwarding path) or to hand its payload to an application (delivery). Re-reading it from
LMDB costs a read transaction, a metadata decode and a copy of the whole bundle (1 MiB for a
1 MiB bundle) on the event loop, per bundle; the node already had those exact bytes in memory
when it queued the put. The cache keeps them until the bundle leaves custody.

It is only an optimisation: the store stays the truth. A miss (evicted, or a bundle restored
after a restart) falls back to the store read, so custody semantics do not depend on it. The
budget bounds memory: when a new entry does not fit, the oldest entries go first (bundles are
usually forwarded in arrival order, so the oldest are the least likely to be needed soon).
"""

from __future__ import annotations

__all__ = ["WireCache"]


class WireCache:
    """``key -> wire`` with at most ``max_bytes`` of wire held (insertion-ordered eviction)."""

    __slots__ = ("_entries", "bytes", "hits", "max_bytes", "misses")

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max(0, max_bytes)
        self.bytes = 0
        self._entries: dict[bytes, bytes] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: bytes, wire: bytes) -> None:
        """Remember ``wire`` for ``key`` (replacing any older entry); evict to stay in budget."""
        size = len(wire)
        if size > self.max_bytes:
            self.discard(key)
            return  # larger than the whole budget: the store read is the only option
        self.discard(key)
        entries = self._entries
        while entries and self.bytes + size > self.max_bytes:
            oldest = next(iter(entries))
            self.bytes -= len(entries.pop(oldest))
        entries[key] = wire
        self.bytes += size

    def get(self, key: bytes) -> bytes | None:
        wire = self._entries.get(key)
        if wire is None:
            self.misses += 1
        else:
            self.hits += 1
        return wire

    def discard(self, key: bytes) -> None:
        wire = self._entries.pop(key, None)
        if wire is not None:
            self.bytes -= len(wire)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

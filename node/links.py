"""Links: how convergence-layer adapters plug into the node (docs/node.md, "Links").

A convergence layer (TCPCLv4, UDP, MTCP, ... in ``waystation.convergence``) moves opaque
bundle bytes. The node sees each session/association as a :class:`Link`:

* ``await link.send(wire)`` returns once the peer has acknowledged *all* of the bundle (for
  TCPCLv4, the final XFER_ACK; RFC 9171 §5.4 step 5 then lets the node release it) and
  raises :class:`LinkError` if the transfer failed or was refused; the bundle stays stored.
* the adapter calls ``await handler.bundle_received(link, wire)`` for every bundle it
  receives and should acknowledge it to the peer only after that returns ``True`` (the node
  has stored it durably, or it was a duplicate it already holds). ``False`` means refused
  (store full, undecodable): the adapter should signal a refusal if its protocol can.
* ``handler.link_up(link)`` / ``handler.link_down(link, reason)`` bracket the link's life;
  ``link.peer`` is the neighbour's node ID once known (e.g. from TCPCLv4 SESS_INIT).

Adapters are created from configuration by factories registered per ``kind`` in
:class:`LinkManager`; the in-process :class:`LoopbackLink` is the reference implementation
used by tests and by two nodes living in one process.

Errors: :class:`LinkError` root; :class:`LinkDown` (not connected), :class:`TransferRefused`
(the peer refused the bundle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "LinkError",
    "LinkDown",
    "TransferRefused",
    "Link",
    "LinkHandler",
    "LinkFactory",
    "LinkManager",
    "LoopbackLink",
    "UnknownLinkKind",
]


class LinkError(Exception):
    """Root of link failures: the bundle was not (known to be) delivered to the peer."""


class LinkDown(LinkError):
    """The link is not up."""


class TransferRefused(LinkError):
    """The peer refused the bundle (e.g. its store was full)."""


class UnknownLinkKind(LinkError, ValueError):
    """No factory is registered for this link kind."""


@runtime_checkable
class Link(Protocol):
    """One convergence-layer session to one neighbour.

    Optional attribute ``max_bundle_size: int | None``: the largest bundle the link carries in
    one piece (UDP: one datagram). The service fragments bigger bundles to it before ``send``
    (RFC 9171 §5.8, ``waystation.fragmentation``); absent or None means no limit. It is not a
    Protocol member so links without a limit (TCPCL, MTCP) need not declare it.
    """

    link_id: str
    peer: str | None
    kind: str

    @property
    def is_up(self) -> bool: ...

    async def send(self, wire: bytes) -> None:
        """Transfer one bundle; return when the peer acknowledged all of it (LinkError else)."""
        ...

    async def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """State for ``status`` (kind, peer, address, counters)."""
        ...


class LinkHandler(Protocol):
    """The node side of a link: what adapters call."""

    def link_up(self, link: Link) -> None: ...

    def link_down(self, link: Link, reason: str) -> None: ...

    async def bundle_received(self, link: Link, wire: bytes) -> bool: ...


# (options from the config, handler) -> a started Link (or a listener that produces links).
LinkFactory = Callable[[str, dict[str, Any], LinkHandler], Awaitable[Any]]


@dataclass
class LinkManager:
    """Registry of link factories and live links, owned by the node service."""

    handler: LinkHandler
    factories: dict[str, LinkFactory] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)

    def register_factory(self, kind: str, factory: LinkFactory) -> None:
        self.factories[kind] = factory

    async def open(self, link_id: str, kind: str, options: dict[str, Any]) -> Any:
        factory = self.factories.get(kind)
        if factory is None:
            known = ", ".join(sorted(self.factories)) or "none"
            raise UnknownLinkKind(f"no convergence layer of kind {kind!r} (available: {known})")
        if link_id in self.links:
            raise LinkError(f"link {link_id!r} already exists")
        obj = await factory(link_id, options, self.handler)
        self.links[link_id] = obj
        return obj

    def attach(self, link: Any) -> None:
        """Add a link created elsewhere (tests, a listener's accepted sessions)."""
        self.links[link.link_id] = link

    async def close(self, link_id: str) -> bool:
        obj = self.links.pop(link_id, None)
        if obj is None:
            return False
        await obj.close()
        return True

    async def close_all(self) -> None:
        for link_id in list(self.links):
            await self.close(link_id)


class LoopbackLink:
    """An in-process link between two handlers (two nodes in one event loop).

    ``send`` hands the bytes straight to the peer handler and completes when the peer has
    stored them, which is exactly the acknowledgement semantics a real convergence layer
    gives. ``drop_next`` lets tests simulate a failed transfer.
    """

    kind = "loopback"

    def __init__(self, link_id: str, local: str, peer: str) -> None:
        self.link_id = link_id
        self.local = local
        self.peer: str | None = peer
        self._other: LoopbackLink | None = None
        self._handler: LinkHandler | None = None
        self._up = False
        self.sent = 0
        self.received = 0
        self.drop_next = 0
        # Tests set a limit to exercise fragmentation on forwarding (RFC 9171 §5.8).
        self.max_bundle_size: int | None = None

    @staticmethod
    def pair(
        a_node: str, b_node: str, a_handler: LinkHandler, b_handler: LinkHandler
    ) -> tuple[LoopbackLink, LoopbackLink]:
        """Two connected ends: ``a`` (owned by ``a_handler``) and ``b``; not yet up."""
        a = LoopbackLink(f"loop-{b_node}", a_node, b_node)
        b = LoopbackLink(f"loop-{a_node}", b_node, a_node)
        a._other, b._other = b, a
        a._handler, b._handler = a_handler, b_handler
        return a, b

    @property
    def is_up(self) -> bool:
        return self._up

    def bring_up(self) -> None:
        for end in (self, self._other):
            if end is not None and not end._up:
                end._up = True
                assert end._handler is not None
                end._handler.link_up(end)

    def bring_down(self, reason: str = "closed") -> None:
        for end in (self, self._other):
            if end is not None and end._up:
                end._up = False
                assert end._handler is not None
                end._handler.link_down(end, reason)

    async def send(self, wire: bytes) -> None:
        other = self._other
        if not self._up or other is None or other._handler is None:
            raise LinkDown(f"link {self.link_id} is down")
        if self.drop_next > 0:
            self.drop_next -= 1
            raise LinkError(f"link {self.link_id}: transfer lost (simulated)")
        await asyncio.sleep(0)  # a real link never completes synchronously
        accepted = await other._handler.bundle_received(other, bytes(wire))
        if not accepted:
            raise TransferRefused(f"peer {self.peer} refused the bundle")
        self.sent += 1
        other.received += 1

    async def close(self) -> None:
        self.bring_down("closed")

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.link_id,
            "kind": self.kind,
            "peer": self.peer,
            "up": self._up,
            "sent": self.sent,
            "received": self.received,
        }

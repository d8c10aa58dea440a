"""Originating bundles (RFC 9171 §5.2 "bundle transmission"): :func:`build_bundle`.

The builder fills in what the RFC asks of a source node so callers cannot forget it:

* a unique creation timestamp from a :class:`~waystation.bundle.dtntime.TimestampSource`
  (§4.2.7), or one given explicitly;
* a Bundle Age block (age 0) whenever the creation time is 0, i.e. the node has no accurate
  clock (§4.2.7, §4.4.2), or when asked for;
* a Hop Count block when a hop limit is given (§4.4.3), a Previous Node block when given (§4.4.1);
* the anonymous-bundle rules for a null source (§4.2.3: must-not-fragment, no status reports);
* CRC-32C on every block by default (§4.2.1 requires a CRC on the primary block unless a BIB
  covers it; we protect every block by default since bundles travel over many links).

The result is validated (:func:`~waystation.bundle.validate.validate_bundle`) before returning.
"""

from __future__ import annotations

from collections.abc import Iterable

from .dtntime import CreationTimestamp, TimestampSource
from .eid import DTN_NONE, EndpointID, parse_eid
from .errors import ValidationError
from .model import (
    PAYLOAD_BLOCK_NUMBER,
    BlockFlags,
    BlockType,
    Bundle,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    PrimaryBlock,
)
from .validate import validate_bundle

__all__ = ["DEFAULT_LIFETIME_MS", "build_bundle"]

#: One day; DTN links can be down for hours, so a short default would silently drop traffic.
DEFAULT_LIFETIME_MS = 24 * 3600 * 1000
_REPORTS = int(BundleFlags.status_report_requests())
_ANONYMOUS_FORBIDDEN = _REPORTS | int(BundleFlags.STATUS_TIME_REQUESTED)


def _eid(value: EndpointID | str) -> EndpointID:
    return value if isinstance(value, EndpointID) else parse_eid(value)


def build_bundle(
    source: EndpointID | str,
    destination: EndpointID | str,
    payload: bytes | bytearray | memoryview,
    *,
    lifetime_ms: int = DEFAULT_LIFETIME_MS,
    flags: int = 0,
    crc_type: int = int(CRCType.CRC32C),
    report_to: EndpointID | str | None = None,
    creation: CreationTimestamp | None = None,
    timestamps: TimestampSource | None = None,
    hop_limit: int | None = None,
    previous_node: EndpointID | str | None = None,
    bundle_age_ms: int | None = None,
    extension_blocks: Iterable[CanonicalBlock] = (),
    payload_block_flags: int = 0,
    extension_block_flags: int = int(BlockFlags.REPLICATE_IN_EVERY_FRAGMENT),
) -> Bundle:
    """Build a new, valid bundle.

    Give either ``creation`` or ``timestamps`` (a shared per-node source of unique timestamps).
    ``report_to`` defaults to the source's node ID when status reports are requested, else
    ``dtn:none``. ``bundle_age_ms`` forces a Bundle Age block with that age; one with age 0 is
    added anyway when the creation time is 0. Extension blocks passed in keep their numbers if
    unique; ours take the next free numbers after them.
    """
    if isinstance(payload, bytearray):
        payload = bytes(payload)  # a mutable buffer could change under the bundle
    src = _eid(source)
    dst = _eid(destination)
    if creation is None:
        if timestamps is None:
            raise ValidationError("build_bundle needs a creation timestamp or a TimestampSource")
        creation = timestamps.next()
    flags = int(flags)
    reports = _REPORTS
    if src.is_null:
        # §4.2.3: an anonymous bundle cannot be identified, so nothing may depend on its identity
        if flags & _ANONYMOUS_FORBIDDEN:
            raise ValidationError("an anonymous bundle (source dtn:none) cannot request reports")
        flags |= int(BundleFlags.MUST_NOT_FRAGMENT)
    if report_to is None:
        rpt: EndpointID = src.node_id if (flags & reports and not src.is_null) else DTN_NONE
    else:
        rpt = _eid(report_to)

    blocks = list(extension_blocks)
    used = {b.number for b in blocks} | {PAYLOAD_BLOCK_NUMBER}
    next_number = max(used) + 1

    def number() -> int:
        nonlocal next_number
        n = next_number
        next_number += 1
        return n

    if previous_node is not None:
        blocks.append(
            CanonicalBlock.previous_node(
                _eid(previous_node).node_id, number(), extension_block_flags, crc_type
            )
        )
    if bundle_age_ms is not None or creation.time_ms == 0:
        age = 0 if bundle_age_ms is None else bundle_age_ms
        blocks.append(CanonicalBlock.bundle_age(age, number(), extension_block_flags, crc_type))
    if hop_limit is not None:
        blocks.append(
            CanonicalBlock.hop_count(hop_limit, 0, number(), extension_block_flags, crc_type)
        )
    blocks.append(
        CanonicalBlock(
            BlockType.PAYLOAD, PAYLOAD_BLOCK_NUMBER, payload_block_flags, crc_type, payload
        )
    )
    primary = PrimaryBlock(
        flags=flags,
        crc_type=crc_type,
        destination=dst,
        source=src,
        report_to=rpt,
        creation=creation,
        lifetime_ms=lifetime_ms,
    )
    bundle = Bundle(primary, blocks)
    validate_bundle(bundle)
    return bundle

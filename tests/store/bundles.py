"""Real BPv7 bundles for store tests, built with the project's model and codec (RFC 9171 §4)."""

from __future__ import annotations

from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import IpnEID
from waystation.bundle.model import (
    BlockType,
    Bundle,
    BundleFlags,
    BundleId,
    CanonicalBlock,
    CRCType,
    PrimaryBlock,
)
from waystation.store.api import BundleMeta

__all__ = ["make_bundle", "make_wire", "meta_for"]


def make_bundle(
    seq: int,
    *,
    payload_size: int = 64,
    dest_node: int = 2,
    src_node: int = 1,
    time_ms: int = 800_000_000_000,
    lifetime_ms: int = 3_600_000,
    fragment: tuple[int, int] | None = None,
) -> Bundle:
    """A bundle with a CRC-32C primary block and a payload block of ``payload_size`` bytes.

    ``fragment=(offset, total_adu_length)`` makes it a fragment (§5.8).
    """
    flags = 0
    offset = total = None
    if fragment is not None:
        flags |= BundleFlags.IS_FRAGMENT
        offset, total = fragment
    primary = PrimaryBlock(
        flags=flags,
        crc_type=CRCType.CRC32C,
        destination=IpnEID(dest_node, 1),
        source=IpnEID(src_node, 1),
        report_to=IpnEID(src_node, 0),
        creation=CreationTimestamp(time_ms, seq),
        lifetime_ms=lifetime_ms,
        fragment_offset=offset,
        total_adu_length=total,
    )
    payload = (seq.to_bytes(8, "big") * (payload_size // 8 + 1))[:payload_size]
    block = CanonicalBlock(BlockType.PAYLOAD, 1, 0, CRCType.CRC16, payload)
    return Bundle(primary, [block])


def make_wire(seq: int, **kwargs: object) -> tuple[BundleId, bytes, Bundle]:
    bundle = make_bundle(seq, **kwargs)  # type: ignore[arg-type]
    wire = encode_bundle(bundle)
    decoded = decode_bundle(wire)  # the codec is the only serialiser: round-trip to be sure
    return decoded.bundle_id, wire, decoded


def meta_for(
    bundle: Bundle, *, received_ms: int = 800_000_000_000, **changes: object
) -> BundleMeta:
    return BundleMeta.for_bundle(bundle, received_ms=received_ms, **changes)

"""Per-hop block updates when forwarding a bundle (RFC 9171 §5.4 step 4, §4.4.1-§4.4.3).

:func:`prepare_for_forwarding` returns a copy of a bundle ready to hand to a convergence layer:

* the Previous Node block (§4.4.1) is removed, and - when the node is configured to attach one
  (``local_node`` given) - replaced by one naming this node's node ID;
* the Bundle Age block (§4.4.2), if present, grows by the time the bundle spent here
  (``residence_ms``: now minus reception, or minus creation at the source);
* the Hop Count block (§4.4.3), if present, counts this hop.

The input bundle is not modified (the stored copy stays as received); the payload is shared, not
copied. :func:`hop_limit_exceeded` and :func:`is_expired` are the matching checks a node runs
before forwarding (delete with "Hop limit exceeded" / "Lifetime expired").
"""

from __future__ import annotations

from dataclasses import replace

from .eid import EndpointID
from .errors import ValidationError
from .model import (
    BlockType,
    Bundle,
    CanonicalBlock,
    CRCType,
    bundle_age_data,
    hop_count_data,
    parse_bundle_age,
    parse_hop_count,
    previous_node_data,
)

__all__ = ["hop_limit_exceeded", "is_expired", "prepare_for_forwarding"]


def prepare_for_forwarding(
    bundle: Bundle,
    *,
    residence_ms: int,
    local_node: EndpointID | None = None,
    count_hop: bool = True,
    previous_node_crc_type: int = CRCType.CRC32C,
) -> Bundle:
    """A copy of ``bundle`` with its Previous Node, Bundle Age and Hop Count blocks updated."""
    if residence_ms < 0:
        raise ValidationError(f"negative residence time {residence_ms} ms")
    blocks: list[CanonicalBlock] = []
    old_previous: CanonicalBlock | None = None
    for block in bundle.blocks:
        btype = block.block_type
        if btype == BlockType.PREVIOUS_NODE:
            old_previous = block
            continue
        if btype == BlockType.BUNDLE_AGE:
            age = parse_bundle_age(block.data) + residence_ms
            block = replace(block, data=bundle_age_data(age))
        elif btype == BlockType.HOP_COUNT and count_hop:
            limit, count = parse_hop_count(block.data)
            block = replace(block, data=hop_count_data(limit, count + 1))
        elif btype != BlockType.PAYLOAD:
            block = replace(block)
        blocks.append(block)
    if local_node is not None:
        data = previous_node_data(local_node.node_id)
        if old_previous is not None:  # keep its number, flags and CRC type
            new = replace(old_previous, data=data)
        else:
            number = max(b.number for b in bundle.blocks) + 1
            new = CanonicalBlock(BlockType.PREVIOUS_NODE, number, 0, previous_node_crc_type, data)
        blocks.insert(0, new)  # conventionally first after the primary block
    return Bundle(replace(bundle.primary), blocks)


def hop_limit_exceeded(bundle: Bundle) -> bool:
    """True when the hop count exceeds the hop limit (§4.4.3: delete, "Hop limit exceeded")."""
    hop = bundle.hop_count
    return hop is not None and hop.exceeded


def is_expired(bundle: Bundle, now_ms: int, *, received_ms: int | None = None) -> bool:
    """True when the bundle's lifetime has passed at DTN time ``now_ms`` (§4.2.8, §5.10).

    For a bundle without a creation time the expiry is computed from its Bundle Age block as it
    was when received at ``received_ms``; without that information it is never considered
    expired here (the node should then track the age locally).
    """
    expiry = bundle.expiry_ms(received_ms)
    return expiry is not None and now_ms >= expiry

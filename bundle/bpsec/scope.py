"""What a security context sees of the bundle when it protects or checks one target.

RFC 9173 §3.7 (IPPT) and §4.7.2 (AAD) and the COSE context's external AAD all draw on the same
few things: the canonical primary block, the target block's header and data, the security
block's header and the security source. :class:`OperationScope` carries exactly those, so the
contexts never touch the bundle model and stay testable on raw bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from waystation.bundle.cborhead import encode_uint
from waystation.bundle.eid import EndpointID

__all__ = ["BlockView", "OperationScope", "block_metadata"]


@dataclass(frozen=True, slots=True)
class BlockView:
    """A canonical block as security processing sees it (CRC fields deliberately absent)."""

    block_type: int
    number: int
    flags: int
    data: bytes | memoryview  # zero-copy view into a decoded bundle is fine


def block_metadata(block_type: int, number: int, flags: int) -> bytes:
    """Type code, block number and processing flags as three CBOR uints with no framing.

    This is the "block header" of RFC 9173 §3.7/§4.7.2 and the "block-metadata" group of the
    COSE context's AAD.
    """
    return encode_uint(block_type) + encode_uint(number) + encode_uint(flags)


@dataclass(frozen=True, slots=True)
class OperationScope:
    """Inputs for one security operation on one target."""

    #: Canonical (deterministic) encoding of the primary block, CBOR array head included.
    primary: bytes
    #: Block number of the target; 0 means the primary block.
    target_number: int
    #: The target block (``None`` when the target is the primary block).
    target: BlockView | None
    #: Header of the security block that carries (or will carry) this operation.
    security_type: int
    security_number: int
    security_flags: int
    #: Security source of the ASB.
    source: EndpointID
    #: Every canonical block by number (for COSE AAD scopes naming other blocks).
    blocks: Mapping[int, BlockView] = field(default_factory=dict)

    @property
    def target_data(self) -> bytes | memoryview:
        """The bytes a context protects: target BTSD, or the encoded primary block."""
        return self.primary if self.target is None else self.target.data

    @property
    def security_metadata(self) -> bytes:
        return block_metadata(self.security_type, self.security_number, self.security_flags)

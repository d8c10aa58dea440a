"""The BPv7 bundle model (RFC 9171 §4): flags, blocks, bundles and bundle identity.

The model is deliberately light: ``__slots__`` dataclasses without validation in ``__init__``, so
the decoder (and its Cython twin) can build a bundle in a few microseconds. Rules of RFC 9171 are
checked by the codec when decoding and encoding (:mod:`waystation.bundle.validate`), not here.

Flag and CRC-type fields hold plain ``int`` values as decoded; compare them with the IntFlag /
IntEnum members below (``bundle.primary.flags & BundleFlags.IS_FRAGMENT``), which are ints too.

Block data (``CanonicalBlock.data``) is the block-type-specific data: the *content* of the CBOR
byte string, not its encoding. A decoded bundle's data may be a ``memoryview`` into the input
buffer (zero-copy); ``bytes`` and ``memoryview`` with equal content compare equal.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import NamedTuple

from .cborhead import INDEFINITE, MAJOR_UINT, encode_head, read_array_head, read_head
from .dtntime import CreationTimestamp
from .eid import EndpointID, decode_eid_cbor, eid_from_cbor
from .errors import DecodeError, ValidationError

__all__ = [
    "BP_VERSION",
    "BlockFlags",
    "BlockType",
    "Bundle",
    "BundleFlags",
    "BundleId",
    "CRCType",
    "CanonicalBlock",
    "HopCount",
    "PAYLOAD_BLOCK_NUMBER",
    "PrimaryBlock",
    "bundle_age_data",
    "hop_count_data",
    "parse_bundle_age",
    "parse_hop_count",
    "parse_previous_node",
    "previous_node_data",
]

BP_VERSION = 7
#: §4.3.3: the payload block is always block number 1.
PAYLOAD_BLOCK_NUMBER = 1


class BundleFlags(IntFlag):
    """Bundle processing control flags (§4.2.3). Bits 3-4, 7-13, 15, 19-20 are reserved."""

    NONE = 0
    IS_FRAGMENT = 0x000001
    ADMIN_RECORD = 0x000002
    MUST_NOT_FRAGMENT = 0x000004
    ACK_REQUESTED = 0x000020  # user application acknowledgement requested
    STATUS_TIME_REQUESTED = 0x000040  # status time requested in reports
    REPORT_RECEPTION = 0x004000
    REPORT_FORWARDING = 0x010000
    REPORT_DELIVERY = 0x020000
    REPORT_DELETION = 0x040000

    @classmethod
    def status_report_requests(cls) -> BundleFlags:
        return (
            cls.REPORT_RECEPTION | cls.REPORT_FORWARDING | cls.REPORT_DELIVERY | cls.REPORT_DELETION
        )


#: Bits that RFC 9171 §4.2.3 marks reserved; set bits are preserved but never acted upon.
BUNDLE_FLAGS_RESERVED = 0x18 | 0x3F80 | 0x8000 | 0x180000


class BlockFlags(IntFlag):
    """Block processing control flags (§4.2.4). Bits 3, 5 and 6 are reserved."""

    NONE = 0
    REPLICATE_IN_EVERY_FRAGMENT = 0x01
    REPORT_IF_UNPROCESSABLE = 0x02
    DELETE_BUNDLE_IF_UNPROCESSABLE = 0x04
    DISCARD_IF_UNPROCESSABLE = 0x10


class CRCType(IntEnum):
    """CRC type codes (§4.2.1)."""

    NONE = 0
    CRC16 = 1  # CRC-16/X.25
    CRC32C = 2  # CRC-32 Castagnoli

    @property
    def size(self) -> int:
        return (0, 2, 4)[self]


class BlockType(IntEnum):
    """Block type codes: RFC 9171 §4.3.1, §4.4 and RFC 9172 §3.10."""

    PAYLOAD = 1
    PREVIOUS_NODE = 6
    BUNDLE_AGE = 7
    HOP_COUNT = 10
    BLOCK_INTEGRITY = 11  # BIB, RFC 9172
    BLOCK_CONFIDENTIALITY = 12  # BCB, RFC 9172


@dataclass(slots=True)
class PrimaryBlock:
    """The primary block (§4.3.1), fields in wire order; ``version`` is always 7.

    ``fragment_offset`` and ``total_adu_length`` are set iff ``flags`` has IS_FRAGMENT.
    """

    flags: int
    crc_type: int
    destination: EndpointID
    source: EndpointID
    report_to: EndpointID
    creation: CreationTimestamp
    lifetime_ms: int
    fragment_offset: int | None = None
    total_adu_length: int | None = None
    version: int = BP_VERSION

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags & 1)


@dataclass(slots=True)
class CanonicalBlock:
    """A canonical block (§4.3.2); ``data`` is the block-type-specific data (BTSD)."""

    block_type: int
    number: int
    flags: int
    crc_type: int
    data: bytes | memoryview

    def __repr__(self) -> str:
        raw = bytes(self.data[:16])
        more = "…" if len(self.data) > 16 else ""
        return (
            f"CanonicalBlock(block_type={self.block_type}, number={self.number}, "
            f"flags={self.flags:#x}, crc_type={self.crc_type}, data={raw!r}{more} "
            f"[{len(self.data)} B])"
        )

    # --- typed constructors for the extension blocks of §4.4 -------------------------------

    @classmethod
    def previous_node(
        cls, node: EndpointID, number: int, flags: int = 0, crc_type: int = CRCType.NONE
    ) -> CanonicalBlock:
        """Previous Node block (§4.4.1)."""
        return cls(BlockType.PREVIOUS_NODE, number, flags, crc_type, previous_node_data(node))

    @classmethod
    def bundle_age(
        cls, age_ms: int, number: int, flags: int = 0, crc_type: int = CRCType.NONE
    ) -> CanonicalBlock:
        """Bundle Age block (§4.4.2)."""
        return cls(BlockType.BUNDLE_AGE, number, flags, crc_type, bundle_age_data(age_ms))

    @classmethod
    def hop_count(
        cls, limit: int, count: int, number: int, flags: int = 0, crc_type: int = CRCType.NONE
    ) -> CanonicalBlock:
        """Hop Count block (§4.4.3)."""
        return cls(BlockType.HOP_COUNT, number, flags, crc_type, hop_count_data(limit, count))


class HopCount(NamedTuple):
    """Content of a Hop Count block (§4.4.3)."""

    limit: int
    count: int  # type: ignore[assignment]  # the RFC's name; shadows tuple.count on purpose

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


def _uint(value: int) -> bytes:
    if value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        raise ValidationError(f"{value} is not a CBOR unsigned integer (0..2^64-1)")
    return encode_head(MAJOR_UINT, value)


def previous_node_data(node: EndpointID) -> bytes:
    """BTSD of a Previous Node block: the node ID as a CBOR EID (§4.4.1)."""
    return node.to_cbor()


def parse_previous_node(data: bytes | memoryview) -> EndpointID:
    """Decode a Previous Node block's BTSD; offsets in errors are relative to ``data``."""
    return eid_from_cbor(data)


def bundle_age_data(age_ms: int) -> bytes:
    """BTSD of a Bundle Age block: the age in ms as a CBOR unsigned integer (§4.4.2)."""
    return _uint(age_ms)


def parse_bundle_age(data: bytes | memoryview) -> int:
    major, value, end = read_head(data, 0)
    if major != MAJOR_UINT or value == INDEFINITE:
        raise DecodeError(0, "bundle age must be an unsigned integer")
    if end != len(data):
        raise DecodeError(end, "trailing bytes after bundle age")
    return value


def hop_count_data(limit: int, count: int) -> bytes:
    """BTSD of a Hop Count block: CBOR ``[hop limit, hop count]`` (§4.4.3)."""
    return b"\x82" + _uint(limit) + _uint(count)


def parse_hop_count(data: bytes | memoryview) -> HopCount:
    n, pos = read_array_head(data, 0, "hop count")
    if n != 2:
        raise DecodeError(0, f"hop count must be an array of 2 items, not {n}")
    values = []
    for _ in range(2):
        at = pos
        major, value, pos = read_head(data, pos)
        if major != MAJOR_UINT or value == INDEFINITE:
            raise DecodeError(at, "hop limit/count must be unsigned integers")
        values.append(value)
    if pos != len(data):
        raise DecodeError(pos, "trailing bytes after hop count")
    return HopCount(values[0], values[1])


@dataclass(slots=True)
class Bundle:
    """A bundle: the primary block and the canonical blocks, the payload block last (§4.1)."""

    primary: PrimaryBlock
    blocks: list[CanonicalBlock] = field(default_factory=list)

    @property
    def payload_block(self) -> CanonicalBlock:
        if self.blocks and self.blocks[-1].block_type == BlockType.PAYLOAD:
            return self.blocks[-1]
        for block in self.blocks:
            if block.block_type == BlockType.PAYLOAD:
                return block
        raise ValidationError("bundle has no payload block")

    @property
    def payload(self) -> bytes | memoryview:
        return self.payload_block.data

    @property
    def is_fragment(self) -> bool:
        return bool(self.primary.flags & 1)

    @property
    def is_admin_record(self) -> bool:
        return bool(self.primary.flags & 2)

    @property
    def bundle_id(self) -> BundleId:
        p = self.primary
        if p.flags & 1:  # IS_FRAGMENT (plain int: faster than IntFlag)
            return BundleId(p.source, p.creation, p.fragment_offset, len(self.payload))
        return BundleId(p.source, p.creation)

    def block_by_number(self, number: int) -> CanonicalBlock | None:
        for block in self.blocks:
            if block.number == number:
                return block
        return None

    def block_by_type(self, block_type: int) -> CanonicalBlock | None:
        """The first block of ``block_type`` (extension blocks of §4.4 occur at most once)."""
        for block in self.blocks:
            if block.block_type == block_type:
                return block
        return None

    def blocks_of_type(self, block_type: int) -> list[CanonicalBlock]:
        return [b for b in self.blocks if b.block_type == block_type]

    def next_block_number(self) -> int:
        """An unused block number for a new extension block (never 0 or 1)."""
        return max((b.number for b in self.blocks), default=1) + 1 if self.blocks else 2

    @property
    def previous_node(self) -> EndpointID | None:
        block = self.block_by_type(BlockType.PREVIOUS_NODE)
        return None if block is None else parse_previous_node(block.data)

    @property
    def bundle_age_ms(self) -> int | None:
        block = self.block_by_type(BlockType.BUNDLE_AGE)
        return None if block is None else parse_bundle_age(block.data)

    @property
    def hop_count(self) -> HopCount | None:
        block = self.block_by_type(BlockType.HOP_COUNT)
        return None if block is None else parse_hop_count(block.data)

    def expiry_ms(self, received_ms: int | None = None) -> int | None:
        """DTN time (ms) at which the bundle's lifetime ends (§4.2.8).

        With a creation time this is creation + lifetime. Without one (time 0, §4.2.7) the age
        comes from the Bundle Age block: pass ``received_ms`` (local DTN time when the bundle,
        carrying that age, was received) to get ``received_ms - age + lifetime``; otherwise the
        expiry is unknown and ``None`` is returned.
        """
        p = self.primary
        if p.creation.time_ms:
            return p.creation.time_ms + p.lifetime_ms
        if received_ms is None:
            return None
        age = self.bundle_age_ms
        if age is None:
            return None
        return received_ms - age + p.lifetime_ms


_KEY_TAIL = struct.Struct(">QQ")


@dataclass(frozen=True, slots=True, order=False)
class BundleId:
    """What makes a bundle unique (§4.2.7 / §5.9): source, creation timestamp and, for a
    fragment, its offset and payload length.

    :meth:`key` gives a deterministic byte key that sorts by source (CBOR encoding), then
    creation time, then sequence number, then fragment offset and length; a whole bundle sorts
    before its fragments.
    """

    source: EndpointID
    creation: CreationTimestamp
    fragment_offset: int | None = None
    fragment_length: int | None = None

    @property
    def is_fragment(self) -> bool:
        return self.fragment_offset is not None

    def key(self) -> bytes:
        """``EID CBOR || time(8) || seq(8) [|| offset(8) || length(8)]``, integers big-endian."""
        base = self.source.to_cbor() + _KEY_TAIL.pack(self.creation.time_ms, self.creation.sequence)
        if self.fragment_offset is None:
            return base
        return base + _KEY_TAIL.pack(self.fragment_offset, self.fragment_length or 0)

    @classmethod
    def from_key(cls, key: bytes) -> BundleId:
        try:
            source, pos = decode_eid_cbor(key, 0)
        except ValidationError as exc:
            raise ValidationError(f"bad bundle ID key: {exc.reason}") from None
        rest = len(key) - pos
        if rest not in (16, 32):
            raise DecodeError(pos, f"bad bundle ID key length (tail of {rest} bytes)")
        t, seq = _KEY_TAIL.unpack_from(key, pos)
        if rest == 16:
            return cls(source, CreationTimestamp(t, seq))
        off, length = _KEY_TAIL.unpack_from(key, pos + 16)
        return cls(source, CreationTimestamp(t, seq), off, length)

    def __str__(self) -> str:
        text = f"{self.source} @{self.creation.time_ms}.{self.creation.sequence}"
        if self.fragment_offset is not None:
            text += f" [{self.fragment_offset}+{self.fragment_length}]"
        return text

"""RFC 9171 §4/§5 rules that a well-formed bundle must also satisfy.

:func:`validate_bundle` checks a model :class:`~waystation.bundle.model.Bundle` and raises
:class:`~waystation.bundle.errors.ValidationError` (or a subclass) naming the broken rule. The
codec runs it on every decoded bundle (unless told not to); the builder runs it on what it builds.
The rules, with the sections that state them:

1. ``version`` is 7 (§4.3.1).
2. Exactly one payload block, block number 1, and it is the last block (§4.1, §4.3.3).
3. Block numbers are unique and non-zero (§4.3.2: 0 would be the primary block).
4. CRC types are 0, 1 or 2 (§4.2.1); the primary block has a CRC unless a Block Integrity Block
   targets it (§4.3.1).
5. Fragment offset and total ADU length are present iff the IS_FRAGMENT flag is set, and the
   fragment lies inside the ADU (§4.3.1, §5.8).
6. An administrative record never requests status reports (§4.2.3).
7. A bundle with the null source is anonymous: MUST_NOT_FRAGMENT is set and no status reports
   are requested (§4.2.3). We also treat "status time requested" as such a request (it only has
   meaning inside status reports), as other strict implementations do.
8. Previous Node, Bundle Age and Hop Count blocks occur at most once each and their data is well
   formed (§4.4.1-§4.4.3); the hop limit is 1..255 (§4.4.3).
9. Creation time 0 (no clock) requires a Bundle Age block (§4.2.7, §4.4.2).
10. Integers fit in 64 bits; EIDs are EndpointID objects.
"""

from __future__ import annotations

from .cborhead import INDEFINITE, MAJOR_ARRAY, MAJOR_UINT, read_head
from .eid import EndpointID
from .errors import BundleError, ValidationError
from .model import (
    BP_VERSION,
    BlockType,
    Bundle,
    BundleFlags,
    parse_bundle_age,
    parse_hop_count,
    parse_previous_node,
)

__all__ = ["bib_targets", "validate_bundle"]

_U64 = 0xFFFFFFFFFFFFFFFF
_REPORT_FLAGS = int(BundleFlags.status_report_requests())
_IS_FRAGMENT = int(BundleFlags.IS_FRAGMENT)
_ADMIN_RECORD = int(BundleFlags.ADMIN_RECORD)
_MUST_NOT_FRAGMENT = int(BundleFlags.MUST_NOT_FRAGMENT)
_ANONYMOUS_FORBIDDEN = _REPORT_FLAGS | int(BundleFlags.STATUS_TIME_REQUESTED)
_ONCE = (BlockType.PREVIOUS_NODE, BlockType.BUNDLE_AGE, BlockType.HOP_COUNT)


def bib_targets(data: bytes | memoryview) -> list[int] | None:
    """The security target list (first item of the ASB, RFC 9172 §3.6) of a BIB/BCB's data.

    Returns ``None`` when the data does not start with an array of unsigned integers; full ASB
    parsing is the job of ``waystation.bundle.bpsec``.
    """
    try:
        major, count, pos = read_head(data, 0)
        if major != MAJOR_ARRAY or count == INDEFINITE or count > len(data):
            return None
        targets = []
        for _ in range(count):
            major, value, pos = read_head(data, pos)
            if major != MAJOR_UINT or value == INDEFINITE:
                return None
            targets.append(value)
        return targets
    except BundleError:
        return None


def _is_u64(value: object) -> bool:
    return isinstance(value, int) and 0 <= value <= _U64


def validate_bundle(bundle: Bundle) -> None:
    """Raise :class:`ValidationError` if ``bundle`` breaks a rule listed in the module doc."""
    p = bundle.primary
    if p.version != BP_VERSION:
        raise ValidationError(f"unsupported bundle protocol version {p.version}")
    if not (
        isinstance(p.destination, EndpointID)
        and isinstance(p.source, EndpointID)
        and isinstance(p.report_to, EndpointID)
    ):
        for name in ("destination", "source", "report_to"):
            if not isinstance(getattr(p, name), EndpointID):
                raise ValidationError(f"primary block {name} is not an EndpointID")
    creation = p.creation
    if not (
        isinstance(creation, tuple)
        and len(creation) == 2
        and _is_u64(p.flags)
        and _is_u64(p.lifetime_ms)
        and _is_u64(creation[0])
        and _is_u64(creation[1])
    ):
        if not isinstance(creation, tuple) or len(creation) != 2:
            raise ValidationError("creation timestamp must be a (time_ms, sequence) pair")
        for name, value in (
            ("flags", p.flags),
            ("lifetime", p.lifetime_ms),
            ("creation time", creation[0]),
            ("sequence number", creation[1]),
        ):
            if not _is_u64(value):
                raise ValidationError(
                    f"primary block {name} {value!r} is not a 64-bit unsigned int"
                )
    if p.crc_type not in (0, 1, 2):
        raise ValidationError(f"primary block has unknown CRC type {p.crc_type}")

    flags = p.flags
    if flags & _IS_FRAGMENT:
        if p.fragment_offset is None or p.total_adu_length is None:
            raise ValidationError("IS_FRAGMENT set but fragment offset/total ADU length missing")
    elif p.fragment_offset is not None or p.total_adu_length is not None:
        raise ValidationError("fragment offset/total ADU length present without IS_FRAGMENT")
    if flags & _ADMIN_RECORD and flags & _REPORT_FLAGS:
        raise ValidationError("an administrative record must not request status reports")
    if p.source.is_null:
        if not flags & _MUST_NOT_FRAGMENT:
            raise ValidationError("anonymous bundle (null source) must set MUST_NOT_FRAGMENT")
        if flags & _ANONYMOUS_FORBIDDEN:
            raise ValidationError("anonymous bundle (null source) must not request status reports")

    blocks = bundle.blocks
    if not blocks:
        raise ValidationError("bundle has no payload block")
    seen_numbers: set[int] = set()
    seen_once: set[int] = set()
    payloads = 0
    primary_protected = False
    for block in blocks:
        number = block.number
        btype = block.block_type
        if not 0 <= btype <= _U64 or not 0 <= block.flags <= _U64:
            raise ValidationError(f"block {number}: type/flags out of range")
        if number in seen_numbers:
            raise ValidationError(f"duplicate block number {number}")
        if not 1 <= number <= _U64:
            raise ValidationError(f"block number {number} is not allowed (0 is the primary block)")
        seen_numbers.add(number)
        if block.crc_type not in (0, 1, 2):
            raise ValidationError(f"block {number} has unknown CRC type {block.crc_type}")
        if btype == BlockType.PAYLOAD:
            payloads += 1
            if number != 1:
                raise ValidationError(f"payload block has number {number}, must be 1")
        elif number == 1:
            raise ValidationError("block number 1 is reserved for the payload block")
        elif btype in _ONCE:
            if btype in seen_once:
                raise ValidationError(f"more than one block of type {btype}")
            seen_once.add(btype)
            _check_extension(btype, block.data, number)
        elif btype == BlockType.BLOCK_INTEGRITY and not primary_protected:
            targets = bib_targets(block.data)
            primary_protected = targets is not None and 0 in targets
    if payloads != 1:
        raise ValidationError(f"bundle has {payloads} payload blocks, must have exactly 1")
    if blocks[-1].block_type != BlockType.PAYLOAD:
        raise ValidationError("the payload block must be the last block")
    if p.crc_type == 0 and not primary_protected:
        raise ValidationError("primary block has no CRC and no BIB targets it (RFC 9171 §4.3.1)")
    if p.creation[0] == 0 and BlockType.BUNDLE_AGE not in seen_once:
        raise ValidationError("creation time 0 (no clock) requires a Bundle Age block (§4.2.7)")
    if flags & _IS_FRAGMENT:
        assert p.fragment_offset is not None and p.total_adu_length is not None
        if not 0 <= p.fragment_offset <= _U64 or not 0 <= p.total_adu_length <= _U64:
            raise ValidationError("fragment offset/total ADU length out of range")
        if p.fragment_offset + len(blocks[-1].data) > p.total_adu_length:
            raise ValidationError(
                f"fragment [{p.fragment_offset}+{len(blocks[-1].data)}] extends past the "
                f"total ADU length {p.total_adu_length}"
            )


def _check_extension(btype: int, data: bytes | memoryview, number: int) -> None:
    try:
        if btype == BlockType.PREVIOUS_NODE:
            parse_previous_node(data)
        elif btype == BlockType.BUNDLE_AGE:
            parse_bundle_age(data)
        else:
            hop = parse_hop_count(data)
            if not 1 <= hop.limit <= 255:
                raise ValidationError(f"hop limit {hop.limit} outside 1..255 (§4.4.3)")
    except ValidationError:
        raise
    except BundleError as exc:
        reason = getattr(exc, "reason", str(exc))
        raise ValidationError(
            f"malformed data in block {number} (type {btype}): {reason}"
        ) from None

"""What to do with extension blocks this node cannot process (RFC 9171 §4.2.4, §5.6 step 4).

:func:`unprocessable_block_verdict` is a pure function: given a bundle and the set of block
types the node understands, it returns a :class:`BlockVerdict` saying whether the bundle must be
deleted (reason "Block unsupported"), which blocks to remove, and whether a reception status
report with reason "Block unsupported" should be sent. The agent applies the verdict
(:func:`apply_verdict` does the block removal) and decides about reports (status reporting
enabled, report-to not null, ...).

Per §5.6 step 4, for each unprocessable block:

* REPORT_IF_UNPROCESSABLE -> a report is requested;
* DELETE_BUNDLE_IF_UNPROCESSABLE -> delete the bundle (this wins over everything else);
* else DISCARD_IF_UNPROCESSABLE -> remove the block;
* else keep the block unchanged (it is forwarded byte-for-byte).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

from .admin import StatusReportReason
from .model import BlockFlags, BlockType, Bundle

__all__ = ["KNOWN_BLOCK_TYPES", "BlockVerdict", "apply_verdict", "unprocessable_block_verdict"]

#: Block types this library itself understands (RFC 9171 §4.3.3, §4.4; RFC 9172 BIB/BCB).
KNOWN_BLOCK_TYPES: frozenset[int] = frozenset(int(t) for t in BlockType)


@dataclass(frozen=True, slots=True)
class BlockVerdict:
    """The outcome of §5.6 step 4 for one bundle."""

    delete_bundle: bool = False
    remove_blocks: tuple[int, ...] = ()  # block numbers to discard
    report_requested: bool = False
    unprocessable: tuple[int, ...] = ()  # block numbers of every unprocessable block
    reason: int = StatusReportReason.BLOCK_UNSUPPORTED
    details: list[str] = field(default_factory=list, compare=False)

    @property
    def keep_unchanged(self) -> bool:
        return not (self.delete_bundle or self.remove_blocks)


def unprocessable_block_verdict(
    bundle: Bundle, known_types: Collection[int] = KNOWN_BLOCK_TYPES
) -> BlockVerdict:
    """Decide per §5.6 step 4 what to do about blocks whose type is not in ``known_types``."""
    delete = False
    report = False
    remove: list[int] = []
    unknown: list[int] = []
    details: list[str] = []
    for block in bundle.blocks:
        if block.block_type == BlockType.PAYLOAD or block.block_type in known_types:
            continue
        unknown.append(block.number)
        flags = block.flags
        if flags & BlockFlags.REPORT_IF_UNPROCESSABLE:
            report = True
        if flags & BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE:
            delete = True
            details.append(f"block {block.number} (type {block.block_type}) requires deletion")
        elif flags & BlockFlags.DISCARD_IF_UNPROCESSABLE:
            remove.append(block.number)
            details.append(f"block {block.number} (type {block.block_type}) discarded")
    return BlockVerdict(
        delete_bundle=delete,
        remove_blocks=() if delete else tuple(remove),
        report_requested=report,
        unprocessable=tuple(unknown),
        details=details,
    )


def apply_verdict(bundle: Bundle, verdict: BlockVerdict) -> Bundle:
    """A copy of ``bundle`` without the blocks the verdict removes (the input is not changed)."""
    if verdict.delete_bundle:
        raise ValueError("the verdict deletes this bundle; there is nothing to apply")
    if not verdict.remove_blocks:
        return bundle
    drop = set(verdict.remove_blocks)
    return Bundle(replace(bundle.primary), [b for b in bundle.blocks if b.number not in drop])

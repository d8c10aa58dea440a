"""Bundle fragmentation (RFC 9171 §5.8) and ADU reassembly (§5.9).

Fragmentation rules implemented by :func:`split_bundle` / :func:`fragment_bundle`:

* never when the primary block says MUST_NOT_FRAGMENT (:class:`ValidationError`);
* the fragments' payloads are ``payload[:N]`` and ``payload[N:]`` with ``0 < N < M``, as zero-copy
  ``memoryview`` slices of the original payload;
* each fragment's primary block is the original's with IS_FRAGMENT set, the fragment offset
  (relative to the *original* ADU, so re-fragmenting a fragment works) and total ADU length; its
  CRC is recomputed by the encoder. An original without a primary-block CRC relies on a BIB
  targeting the primary (§4.3.1: the CRC is omitted if and only if one does); a fragment that
  does not carry such a BIB (it is not replicated into every fragment) gets a CRC-32C instead,
  or it would be an invalid bundle;
* the fragment with offset 0 (when the original is whole, or is itself the offset-0 fragment)
  gets every extension block; every other fragment gets only the blocks flagged
  REPLICATE_IN_EVERY_FRAGMENT. When a fragment with a non-zero offset is split again, its
  non-replicated blocks stay with its first piece (RFC 9171 leaves this case to the block specs).
* extension blocks are copied, never shared, so per-fragment updates (hop count, age) are safe.

Reassembly (:func:`reassemble`, :class:`Reassembler`): fragments with the same source and creation
timestamp whose *material extents* cover ``[0, total ADU length)`` reassemble into the original
bundle: the offset-0 fragment's blocks with the whole ADU as payload. Overlapping extents are
allowed (different fragmentation episodes) but must agree byte for byte, else
:class:`ReassemblyError` (corruption would otherwise be delivered silently).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .codec import encode_bundle
from .dtntime import CreationTimestamp
from .eid import EndpointID
from .errors import ReassemblyError, ValidationError
from .model import (
    BlockFlags,
    BlockType,
    Bundle,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    PrimaryBlock,
)
from .validate import bib_targets

__all__ = ["Reassembler", "encoded_size", "fragment_bundle", "reassemble", "split_bundle"]


def _head_len(n: int) -> int:
    return 1 if n < 24 else 2 if n < 0x100 else 3 if n < 0x10000 else 5 if n < 2**32 else 9


def _fragment(
    bundle: Bundle, start: int, end: int, blocks: list[CanonicalBlock], total: int, base: int
) -> Bundle:
    p = bundle.primary
    crc_type = p.crc_type
    if crc_type == CRCType.NONE and not any(_protects_primary(b) for b in blocks):
        crc_type = CRCType.CRC32C  # §4.3.1: without a BIB over it the primary needs a CRC
    primary = replace(
        p,
        flags=p.flags | BundleFlags.IS_FRAGMENT,
        crc_type=crc_type,
        fragment_offset=base + start,
        total_adu_length=total,
    )
    payload_block = bundle.payload_block
    view = payload_block.data
    view = view if isinstance(view, memoryview) else memoryview(view)
    payload = replace(payload_block, data=view[start:end])
    return Bundle(primary, [replace(b) for b in blocks] + [payload])


def _protects_primary(block: CanonicalBlock) -> bool:
    """Is ``block`` a BIB with the primary block (number 0) among its targets?"""
    if block.block_type != BlockType.BLOCK_INTEGRITY:
        return False
    targets = bib_targets(block.data)
    return targets is not None and 0 in targets


def _origin(bundle: Bundle) -> tuple[int, int]:
    """(offset of this bundle's payload in the original ADU, total ADU length)."""
    p = bundle.primary
    if bundle.is_fragment:
        assert p.fragment_offset is not None and p.total_adu_length is not None
        return p.fragment_offset, p.total_adu_length
    return 0, len(bundle.payload)


def _check_fragmentable(bundle: Bundle) -> None:
    if bundle.primary.flags & BundleFlags.MUST_NOT_FRAGMENT:
        raise ValidationError("bundle must not be fragmented (§4.2.3)")


def split_bundle(bundle: Bundle, n: int) -> tuple[Bundle, Bundle]:
    """Split into two fragments whose payloads are the first ``n`` and the remaining bytes."""
    _check_fragmentable(bundle)
    m = len(bundle.payload)
    if not 0 < n < m:
        raise ValidationError(f"split point {n} must satisfy 0 < n < payload length {m}")
    base, total = _origin(bundle)
    extensions = [b for b in bundle.blocks if b.block_type != BlockType.PAYLOAD]
    replicated = [b for b in extensions if b.flags & BlockFlags.REPLICATE_IN_EVERY_FRAGMENT]
    first = _fragment(bundle, 0, n, extensions, total, base)
    second = _fragment(bundle, n, m, replicated, total, base)
    return first, second


def fragment_bundle(bundle: Bundle, max_bundle_size: int) -> list[Bundle]:
    """Fragment ``bundle`` so that every fragment encodes to at most ``max_bundle_size`` bytes.

    A bundle that already fits is returned unchanged as a one-element list.
    """
    if encoded_size(bundle) <= max_bundle_size:
        return [bundle]
    _check_fragmentable(bundle)
    m = len(bundle.payload)
    base, total = _origin(bundle)
    extensions = [b for b in bundle.blocks if b.block_type != BlockType.PAYLOAD]
    replicated = [b for b in extensions if b.flags & BlockFlags.REPLICATE_IN_EVERY_FRAGMENT]
    fragments: list[Bundle] = []
    start = 0
    while start < m:
        blocks = extensions if start == 0 else replicated
        # size with an empty payload, then grow the payload to the largest that still fits
        probe = _fragment(bundle, start, start, blocks, total, base)
        overhead = len(encode_bundle(probe)) - 1  # minus the 1-byte head of the empty bstr
        chunk = 0
        for head in (9, 5, 3, 2, 1):
            c = max_bundle_size - overhead - head
            if c > 0 and _head_len(c) <= head:
                chunk = max(chunk, c)
        if chunk <= 0:
            raise ValidationError(
                f"cannot fragment into bundles of {max_bundle_size} bytes: "
                f"the blocks alone take {overhead + 1}"
            )
        end = min(m, start + chunk)
        fragments.append(_fragment(bundle, start, end, blocks, total, base))
        start = end
    return fragments


def encoded_size(bundle: Bundle) -> int:
    """Length of ``encode_bundle(bundle)``, without encoding (or CRC-ing) the payload."""
    payload_block = bundle.payload_block
    n = len(payload_block.data)
    empty = Bundle(bundle.primary, [b for b in bundle.blocks if b is not payload_block])
    empty.blocks.append(replace(payload_block, data=b""))
    return len(encode_bundle(empty)) - 1 + _head_len(n) + n


def _key(bundle: Bundle) -> tuple[EndpointID, CreationTimestamp]:
    return bundle.primary.source, bundle.primary.creation


def reassemble(fragments: Iterable[Bundle]) -> Bundle:
    """Reassemble the original bundle from fragments covering the whole ADU (§5.9)."""
    frags = list(fragments)
    if not frags:
        raise ReassemblyError("no fragments to reassemble")
    key = _key(frags[0])
    total = frags[0].primary.total_adu_length
    for f in frags:
        if not f.is_fragment:
            raise ReassemblyError(f"{f.bundle_id} is not a fragment")
        if _key(f) != key:
            raise ReassemblyError("fragments of different bundles (source/creation differ)")
        if f.primary.total_adu_length != total:
            raise ReassemblyError("fragments disagree on the total ADU length")
    assert total is not None
    adu = bytearray(total)
    frags.sort(key=lambda f: f.primary.fragment_offset or 0)
    covered = 0  # bytes [0, covered) are filled
    first: Bundle | None = None
    for f in frags:
        offset = f.primary.fragment_offset
        assert offset is not None
        data = f.payload
        end = offset + len(data)
        if end > total:
            raise ReassemblyError(f"fragment {f.bundle_id} extends past the ADU length {total}")
        if offset > covered:
            raise ReassemblyError(f"gap in the ADU at bytes {covered}..{offset}")
        if offset == 0 and first is None:
            first = f
        overlap = min(end, covered) - offset
        if overlap > 0 and memoryview(adu)[offset : offset + overlap] != data[:overlap]:
            raise ReassemblyError(
                f"overlapping fragments disagree at bytes {offset}..{offset + overlap}"
            )
        if end > covered:
            adu[covered:end] = data[covered - offset :]
            covered = end
    if covered != total:
        raise ReassemblyError(f"ADU incomplete: {covered} of {total} bytes")
    if first is None:  # total == 0 cannot be fragmented, so offset 0 always exists here
        raise ReassemblyError("no fragment at offset 0")
    p = first.primary
    primary = PrimaryBlock(
        flags=p.flags & ~BundleFlags.IS_FRAGMENT,
        crc_type=p.crc_type,
        destination=p.destination,
        source=p.source,
        report_to=p.report_to,
        creation=p.creation,
        lifetime_ms=p.lifetime_ms,
    )
    blocks = [replace(b) for b in first.blocks if b.block_type != BlockType.PAYLOAD]
    # a read-only view of the buffer we filled saves copying the whole ADU once more
    payload = replace(first.payload_block, data=memoryview(adu).toreadonly())
    return Bundle(primary, [*blocks, payload])


class Reassembler:
    """Collects fragments per original bundle; :meth:`add` returns the bundle once complete."""

    def __init__(self) -> None:
        self._pending: dict[tuple[EndpointID, CreationTimestamp], list[Bundle]] = {}

    def add(self, fragment: Bundle) -> Bundle | None:
        if not fragment.is_fragment:
            raise ReassemblyError(f"{fragment.bundle_id} is not a fragment")
        key = _key(fragment)
        frags = self._pending.setdefault(key, [])
        frags.append(fragment)
        if not self._complete(frags):
            return None
        bundle = reassemble(frags)
        del self._pending[key]
        return bundle

    @staticmethod
    def _complete(frags: list[Bundle]) -> bool:
        total = frags[0].primary.total_adu_length or 0
        covered = 0
        for f in sorted(frags, key=lambda f: f.primary.fragment_offset or 0):
            offset = f.primary.fragment_offset or 0
            if offset > covered:
                return False
            covered = max(covered, offset + len(f.payload))
        return covered >= total

    def pending(self) -> list[tuple[EndpointID, CreationTimestamp]]:
        return list(self._pending)

    def discard(self, source: EndpointID, creation: CreationTimestamp) -> list[Bundle]:
        """Drop (e.g. on expiry) and return the fragments held for one bundle."""
        return self._pending.pop((source, creation), [])

"""Bundle-level BPSec: add, verify, decrypt and remove security operations (RFC 9172 §3, §5).

Roles (RFC 9172 §1.4/§5): a *security source* adds an operation (:func:`add_integrity`,
:func:`add_confidentiality`); a *security verifier* checks it and leaves it in place
(:func:`verify_integrity`); a *security acceptor* checks it and removes it (the same functions
with ``remove=True``, and :func:`decrypt` which always restores the plaintext).

Rules enforced when adding (raising ``ForbiddenOperation``) and when receiving (raising
``ConflictingSecurity``/``MalformedSecurityBlock``):

* §3.2 uniqueness: at most one integrity and one confidentiality operation per target;
* §3.6 every security target is a block present in the bundle;
* §3.7 a BIB never targets a BIB or a BCB;
* §3.8 a BCB never targets the primary block or another BCB, and has the "replicate in every
  fragment" flag set when we create it;
* §3.9 no BIB is added for a target that is already encrypted; a BCB that encrypts a target
  protected by a BIB also encrypts that BIB (a multi-target BIB is split first, so the BIB
  holding the other targets' results stays readable), and a BCB may target a BIB only when they
  share a target.

At an acceptor BCBs are processed before BIBs (§5.1), so a BIB encrypted together with its
target is decrypted first and then verified over the plaintext. Block CRCs are not stored in
the model: the encoder computes them over whatever the block now holds, so an encrypted target
carries a CRC over its ciphertext (as HDTN does) and a decrypted one over its plaintext.

Every function returns a new :class:`~waystation.bundle.model.Bundle`; the input is unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from waystation.bundle.bpsec.asb import AbstractSecurityBlock, decode_asb, encode_asb
from waystation.bundle.bpsec.canonical import encode_primary
from waystation.bundle.bpsec.contexts import (
    CONFIDENTIALITY_CONTEXTS,
    HANDLERS,
    INTEGRITY_CONTEXTS,
    ConfidentialitySource,
    ContextHandler,
    IntegritySource,
    handler_for,
)
from waystation.bundle.bpsec.errors import (
    ConflictingSecurity,
    ForbiddenOperation,
    MalformedSecurityBlock,
)
from waystation.bundle.bpsec.keys import KeyResolver
from waystation.bundle.bpsec.scope import BlockView, OperationScope
from waystation.bundle.eid import EndpointID
from waystation.bundle.model import BlockFlags, BlockType, Bundle, CanonicalBlock, CRCType

__all__ = [
    "BCB",
    "BIB",
    "Outcome",
    "SecurityBlock",
    "add_confidentiality",
    "add_integrity",
    "decrypt",
    "security_blocks",
    "verify_integrity",
]

BIB = int(BlockType.BLOCK_INTEGRITY)
BCB = int(BlockType.BLOCK_CONFIDENTIALITY)
INTEGRITY, CONFIDENTIALITY = "integrity", "confidentiality"


@dataclass(frozen=True, slots=True)
class SecurityBlock:
    """A BIB or BCB of a bundle with its decoded ASB (``asb`` is None while encrypted)."""

    block: CanonicalBlock
    asb: AbstractSecurityBlock | None

    @property
    def number(self) -> int:
        return self.block.number

    @property
    def is_bib(self) -> bool:
        return self.block.block_type == BIB


@dataclass(frozen=True, slots=True)
class Outcome:
    """One security operation that was checked (and maybe removed) successfully."""

    service: str  # "integrity" | "confidentiality"
    target: int
    security_block: int
    context_id: int
    source: EndpointID
    removed: bool


# --------------------------------------------------------------------------- inspection


def security_blocks(bundle: Bundle) -> list[SecurityBlock]:
    """Decode every BIB/BCB and check the RFC 9172 §3 structural rules.

    BIBs that are themselves targets of a BCB are returned with ``asb=None`` (their data is
    ciphertext until decrypted).
    """
    by_number: dict[int, CanonicalBlock] = {}
    for block in bundle.blocks:
        if block.number in by_number or block.number == 0:
            raise MalformedSecurityBlock(f"block number {block.number} is not unique")
        by_number[block.number] = block
    bcbs = [b for b in bundle.blocks if b.block_type == BCB]
    decoded_bcbs = [SecurityBlock(b, decode_asb(bytes(b.data))) for b in bcbs]
    encrypted: dict[int, int] = {}
    for sb in decoded_bcbs:
        assert sb.asb is not None
        for t in sb.asb.targets:
            if t in encrypted:
                raise ConflictingSecurity(f"block {t} is the target of two BCBs (RFC 9172 §3.2)")
            encrypted[t] = sb.number
    out: list[SecurityBlock] = []
    integrity: dict[int, int] = {}
    for block in bundle.blocks:
        if block.block_type == BCB:
            out.append(next(sb for sb in decoded_bcbs if sb.block is block))
        elif block.block_type == BIB:
            if block.number in encrypted:
                out.append(SecurityBlock(block, None))
                continue
            asb = decode_asb(bytes(block.data))
            for t in asb.targets:
                if t in integrity:
                    raise ConflictingSecurity(
                        f"block {t} is the target of two BIBs (RFC 9172 §3.2)"
                    )
                integrity[t] = block.number
            out.append(SecurityBlock(block, asb))
    for sb in out:
        if sb.asb is None:
            continue
        for t in sb.asb.targets:
            target = by_number.get(t)
            if t != 0 and target is None:
                raise MalformedSecurityBlock(
                    f"security block {sb.number} targets block {t}, which is not in the bundle"
                )
            if sb.is_bib:
                if target is not None and target.block_type in (BIB, BCB):
                    raise ConflictingSecurity(
                        f"BIB {sb.number} targets security block {t} (RFC 9172 §3.7)"
                    )
                if t in encrypted and sb.number not in encrypted:
                    raise ConflictingSecurity(
                        f"BIB {sb.number} covers encrypted block {t} but is not encrypted "
                        "with it (RFC 9172 §3.9)"
                    )
            else:
                if t == 0 or (target is not None and target.block_type == BCB):
                    raise ConflictingSecurity(
                        f"BCB {sb.number} targets block {t} (RFC 9172 §3.8)"
                    )
    return out


def _views(bundle: Bundle) -> dict[int, BlockView]:
    return {b.number: BlockView(b.block_type, b.number, b.flags, b.data) for b in bundle.blocks}  # type: ignore[arg-type]


def _scope(
    primary: bytes,
    views: Mapping[int, BlockView],
    target: int,
    security: CanonicalBlock | tuple[int, int, int],
    source: EndpointID,
) -> OperationScope:
    if isinstance(security, CanonicalBlock):
        stype, snum, sflags = security.block_type, security.number, security.flags
    else:
        stype, snum, sflags = security
    return OperationScope(
        primary=primary,
        target_number=target,
        target=None if target == 0 else views[target],
        security_type=stype,
        security_number=snum,
        security_flags=sflags,
        source=source,
        blocks=views,
    )


def _insert(blocks: list[CanonicalBlock], block: CanonicalBlock, position: int) -> None:
    # Security blocks go before the payload block, which must stay last (RFC 9171 §4.1).
    position = max(0, min(position, len(blocks) - 1 if blocks else 0))
    blocks.insert(position, block)


def _fresh_number(bundle: Bundle, taken: Collection[int] = ()) -> int:
    """One more than the highest block number in use (never 0 or 1)."""
    used = {b.number for b in bundle.blocks} | set(taken)
    return max(used | {1}) + 1


# --------------------------------------------------------------------------- security source


def add_integrity(
    bundle: Bundle,
    targets: Sequence[int],
    source: IntegritySource,
    security_source: EndpointID,
    *,
    number: int | None = None,
    flags: int = 0,
    crc_type: int = CRCType.NONE,
    position: int = 0,
) -> Bundle:
    """Add a BIB over ``targets`` (block numbers; 0 = primary block) — security source role."""
    if source.context_id not in INTEGRITY_CONTEXTS:
        raise ForbiddenOperation(f"context {source.context_id} is not an integrity context")
    existing = security_blocks(bundle)
    by_number = {b.number: b for b in bundle.blocks}
    _check_new_targets(bundle, targets, by_number)
    covered = {t for sb in existing if sb.is_bib and sb.asb for t in sb.asb.targets}
    encrypted = {t for sb in existing if not sb.is_bib and sb.asb for t in sb.asb.targets}
    for t in targets:
        block = by_number.get(t)
        if block is not None and block.block_type in (BIB, BCB):
            raise ForbiddenOperation(f"RFC 9172 §3.7: a BIB must not target security block {t}")
        if t in covered:
            raise ForbiddenOperation(f"RFC 9172 §3.2: block {t} already has a BIB")
        if t in encrypted:
            raise ForbiddenOperation(
                f"RFC 9172 §3.9: block {t} is encrypted; a BIB cannot be added over it"
            )
    if number is None:
        number = _fresh_number(bundle)
    elif number in by_number or number < 2:
        raise ForbiddenOperation(f"block number {number} is taken or reserved")
    primary = encode_primary(bundle.primary)
    views = _views(bundle)
    prepared = source.prepare()
    header = (BIB, number, flags)
    results = tuple(
        prepared.sign(_scope(primary, views, t, header, security_source)) for t in targets
    )
    asb = AbstractSecurityBlock(
        targets=tuple(targets),
        context_id=source.context_id,
        source=security_source,
        parameters=prepared.parameters,
        results=results,
    )
    blocks = list(bundle.blocks)
    _insert(blocks, CanonicalBlock(BIB, number, flags, crc_type, encode_asb(asb)), position)
    return Bundle(bundle.primary, blocks)


def _check_new_targets(
    bundle: Bundle, targets: Sequence[int], by_number: Mapping[int, CanonicalBlock]
) -> None:
    if not targets:
        raise ForbiddenOperation("a security operation needs at least one target")
    if len(set(targets)) != len(targets):
        raise ForbiddenOperation("security targets repeat a block number")
    for t in targets:
        if t != 0 and t not in by_number:
            raise ForbiddenOperation(f"block {t} is not in the bundle")
        if bundle.is_fragment and t == 1:
            raise ForbiddenOperation(
                "the payload of a fragment cannot be secured; secure the bundle before "
                "fragmenting it"
            )


def add_confidentiality(
    bundle: Bundle,
    targets: Sequence[int],
    source: ConfidentialitySource,
    security_source: EndpointID,
    *,
    number: int | None = None,
    flags: int = BlockFlags.REPLICATE_IN_EVERY_FRAGMENT,
    crc_type: int = CRCType.NONE,
    position: int = 0,
    include_bibs: bool = True,
) -> Bundle:
    """Add a BCB encrypting ``targets`` — security source role.

    With ``include_bibs`` (default) a BIB protecting one of the targets is encrypted too (RFC
    9172 §3.9). A BIB that also covers blocks we do not encrypt is split first — its results for
    our targets move to a new BIB with the same context, parameters and source — when its
    integrity scope does not cover its own header; otherwise the whole BIB is encrypted.
    """
    if source.context_id not in CONFIDENTIALITY_CONTEXTS:
        raise ForbiddenOperation(f"context {source.context_id} is not a confidentiality context")
    existing = security_blocks(bundle)
    by_number = {b.number: b for b in bundle.blocks}
    _check_new_targets(bundle, targets, by_number)
    encrypted = {t for sb in existing if not sb.is_bib and sb.asb for t in sb.asb.targets}
    targets = list(targets)
    for t in targets:
        block = by_number.get(t)
        if t == 0:
            raise ForbiddenOperation("RFC 9172 §3.8: a BCB must not target the primary block")
        assert block is not None
        if block.block_type == BCB:
            raise ForbiddenOperation(f"RFC 9172 §3.8: a BCB must not target BCB {t}")
        if t in encrypted:
            raise ForbiddenOperation(f"RFC 9172 §3.2: block {t} is already encrypted")
    blocks = list(bundle.blocks)
    if number is None:
        number = _fresh_number(bundle)
    elif number in by_number or number < 2:
        raise ForbiddenOperation(f"block number {number} is taken or reserved")
    reserved = {number}
    # §3.9: BIBs over our targets must be encrypted too (splitting multi-target BIBs).
    for sb in existing:
        if not sb.is_bib or sb.asb is None:
            continue
        shared = [t for t in sb.asb.targets if t in targets]
        bib_targeted = sb.number in targets
        if bib_targeted and not shared:
            raise ForbiddenOperation(
                f"RFC 9172 §3.9: BCB may target BIB {sb.number} only with one of its targets"
            )
        if not shared or bib_targeted:
            continue
        if not include_bibs:
            raise ForbiddenOperation(
                f"RFC 9172 §3.9: BIB {sb.number} protects an encrypted target and must be "
                "encrypted as well"
            )
        rest = [t for t in sb.asb.targets if t not in shared]
        if not rest or _covers_own_header(sb.asb):
            # Moving results to a BIB with another block number would break them when the
            # BIB's own header is in the integrity scope, so the whole BIB is encrypted
            # (allowed: it shares a target with this BCB).
            targets.append(sb.number)
            continue
        new_number = _fresh_number(bundle, reserved)
        reserved.add(new_number)
        moved = sb.asb.only_targets(shared)
        kept = sb.asb.only_targets(rest)
        i = blocks.index(sb.block)
        blocks[i] = CanonicalBlock(BIB, sb.number, sb.block.flags, sb.block.crc_type,
                                   encode_asb(kept))
        blocks.insert(i, CanonicalBlock(BIB, new_number, sb.block.flags, sb.block.crc_type,
                                        encode_asb(moved)))
        targets.append(new_number)
    work = Bundle(bundle.primary, blocks)
    primary = encode_primary(bundle.primary)
    views = _views(work)
    prepared = source.prepare()
    header = (BCB, number, flags)
    results = []
    replaced: dict[int, bytes] = {}
    for t in targets:
        ciphertext, result = prepared.encrypt(_scope(primary, views, t, header, security_source))
        replaced[t] = ciphertext
        results.append(result)
    asb = AbstractSecurityBlock(
        targets=tuple(targets),
        context_id=source.context_id,
        source=security_source,
        parameters=prepared.parameters,
        results=tuple(results),
    )
    out = [
        CanonicalBlock(b.block_type, b.number, b.flags, b.crc_type, replaced[b.number])
        if b.number in replaced
        else b
        for b in blocks
    ]
    _insert(out, CanonicalBlock(BCB, number, flags, crc_type, encode_asb(asb)), position)
    return Bundle(bundle.primary, out)


def _covers_own_header(asb: AbstractSecurityBlock) -> bool:
    """Whether a BIB's results depend on the BIB's own block number (so it cannot be split)."""
    if asb.context_id == 1:  # RFC 9173 §3.3.3 integrity scope flags, bit 2; default 7
        flags = asb.parameter(3, 7)
        return not isinstance(flags, int) or bool(flags & 0x04)
    if asb.context_id == 3:  # COSE AAD scope: key -2 (security block) or the default scope
        scope = asb.parameter(5)
        return not isinstance(scope, dict) or -2 in scope
    return True


# --------------------------------------------------------------------------- verifier / acceptor


def _replace_asb(
    blocks: list[CanonicalBlock], block: CanonicalBlock, asb: AbstractSecurityBlock | None
) -> None:
    i = next(i for i, b in enumerate(blocks) if b.number == block.number)
    if asb is None:
        del blocks[i]
    else:
        blocks[i] = CanonicalBlock(block.block_type, block.number, block.flags, block.crc_type,
                                   encode_asb(asb))


def _selected(asb: AbstractSecurityBlock, targets: Iterable[int] | None) -> list[int]:
    if targets is None:
        return list(asb.targets)
    wanted = set(targets)
    return [t for t in asb.targets if t in wanted]


def decrypt(
    bundle: Bundle,
    keys: KeyResolver,
    *,
    targets: Iterable[int] | None = None,
    contexts: Collection[int] | None = None,
    handlers: Mapping[int, ContextHandler] = HANDLERS,
) -> tuple[Bundle, list[Outcome]]:
    """Decrypt BCB targets (all, or those in ``targets``) and remove the processed results.

    This is the confidentiality *acceptor* role (RFC 9172 §5.1.1). A BIB that was encrypted
    with its target becomes readable again and can then be verified.
    """
    wanted = None if targets is None else set(targets)
    blocks = list(bundle.blocks)
    outcomes: list[Outcome] = []
    primary = encode_primary(bundle.primary)
    for sb in security_blocks(bundle):
        if sb.is_bib or sb.asb is None:
            continue
        asb = sb.asb
        chosen = _selected(asb, wanted)
        if not chosen or _skip_context(asb.context_id, contexts, handlers):
            continue
        # BIBs encrypted by the same BCB come along (they protect what we decrypt, §3.9).
        numbers = {b.number: b.block_type for b in blocks}
        chosen += [t for t in asb.targets if t not in chosen and numbers.get(t) == BIB]
        handler = _handler(handlers, asb.context_id, CONFIDENTIALITY_CONTEXTS, sb.number)
        views = _views(Bundle(bundle.primary, blocks))
        plain: dict[int, bytes] = {}
        for t in chosen:
            if bundle.is_fragment and t == 1:
                raise ForbiddenOperation("a fragment's payload cannot be decrypted before reassembly")
            scope = _scope(primary, views, t, sb.block, asb.source)
            plain[t] = handler.decrypt(scope, asb, asb.results_for(t), keys)
        for t, data in plain.items():
            i = next(i for i, b in enumerate(blocks) if b.number == t)
            b = blocks[i]
            blocks[i] = CanonicalBlock(b.block_type, b.number, b.flags, b.crc_type, data)
            outcomes.append(Outcome(CONFIDENTIALITY, t, sb.number, asb.context_id, asb.source, True))
        remaining: AbstractSecurityBlock | None = asb
        for t in chosen:
            assert remaining is not None
            remaining = remaining.without_target(t)
        _replace_asb(blocks, sb.block, remaining)
    return Bundle(bundle.primary, blocks), outcomes


def _skip_context(
    context_id: int, contexts: Collection[int] | None, handlers: Mapping[int, ContextHandler]
) -> bool:
    # ``contexts`` limits processing to what the caller has keys for; an *unknown* context is
    # never skipped, so it surfaces as UnknownSecurityContext (reason code 13).
    return contexts is not None and context_id in handlers and context_id not in contexts


def _handler(
    handlers: Mapping[int, ContextHandler], context_id: int, allowed: frozenset[int], number: int
) -> ContextHandler:
    if context_id in handlers and context_id not in allowed:
        raise MalformedSecurityBlock(
            f"security block {number} uses context {context_id}, which is not valid there"
        )
    if context_id in handlers:
        return handlers[context_id]
    return handler_for(context_id)  # raises UnknownSecurityContext


def verify_integrity(
    bundle: Bundle,
    keys: KeyResolver,
    *,
    targets: Iterable[int] | None = None,
    remove: bool = False,
    contexts: Collection[int] | None = None,
    handlers: Mapping[int, ContextHandler] = HANDLERS,
) -> tuple[Bundle, list[Outcome]]:
    """Verify BIB targets (all readable ones, or those in ``targets``).

    ``remove=False`` is the security *verifier* role (the BIB stays); ``remove=True`` the
    *acceptor* role (processed results, and emptied BIBs, are removed: RFC 9172 §5.1.2).
    Encrypted BIBs and targets that are still encrypted are skipped: decrypt first.
    ``contexts`` restricts checking to those security context IDs (known ones outside it are
    left alone; unknown ones raise UnknownSecurityContext).
    A failure raises (SecurityCheckFailed, KeyNotFound, ...) and nothing is returned.
    """
    wanted = None if targets is None else set(targets)
    blocks = list(bundle.blocks)
    outcomes: list[Outcome] = []
    primary = encode_primary(bundle.primary)
    views = _views(bundle)
    secured = security_blocks(bundle)
    encrypted = {t for sb in secured if not sb.is_bib and sb.asb for t in sb.asb.targets}
    for sb in secured:
        if not sb.is_bib or sb.asb is None:
            continue
        asb = sb.asb
        chosen = [t for t in _selected(asb, wanted) if t not in encrypted]
        if bundle.is_fragment:
            chosen = [t for t in chosen if t != 1]  # checked after reassembly
        if not chosen or _skip_context(asb.context_id, contexts, handlers):
            continue
        handler = _handler(handlers, asb.context_id, INTEGRITY_CONTEXTS, sb.number)
        for t in chosen:
            scope = _scope(primary, views, t, sb.block, asb.source)
            handler.verify(scope, asb, asb.results_for(t), keys)
            outcomes.append(Outcome(INTEGRITY, t, sb.number, asb.context_id, asb.source, remove))
        if remove:
            remaining: AbstractSecurityBlock | None = asb
            for t in chosen:
                assert remaining is not None
                remaining = remaining.without_target(t)
            _replace_asb(blocks, sb.block, remaining)
    return Bundle(bundle.primary, blocks), outcomes

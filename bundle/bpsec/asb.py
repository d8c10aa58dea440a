"""The Abstract Security Block (RFC 9172 §3.6): the block-type-specific data of BIBs and BCBs.

The ASB is a CBOR *sequence* (not an array) of, in order:

1. Security Targets — array of block numbers, at least one, no duplicates;
2. Security Context Id — a CBOR int (negative IDs are reserved for private use);
3. Security Context Flags — uint; bit 0 = "Security Context Parameters Present";
4. Security Source — an EID (RFC 9171 §4.2.5.1 encoding);
5. Security Context Parameters — present only with flag bit 0: array of [param id, value];
6. Security Results — array with one entry per target, each an array of [result id, value].

Values of parameters and results are kept as decoded CBOR items; what they mean belongs to the
security context (``waystation.bundle.bpsec.contexts``). Encoding is deterministic (RFC 8949
§4.2.1) so that what a security source writes is byte-identical to RFC 9173 Appendix A.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2
from waystation.bundle.bpsec.errors import MalformedSecurityBlock
from waystation.bundle.cborhead import (
    MAJOR_ARRAY,
    MAJOR_NEGINT,
    encode_head,
    encode_uint,
)
from waystation.bundle.eid import EndpointID
from waystation.bundle.errors import BundleError

__all__ = [
    "FLAG_PARAMETERS_PRESENT",
    "AbstractSecurityBlock",
    "decode_asb",
    "encode_asb",
]

FLAG_PARAMETERS_PRESENT = 0x01

#: An ID/value pair as carried in the parameter and result arrays.
Pair = tuple[int, Any]


def _is_uint(value: object) -> bool:
    return type(value) is int and value >= 0


@dataclass(frozen=True, slots=True)
class AbstractSecurityBlock:
    """One decoded ASB. ``results[i]`` belongs to ``targets[i]``."""

    targets: tuple[int, ...]
    context_id: int
    source: EndpointID
    parameters: tuple[Pair, ...] = ()
    results: tuple[tuple[Pair, ...], ...] = field(default=())
    #: Flag bits other than "parameters present" (reserved; kept so re-encoding is lossless).
    reserved_flags: int = 0

    def __post_init__(self) -> None:
        if not self.targets:
            raise MalformedSecurityBlock("an ASB needs at least one security target")
        if len(set(self.targets)) != len(self.targets):
            raise MalformedSecurityBlock("security targets repeat a block number")
        if any(not _is_uint(t) for t in self.targets):
            raise MalformedSecurityBlock("security targets must be block numbers (uint)")
        if len(self.results) != len(self.targets):
            raise MalformedSecurityBlock(
                f"{len(self.targets)} targets but {len(self.results)} result sets"
            )

    @property
    def flags(self) -> int:
        return self.reserved_flags | (FLAG_PARAMETERS_PRESENT if self.parameters else 0)

    def parameter(self, param_id: int, default: Any = None) -> Any:
        """The value of parameter ``param_id`` (the first one), or ``default``."""
        for pid, value in self.parameters:
            if pid == param_id:
                return value
        return default

    def results_for(self, target: int) -> tuple[Pair, ...]:
        try:
            return self.results[self.targets.index(target)]
        except ValueError:
            raise MalformedSecurityBlock(f"block {target} is not a target of this ASB") from None

    def without_target(self, target: int) -> AbstractSecurityBlock | None:
        """The ASB with ``target`` and its results removed; ``None`` when nothing remains.

        RFC 9172 §5.1.1/§5.1.2: an acceptor removes the results it processed and removes the
        whole security block once no targets remain.
        """
        i = self.targets.index(target)
        targets = self.targets[:i] + self.targets[i + 1 :]
        if not targets:
            return None
        return AbstractSecurityBlock(
            targets=targets,
            context_id=self.context_id,
            source=self.source,
            parameters=self.parameters,
            results=self.results[:i] + self.results[i + 1 :],
            reserved_flags=self.reserved_flags,
        )

    def only_targets(self, keep: Iterable[int]) -> AbstractSecurityBlock:
        """The ASB restricted to ``keep`` (in the original order), for splitting a block."""
        wanted = set(keep)
        idx = [i for i, t in enumerate(self.targets) if t in wanted]
        return AbstractSecurityBlock(
            targets=tuple(self.targets[i] for i in idx),
            context_id=self.context_id,
            source=self.source,
            parameters=self.parameters,
            results=tuple(self.results[i] for i in idx),
            reserved_flags=self.reserved_flags,
        )


def _pairs_to_cbor(pairs: Sequence[Pair]) -> list[list[Any]]:
    return [[pid, value] for pid, value in pairs]


def _encode_int(value: int) -> bytes:
    return encode_uint(value) if value >= 0 else encode_head(MAJOR_NEGINT, -1 - value)


def encode_asb(asb: AbstractSecurityBlock) -> bytes:
    """Encode ``asb`` as the CBOR sequence of RFC 9172 §3.6 (deterministic encoding).

    The fixed-shape fields are written with the head encoder (this is on the per-bundle path);
    cbor2 encodes only the context-defined parameter and result values.
    """
    parts = [encode_head(MAJOR_ARRAY, len(asb.targets))]
    parts.extend(encode_uint(t) for t in asb.targets)
    parts.append(_encode_int(asb.context_id))
    parts.append(encode_uint(asb.flags))
    parts.append(asb.source.to_cbor())
    if asb.flags & FLAG_PARAMETERS_PRESENT:
        parts.append(cbor2.dumps(_pairs_to_cbor(asb.parameters), canonical=True))
    parts.append(cbor2.dumps([_pairs_to_cbor(r) for r in asb.results], canonical=True))
    return b"".join(parts)


def _decode_pairs(obj: object, what: str) -> tuple[Pair, ...]:
    if not isinstance(obj, list):
        raise MalformedSecurityBlock(f"{what} must be an array")
    out: list[Pair] = []
    for item in obj:
        if not isinstance(item, list) or len(item) != 2 or type(item[0]) is not int:
            raise MalformedSecurityBlock(f"each {what} entry must be [int id, value]")
        out.append((item[0], item[1]))
    return tuple(out)


def decode_asb(data: bytes) -> AbstractSecurityBlock:
    """Decode a BIB/BCB block-type-specific data; any defect raises MalformedSecurityBlock."""
    # Decode the sequence as the items of an indefinite-length array in one cbor2 call, and
    # check the decoder consumed exactly our bytes (a stray break code ends the array early).
    wrapped = b"\x9f" + bytes(data) + b"\xff"
    fp = io.BytesIO(wrapped)
    try:
        items = cbor2.CBORDecoder(fp).decode()
    except Exception as exc:  # cbor2 raises several types on hostile input; one is ours.
        raise MalformedSecurityBlock(f"ASB is not well-formed CBOR: {exc}") from None
    if fp.tell() != len(wrapped) or not isinstance(items, list):
        raise MalformedSecurityBlock("ASB is not a well-formed CBOR sequence")
    if len(items) > 6:
        raise MalformedSecurityBlock("trailing data after the security results")
    if len(items) < 5:
        raise MalformedSecurityBlock(f"ASB has {len(items)} items, needs at least 5")
    targets, context_id, flags, source_obj = items[:4]
    if not isinstance(targets, list) or not all(_is_uint(t) for t in targets):
        raise MalformedSecurityBlock("security targets must be an array of block numbers")
    if type(context_id) is not int:
        raise MalformedSecurityBlock("security context id must be an integer")
    if not _is_uint(flags):
        raise MalformedSecurityBlock("security context flags must be a uint")
    assert isinstance(flags, int)
    try:
        source = EndpointID.from_cbor_obj(source_obj)
    except BundleError as exc:
        raise MalformedSecurityBlock(f"security source is not a valid EID: {exc}") from None
    has_params = bool(flags & FLAG_PARAMETERS_PRESENT)
    expected = 6 if has_params else 5
    if len(items) != expected:
        raise MalformedSecurityBlock(
            f"ASB has {len(items)} items but its flags call for {expected}"
        )
    parameters = _decode_pairs(items[4], "security context parameter") if has_params else ()
    results_obj = items[-1]
    if not isinstance(results_obj, list):
        raise MalformedSecurityBlock("security results must be an array")
    results = tuple(_decode_pairs(r, "security result") for r in results_obj)
    return AbstractSecurityBlock(
        targets=tuple(targets),  # type: ignore[arg-type]
        context_id=context_id,
        source=source,
        parameters=parameters,
        results=results,
        # Keep a "parameters present" flag over an empty array so re-encoding is lossless.
        reserved_flags=flags if (has_params and not parameters) else flags & ~1,
    )

"""Bundle Protocol endpoint IDs: the dtn and ipn URI schemes (RFC 9171 §4.2.5.1, RFC 9758).

Text forms handled by :func:`parse_eid` and ``str(eid)``:

* ``dtn:none`` - the null endpoint (:data:`DTN_NONE`), CBOR ``[1, 0]``;
* ``dtn://node-name/demux`` - :class:`DtnEID`, CBOR ``[1, "//node-name/demux"]`` (§4.2.5.1.1:
  ``node-name`` is an RFC 3986 reg-name, here required to be non-empty; ``demux`` is ``*VCHAR``);
* ``ipn:node.service`` and the RFC 9758 three-component form ``ipn:authority.node.service`` -
  :class:`IpnEID`. ``ipn:0.node.service`` is the same EID as ``ipn:node.service``.

CBOR forms of ipn EIDs (RFC 9758 §6): the two-element ``[2, [node, service]]`` form, where the
first element is the *fully-qualified node number* ``(authority << 32) | node``, and the
three-element ``[2, [authority, node, service]]`` form. Both are decoded; we encode authority 0
as two elements (what every RFC 9171 peer understands) and any other authority as three elements.
RFC 9758 limits authority, node and service numbers to 32 bits each; larger values are rejected.
``ipn:0.<n>`` with n != 0 is not a valid ipn URI and RFC 9758 §3.4.1 says it MUST be treated as
the null ipn EID, so it is normalised to ``ipn:0.0`` on decode and parse.

Deviation: EIDs of URI schemes other than dtn (1) and ipn (2) are rejected with
:class:`EIDError` rather than carried opaquely: a node cannot route or report on them anyway.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from .cborhead import (
    INDEFINITE,
    MAJOR_TEXT,
    MAJOR_UINT,
    encode_head,
    read_array_head,
    read_head,
    read_text,
)
from .errors import DecodeError, EIDError

__all__ = [
    "DTN_NONE",
    "DtnEID",
    "DtnNoneEID",
    "EndpointID",
    "IpnEID",
    "SCHEME_DTN",
    "SCHEME_IPN",
    "IPN_NULL",
    "parse_eid",
    "decode_eid_cbor",
    "eid_from_cbor",
]

SCHEME_DTN = 1
SCHEME_IPN = 2
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

# RFC 3986 reg-name = *( unreserved / pct-encoded / sub-delims ); we require at least one char.
_REG_NAME = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+\Z")
# RFC 5234 VCHAR = %x21-7E
_DEMUX = re.compile(r"[\x21-\x7e]*\Z")
_DIGITS = re.compile(r"[0-9]+\Z")


class EndpointID:
    """Base of all endpoint IDs: immutable and hashable; equal iff same scheme and fields."""

    __slots__ = ()
    scheme: ClassVar[int]

    @property
    def is_null(self) -> bool:
        """True for the null endpoint (``dtn:none``; also the null ipn EID ``ipn:0.0``)."""
        return False

    @property
    def is_singleton(self) -> bool:
        return True

    @property
    def node_id(self) -> EndpointID:
        """The administrative endpoint of the node this EID belongs to (§4.2.5.2)."""
        raise NotImplementedError

    @property
    def is_node_id(self) -> bool:
        """True if this EID may serve as a node ID (§4.2.5.2)."""
        raise NotImplementedError

    def to_cbor_obj(self) -> list[Any]:
        """The EID as the Python structure ``cbor2.dumps`` encodes per §4.2.5.1."""
        raise NotImplementedError

    def to_cbor(self) -> bytes:
        """Canonical (shortest-form) CBOR encoding of this EID."""
        raise NotImplementedError

    @staticmethod
    def from_cbor_obj(obj: Any) -> EndpointID:
        """Build an EID from its decoded CBOR structure (e.g. from ``cbor2.loads``)."""
        if not isinstance(obj, list | tuple) or len(obj) != 2:
            raise EIDError("an endpoint ID must be a CBOR array of two items")
        scheme, ssp = obj
        if type(scheme) is not int or scheme < 0:
            raise EIDError("EID scheme code must be an unsigned integer")
        if scheme == SCHEME_DTN:
            if type(ssp) is int:
                if ssp != 0:
                    raise EIDError(f"dtn EID with integer SSP {ssp} (only 0 = dtn:none allowed)")
                return DTN_NONE
            if not isinstance(ssp, str):
                raise EIDError("dtn EID SSP must be a text string or 0")
            return DtnEID.from_ssp(ssp)
        if scheme == SCHEME_IPN:
            if not isinstance(ssp, list | tuple):
                raise EIDError("ipn EID SSP must be an array")
            if not all(type(x) is int and 0 <= x <= _U64 for x in ssp):
                raise EIDError("ipn EID numbers must be unsigned integers")
            return IpnEID.from_numbers(list(ssp))
        raise EIDError(f"unsupported EID URI scheme code {scheme}")

    @staticmethod
    def parse(text: str) -> EndpointID:
        return parse_eid(text)


@dataclass(frozen=True, slots=True, repr=False)
class DtnNoneEID(EndpointID):
    """``dtn:none``: the null endpoint, which never has members (§4.2.5.1.1)."""

    scheme: ClassVar[int] = SCHEME_DTN

    @property
    def is_null(self) -> bool:
        return True

    @property
    def is_singleton(self) -> bool:
        return False

    @property
    def node_id(self) -> EndpointID:
        raise EIDError("dtn:none has no node ID")

    @property
    def is_node_id(self) -> bool:
        return False

    def to_cbor_obj(self) -> list[Any]:
        return [SCHEME_DTN, 0]

    def to_cbor(self) -> bytes:
        return b"\x82\x01\x00"

    def __str__(self) -> str:
        return "dtn:none"

    def __repr__(self) -> str:
        return "DTN_NONE"


DTN_NONE = DtnNoneEID()


@dataclass(frozen=True, slots=True)
class DtnEID(EndpointID):
    """``dtn://node_name/demux`` (§4.2.5.1.1). An empty demux names the node itself."""

    node_name: str
    demux: str = ""
    scheme: ClassVar[int] = SCHEME_DTN

    def __post_init__(self) -> None:
        if not isinstance(self.node_name, str) or not _REG_NAME.match(self.node_name):
            raise EIDError(f"invalid dtn node name {self.node_name!r} (RFC 3986 reg-name)")
        if not isinstance(self.demux, str) or not _DEMUX.match(self.demux):
            raise EIDError(f"invalid dtn demux {self.demux!r} (printable US-ASCII only)")

    @classmethod
    def from_ssp(cls, ssp: str) -> DtnEID:
        """From the scheme-specific part as carried in CBOR: ``//node-name/demux``."""
        if not ssp.startswith("//"):
            raise EIDError(f"dtn SSP {ssp!r} must start with '//' (RFC 9171 §4.2.5.1.1)")
        slash = ssp.find("/", 2)
        if slash < 0:
            raise EIDError(f"dtn SSP {ssp!r} lacks the '/' after the node name")
        return cls(ssp[2:slash], ssp[slash + 1 :])

    @property
    def ssp(self) -> str:
        return f"//{self.node_name}/{self.demux}"

    @property
    def is_singleton(self) -> bool:
        return not self.demux.startswith("~")

    @property
    def node_id(self) -> DtnEID:
        return self if not self.demux else DtnEID(self.node_name, "")

    @property
    def is_node_id(self) -> bool:
        return not self.demux

    def to_cbor_obj(self) -> list[Any]:
        return [SCHEME_DTN, self.ssp]

    def to_cbor(self) -> bytes:
        raw = self.ssp.encode("ascii")
        n = len(raw)
        if n < 24:
            head = bytes((0x60 | n,))
        elif n < 0x100:
            head = bytes((0x78, n))
        elif n < 0x10000:
            head = b"\x79" + n.to_bytes(2, "big")
        else:
            head = b"\x7a" + n.to_bytes(4, "big")
        return b"\x82\x01" + head + raw

    def __str__(self) -> str:
        return f"dtn:{self.ssp}"


@dataclass(frozen=True, slots=True)
class IpnEID(EndpointID):
    """``ipn:node.service`` or ``ipn:authority.node.service`` (§4.2.5.1.2, RFC 9758)."""

    node: int
    service: int
    authority: int = 0
    scheme: ClassVar[int] = SCHEME_IPN

    def __post_init__(self) -> None:
        node, service, authority = self.node, self.service, self.authority
        # one combined test on the hot path (EIDs are built for every decoded bundle)
        if not (
            type(node) is int
            and type(service) is int
            and type(authority) is int
            and 0 <= node <= _U32
            and 0 <= service <= _U32
            and 0 <= authority <= _U32
        ):
            for name, value in (("node", node), ("service", service), ("authority", authority)):
                if type(value) is not int or not 0 <= value <= _U32:
                    raise EIDError(f"ipn {name} number {value!r} out of range 0..2^32-1 (RFC 9758)")
        if service and not node and not authority:
            # RFC 9758 §3.4.1: the null node with a non-zero service is not a valid ipn URI
            # and must be treated as the null ipn EID.
            object.__setattr__(self, "service", 0)

    @classmethod
    def from_numbers(cls, numbers: list[int]) -> IpnEID:
        """From the CBOR SSP array: ``[fqnn, service]`` or ``[authority, node, service]``."""
        if len(numbers) == 2:
            fqnn, service = numbers
            return cls(fqnn & _U32, service, fqnn >> 32)
        if len(numbers) == 3:
            authority, node, service = numbers
            return cls(node, service, authority)
        raise EIDError(f"ipn SSP must have 2 or 3 elements, not {len(numbers)}")

    @property
    def fqnn(self) -> int:
        """Fully-qualified node number (RFC 9758): authority in the upper 32 bits."""
        return (self.authority << 32) | self.node

    @property
    def is_null(self) -> bool:
        return self.node == 0 and self.authority == 0

    @property
    def node_id(self) -> IpnEID:
        return self if self.service == 0 else IpnEID(self.node, 0, self.authority)

    @property
    def is_node_id(self) -> bool:
        return self.service == 0

    def to_cbor_obj(self) -> list[Any]:
        if self.authority == 0:
            return [SCHEME_IPN, [self.node, self.service]]
        return [SCHEME_IPN, [self.authority, self.node, self.service]]

    def to_cbor(self) -> bytes:
        if self.authority == 0:
            return (
                b"\x82\x02\x82"
                + encode_head(MAJOR_UINT, self.node)
                + encode_head(MAJOR_UINT, self.service)
            )
        return (
            b"\x82\x02\x83"
            + encode_head(MAJOR_UINT, self.authority)
            + encode_head(MAJOR_UINT, self.node)
            + encode_head(MAJOR_UINT, self.service)
        )

    def __str__(self) -> str:
        if self.authority == 0:
            return f"ipn:{self.node}.{self.service}"
        return f"ipn:{self.authority}.{self.node}.{self.service}"


IPN_NULL = IpnEID(0, 0)


def parse_eid(text: str) -> EndpointID:
    """Parse the text form of a dtn or ipn endpoint ID; raise :class:`EIDError` if invalid."""
    if not isinstance(text, str):
        raise EIDError(f"an endpoint ID must be text, not {type(text).__name__}")
    return _parse_cached(text)


@functools.lru_cache(maxsize=4096)  # EIDs are immutable; nodes parse the same few over and over
def _parse_cached(text: str) -> EndpointID:
    scheme, sep, ssp = text.partition(":")
    if not sep:
        raise EIDError(f"{text!r} has no URI scheme")
    scheme = scheme.lower()  # RFC 3986 §3.1: schemes are case-insensitive
    if scheme == "dtn":
        if ssp == "none":
            return DTN_NONE
        return DtnEID.from_ssp(ssp)
    if scheme == "ipn":
        parts = ssp.split(".")
        if len(parts) not in (2, 3) or not all(_DIGITS.match(p) and len(p) <= 20 for p in parts):
            raise EIDError(f"{text!r}: ipn EIDs are ipn:node.service or ipn:auth.node.service")
        numbers = [int(p) for p in parts]
        if len(numbers) == 2:
            node, service = numbers
            if node > _U32:
                # accept the legacy text form of a fully-qualified node number
                return IpnEID.from_numbers(numbers) if node <= _U64 else _bad_ipn(text)
            return IpnEID(node, service)
        return IpnEID(numbers[1], numbers[2], numbers[0])
    raise EIDError(f"unsupported EID URI scheme {scheme!r} in {text!r}")


def _bad_ipn(text: str) -> IpnEID:
    raise EIDError(f"{text!r}: ipn node number out of range")


def decode_eid_cbor(buf: bytes | memoryview, pos: int = 0) -> tuple[EndpointID, int]:
    """Decode one CBOR-encoded EID at ``pos``; return ``(eid, position after it)``.

    Malformed CBOR raises :class:`~waystation.bundle.errors.DecodeError` (with the offset);
    well-formed CBOR that breaks a scheme rule raises :class:`EIDError`.
    """
    start = pos
    n, pos = read_array_head(buf, pos, "endpoint ID")
    if n != 2:
        raise EIDError(f"an endpoint ID must be an array of 2 items, not {n}", start)
    scheme_at = pos
    major, scheme, pos = read_head(buf, pos)
    if major != MAJOR_UINT or scheme == INDEFINITE:
        raise DecodeError(scheme_at, "endpoint ID: scheme code must be an unsigned integer")
    if scheme == SCHEME_DTN:
        major, arg, end = read_head(buf, pos)
        if major == MAJOR_UINT and arg != INDEFINITE:
            if arg != 0:
                raise EIDError(f"dtn EID with integer SSP {arg} (only 0 = dtn:none)", pos)
            return DTN_NONE, end
        if major != MAJOR_TEXT:
            raise DecodeError(pos, "dtn EID SSP must be a text string or 0")
        ssp, end = read_text(buf, pos, "dtn EID SSP")
        try:
            return DtnEID.from_ssp(ssp), end
        except EIDError as exc:
            raise EIDError(exc.reason, pos) from None
    if scheme == SCHEME_IPN:
        ssp_at = pos
        count, pos = read_array_head(buf, pos, "ipn EID SSP")
        if count not in (2, 3):
            raise EIDError(f"ipn SSP must have 2 or 3 elements, not {count}", ssp_at)
        numbers = []
        for _ in range(count):
            at = pos
            major, arg, pos = read_head(buf, pos)
            if major != MAJOR_UINT or arg == INDEFINITE:
                raise DecodeError(at, "ipn EID numbers must be unsigned integers")
            numbers.append(arg)
        try:
            return IpnEID.from_numbers(numbers), pos
        except EIDError as exc:
            raise EIDError(exc.reason, ssp_at) from None
    raise EIDError(f"unsupported EID URI scheme code {scheme}", scheme_at)


def eid_from_cbor(data: bytes | memoryview) -> EndpointID:
    """Decode a complete CBOR-encoded EID (no trailing bytes allowed)."""
    eid, end = decode_eid_cbor(data, 0)
    if end != len(data):
        raise DecodeError(end, "trailing bytes after endpoint ID")
    return eid

"""Security policy: which bundles get which BPSec operations, and the node's two entry points.

A policy is a list of :class:`SecurityRule`; each names a role (RFC 9172 §1.4/§5: ``source``,
``verifier``, ``acceptor``), a service (``integrity`` or ``confidentiality``), a security context
(``cose-sign1``, ``cose-mac0``, ``bib-hmac-sha2``, ``bcb-aes-gcm``), the bundles it applies to
(glob patterns on the bundle's source and destination EIDs), a key, and which blocks it covers.

The node calls:

* :func:`apply_outbound_policy` on a bundle it originates (or forwards): source rules add BIBs,
  then BCBs — so a BCB over a signed payload also encrypts the signature (RFC 9172 §3.9);
* :func:`apply_inbound_policy` on a received bundle: it gets an :class:`InboundVerdict`. At the
  bundle's destination, acceptor rules decrypt (BCBs first, RFC 9172 §5.1) and verify-and-remove,
  and a payload still encrypted afterwards rejects the bundle (15, or 13 for an unknown
  context); elsewhere verifier rules verify and leave the blocks. A *required* operation that is missing
  rejects with reason 12, a failed one with 15, an unknown context with 13, conflicting blocks
  with 16 (RFC 9172 §11.2). The node deletes a rejected bundle, logs it, and sends a status
  report with ``verdict.reason_code`` if the bundle asked for deletion reports.

Defaults (:meth:`SecurityPolicy.default`), per the project issue: every bundle the node
originates carries a COSE_Sign1 (Ed25519) BIB over its payload whose AAD includes the whole
primary block; at the destination a valid signature from a trusted key is required.

Configuration (``[security]`` in node.toml, parsed by :meth:`SecurityPolicy.from_config`)::

    [security]
    sign_originated = true        # default rule: COSE_Sign1 with the identity key
    require_signature = true      # default rule: destination requires a trusted signature

    [[security.rules]]
    name = "encrypt-to-c"
    role = "source"               # source | verifier | acceptor
    service = "confidentiality"   # integrity | confidentiality
    context = "bcb-aes-gcm"       # cose-sign1 | cose-mac0 | bib-hmac-sha2 | bcb-aes-gcm
                                  # | cose-encrypt0
    destination = "ipn:3.*"       # glob on the destination EID (default "*")
    source = "*"                  # glob on the bundle source EID
    key = "c-link"                # symmetric key name (not for cose-sign1)
    targets = ["payload"]         # payload | primary | block type number
    required = true               # verifier/acceptor: missing operation -> reject
    # optional: variant (HMAC 5/6/7, AES 1/3, COSE alg), scope (RFC 9173 flags), wrap = true
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from waystation.bundle.bpsec.contexts import (
    BcbAesGcm,
    BibHmacSha2,
    CoseEncrypt0,
    CoseMac0,
    CoseSign1,
)
from waystation.bundle.bpsec.contexts.base import ConfidentialitySource, IntegritySource
from waystation.bundle.bpsec.errors import (
    BPSecError,
    MissingSecurity,
    PolicyError,
    SecurityCheckFailed,
    SecurityReason,
    UnknownSecurityContext,
)
from waystation.bundle.bpsec.keys import SigningKey, StaticKeys, SymmetricKey, TrustedKey
from waystation.bundle.bpsec.operations import (
    Outcome,
    add_confidentiality,
    add_integrity,
    decrypt,
    security_blocks,
    verify_integrity,
)
from waystation.bundle.eid import EndpointID, parse_eid
from waystation.bundle.errors import BundleError
from waystation.bundle.model import BlockType, Bundle, CRCType

__all__ = [
    "BundleRejected",
    "ConfidentialityAccepted",
    "InboundVerdict",
    "IntegrityVerified",
    "KeyProvider",
    "SecurityPolicy",
    "SecurityRule",
    "apply_inbound_policy",
    "apply_outbound_policy",
    "check_wire",
    "protect_wire",
]

log = logging.getLogger("waystation.bpsec")

ROLES = ("source", "verifier", "acceptor")
SERVICES = {
    "cose-sign1": "integrity",
    "cose-mac0": "integrity",
    "bib-hmac-sha2": "integrity",
    "bcb-aes-gcm": "confidentiality",
    "cose-encrypt0": "confidentiality",
}
CONTEXT_IDS = {"cose-sign1": 3, "cose-mac0": 3, "bib-hmac-sha2": 1, "bcb-aes-gcm": 2,
               "cose-encrypt0": 3}


class KeyProvider(Protocol):
    """What policy application needs from a key store (:class:`KeyStore`, :class:`MemoryKeys`)."""

    def identity(self) -> SigningKey: ...

    def symmetric(self, name: str) -> SymmetricKey: ...

    def trusted(self) -> list[TrustedKey]: ...


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class IntegrityVerified:
    target: int
    security_block: int
    context_id: int
    source: EndpointID
    removed: bool


@dataclass(frozen=True, slots=True)
class ConfidentialityAccepted:
    target: int
    security_block: int
    context_id: int
    source: EndpointID


@dataclass(frozen=True, slots=True)
class BundleRejected:
    reason_code: SecurityReason
    reason: str


SecurityEvent = IntegrityVerified | ConfidentialityAccepted | BundleRejected


@dataclass(frozen=True, slots=True)
class InboundVerdict:
    """What the node does with a received bundle: keep ``bundle`` or delete with ``reason_code``.

    ``bundle`` is the bundle to store/deliver (decrypted and with accepted security blocks
    removed at the destination). ``deferred`` means nothing was checked because the bundle is a
    fragment: apply the policy again to the reassembled bundle.
    """

    accepted: bool
    bundle: Bundle
    reason_code: SecurityReason | None = None
    reason: str = ""
    deferred: bool = False
    events: tuple[SecurityEvent, ...] = ()


# ------------------------------------------------------------------------------ rules


def _target_numbers(bundle: Bundle, targets: Sequence[str | int]) -> list[int]:
    out: list[int] = []
    for t in targets:
        if t == "payload":
            out.append(1)
        elif t == "primary":
            out.append(0)
        else:
            out.extend(b.number for b in bundle.blocks if b.block_type == t)
    return out


@dataclass(frozen=True)
class SecurityRule:
    """One line of security policy (see the module docstring for the fields)."""

    name: str
    role: str
    context: str
    source: str = "*"
    destination: str = "*"
    key: str | None = None
    targets: tuple[str | int, ...] = ("payload",)
    required: bool = True
    variant: int | None = None
    scope: int | None = None
    wrap: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise PolicyError(f"rule {self.name!r}: role must be one of {', '.join(ROLES)}")
        if self.context not in SERVICES:
            raise PolicyError(
                f"rule {self.name!r}: context must be one of {', '.join(sorted(SERVICES))}"
            )
        if self.context != "cose-sign1" and self.key is None:
            raise PolicyError(f"rule {self.name!r}: context {self.context} needs a key name")
        for t in self.targets:
            if t not in ("payload", "primary") and not (type(t) is int and t > 1):
                raise PolicyError(f"rule {self.name!r}: bad target {t!r}")
        if self.service == "confidentiality" and "primary" in self.targets:
            raise PolicyError(f"rule {self.name!r}: the primary block cannot be encrypted")

    @property
    def service(self) -> str:
        return SERVICES[self.context]

    def matches(self, bundle: Bundle) -> bool:
        p = bundle.primary
        return fnmatch.fnmatchcase(str(p.source), self.source) and fnmatch.fnmatchcase(
            str(p.destination), self.destination
        )

    def integrity_source(self, keys: KeyProvider) -> IntegritySource:
        if self.context == "cose-sign1":
            return CoseSign1(keys.identity(), alg=self.variant)
        assert self.key is not None
        key = keys.symmetric(self.key)
        if self.context == "cose-mac0":
            return CoseMac0(key, alg=self.variant or 6)
        return BibHmacSha2(key, variant=self.variant or 6,
                           scope_flags=7 if self.scope is None else self.scope, wrap=self.wrap)

    def confidentiality_source(self, keys: KeyProvider) -> ConfidentialitySource:
        assert self.key is not None
        if self.context == "cose-encrypt0":
            return CoseEncrypt0(keys.symmetric(self.key), alg=self.variant or 3)
        return BcbAesGcm(keys.symmetric(self.key), variant=self.variant or 3,
                         scope_flags=7 if self.scope is None else self.scope, wrap=self.wrap)

    @classmethod
    def from_mapping(cls, obj: Mapping[str, Any], where: str) -> SecurityRule:
        known = {f for f in cls.__dataclass_fields__}
        extra = set(obj) - known
        if extra:
            raise PolicyError(f"{where}: unknown keys {', '.join(sorted(extra))}")
        kwargs = dict(obj)
        kwargs.setdefault("name", where)
        if "targets" in kwargs:
            if not isinstance(kwargs["targets"], list):
                raise PolicyError(f"{where}: targets must be a list")
            kwargs["targets"] = tuple(kwargs["targets"])
        for k, typ in (("name", str), ("role", str), ("context", str), ("source", str),
                       ("destination", str), ("required", bool), ("wrap", bool)):
            if k in kwargs and not isinstance(kwargs[k], typ):
                raise PolicyError(f"{where}: {k} must be a {typ.__name__}")
        for k in ("variant", "scope"):
            if k in kwargs and type(kwargs[k]) is not int:
                raise PolicyError(f"{where}: {k} must be an integer")
        if "key" in kwargs and not isinstance(kwargs["key"], str):
            raise PolicyError(f"{where}: key must be a key name")
        if "role" not in kwargs or "context" not in kwargs:
            raise PolicyError(f"{where}: needs 'role' and 'context'")
        return cls(**kwargs)


@dataclass(frozen=True)
class SecurityPolicy:
    """The node's security policy: its node IDs (for "am I the destination?") and rules."""

    local_nodes: frozenset[str]
    rules: tuple[SecurityRule, ...] = ()
    #: CRC type for security blocks we add (CRC-32C: cheap protection against corruption).
    crc_type: int = CRCType.CRC32C
    _local_eids: tuple[EndpointID, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "local_nodes", _nodes(self.local_nodes))
        object.__setattr__(self, "_local_eids",
                           tuple(parse_eid(n) for n in sorted(self.local_nodes)))

    @classmethod
    def default(cls, local_nodes: Iterable[str], *, sign: bool = True,
                require_signature: bool = True) -> SecurityPolicy:
        rules = []
        if sign:
            rules.append(SecurityRule("sign-originated", "source", "cose-sign1"))
        if require_signature:
            rules.append(SecurityRule("require-signature", "acceptor", "cose-sign1"))
        return cls(_nodes(local_nodes), tuple(rules))

    @classmethod
    def from_config(cls, local_nodes: Iterable[str], doc: Mapping[str, Any] | None) -> SecurityPolicy:
        """Parse the ``[security]`` table of node.toml (``None`` gives the default policy)."""
        doc = dict(doc or {})
        sign = doc.pop("sign_originated", True)
        require = doc.pop("require_signature", True)
        raw_rules = doc.pop("rules", [])
        if doc:
            raise PolicyError(f"[security]: unknown keys {', '.join(sorted(doc))}")
        if not isinstance(sign, bool) or not isinstance(require, bool):
            raise PolicyError("[security]: sign_originated/require_signature must be booleans")
        if not isinstance(raw_rules, list):
            raise PolicyError("[security]: rules must be an array of tables")
        base = cls.default(local_nodes, sign=sign, require_signature=require)
        rules = list(base.rules)
        for i, r in enumerate(raw_rules):
            if not isinstance(r, Mapping):
                raise PolicyError(f"security.rules[{i}] must be a table")
            rules.append(SecurityRule.from_mapping(r, f"security.rules[{i}]"))
        return cls(base.local_nodes, tuple(rules))

    def is_local(self, eid: EndpointID) -> bool:
        return str(eid.node_id) in self.local_nodes

    def security_source(self, bundle: Bundle) -> EndpointID:
        """The EID we name as security source: our node ID of the bundle's scheme if any."""
        source_type = type(bundle.primary.source)
        for eid in self._local_eids:
            if type(eid) is source_type:
                return eid
        return self._local_eids[0] if self._local_eids else bundle.primary.source.node_id


def _nodes(local_nodes: Iterable[str]) -> frozenset[str]:
    try:
        return frozenset(str(parse_eid(n).node_id) for n in local_nodes)
    except BundleError as exc:
        raise PolicyError(f"bad local node ID: {exc}") from None


# ------------------------------------------------------------------------------ outbound


def apply_outbound_policy(
    bundle: Bundle, policy: SecurityPolicy, keys: KeyProvider, *, originated: bool = True
) -> Bundle:
    """Add the security operations the policy's *source* rules call for.

    Integrity first, then confidentiality (one BCB per rule, fresh IV and key use each), so an
    encrypted target's signature is encrypted along with it. Source rules apply to bundles
    this node originates; with ``originated=False`` (forwarding) only rules whose source pattern
    is not ``*`` apply, i.e. rules written for traffic passing through (waypoint security).
    """
    source_eid = policy.security_source(bundle)
    rules = [
        r for r in policy.rules
        if r.role == "source" and r.matches(bundle) and (originated or r.source != "*")
    ]
    for rule in (r for r in rules if r.service == "integrity"):
        covered, encrypted = _secured_targets(bundle)
        # Already protected (e.g. a waypoint rule meeting a signed bundle) or no longer
        # protectable (encrypted, §3.9; a fragment's payload): skip rather than fail.
        targets = [t for t in _target_numbers(bundle, rule.targets)
                   if t not in covered and t not in encrypted and _securable(bundle, t)]
        if targets:
            bundle = add_integrity(bundle, targets, rule.integrity_source(keys), source_eid,
                                   crc_type=policy.crc_type)
    for rule in (r for r in rules if r.service == "confidentiality"):
        for target in _target_numbers(bundle, rule.targets):
            _, encrypted = _secured_targets(bundle)
            if target in encrypted or not _securable(bundle, target):
                continue
            bundle = add_confidentiality(bundle, [target], rule.confidentiality_source(keys),
                                         source_eid, crc_type=policy.crc_type)
    return bundle


def _secured_targets(bundle: Bundle) -> tuple[set[int], set[int]]:
    """(targets of BIBs, targets of BCBs) of ``bundle``."""
    covered: set[int] = set()
    encrypted: set[int] = set()
    for sb in security_blocks(bundle):
        if sb.asb is not None:
            (covered if sb.is_bib else encrypted).update(sb.asb.targets)
    return covered, encrypted


def _securable(bundle: Bundle, target: int) -> bool:
    return not (bundle.is_fragment and target == 1)


# ------------------------------------------------------------------------------ inbound


def _resolver(rules: Sequence[SecurityRule], keys: KeyProvider) -> StaticKeys:
    symmetric = [keys.symmetric(r.key) for r in rules if r.key is not None]
    return StaticKeys(symmetric, keys.trusted())


def _contexts(rules: Sequence[SecurityRule]) -> frozenset[int]:
    return frozenset(CONTEXT_IDS[r.context] for r in rules)


def _context_ok(rule: SecurityRule, outcome: Outcome) -> bool:
    return outcome.context_id == CONTEXT_IDS[rule.context]


def apply_inbound_policy(
    bundle: Bundle, policy: SecurityPolicy, keys: KeyProvider
) -> InboundVerdict:
    """Check a received bundle against the policy; never raises for bad bundles.

    Local configuration faults (a rule naming a missing key) do raise
    :class:`~waystation.bundle.bpsec.errors.LocalSecurityError`: a bundle must not be deleted
    because *we* are misconfigured.
    """
    events: list[SecurityEvent] = []
    try:
        if bundle.is_fragment:
            return InboundVerdict(True, bundle, deferred=True)
        security_blocks(bundle)  # structural rules first: conflicting blocks reject outright
        at_destination = policy.is_local(bundle.primary.destination)
        role = "acceptor" if at_destination else "verifier"
        rules = [r for r in policy.rules if r.role == role and r.matches(bundle)]
        if at_destination:
            conf_rules = [r for r in rules if r.service == "confidentiality"]
            if conf_rules:
                wanted = {t for r in conf_rules for t in _target_numbers(bundle, r.targets)}
                bundle, outcomes = decrypt(bundle, _resolver(conf_rules, keys), targets=wanted,
                                           contexts=_contexts(conf_rules))
                events.extend(ConfidentialityAccepted(o.target, o.security_block, o.context_id,
                                                      o.source) for o in outcomes)
                _require(conf_rules, bundle, outcomes)
            _payload_readable(bundle)
        int_rules = [r for r in rules if r.service == "integrity"]
        if int_rules:
            wanted = {t for r in int_rules for t in _target_numbers(bundle, r.targets)}
            bundle, outcomes = verify_integrity(bundle, _resolver(int_rules, keys),
                                                targets=wanted, remove=at_destination,
                                                contexts=_contexts(int_rules))
            events.extend(IntegrityVerified(o.target, o.security_block, o.context_id, o.source,
                                            o.removed) for o in outcomes)
            _require(int_rules, bundle, outcomes)
    except BPSecError as exc:
        if not exc.reason_code or isinstance(exc, PolicyError):
            raise
        return _reject(bundle, exc.reason_code, exc.reason, events)
    except BundleError as exc:
        return _reject(bundle, SecurityReason.BLOCK_UNINTELLIGIBLE, str(exc), events)
    return InboundVerdict(True, bundle, events=tuple(events))


def _payload_readable(bundle: Bundle) -> None:
    """At the destination the payload must not still be ciphertext (RFC 9172 §5.1.1).

    Delivering an encrypted payload as if it were the application data would be silent
    corruption; a BCB we have no rule (or no key) for is a failed operation here, or an
    unknown one when we do not even know its context.
    """
    for sb in security_blocks(bundle):
        if sb.is_bib or sb.asb is None or 1 not in sb.asb.targets:
            continue
        if sb.asb.context_id not in CONTEXT_IDS.values():
            raise UnknownSecurityContext(
                f"payload is encrypted by BCB {sb.number} with unknown context "
                f"{sb.asb.context_id}"
            )
        raise SecurityCheckFailed(
            f"payload is encrypted by BCB {sb.number} (context {sb.asb.context_id}) and no "
            "acceptor rule of this node decrypts it", 1
        )


def _require(rules: Sequence[SecurityRule], bundle: Bundle, outcomes: Sequence[Outcome]) -> None:
    for rule in rules:
        if not rule.required:
            continue
        for target in _target_numbers(bundle, rule.targets):
            if not any(o.target == target and _context_ok(rule, o) for o in outcomes):
                raise MissingSecurity(
                    f"policy rule {rule.name!r} requires {rule.context} {rule.service} on block "
                    f"{target}, which the bundle does not carry"
                )


def _reject(bundle: Bundle, code: SecurityReason, reason: str,
            events: list[SecurityEvent]) -> InboundVerdict:
    try:
        ident = str(bundle.bundle_id)
    except BundleError:
        ident = "<unidentifiable bundle>"
    log.warning("security policy rejects bundle %s: %s (reason code %d)", ident, reason, code)
    events.append(BundleRejected(code, reason))
    return InboundVerdict(False, bundle, code, reason, events=tuple(events))


# Security-block type codes, re-exported for node code that filters blocks.
BIB_TYPE = int(BlockType.BLOCK_INTEGRITY)
BCB_TYPE = int(BlockType.BLOCK_CONFIDENTIALITY)


# ------------------------------------------------------------------------------ wire helpers


def protect_wire(
    wire: bytes, policy: SecurityPolicy, keys: KeyProvider, *, originated: bool = True
) -> bytes:
    """:func:`apply_outbound_policy` on encoded bundle bytes (returns ``wire`` if unchanged)."""
    from waystation.bundle.codec import decode_bundle, encode_bundle

    bundle = decode_bundle(wire)
    out = apply_outbound_policy(bundle, policy, keys, originated=originated)
    return wire if out is bundle else bytes(encode_bundle(out))


def check_wire(
    wire: bytes, policy: SecurityPolicy, keys: KeyProvider
) -> tuple[InboundVerdict, bytes]:
    """:func:`apply_inbound_policy` on encoded bytes: (verdict, bytes to store or deliver).

    The bytes are ``wire`` itself when the policy changed nothing (a forwarder), so a node can
    keep forwarding the exact bytes it received.
    """
    from waystation.bundle.codec import decode_bundle, encode_bundle

    bundle = decode_bundle(wire)
    verdict = apply_inbound_policy(bundle, policy, keys)
    changed = verdict.bundle is not bundle
    return verdict, bytes(encode_bundle(verdict.bundle)) if changed else wire

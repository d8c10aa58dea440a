"""Key material as security contexts consume it, and the resolver protocol acceptors use.

Secrets never appear in ``repr``/``str`` (and so never in logs or tracebacks): every class here
redacts its key bytes. Public keys are identified by a *key id* (``kid``): the first 16 bytes of
the SHA-256 of the raw public key, carried as the COSE ``kid`` header (label 4) so a verifier
finds the right trusted key without guessing (draft-ietf-dtn-bpsec-cose §3.3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from waystation.bundle.bpsec.errors import KeyNotFound
from waystation.bundle.eid import EndpointID

__all__ = [
    "KeyResolver",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "StaticKeys",
    "SymmetricKey",
    "TrustedKey",
    "fingerprint",
    "key_id",
    "raw_public_bytes",
]

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def raw_public_bytes(public: PublicKey) -> bytes:
    """Raw Ed25519 key (32 bytes) or uncompressed X9.62 EC point."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def fingerprint(public: PublicKey) -> str:
    """SHA-256 of the raw public key, hex — what ``waystation keys show`` prints."""
    return hashlib.sha256(raw_public_bytes(public)).hexdigest()


def key_id(public: PublicKey) -> bytes:
    """The COSE ``kid`` we put in signatures: the first 16 bytes of the fingerprint."""
    return hashlib.sha256(raw_public_bytes(public)).digest()[:16]


@dataclass(frozen=True, slots=True)
class SymmetricKey:
    """A named shared secret for BIB-HMAC-SHA2, BCB-AES-GCM (as CEK or KEK) or COSE MAC."""

    name: str
    material: bytes = field(repr=False)
    #: COSE "Base IV" of the key (RFC 9052 §3.1): combined with a message's Partial IV.
    base_iv: bytes | None = None

    def __repr__(self) -> str:
        return f"SymmetricKey(name={self.name!r}, bits={len(self.material) * 8}, material=<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private signing key (Ed25519 or ECDSA) with its key id (computed once)."""

    private: PrivateKey = field(repr=False)
    name: str = "identity"
    public: PublicKey = field(init=False, repr=False, compare=False)
    kid: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        public = self.private.public_key()
        object.__setattr__(self, "public", public)
        object.__setattr__(self, "kid", key_id(public))

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, kid={self.kid.hex()}, private=<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A peer's public key, bound to the node ID it may sign for.

    ``node`` is a node ID (e.g. ``ipn:2.0`` or ``dtn://b/``); ``None`` trusts the key for any
    security source (only sensible in closed test networks).
    """

    name: str
    public: PublicKey
    node: str | None = None
    kid: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", key_id(self.public))

    def allows(self, source: EndpointID) -> bool:
        return self.node is None or self.node == str(source.node_id)


class KeyResolver(Protocol):
    """Where a verifier/acceptor finds keys. Both methods return candidates (maybe several)."""

    def symmetric_keys(
        self, context_id: int, source: EndpointID, kid: bytes | None
    ) -> Sequence[SymmetricKey]: ...

    def public_keys(self, source: EndpointID, kid: bytes | None) -> Sequence[TrustedKey]: ...


class StaticKeys:
    """A fixed in-memory :class:`KeyResolver` (tests, the RFC 9173 vectors, simple setups)."""

    def __init__(
        self,
        symmetric: Sequence[SymmetricKey] = (),
        trusted: Sequence[TrustedKey] = (),
    ) -> None:
        self._symmetric = tuple(symmetric)
        self._trusted = tuple(trusted)

    def symmetric_keys(
        self, context_id: int, source: EndpointID, kid: bytes | None
    ) -> Sequence[SymmetricKey]:
        if kid is not None:
            named = [k for k in self._symmetric if k.name.encode() == kid]
            if named:
                return named
        return self._symmetric

    def public_keys(self, source: EndpointID, kid: bytes | None) -> Sequence[TrustedKey]:
        keys = [k for k in self._trusted if k.allows(source)]
        if kid is not None:
            keys = [k for k in keys if k.kid == kid]
        return keys

    def __repr__(self) -> str:
        return f"StaticKeys({len(self._symmetric)} symmetric, {len(self._trusted)} trusted)"


def require(keys: Sequence[SymmetricKey], what: str) -> Sequence[SymmetricKey]:
    if not keys:
        raise KeyNotFound(f"no symmetric key configured for {what}")
    return keys

"""The slice of COSE (RFC 9052/9053) the BPSec COSE context needs, with detached payloads.

Implemented: COSE_Sign1 (EdDSA/Ed25519 and ECDSA on P-256/P-384/P-521, RFC 9053 §2.1-2.2,
fully-specified IDs of RFC 9864), COSE_Mac0 (HMAC-SHA2, RFC 9053 §3.1). Messages are encoded
untagged with a ``null`` payload, as draft-ietf-dtn-bpsec-cose §2.3 requires; the payload and
``external_aad`` are supplied by the caller when signing and verifying.

ECDSA signatures are the fixed-size ``r || s`` form of RFC 9053 §2.1, not DER.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from waystation.bundle.bpsec.errors import ForbiddenOperation, MalformedSecurityBlock
from waystation.bundle.bpsec.keys import PrivateKey, PublicKey

__all__ = [
    "ALG_EDDSA",
    "ALG_ED25519",
    "ALG_ES256",
    "ALG_ESP256",
    "HDR_ALG",
    "HDR_KID",
    "CoseMessage",
    "decode_message",
    "encode_message",
    "hmac_alg_of",
    "mac0_tag",
    "sig_structure",
    "sign",
    "signature_alg_for",
    "verify_signature",
]

HDR_ALG, HDR_KID = 1, 4
ALG_EDDSA, ALG_ED25519 = -8, -19
ALG_ES256, ALG_ES384, ALG_ES512 = -7, -35, -36
ALG_ESP256, ALG_ESP384, ALG_ESP512 = -9, -51, -52
ALG_HMAC_256_64, ALG_HMAC_256, ALG_HMAC_384, ALG_HMAC_512 = 4, 5, 6, 7

# ECDSA algorithm -> (curve class, hash, coordinate size in bytes)
_ECDSA: dict[int, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm], int]] = {
    ALG_ES256: (ec.SECP256R1, hashes.SHA256, 32),
    ALG_ESP256: (ec.SECP256R1, hashes.SHA256, 32),
    ALG_ES384: (ec.SECP384R1, hashes.SHA384, 48),
    ALG_ESP384: (ec.SECP384R1, hashes.SHA384, 48),
    ALG_ES512: (ec.SECP521R1, hashes.SHA512, 66),
    ALG_ESP512: (ec.SECP521R1, hashes.SHA512, 66),
}
# HMAC algorithm -> (hashlib name, tag length)
_HMAC: dict[int, tuple[str, int]] = {
    ALG_HMAC_256_64: ("sha256", 8),
    ALG_HMAC_256: ("sha256", 32),
    ALG_HMAC_384: ("sha384", 48),
    ALG_HMAC_512: ("sha512", 64),
}


@dataclass(frozen=True, slots=True)
class CoseMessage:
    """A decoded single-layer COSE message (Sign1 or Mac0) with a detached payload."""

    protected: bytes  # the serialized protected header map, as carried
    protected_map: dict[Any, Any]
    unprotected: dict[Any, Any]
    tag_or_signature: bytes

    @property
    def alg(self) -> Any:
        return self.protected_map.get(HDR_ALG, self.unprotected.get(HDR_ALG))

    def kid(self, extra: dict[Any, Any] | None = None) -> bytes | None:
        kid = self.protected_map.get(HDR_KID, self.unprotected.get(HDR_KID))
        if kid is None and extra:
            kid = extra.get(HDR_KID)
        return kid if isinstance(kid, bytes) else None


def encode_message(protected: dict[int, Any], unprotected: dict[int, Any], tag: bytes) -> bytes:
    prot = cbor2.dumps(protected, canonical=True) if protected else b""
    return cbor2.dumps([prot, unprotected, None, tag], canonical=True)


def decode_message(data: Any, n_items: int = 4) -> CoseMessage:
    """Decode an untagged, detached COSE message carried as a result byte string.

    ``n_items`` is 4 for COSE_Sign1/COSE_Mac0 (with signature/tag) and 3 for COSE_Encrypt0
    (whose tag travels with the ciphertext in the target block).
    """
    if not isinstance(data, bytes):
        raise MalformedSecurityBlock("COSE result must be a byte string")
    try:
        msg = cbor2.loads(data)
        if not isinstance(msg, list) or len(msg) != n_items:
            raise MalformedSecurityBlock(f"COSE message must be a {n_items}-element array")
        prot, unprot, payload = msg[:3]
        tag = msg[3] if n_items == 4 else b""
        if not isinstance(prot, bytes) or not isinstance(unprot, dict):
            raise MalformedSecurityBlock("COSE headers have the wrong types")
        if payload is not None:
            raise MalformedSecurityBlock("BPSec COSE results must use a detached (null) payload")
        if not isinstance(tag, bytes):
            raise MalformedSecurityBlock("COSE signature/tag must be a byte string")
        prot_map = cbor2.loads(prot) if prot else {}
        if not isinstance(prot_map, dict):
            raise MalformedSecurityBlock("COSE protected header is not a map")
    except MalformedSecurityBlock:
        raise
    except Exception as exc:  # hostile CBOR: cbor2 raises various types
        raise MalformedSecurityBlock(f"COSE message is not well-formed: {exc}") from None
    if 2 in prot_map:  # 'crit': we understand no extension headers
        raise MalformedSecurityBlock("COSE message marks headers critical that we do not know")
    return CoseMessage(prot, prot_map, unprot, tag)


def sig_structure(protected: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """Sig_structure for COSE_Sign1 (RFC 9052 §4.4)."""
    return cbor2.dumps(["Signature1", protected, external_aad, payload])


def mac_structure(protected: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """MAC_structure for COSE_Mac0 (RFC 9052 §6.3)."""
    return cbor2.dumps(["MAC0", protected, external_aad, payload])


def signature_alg_for(private: PrivateKey) -> int:
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return ALG_EDDSA
    if isinstance(private, ec.EllipticCurvePrivateKey):
        for alg in (ALG_ES256, ALG_ES384, ALG_ES512):
            if isinstance(private.curve, _ECDSA[alg][0]):
                return alg
    raise ForbiddenOperation(f"no COSE signature algorithm for {type(private).__name__}")


def sign(private: PrivateKey, alg: int, to_be_signed: bytes) -> bytes:
    if alg in (ALG_EDDSA, ALG_ED25519) and isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(to_be_signed)
    if alg in _ECDSA and isinstance(private, ec.EllipticCurvePrivateKey):
        curve, hash_cls, size = _ECDSA[alg]
        if not isinstance(private.curve, curve):
            raise ForbiddenOperation(f"COSE alg {alg} does not match the key's curve")
        r, s = decode_dss_signature(private.sign(to_be_signed, ec.ECDSA(hash_cls())))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise ForbiddenOperation(f"COSE alg {alg} does not fit a {type(private).__name__}")


def verify_signature(public: PublicKey, alg: Any, to_be_signed: bytes, signature: bytes) -> bool:
    """True if ``signature`` verifies; False for a wrong signature or a key/alg mismatch."""
    if type(alg) is not int or not isinstance(signature, bytes):
        return False  # a hostile header may carry any CBOR item here
    try:
        if alg in (ALG_EDDSA, ALG_ED25519) and isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, to_be_signed)
            return True
        if alg in _ECDSA and isinstance(public, ec.EllipticCurvePublicKey):
            curve, hash_cls, size = _ECDSA[alg]
            if not isinstance(public.curve, curve) or len(signature) != 2 * size:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            public.verify(der, to_be_signed, ec.ECDSA(hash_cls()))
            return True
    except InvalidSignature:
        return False
    return False


def hmac_alg_of(alg: Any) -> tuple[str, int]:
    if type(alg) is not int or alg not in _HMAC:
        raise MalformedSecurityBlock(f"unsupported COSE MAC algorithm {alg!r}")
    return _HMAC[alg]


def mac0_tag(key: bytes, alg: int, protected: bytes, external_aad: bytes, payload: bytes) -> bytes:
    digest, length = hmac_alg_of(alg)
    return hmac.new(key, mac_structure(protected, external_aad, payload), digest).digest()[:length]

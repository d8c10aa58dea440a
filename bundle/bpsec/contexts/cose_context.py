"""The BPSec COSE context, security context ID 3 (draft-ietf-dtn-bpsec-cose-16).

Implemented for BIBs: COSE_Sign1 results (result ID 18) with Ed25519 (EdDSA, alg -8; -19
accepted) and ECDSA P-256/P-384/P-521, and COSE_Mac0 results (result ID 17) with HMAC-SHA2.
For BCBs: COSE_Encrypt0 results (result ID 16) with AES-GCM (algs 1/2/3) and a direct key; the
target BTSD becomes ciphertext || tag (16 bytes longer, §2.3.2); the IV is carried in full
(header 5) or as a Partial IV (header 6) combined with the key's Base IV (RFC 9052 §3.1).
Parameters (§2.2): 3 additional-protected (bstr), 4 additional-unprotected, 5 AAD scope (map of
block number or special key -1 = target, -2 = security block, to flags bit 0 = metadata,
bit 1 = BTSD). Default AAD scope: ``{0: 1, -1: 1, -2: 1}``.

External AAD (§2.5.1), a CBOR sequence: the security source EID; the AAD scope map
(deterministic encoding); for each scope entry (block numbers ascending, then -1, -2): metadata
(the encoded primary block for 0, else type/number/flags as three uints) if bit 0, the BTSD as
a byte string if bit 1 (not for 0); finally the additional-protected byte string (default h'').
The COSE payload is the target BTSD, or the encoded primary block when the target is block 0.

Not implemented: COSE_Encrypt (recipient layers: key wrap, ECDH, HKDF) and the multi-signer
forms COSE_Sign and COSE_Mac; certificate (x5chain/x5t) handling — keys are pinned in the trust
store by ``kid``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from waystation.bundle.bpsec import cose
from waystation.bundle.bpsec.asb import AbstractSecurityBlock
from waystation.bundle.bpsec.contexts.base import Pair
from waystation.bundle.bpsec.errors import (
    ForbiddenOperation,
    KeyNotFound,
    MalformedSecurityBlock,
    SecurityCheckFailed,
)
from waystation.bundle.bpsec.keys import KeyResolver, SigningKey, SymmetricKey
from waystation.bundle.bpsec.scope import OperationScope, block_metadata
from waystation.bundle.cborhead import MAJOR_BYTES, encode_bytes, encode_head

__all__ = [
    "CONTEXT_ID",
    "DEFAULT_AAD_SCOPE",
    "CoseEncrypt0",
    "CoseHandler",
    "CoseMac0",
    "CoseSign1",
    "external_aad",
]

CONTEXT_ID = 3
PARAM_ADDL_PROTECTED, PARAM_ADDL_UNPROTECTED, PARAM_AAD_SCOPE = 3, 4, 5
RESULT_ENCRYPT0, RESULT_MAC0, RESULT_SIGN1 = 16, 17, 18
AAD_METADATA, AAD_BTSD = 0x01, 0x02
KEY_TARGET, KEY_SECURITY = -1, -2
DEFAULT_AAD_SCOPE: dict[int, int] = {0: AAD_METADATA, KEY_TARGET: AAD_METADATA, KEY_SECURITY: AAD_METADATA}


def _scope_order(aad_scope: dict[int, int]) -> list[int]:
    positives = sorted(k for k in aad_scope if k >= 0)
    negatives = sorted((k for k in aad_scope if k < 0), reverse=True)
    return positives + negatives


_SCOPE_CACHE: dict[tuple[tuple[int, int], ...], bytes] = {}


def _encoded_scope(aad_scope: dict[int, int]) -> bytes:
    # The same few scope maps recur on every bundle; their deterministic encoding is memoized.
    key = tuple(sorted(aad_scope.items()))
    encoded = _SCOPE_CACHE.get(key)
    if encoded is None:
        encoded = cbor2.dumps(aad_scope, canonical=True)
        if len(_SCOPE_CACHE) < 64:
            _SCOPE_CACHE[key] = encoded
    return encoded


def external_aad(
    scope: OperationScope, aad_scope: dict[int, int], additional_protected: bytes = b""
) -> bytes:
    """The external AAD of draft-ietf-dtn-bpsec-cose §2.5.1."""
    parts = [scope.source.to_cbor(), _encoded_scope(aad_scope)]
    for key in _scope_order(aad_scope):
        flags = aad_scope[key]
        if key == 0:
            if flags & AAD_METADATA:
                parts.append(scope.primary)
            continue
        if key == KEY_TARGET:
            if scope.target is None:
                if flags & AAD_METADATA:  # the target is the primary block itself
                    parts.append(scope.primary)
                continue
            header = block_metadata(scope.target.block_type, scope.target.number, scope.target.flags)
            data = scope.target.data
        elif key == KEY_SECURITY:
            header, data = scope.security_metadata, None
        elif key > 0:
            block = scope.blocks.get(key)
            if block is None:
                raise SecurityCheckFailed(f"AAD scope names block {key}, which is not in the bundle",
                                          scope.target_number)
            header = block_metadata(block.block_type, block.number, block.flags)
            data = block.data
        else:
            raise SecurityCheckFailed(f"AAD scope uses unsupported special key {key}",
                                      scope.target_number)
        if flags & AAD_METADATA:
            parts.append(header)
        if flags & AAD_BTSD and data is not None and key not in (KEY_TARGET, KEY_SECURITY):
            parts.append(encode_head(MAJOR_BYTES, len(data)))
            parts.append(bytes(data))
    parts.append(encode_bytes(additional_protected))
    return b"".join(parts)


def _scope_param(aad_scope: dict[int, int]) -> tuple[Pair, ...]:
    return () if aad_scope == DEFAULT_AAD_SCOPE else ((PARAM_AAD_SCOPE, dict(aad_scope)),)


def _check_aad_scope(value: Any) -> dict[int, int]:
    if not isinstance(value, dict) or not all(
        type(k) is int and type(v) is int and v >= 0 for k, v in value.items()
    ):
        raise MalformedSecurityBlock("COSE context: AAD scope must map integers to uint flags")
    return value


@dataclass(frozen=True)
class _PreparedSign1:
    parameters: tuple[Pair, ...]
    key: SigningKey = field(repr=False)
    alg: int
    aad_scope: dict[int, int]

    def sign(self, scope: OperationScope) -> tuple[Pair, ...]:
        protected = cbor2.dumps({cose.HDR_ALG: self.alg})
        tbs = cose.sig_structure(
            protected, external_aad(scope, self.aad_scope), bytes(scope.target_data)
        )
        signature = cose.sign(self.key.private, self.alg, tbs)
        msg = cbor2.dumps([protected, {cose.HDR_KID: self.key.kid}, None, signature])
        return ((RESULT_SIGN1, msg),)


@dataclass(frozen=True)
class CoseSign1:
    """Security source: sign targets with a node's private key (COSE_Sign1, detached)."""

    key: SigningKey
    aad_scope: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_AAD_SCOPE))
    alg: int | None = None
    context_id: int = CONTEXT_ID

    def prepare(self) -> _PreparedSign1:
        alg = self.alg if self.alg is not None else cose.signature_alg_for(self.key.private)
        return _PreparedSign1(_scope_param(self.aad_scope), self.key, alg, self.aad_scope)


@dataclass(frozen=True)
class _PreparedMac0:
    parameters: tuple[Pair, ...]
    key: SymmetricKey = field(repr=False)
    alg: int
    aad_scope: dict[int, int]

    def sign(self, scope: OperationScope) -> tuple[Pair, ...]:
        protected = cbor2.dumps({cose.HDR_ALG: self.alg})
        tag = cose.mac0_tag(self.key.material, self.alg, protected,
                            external_aad(scope, self.aad_scope), bytes(scope.target_data))
        msg = cbor2.dumps([protected, {cose.HDR_KID: self.key.name.encode()}, None, tag])
        return ((RESULT_MAC0, msg),)


@dataclass(frozen=True)
class CoseMac0:
    """Security source: MAC targets with a shared key (COSE_Mac0, ``kid`` = key name)."""

    key: SymmetricKey
    alg: int = cose.ALG_HMAC_384
    aad_scope: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_AAD_SCOPE))
    context_id: int = CONTEXT_ID

    def __post_init__(self) -> None:
        try:
            cose.hmac_alg_of(self.alg)
        except MalformedSecurityBlock as exc:
            raise ForbiddenOperation(str(exc)) from None

    def prepare(self) -> _PreparedMac0:
        return _PreparedMac0(_scope_param(self.aad_scope), self.key, self.alg, self.aad_scope)


_AES_GCM_KEY_LEN = {1: 16, 2: 24, 3: 32}
HDR_IV, HDR_PARTIAL_IV = 5, 6


def _enc_structure(protected: bytes, aad: bytes) -> bytes:
    """Enc_structure for COSE_Encrypt0 (RFC 9052 §5.3)."""
    return cbor2.dumps(["Encrypt0", protected, aad])


def _full_iv(base_iv: bytes, partial_iv: bytes) -> bytes:
    """RFC 9052 §3.1: left-pad the Partial IV to the Base IV's length and XOR them."""
    if len(partial_iv) > len(base_iv):
        raise MalformedSecurityBlock("COSE Partial IV is longer than the key's Base IV")
    padded = bytes(len(base_iv) - len(partial_iv)) + partial_iv
    return bytes(a ^ b for a, b in zip(base_iv, padded))


@dataclass(frozen=True)
class _PreparedEncrypt0:
    parameters: tuple[Pair, ...]
    key: SymmetricKey = field(repr=False)
    alg: int
    aad_scope: dict[int, int]
    partial_iv: bytes | None

    def encrypt(self, scope: OperationScope) -> tuple[bytes, tuple[Pair, ...]]:
        if scope.target is None:
            raise ForbiddenOperation("RFC 9172 §3.8: a BCB must not target the primary block")
        unprotected: dict[int, Any] = {cose.HDR_KID: self.key.name.encode()}
        if self.partial_iv is not None:
            if self.key.base_iv is None:
                raise ForbiddenOperation(f"key {self.key.name!r} has no Base IV for a Partial IV")
            iv = _full_iv(self.key.base_iv, self.partial_iv)
            unprotected[HDR_PARTIAL_IV] = self.partial_iv
        else:
            iv = os.urandom(12)
            unprotected[HDR_IV] = iv
        protected = cbor2.dumps({cose.HDR_ALG: self.alg})
        aad = _enc_structure(protected, external_aad(scope, self.aad_scope))
        sealed = AESGCM(self.key.material).encrypt(iv, bytes(scope.target.data), aad)
        msg = cbor2.dumps([protected, unprotected, None], canonical=True)
        return sealed, ((RESULT_ENCRYPT0, msg),)


@dataclass(frozen=True)
class CoseEncrypt0:
    """Security source: encrypt targets with a shared AES-GCM key (COSE_Encrypt0, detached).

    A fresh random 12-byte IV per target is carried in header 5. ``partial_iv`` (with a key
    that has a ``base_iv``) exists to reproduce the draft's example; never reuse one.
    """

    key: SymmetricKey
    alg: int = 3
    aad_scope: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_AAD_SCOPE))
    partial_iv: bytes | None = None
    context_id: int = CONTEXT_ID

    def __post_init__(self) -> None:
        if _AES_GCM_KEY_LEN.get(self.alg) != len(self.key.material):
            raise ForbiddenOperation(
                f"COSE alg {self.alg} needs a {_AES_GCM_KEY_LEN.get(self.alg, '?')}-byte key; "
                f"{self.key.name!r} has {len(self.key.material)}"
            )

    def prepare(self) -> _PreparedEncrypt0:
        return _PreparedEncrypt0(_scope_param(self.aad_scope), self.key, self.alg,
                                 self.aad_scope, self.partial_iv)


def _additional_headers(asb: AbstractSecurityBlock) -> tuple[bytes, dict[Any, Any]]:
    prot = asb.parameter(PARAM_ADDL_PROTECTED, b"")
    unprot = asb.parameter(PARAM_ADDL_UNPROTECTED, b"")
    if not isinstance(prot, bytes):
        raise MalformedSecurityBlock("COSE context: additional-protected must be a byte string")
    merged: dict[Any, Any] = {}
    try:
        for raw in (prot, unprot):
            value = cbor2.loads(raw) if isinstance(raw, bytes) and raw else raw
            if isinstance(value, dict):
                merged.update(value)
    except Exception as exc:
        raise MalformedSecurityBlock(f"COSE context: bad additional header: {exc}") from None
    return prot, merged


class CoseHandler:
    """Verifier/acceptor side of the COSE context (integrity results only)."""

    context_id = CONTEXT_ID
    name = "COSE"

    def verify(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> None:
        aad_scope = _check_aad_scope(asb.parameter(PARAM_AAD_SCOPE, DEFAULT_AAD_SCOPE))
        addl_protected, addl_headers = _additional_headers(asb)
        usable = [(rid, v) for rid, v in results if rid in (RESULT_SIGN1, RESULT_MAC0)]
        if not usable:
            raise MalformedSecurityBlock("COSE context: no COSE_Sign1/COSE_Mac0 result")
        aad = external_aad(scope, aad_scope, addl_protected)
        payload = bytes(scope.target_data)
        # Every result for the target must verify: a bad one is a failed operation.
        for rid, value in usable:
            msg = cose.decode_message(value)
            kid = msg.kid(addl_headers)
            if rid == RESULT_SIGN1:
                tbs = cose.sig_structure(msg.protected, aad, payload)
                trusted = keys.public_keys(asb.source, kid)
                if not trusted:
                    # Not our misconfiguration: the signer is simply not trusted for this source.
                    raise SecurityCheckFailed(
                        f"block {scope.target_number} is signed by a key not trusted for "
                        f"{asb.source}" + (f" (kid {kid.hex()})" if kid else ""),
                        scope.target_number,
                    )
                if not any(
                    cose.verify_signature(t.public, msg.alg, tbs, msg.tag_or_signature)
                    for t in trusted
                ):
                    raise SecurityCheckFailed(
                        f"COSE_Sign1 signature over block {scope.target_number} does not verify",
                        scope.target_number,
                    )
            else:
                candidates = keys.symmetric_keys(CONTEXT_ID, asb.source, kid)
                if not candidates:
                    raise KeyNotFound(f"no MAC key for {asb.source}")
                alg = msg.alg
                cose.hmac_alg_of(alg)
                if not any(
                    cose.hmac.compare_digest(
                        cose.mac0_tag(k.material, alg, msg.protected, aad, payload),
                        msg.tag_or_signature,
                    )
                    for k in candidates
                ):
                    raise SecurityCheckFailed(
                        f"COSE_Mac0 over block {scope.target_number} does not verify",
                        scope.target_number,
                    )

    def decrypt(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> bytes:
        if scope.target is None:
            raise MalformedSecurityBlock("COSE context: a BCB cannot target the primary block")
        aad_scope = _check_aad_scope(asb.parameter(PARAM_AAD_SCOPE, DEFAULT_AAD_SCOPE))
        addl_protected, addl_headers = _additional_headers(asb)
        usable = [v for rid, v in results if rid == RESULT_ENCRYPT0]
        if len(usable) != 1:
            raise MalformedSecurityBlock("COSE context: a BCB target needs one COSE_Encrypt0")
        msg = cose.decode_message(usable[0], n_items=3)
        alg = msg.alg
        if type(alg) is not int or alg not in _AES_GCM_KEY_LEN:
            raise MalformedSecurityBlock(f"COSE_Encrypt0: unsupported algorithm {alg!r}")
        headers = {**addl_headers, **msg.unprotected, **msg.protected_map}
        iv, partial = headers.get(HDR_IV), headers.get(HDR_PARTIAL_IV)
        if (iv is None) == (partial is None) or not isinstance(iv or partial, bytes):
            raise MalformedSecurityBlock("COSE_Encrypt0 needs exactly one of IV / Partial IV")
        aad = _enc_structure(msg.protected, external_aad(scope, aad_scope, addl_protected))
        data = bytes(scope.target.data)
        candidates = keys.symmetric_keys(CONTEXT_ID, asb.source, msg.kid(addl_headers))
        if not candidates:
            raise KeyNotFound(f"no AES key for {asb.source}")
        for key in candidates:
            if len(key.material) != _AES_GCM_KEY_LEN[alg]:
                continue
            nonce = iv
            if partial is not None:
                if key.base_iv is None:
                    continue
                nonce = _full_iv(key.base_iv, partial)
            if not 8 <= len(nonce) <= 128:
                raise MalformedSecurityBlock("COSE_Encrypt0: unusable IV length")
            try:
                return AESGCM(key.material).decrypt(nonce, data, aad)
            except InvalidTag:
                continue
        raise SecurityCheckFailed(
            f"COSE_Encrypt0 decryption failed for block {scope.target_number}",
            scope.target_number,
        )

"""BCB-AES-GCM, security context ID 2 (RFC 9173 §4).

Parameters (§4.3): 1 initialization vector (bstr, 12 bytes recommended; always present);
2 AES variant (1 = A128GCM, 3 = A256GCM (default)); 3 wrapped key (AES key wrap, RFC 3394, of a
per-block content-encryption key under the configured key-encryption key); 4 AAD scope flags
(default 7). Result (§4.4): 1 = authentication tag (16 bytes). The ciphertext replaces the
target's block-type-specific data and has the same length (§4.6).

AAD (§4.7.2), concatenated: the scope flags as a CBOR uint; bit 0: the canonical primary block;
bit 1: target type, number, flags; bit 2: the BCB's type, number, flags (CBOR uints each).

Nonce reuse: the IV is a per-*block* parameter, so every target of one BCB is encrypted under
the same key and IV (RFC 9173 Appendix A.4 does exactly that). With GCM that leaks the XOR of
the plaintexts. :class:`BcbAesGcm` therefore generates a fresh IV per ``prepare()`` and the
policy layer puts each target in its own BCB; a caller-fixed IV exists only for reproducing the
RFC vectors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from waystation.bundle.bpsec.asb import AbstractSecurityBlock
from waystation.bundle.bpsec.contexts.base import Pair
from waystation.bundle.bpsec.errors import (
    ForbiddenOperation,
    KeyNotFound,
    MalformedSecurityBlock,
    SecurityCheckFailed,
)
from waystation.bundle.bpsec.keys import KeyResolver, SymmetricKey
from waystation.bundle.bpsec.scope import OperationScope, block_metadata
from waystation.bundle.cborhead import encode_uint

__all__ = ["A128GCM", "A256GCM", "CONTEXT_ID", "BcbAesGcm", "BcbAesGcmHandler", "aad"]

CONTEXT_ID = 2
A128GCM, A256GCM = 1, 3
_KEY_LEN = {A128GCM: 16, A256GCM: 32}
PARAM_IV, PARAM_AES_VARIANT, PARAM_WRAPPED_KEY, PARAM_SCOPE = 1, 2, 3, 4
RESULT_TAG = 1
DEFAULT_VARIANT, DEFAULT_SCOPE = A256GCM, 0x07
SCOPE_PRIMARY, SCOPE_TARGET_HEADER, SCOPE_SECURITY_HEADER = 0x01, 0x02, 0x04
TAG_LEN = 16


def aad(scope: OperationScope, flags: int) -> bytes:
    """The additional authenticated data of RFC 9173 §4.7.2."""
    parts = [encode_uint(flags)]
    if flags & SCOPE_PRIMARY:
        parts.append(scope.primary)
    if flags & SCOPE_TARGET_HEADER and scope.target is not None:
        t = scope.target
        parts.append(block_metadata(t.block_type, t.number, t.flags))
    if flags & SCOPE_SECURITY_HEADER:
        parts.append(scope.security_metadata)
    return b"".join(parts)


@dataclass(frozen=True)
class _Prepared:
    parameters: tuple[Pair, ...]
    cek: bytes = field(repr=False)
    iv: bytes
    scope_flags: int

    def encrypt(self, scope: OperationScope) -> tuple[bytes, tuple[Pair, ...]]:
        if scope.target is None:
            raise ForbiddenOperation("RFC 9172 §3.8: a BCB must not target the primary block")
        sealed = AESGCM(self.cek).encrypt(
            self.iv, bytes(scope.target.data), aad(scope, self.scope_flags)
        )
        return sealed[:-TAG_LEN], ((RESULT_TAG, sealed[-TAG_LEN:]),)


@dataclass(frozen=True)
class BcbAesGcm:
    """Security-source configuration for BCB-AES-GCM.

    ``wrap=True``: ``key`` is a key-encryption key and each BCB gets a fresh random CEK, carried
    wrapped in parameter 3. ``iv`` fixes the IV (only for reproducing test vectors).
    """

    key: SymmetricKey
    variant: int = DEFAULT_VARIANT
    scope_flags: int = DEFAULT_SCOPE
    wrap: bool = False
    iv: bytes | None = None
    cek: bytes | None = field(default=None, repr=False)  # fixed CEK when wrapping (vectors only)
    explicit_parameters: bool = True
    context_id: int = CONTEXT_ID

    def __post_init__(self) -> None:
        if self.variant not in _KEY_LEN:
            raise ForbiddenOperation(f"unknown AES variant {self.variant}")
        if self.wrap:
            if len(self.key.material) not in (16, 24, 32):
                raise ForbiddenOperation("a key-encryption key must be 128, 192 or 256 bits")
        elif len(self.key.material) != _KEY_LEN[self.variant]:
            raise ForbiddenOperation(
                f"key {self.key.name!r} has {len(self.key.material) * 8} bits; "
                f"AES variant {self.variant} needs {_KEY_LEN[self.variant] * 8}"
            )

    def prepare(self) -> _Prepared:
        iv = self.iv if self.iv is not None else os.urandom(12)
        params: list[Pair] = [(PARAM_IV, iv)]
        if self.explicit_parameters or self.variant != DEFAULT_VARIANT:
            params.append((PARAM_AES_VARIANT, self.variant))
        cek = self.key.material
        if self.wrap:
            cek = self.cek if self.cek is not None else os.urandom(_KEY_LEN[self.variant])
            params.append((PARAM_WRAPPED_KEY, aes_key_wrap(self.key.material, cek)))
        if self.explicit_parameters or self.scope_flags != DEFAULT_SCOPE:
            params.append((PARAM_SCOPE, self.scope_flags))
        return _Prepared(tuple(params), cek, iv, self.scope_flags)


def _param(asb: AbstractSecurityBlock, pid: int, default: Any, kind: type, what: str) -> Any:
    value = asb.parameter(pid, default)
    if value is not None and type(value) is not kind:
        raise MalformedSecurityBlock(f"BCB-AES-GCM: {what} has the wrong type")
    return value


class BcbAesGcmHandler:
    """Acceptor side of BCB-AES-GCM."""

    context_id = CONTEXT_ID
    name = "BCB-AES-GCM"

    def verify(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> None:
        self.decrypt(scope, asb, results, keys)

    def decrypt(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> bytes:
        if scope.target is None:
            raise MalformedSecurityBlock("BCB-AES-GCM: a BCB cannot target the primary block")
        iv = _param(asb, PARAM_IV, None, bytes, "IV")
        if iv is None or not 8 <= len(iv) <= 128:  # what AES-GCM implementations accept
            raise MalformedSecurityBlock("BCB-AES-GCM: missing or unusable IV parameter")
        variant = _param(asb, PARAM_AES_VARIANT, DEFAULT_VARIANT, int, "AES variant")
        if variant not in _KEY_LEN:
            raise MalformedSecurityBlock(f"BCB-AES-GCM: unknown AES variant {variant}")
        wrapped = _param(asb, PARAM_WRAPPED_KEY, None, bytes, "wrapped key")
        flags = _param(asb, PARAM_SCOPE, DEFAULT_SCOPE, int, "AAD scope flags")
        if flags < 0:
            raise MalformedSecurityBlock("BCB-AES-GCM: negative AAD scope flags")
        tags = [v for rid, v in results if rid == RESULT_TAG]
        if len(tags) != 1 or not isinstance(tags[0], bytes) or len(tags[0]) != TAG_LEN:
            raise MalformedSecurityBlock("BCB-AES-GCM: need exactly one 16-byte tag result")
        candidates = keys.symmetric_keys(CONTEXT_ID, asb.source, None)
        if not candidates:
            raise KeyNotFound(f"no AES key for security source {asb.source}")
        associated = aad(scope, flags)
        sealed = b"".join((scope.target.data, tags[0]))
        for candidate in candidates:
            cek = candidate.material
            if wrapped is not None:
                try:
                    cek = aes_key_unwrap(cek, wrapped)
                except (InvalidUnwrap, ValueError):
                    continue
            if len(cek) != _KEY_LEN[variant]:
                continue
            try:
                return AESGCM(cek).decrypt(iv, sealed, associated)
            except InvalidTag:
                continue
        raise SecurityCheckFailed(
            f"BCB-AES-GCM decryption failed for block {scope.target_number}",
            scope.target_number,
        )

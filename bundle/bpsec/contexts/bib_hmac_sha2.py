"""BIB-HMAC-SHA2, security context ID 1 (RFC 9173 §3).

Parameters (§3.3): 1 SHA variant (5 = HMAC 256/256, 6 = HMAC 384/384 (default), 7 = HMAC
512/512); 2 wrapped key (AES key wrap, RFC 3394, of a per-block HMAC key under the configured
key-encryption key); 3 integrity scope flags (default 7). Result (§3.4): 1 = expected HMAC.

The Integrity-Protected Plaintext (IPPT, §3.7) is, concatenated:

* the scope flags as a CBOR uint;
* bit 0 set: the canonical primary block;
* bit 1 set (and the target is not the primary block): target type, number, flags (CBOR uints);
* bit 2 set: the BIB's own type, number, flags;
* the target data *as a CBOR byte string, head included* — for the primary block as target,
  the canonical primary block wrapped in a byte string (RFC 9173 Appendix A.3 shows this).

The IPPT is fed to HMAC piecewise, so a 64 KiB payload is never copied to build it.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Any

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
from waystation.bundle.cborhead import MAJOR_BYTES, encode_head, encode_uint

__all__ = [
    "CONTEXT_ID",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "BibHmacSha2",
    "BibHmacSha2Handler",
    "ippt_parts",
]

CONTEXT_ID = 1
HMAC_256, HMAC_384, HMAC_512 = 5, 6, 7
_DIGEST = {HMAC_256: "sha256", HMAC_384: "sha384", HMAC_512: "sha512"}
_DIGEST_LEN = {HMAC_256: 32, HMAC_384: 48, HMAC_512: 64}
PARAM_SHA_VARIANT, PARAM_WRAPPED_KEY, PARAM_SCOPE = 1, 2, 3
RESULT_HMAC = 1
DEFAULT_VARIANT, DEFAULT_SCOPE = HMAC_384, 0x07
SCOPE_PRIMARY, SCOPE_TARGET_HEADER, SCOPE_SECURITY_HEADER = 0x01, 0x02, 0x04


def ippt_parts(scope: OperationScope, flags: int) -> list[bytes]:
    """The IPPT of RFC 9173 §3.7 as a list of byte strings to hash in order."""
    parts = [encode_uint(flags)]
    if flags & SCOPE_PRIMARY:
        parts.append(scope.primary)
    if flags & SCOPE_TARGET_HEADER and scope.target is not None:
        t = scope.target
        parts.append(block_metadata(t.block_type, t.number, t.flags))
    if flags & SCOPE_SECURITY_HEADER:
        parts.append(scope.security_metadata)
    data = scope.target_data
    parts.append(encode_head(MAJOR_BYTES, len(data)))
    parts.append(data)
    return parts


def _mac(key: bytes, variant: int, scope: OperationScope, flags: int) -> bytes:
    parts = ippt_parts(scope, flags)
    # Small leading parts in one update, the (possibly large, zero-copy) target data in another.
    h = hmac.new(key, b"".join(parts[:-1]), _DIGEST[variant])
    h.update(parts[-1])
    return h.digest()


def _check_variant(value: Any) -> int:
    if type(value) is not int or value not in _DIGEST:
        raise MalformedSecurityBlock(f"BIB-HMAC-SHA2: unknown SHA variant {value!r}")
    return value


def _check_scope(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise MalformedSecurityBlock(f"BIB-HMAC-SHA2: bad integrity scope flags {value!r}")
    return value


@dataclass(frozen=True)
class _Prepared:
    parameters: tuple[Pair, ...]
    key: bytes = field(repr=False)
    variant: int
    scope_flags: int

    def sign(self, scope: OperationScope) -> tuple[Pair, ...]:
        return ((RESULT_HMAC, _mac(self.key, self.variant, scope, self.scope_flags)),)


@dataclass(frozen=True)
class BibHmacSha2:
    """Security-source configuration for BIB-HMAC-SHA2.

    With ``wrap=True`` the configured key is a key-encryption key: each BIB gets a fresh random
    HMAC key, wrapped into parameter 2 (RFC 9173 §3.3.3).
    """

    key: SymmetricKey
    variant: int = DEFAULT_VARIANT
    scope_flags: int = DEFAULT_SCOPE
    wrap: bool = False
    #: Write parameters even when they equal the defaults (RFC 9173 Appendix A does).
    explicit_parameters: bool = True
    context_id: int = CONTEXT_ID

    def __post_init__(self) -> None:
        if self.variant not in _DIGEST:
            raise ForbiddenOperation(f"unknown HMAC variant {self.variant}")
        if self.wrap and len(self.key.material) not in (16, 24, 32):
            raise ForbiddenOperation("a key-encryption key must be 128, 192 or 256 bits")

    def prepare(self) -> _Prepared:
        params: list[Pair] = []
        if self.explicit_parameters or self.variant != DEFAULT_VARIANT:
            params.append((PARAM_SHA_VARIANT, self.variant))
        key = self.key.material
        if self.wrap:
            key = os.urandom(_DIGEST_LEN[self.variant])
            params.append((PARAM_WRAPPED_KEY, aes_key_wrap(self.key.material, key)))
        if self.explicit_parameters or self.scope_flags != DEFAULT_SCOPE:
            params.append((PARAM_SCOPE, self.scope_flags))
        return _Prepared(tuple(params), key, self.variant, self.scope_flags)


class BibHmacSha2Handler:
    """Verifier/acceptor side of BIB-HMAC-SHA2."""

    context_id = CONTEXT_ID
    name = "BIB-HMAC-SHA2"

    def verify(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> None:
        variant = _check_variant(asb.parameter(PARAM_SHA_VARIANT, DEFAULT_VARIANT))
        flags = _check_scope(asb.parameter(PARAM_SCOPE, DEFAULT_SCOPE))
        wrapped = asb.parameter(PARAM_WRAPPED_KEY)
        if wrapped is not None and not isinstance(wrapped, bytes):
            raise MalformedSecurityBlock("BIB-HMAC-SHA2: wrapped key must be a byte string")
        expected = [v for rid, v in results if rid == RESULT_HMAC]
        if len(expected) != 1 or not isinstance(expected[0], bytes):
            raise MalformedSecurityBlock("BIB-HMAC-SHA2: need exactly one HMAC result (bstr)")
        candidates = keys.symmetric_keys(CONTEXT_ID, asb.source, None)
        if not candidates:
            raise KeyNotFound(f"no HMAC key for security source {asb.source}")
        for candidate in candidates:
            key = candidate.material
            if wrapped is not None:
                try:
                    key = aes_key_unwrap(key, wrapped)
                except (InvalidUnwrap, ValueError):
                    continue
            if hmac.compare_digest(_mac(key, variant, scope, flags), expected[0]):
                return
        raise SecurityCheckFailed(
            f"BIB-HMAC-SHA2 verification failed for block {scope.target_number}",
            scope.target_number,
        )

    def decrypt(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> bytes:
        raise MalformedSecurityBlock("BIB-HMAC-SHA2 is an integrity context; it cannot decrypt")

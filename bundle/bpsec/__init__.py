"""BPSec for waystation: RFC 9172 security blocks, RFC 9173 contexts, the COSE context.

Layers, bottom up:

* :mod:`.asb` — the Abstract Security Block codec (RFC 9172 §3.6);
* :mod:`.contexts` — BIB-HMAC-SHA2 (1), BCB-AES-GCM (2) (RFC 9173) and COSE (3,
  draft-ietf-dtn-bpsec-cose) with :mod:`.cose` (COSE_Sign1 / COSE_Mac0);
* :mod:`.operations` — adding, verifying, decrypting and removing operations on a bundle with
  the RFC 9172 §3 rules;
* :mod:`.keystore` — the node's identity key, trusted peer keys and named symmetric keys;
* :mod:`.policy` — which bundles get which operations, and ``apply_outbound_policy`` /
  ``apply_inbound_policy`` for the node.
"""

from __future__ import annotations

from waystation.bundle.bpsec.asb import AbstractSecurityBlock, decode_asb, encode_asb
from waystation.bundle.bpsec.contexts import (
    BcbAesGcm,
    BibHmacSha2,
    CoseEncrypt0,
    CoseMac0,
    CoseSign1,
)
from waystation.bundle.bpsec.errors import (
    BPSecError,
    ConflictingSecurity,
    ForbiddenOperation,
    KeyNotFound,
    LocalSecurityError,
    MalformedSecurityBlock,
    MissingSecurity,
    PolicyError,
    RemoteSecurityError,
    SecurityCheckFailed,
    SecurityReason,
    UnknownSecurityContext,
)
from waystation.bundle.bpsec.keys import (
    KeyResolver,
    SigningKey,
    StaticKeys,
    SymmetricKey,
    TrustedKey,
    fingerprint,
    key_id,
)
from waystation.bundle.bpsec.keystore import KeyStore, KeyStoreError, MemoryKeys
from waystation.bundle.bpsec.operations import (
    Outcome,
    SecurityBlock,
    add_confidentiality,
    add_integrity,
    decrypt,
    security_blocks,
    verify_integrity,
)
from waystation.bundle.bpsec.policy import (
    InboundVerdict,
    SecurityPolicy,
    SecurityRule,
    apply_inbound_policy,
    apply_outbound_policy,
    check_wire,
    protect_wire,
)

__all__ = [
    "AbstractSecurityBlock",
    "BPSecError",
    "BcbAesGcm",
    "BibHmacSha2",
    "ConflictingSecurity",
    "CoseEncrypt0",
    "CoseMac0",
    "CoseSign1",
    "ForbiddenOperation",
    "InboundVerdict",
    "KeyNotFound",
    "KeyResolver",
    "KeyStore",
    "KeyStoreError",
    "LocalSecurityError",
    "MalformedSecurityBlock",
    "MemoryKeys",
    "MissingSecurity",
    "Outcome",
    "PolicyError",
    "RemoteSecurityError",
    "SecurityBlock",
    "SecurityCheckFailed",
    "SecurityPolicy",
    "SecurityReason",
    "SecurityRule",
    "SigningKey",
    "StaticKeys",
    "SymmetricKey",
    "TrustedKey",
    "UnknownSecurityContext",
    "add_confidentiality",
    "add_integrity",
    "apply_inbound_policy",
    "apply_outbound_policy",
    "check_wire",
    "decode_asb",
    "decrypt",
    "encode_asb",
    "fingerprint",
    "key_id",
    "protect_wire",
    "security_blocks",
    "verify_integrity",
]

"""Security contexts: RFC 9173 BIB-HMAC-SHA2 (1) and BCB-AES-GCM (2), and the COSE context (3).

``HANDLERS`` maps a security context ID to its verifier/acceptor; a block naming any other ID
is an "unknown security operation" (RFC 9172 §11.2 reason code 13).
"""

from __future__ import annotations

from waystation.bundle.bpsec.contexts.base import (
    ConfidentialitySource,
    ContextHandler,
    IntegritySource,
)
from waystation.bundle.bpsec.contexts.bcb_aes_gcm import BcbAesGcm, BcbAesGcmHandler
from waystation.bundle.bpsec.contexts.bib_hmac_sha2 import BibHmacSha2, BibHmacSha2Handler
from waystation.bundle.bpsec.contexts.cose_context import (
    CoseEncrypt0,
    CoseHandler,
    CoseMac0,
    CoseSign1,
)
from waystation.bundle.bpsec.errors import UnknownSecurityContext

__all__ = [
    "HANDLERS",
    "BcbAesGcm",
    "BibHmacSha2",
    "ConfidentialitySource",
    "ContextHandler",
    "CoseEncrypt0",
    "CoseMac0",
    "CoseSign1",
    "IntegritySource",
    "handler_for",
]

HANDLERS: dict[int, ContextHandler] = {
    1: BibHmacSha2Handler(),
    2: BcbAesGcmHandler(),
    3: CoseHandler(),
}

#: Context IDs valid in each block type (RFC 9173 §3.1/§4.1; COSE in both, by result type).
INTEGRITY_CONTEXTS = frozenset({1, 3})
CONFIDENTIALITY_CONTEXTS = frozenset({2, 3})


def handler_for(context_id: int) -> ContextHandler:
    try:
        return HANDLERS[context_id]
    except KeyError:
        raise UnknownSecurityContext(f"security context {context_id} is not supported") from None

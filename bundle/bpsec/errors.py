"""Exceptions of BPSec processing (RFC 9172, RFC 9173, draft-ietf-dtn-bpsec-cose).

Every BPSec error is a :class:`~waystation.bundle.errors.BundleError`, so the node's single
``except BundleError`` around bundle handling also covers security processing. The tree splits
by blame, so the node knows whether to drop the bundle (remote fault) or report a configuration
problem (local fault)::

    BundleError
    └── BPSecError                       root of waystation.bundle.bpsec; has .reason_code
        ├── LocalSecurityError           our side: missing key, bad policy, forbidden request
        │   ├── KeyNotFound              no key of that name / for that source
        │   ├── PolicyError              a security policy that cannot be parsed or applied
        │   └── ForbiddenOperation       adding the operation would break an RFC 9172 §3 rule
        └── RemoteSecurityError          the bundle we were given is at fault
            ├── MalformedSecurityBlock   an ASB that is not RFC 9172 §3.6 / context conformant
            ├── ConflictingSecurity      blocks that violate the RFC 9172 §3.2/§3.9 rules
            ├── UnknownSecurityContext   a security context ID we do not implement
            ├── MissingSecurity          policy requires an operation the bundle lacks
            └── SecurityCheckFailed      a signature/MAC does not verify or decryption fails
                                         (``.target`` is the block number that failed)

Each error carries ``reason_code``: the RFC 9171 §6.1.1 / RFC 9172 §11.2 status report
reason code a node uses when it deletes the bundle because of this error.
"""

from __future__ import annotations

from enum import IntEnum

from waystation.bundle.errors import BundleError

__all__ = [
    "BPSecError",
    "ConflictingSecurity",
    "ForbiddenOperation",
    "KeyNotFound",
    "LocalSecurityError",
    "MalformedSecurityBlock",
    "MissingSecurity",
    "PolicyError",
    "RemoteSecurityError",
    "SecurityCheckFailed",
    "SecurityReason",
    "UnknownSecurityContext",
]


class SecurityReason(IntEnum):
    """Bundle status report reason codes used by BPSec (RFC 9172 §11.2, IANA registry)."""

    NO_ADDITIONAL_INFORMATION = 0
    BLOCK_UNINTELLIGIBLE = 8
    MISSING_SECURITY_OPERATION = 12
    UNKNOWN_SECURITY_OPERATION = 13
    UNEXPECTED_SECURITY_OPERATION = 14
    FAILED_SECURITY_OPERATION = 15
    CONFLICTING_SECURITY_OPERATION = 16


class BPSecError(BundleError):
    """Root of every error raised by ``waystation.bundle.bpsec``."""

    reason_code: SecurityReason = SecurityReason.NO_ADDITIONAL_INFORMATION

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.reason,))


class LocalSecurityError(BPSecError):
    """Our configuration or request is at fault, not the bundle."""


class KeyNotFound(LocalSecurityError):
    """No key is configured for the requested name, security source or key identifier."""


class PolicyError(LocalSecurityError):
    """A security policy document that cannot be parsed or applied."""


class ForbiddenOperation(LocalSecurityError):
    """Adding this security operation would violate RFC 9172 (e.g. a BIB over a BCB target)."""


class RemoteSecurityError(BPSecError):
    """The received bundle's security blocks are at fault."""


class MalformedSecurityBlock(RemoteSecurityError):
    """An abstract security block that does not follow RFC 9172 §3.6 or its context's rules."""

    reason_code = SecurityReason.FAILED_SECURITY_OPERATION


class ConflictingSecurity(RemoteSecurityError):
    """Security blocks that break the uniqueness/interaction rules of RFC 9172 §3.2 and §3.9."""

    reason_code = SecurityReason.CONFLICTING_SECURITY_OPERATION


class UnknownSecurityContext(RemoteSecurityError):
    """A security context identifier this implementation does not support."""

    reason_code = SecurityReason.UNKNOWN_SECURITY_OPERATION


class MissingSecurity(RemoteSecurityError):
    """Security policy requires an operation (e.g. a signature) that the bundle does not carry."""

    reason_code = SecurityReason.MISSING_SECURITY_OPERATION


class SecurityCheckFailed(RemoteSecurityError):
    """Integrity verification or authenticated decryption failed for ``target``."""

    reason_code = SecurityReason.FAILED_SECURITY_OPERATION

    def __init__(self, reason: str, target: int | None = None) -> None:
        super().__init__(reason)
        self.target = target

    def __reduce__(self) -> tuple[type, tuple[str, int | None]]:  # type: ignore[override]
        return (type(self), (self.reason, self.target))

"""Exceptions of the bundle library (RFC 9171 codec, model and helpers).

Every error raised on bad input derives from :class:`BundleError`, so a caller that decodes bytes
from the network needs exactly one ``except`` clause and can never see an unexpected type::

    BundleError                      root of this library
    ├── DecodeError(offset, reason)  the bytes are not a well-formed BPv7 bundle (CBOR or layout)
    │   └── CRCError                 a block's CRC does not match its bytes (RFC 9171 §4.2.1)
    ├── ValidationError              well-formed, but breaks a rule of RFC 9171 §4/§5
    │   ├── BundleTooLarge           larger than the configured maximum bundle size
    │   └── EIDError                 an endpoint ID violates its scheme (§4.2.5.1, RFC 9758)
    └── ReassemblyError              fragments that cannot be put back together (§5.9)

``DecodeError`` carries ``offset`` (byte position in the input where the problem was found) and
``reason`` (human-readable text without the offset). ``ValidationError`` may also carry an offset
when the rule is violated by a specific place in the input; it is ``None`` for model-level checks.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "BundleTooLarge",
    "CRCError",
    "DecodeError",
    "EIDError",
    "ReassemblyError",
    "ValidationError",
]


class BundleError(Exception):
    """Root of every error raised by ``waystation.bundle``."""


class DecodeError(BundleError):
    """The input is not a well-formed bundle; ``offset`` is where decoding stopped."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"{reason} (at byte {offset})")
        self.offset = offset
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return (type(self), (self.offset, self.reason))


class CRCError(DecodeError):
    """A block's CRC value does not match the CRC computed over its encoding."""


class ValidationError(BundleError):
    """Well-formed input (or a model object) that violates an RFC 9171 rule."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        super().__init__(reason if offset is None else f"{reason} (at byte {offset})")
        self.reason = reason
        self.offset = offset

    def __reduce__(self) -> tuple[type, tuple[str, int | None]]:
        return (type(self), (self.reason, self.offset))


class BundleTooLarge(ValidationError):
    """The bundle exceeds the maximum size this node accepts."""


class EIDError(ValidationError):
    """An endpoint ID that its URI scheme does not allow (text or CBOR form)."""


class ReassemblyError(BundleError):
    """Fragments are inconsistent, overlap in conflicting ways or do not cover the ADU."""

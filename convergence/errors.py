"""Error tree of the convergence-layer library.

::

    ConvergenceError                      root: catch this to catch everything below
    ├── LocalProtocolError                we (our caller) asked for something the protocol forbids
    │   └── TransferTooLarge              a bundle exceeds what the link or the peer accepts
    ├── RemoteProtocolError               the peer sent something the protocol forbids
    │   └── MessageDecodeError            bytes that do not parse as a message (offset, reason)
    ├── TlsPolicyError                    the peer's TLS/certificate does not satisfy our policy
    └── LinkClosed                        the transport went away before the operation finished

The blame split follows h11/h2: a ``LocalProtocolError`` means the code calling us is wrong and
nothing was sent; a ``RemoteProtocolError`` means the peer is wrong, and the session core has
already queued the SESS_TERM (or MSG_REJECT) the RFC asks for before raising it.
"""

from __future__ import annotations


class ConvergenceError(Exception):
    """Root of every error raised by ``waystation.convergence``."""


class LocalProtocolError(ConvergenceError):
    """The local caller violated the protocol (wrong state, bad argument)."""


class TransferTooLarge(LocalProtocolError):
    """A bundle is larger than the link (UDP datagram limit) or the peer's Transfer MRU allows."""

    def __init__(self, size: int, limit: int, what: str = "link") -> None:
        super().__init__(f"bundle of {size} bytes exceeds the {what} limit of {limit} bytes")
        self.size = size
        self.limit = limit


class RemoteProtocolError(ConvergenceError):
    """The peer violated the protocol.

    ``term_reason`` is the RFC 9174 SESS_TERM reason code the session used (or would use) when
    ending the session because of this error.
    """

    def __init__(self, message: str, *, term_reason: int = 0) -> None:
        super().__init__(message)
        self.term_reason = term_reason


class MessageDecodeError(RemoteProtocolError):
    """Bytes from the peer that do not parse as a protocol message."""

    def __init__(self, offset: int, reason: str, *, term_reason: int = 0) -> None:
        super().__init__(f"at offset {offset}: {reason}", term_reason=term_reason)
        self.offset = offset
        self.reason = reason


class TlsPolicyError(ConvergenceError):
    """The peer's TLS session or certificate does not satisfy the configured policy."""


class LinkClosed(ConvergenceError):
    """The underlying connection closed before the operation completed."""

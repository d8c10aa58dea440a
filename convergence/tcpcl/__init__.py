"""TCPCLv4 (RFC 9174): wire format, sans-I/O session core, asyncio adapter and TLS helpers."""

from .events import (
    ContactHeaderReceived,
    Event,
    KeepaliveReceived,
    MessageRejected,
    SessionEstablished,
    SessionTerminated,
    SessionTerminationStarted,
    TlsNegotiationAgreed,
    TransferAcknowledged,
    TransferCompleted,
    TransferReceived,
    TransferRefused,
    TransferStarted,
)
from .messages import RefuseReason, RejectReason, SessTermReason
from .session import NodeIdPolicy, Role, Session, SessionConfig, State

__all__ = [
    "ContactHeaderReceived",
    "Event",
    "KeepaliveReceived",
    "MessageRejected",
    "NodeIdPolicy",
    "RefuseReason",
    "RejectReason",
    "Role",
    "SessTermReason",
    "Session",
    "SessionConfig",
    "SessionEstablished",
    "SessionTerminated",
    "SessionTerminationStarted",
    "State",
    "TlsNegotiationAgreed",
    "TransferAcknowledged",
    "TransferCompleted",
    "TransferReceived",
    "TransferRefused",
    "TransferStarted",
]

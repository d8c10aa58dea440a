"""Events a TCPCLv4 session core reports (past tense: each says what already happened).

Treat events as immutable. The per-transfer ones are plain (non-frozen) slotted dataclasses only
because a frozen dataclass's ``__init__`` costs several times more, and a 1 KiB transfer makes
two of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .messages import ExtensionItem


class Event:
    """Base class of every TCPCLv4 session event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ContactHeaderReceived(Event):
    """§4.3: the peer's contact header arrived and its version is 4."""

    can_tls: bool


@dataclass(frozen=True, slots=True)
class TlsNegotiationAgreed(Event):
    """§4.4: both contact headers had CAN_TLS. The adapter must run the TLS handshake now
    (``server_side`` is True for the passive entity) and then call ``tls_established``."""

    server_side: bool


@dataclass(frozen=True, slots=True)
class SessionEstablished(Event):
    """§4.7: both SESS_INITs exchanged; parameters are the negotiated ones."""

    peer_node_id: str
    keepalive_interval: int
    peer_segment_mru: int
    peer_transfer_mru: int
    peer_extensions: tuple[ExtensionItem, ...]
    tls: bool
    peer_node_id_authenticated: bool


@dataclass(slots=True)
class TransferStarted(Event):
    """§5.2.2: the START segment of an incoming transfer arrived. ``total_length`` comes from
    the Transfer Length extension when the peer sent one. The application may still refuse."""

    transfer_id: int
    total_length: int | None


@dataclass(slots=True)
class TransferReceived(Event):
    """An incoming transfer is complete (END segment). Its final XFER_ACK is held back until the
    application calls ``accept_transfer`` (store it first) or ``refuse_transfer``."""

    transfer_id: int
    data: bytes


@dataclass(slots=True)
class TransferAcknowledged(Event):
    """§5.2.3: the peer acknowledged part of one of our transfers (cumulative length)."""

    transfer_id: int
    acked_length: int
    total_length: int


@dataclass(slots=True)
class TransferCompleted(Event):
    """One of our transfers was fully acknowledged, or refused with "Completed" (§5.2.4: the
    peer already has it) -- either way the bundle may be released."""

    transfer_id: int
    refused_as_completed: bool = False


@dataclass(frozen=True, slots=True)
class TransferRefused(Event):
    """§5.2.4: the peer refused one of our transfers (any reason other than "Completed")."""

    transfer_id: int
    reason: int


@dataclass(frozen=True, slots=True)
class KeepaliveReceived(Event):
    """§5.1.2: a KEEPALIVE arrived."""


@dataclass(frozen=True, slots=True)
class MessageRejected(Event):
    """§5.1.1: the peer rejected a message we sent."""

    reason: int
    rejected_header: int


@dataclass(frozen=True, slots=True)
class SessionTerminationStarted(Event):
    """§6.1: a SESS_TERM was sent or received; no new transfers may start."""

    reason: int
    by_peer: bool


@dataclass(frozen=True, slots=True)
class SessionTerminated(Event):
    """The session is over; the adapter closes the TCP connection after flushing output.

    ``unacknowledged`` lists our transfers that were not completed: the node keeps those bundles
    and retries them on the next session (§6.1 leaves retransmission to the BP agent).
    ``clean`` is True when both SESS_TERMs were exchanged.
    """

    reason: int | None
    by_peer: bool
    clean: bool
    unacknowledged: tuple[int, ...] = ()
    error: str | None = None

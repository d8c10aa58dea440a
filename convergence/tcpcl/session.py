"""Sans-I/O TCPCLv4 session (RFC 9174): bytes and ``now`` in; events, bytes and deadlines out.

Model
-----
One :class:`Session` is one TCP connection, seen from one end. The adapter feeds it what TCP
delivered (:meth:`Session.receive_data`), asks it what to write (:meth:`Session.data_to_send`),
and calls :meth:`Session.handle_timer` at :meth:`Session.next_deadline`. Local requests are
methods (:meth:`send_transfer`, :meth:`accept_transfer`, :meth:`refuse_transfer`,
:meth:`terminate`, :meth:`tls_established`). Nothing here does I/O or reads a clock.

States follow RFC 9174 §3.3 (Figures 4-10)::

    CONTACT_WAIT (passive) --CH--> [TLS_NEGOTIATING] --> SESS_INIT_WAIT --SI--> ESTABLISHED
    CONTACT_SENT (active)  --CH--> [TLS_NEGOTIATING] --> SESS_INIT_WAIT
    ESTABLISHED --SESS_TERM sent/received--> ENDING --both sent, transfers done--> CLOSED
    any state --protocol error / timeout / connection lost--> CLOSED

:data:`TRANSITIONS` is the single source of truth: for every (state, input) pair the protocol
allows, the set of states the input may lead to. A received message whose pair is missing is a
protocol violation: before the session is established it ends the session with SESS_TERM
"Contact Failure"; once established it is answered with MSG_REJECT "Message Unexpected" (§5.1.1)
and ignored. A local call whose pair is missing raises :class:`LocalProtocolError`.

Timeouts (each is a deadline in :meth:`next_deadline`):

- contact header wait (§4.3), TLS handshake (§4.4.3), SESS_INIT wait (§4.6): close on expiry;
- keepalive (§5.1.2): send KEEPALIVE when nothing was sent for the negotiated interval;
- idle (§5.1.2): SESS_TERM "Idle timeout" when nothing was received for twice the interval
  (or ``SessionConfig.idle_timeout`` when keepalives are off);
- session idle (§6.1, optional): SESS_TERM "Idle timeout" when no transfer ran for a while;
- termination (§6.1): close if the SESS_TERM reply or the in-progress transfers do not finish.

Reliability contract: an incoming transfer's final XFER_ACK is sent only when the application
calls :meth:`accept_transfer` -- after it has stored the bundle -- so the sender releases a
bundle only once the receiver holds it. Our transfers that are not fully acknowledged when the
session ends are listed in :class:`SessionTerminated` for retry on the next session.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum

from ..errors import LocalProtocolError, MessageDecodeError, RemoteProtocolError, TransferTooLarge
from . import events as ev
from .messages import (
    CONTACT_HEADER_LEN,
    TRANSFER_LENGTH_EXT,
    U64_MAX,
    VERSION,
    ContactHeader,
    DecodeLimits,
    ExtensionItem,
    Keepalive,
    Message,
    MessageType,
    MsgReject,
    RefuseReason,
    RejectReason,
    SegmentFlags,
    SessInit,
    SessTerm,
    SessTermReason,
    XferAck,
    XferRefuse,
    XferSegment,
    decode_contact_header,
    decode_message,
    decode_segment_header,
    encode_contact_header,
    encode_message,
    encode_segment_header,
    message_type_of,
    transfer_length_extension,
)


class Role(Enum):
    """§3.1: the active entity opened the TCP connection; the passive one accepted it."""

    ACTIVE = "active"
    PASSIVE = "passive"


class State(Enum):
    """Session states (§3.3)."""

    # Members are singletons: identity hashing is correct and much cheaper than Enum's
    # name-based __hash__, which every TRANSITIONS lookup pays.
    __hash__ = object.__hash__

    CONTACT_WAIT = "contact-wait"  # passive: waiting for the active entity's contact header
    CONTACT_SENT = "contact-sent"  # active: our contact header sent, waiting for the peer's
    TLS_NEGOTIATING = "tls-negotiating"  # §4.4: both CAN_TLS, handshake runs in the adapter
    SESS_INIT_WAIT = "sess-init-wait"  # our SESS_INIT sent, waiting for the peer's
    ESTABLISHED = "established"
    ENDING = "ending"  # a SESS_TERM was sent and/or received (§6.1)
    CLOSED = "closed"


class Input(Enum):
    """Everything that can happen to a session."""

    __hash__ = object.__hash__

    RECV_CONTACT_HEADER = "recv-contact-header"
    TLS_ESTABLISHED = "tls-established"
    RECV_SESS_INIT = "recv-SESS_INIT"
    RECV_XFER_SEGMENT = "recv-XFER_SEGMENT"
    RECV_XFER_ACK = "recv-XFER_ACK"
    RECV_XFER_REFUSE = "recv-XFER_REFUSE"
    RECV_KEEPALIVE = "recv-KEEPALIVE"
    RECV_SESS_TERM = "recv-SESS_TERM"
    RECV_MSG_REJECT = "recv-MSG_REJECT"
    SEND_TRANSFER = "send-transfer"
    ANSWER_TRANSFER = "answer-transfer"  # accept_transfer / refuse_transfer
    TERMINATE = "terminate"
    TIMER = "timer"
    CONNECTION_LOST = "connection-lost"


S = State
_C = S.CLOSED
TRANSITIONS: dict[tuple[State, Input], frozenset[State]] = {
    # Contact negotiation (§4.3): success, TLS, version mismatch/policy failure.
    (S.CONTACT_WAIT, Input.RECV_CONTACT_HEADER): frozenset(
        {S.SESS_INIT_WAIT, S.TLS_NEGOTIATING, S.ENDING, _C}
    ),
    (S.CONTACT_SENT, Input.RECV_CONTACT_HEADER): frozenset(
        {S.SESS_INIT_WAIT, S.TLS_NEGOTIATING, S.ENDING, _C}
    ),
    (S.TLS_NEGOTIATING, Input.TLS_ESTABLISHED): frozenset({S.SESS_INIT_WAIT}),
    # Session initialisation (§4.6, §4.7): negotiation may fail (critical extension, node ID).
    (S.SESS_INIT_WAIT, Input.RECV_SESS_INIT): frozenset({S.ESTABLISHED, S.ENDING}),
    (S.SESS_INIT_WAIT, Input.RECV_SESS_TERM): frozenset({S.ENDING, _C}),
    (S.ESTABLISHED, Input.RECV_XFER_SEGMENT): frozenset({S.ESTABLISHED}),
    (S.ESTABLISHED, Input.RECV_XFER_ACK): frozenset({S.ESTABLISHED}),
    (S.ESTABLISHED, Input.RECV_XFER_REFUSE): frozenset({S.ESTABLISHED}),
    (S.ESTABLISHED, Input.RECV_KEEPALIVE): frozenset({S.ESTABLISHED}),
    (S.ESTABLISHED, Input.RECV_MSG_REJECT): frozenset({S.ESTABLISHED}),
    (S.ESTABLISHED, Input.RECV_SESS_TERM): frozenset({S.ENDING, _C}),
    (S.ESTABLISHED, Input.SEND_TRANSFER): frozenset({S.ESTABLISHED}),
    (S.ESTABLISHED, Input.ANSWER_TRANSFER): frozenset({S.ESTABLISHED}),
    (S.ESTABLISHED, Input.TERMINATE): frozenset({S.ENDING}),
    # Ending (§6.1): in-progress transfers may finish in both directions; no new outgoing ones.
    (S.ENDING, Input.RECV_XFER_SEGMENT): frozenset({S.ENDING, _C}),
    (S.ENDING, Input.RECV_XFER_ACK): frozenset({S.ENDING, _C}),
    (S.ENDING, Input.RECV_XFER_REFUSE): frozenset({S.ENDING, _C}),
    (S.ENDING, Input.RECV_KEEPALIVE): frozenset({S.ENDING}),
    (S.ENDING, Input.RECV_MSG_REJECT): frozenset({S.ENDING}),
    (S.ENDING, Input.RECV_SESS_TERM): frozenset({S.ENDING, _C}),
    (S.ENDING, Input.ANSWER_TRANSFER): frozenset({S.ENDING, _C}),
    (S.ENDING, Input.TERMINATE): frozenset({S.ENDING}),  # already ending: no-op
    (S.CLOSED, Input.TERMINATE): frozenset({_C}),  # idempotent
    (S.CLOSED, Input.ANSWER_TRANSFER): frozenset({_C}),  # too late; harmless
    (S.CLOSED, Input.TIMER): frozenset({_C}),
    (S.CLOSED, Input.CONNECTION_LOST): frozenset({_C}),
}
# Timers, a lost connection and a local terminate can end any live state.
for _s in (S.CONTACT_WAIT, S.CONTACT_SENT, S.TLS_NEGOTIATING, S.SESS_INIT_WAIT):
    TRANSITIONS[(_s, Input.TIMER)] = frozenset({_s, _C})
    TRANSITIONS[(_s, Input.CONNECTION_LOST)] = frozenset({_C})
    TRANSITIONS[(_s, Input.TERMINATE)] = frozenset({S.ENDING, _C})
for _s in (S.ESTABLISHED, S.ENDING):
    TRANSITIONS[(_s, Input.TIMER)] = frozenset({_s, S.ENDING, _C})
    TRANSITIONS[(_s, Input.CONNECTION_LOST)] = frozenset({_C})
del _s

_RECV_INPUT: dict[MessageType, Input] = {
    MessageType.SESS_INIT: Input.RECV_SESS_INIT,
    MessageType.XFER_SEGMENT: Input.RECV_XFER_SEGMENT,
    MessageType.XFER_ACK: Input.RECV_XFER_ACK,
    MessageType.XFER_REFUSE: Input.RECV_XFER_REFUSE,
    MessageType.KEEPALIVE: Input.RECV_KEEPALIVE,
    MessageType.SESS_TERM: Input.RECV_SESS_TERM,
    MessageType.MSG_REJECT: Input.RECV_MSG_REJECT,
}


class NodeIdPolicy(Enum):
    """What a TLS peer's certificate must say about its Node ID (§4.4.1-§4.4.3).

    - ``IGNORE``: no Node ID check (the certificate is still verified against the CA if TLS
      verification is on).
    - ``IF_PRESENT`` (the RFC's baseline): if the certificate carries any NODE-ID
      (id-on-bundleEID otherName, or a URI subjectAltName naming a dtn:/ipn: node), the
      SESS_INIT Node ID must be one of them.
    - ``REQUIRE``: the certificate must carry a NODE-ID equal to the SESS_INIT Node ID.
    """

    IGNORE = "ignore"
    IF_PRESENT = "if-present"
    REQUIRE = "require"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Local parameters of a session. Times are seconds; sizes are bytes."""

    node_id: str
    keepalive_interval: int = 30  # §4.7: 0 disables keepalives
    segment_mru: int = 64 * 1024 * 1024  # largest segment we accept
    transfer_mru: int = 1 << 32  # largest transfer (bundle) we accept
    max_segment_size: int = 4 * 1024 * 1024  # largest segment we send (also capped by peer MRU)
    can_tls: bool = False
    require_tls: bool = False  # §4.4: refuse a session without TLS
    node_id_policy: NodeIdPolicy = NodeIdPolicy.IF_PRESENT
    session_extensions: tuple[ExtensionItem, ...] = ()
    contact_timeout: float = 30.0
    tls_timeout: float = 30.0
    sess_init_timeout: float = 30.0
    idle_timeout: float | None = None  # with keepalives off; default is 2x keepalive otherwise
    session_idle_timeout: float | None = None  # end a session with no transfers for this long
    termination_timeout: float = 30.0
    # §4.8: the session extension types we understand; an unknown *critical* one ends the session
    known_session_extensions: frozenset[int] = frozenset()
    # §5.2.5: transfer extension types we understand besides Transfer Length
    known_transfer_extensions: frozenset[int] = frozenset({TRANSFER_LENGTH_EXT})


@dataclass(slots=True)
class _Outgoing:
    total: int
    acked: int = 0


@dataclass(slots=True)
class _Incoming:
    transfer_id: int
    total_length: int | None
    chunks: list[bytes] = field(default_factory=list)
    received: int = 0
    refused: bool = False


class Session:
    """One TCPCLv4 session. See the module docstring for the model."""

    def __init__(self, role: Role, config: SessionConfig, now: float) -> None:
        self.role = role
        self.config = config
        self.state = State.CONTACT_SENT if role is Role.ACTIVE else State.CONTACT_WAIT
        self._out: list[bytes] = []
        self._rbuf = bytearray()
        self._rbase = 0  # stream offset of _rbuf[0], for error messages
        self._events: list[ev.Event] = []
        # (target, filled, (transfer ID, flags, extensions)) while a large segment streams in
        self._stream: tuple[bytearray, int, tuple[int, int, tuple[ExtensionItem, ...]]] | None = (
            None
        )
        self._limits = DecodeLimits(max_segment_data=config.segment_mru)
        self.peer_contact: ContactHeader | None = None
        self.peer_init: SessInit | None = None
        self.tls_active = False
        self.peer_cert_node_ids: frozenset[str] | None = None
        self.keepalive_interval = 0
        self.peer_segment_mru = 0
        self.peer_transfer_mru = 0
        self._segment_size = config.max_segment_size
        self._next_tid = 0
        self._outgoing: dict[int, _Outgoing] = {}
        self._incoming: _Incoming | None = None
        self._awaiting_answer: dict[int, int] = {}  # transfer ID -> length, final ack held back
        self._term_sent = False
        self._term_received = False
        self._term_reason: int | None = None
        self._term_by_peer = False
        self._terminated_reported = False
        self._last_sent = now
        self._last_recv = now
        self._last_transfer = now
        self._negotiation_deadline: float | None = now + config.contact_timeout
        self._term_deadline: float | None = None
        if role is Role.ACTIVE:
            # §4.1: the active entity sends its contact header first.
            self._send_raw(encode_contact_header(ContactHeader(can_tls=config.can_tls)), now)

    # ------------------------------------------------------------------ public API: I/O side

    def data_to_send(self) -> bytes:
        """All bytes queued for the wire, in order; header and data come as one buffer."""
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        return out

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    @property
    def unacknowledged(self) -> tuple[int, ...]:
        """IDs of our transfers not yet fully acknowledged."""
        return tuple(self._outgoing)

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[ev.Event]:
        """Feed bytes read from TCP (or from the TLS layer after the handshake).

        Raises :class:`RemoteProtocolError` if the peer broke the protocol; by then the session
        is CLOSED, a SESS_TERM is queued where the RFC allows one, and the error's ``events``
        attribute holds the events that happened before the violation.
        """
        if self.state is State.CLOSED:
            return self._take_events()
        if not data:
            return self._take_events()
        self._last_recv = now
        if self._rbuf:
            self._rbuf += data
            buf: bytes | bytearray | memoryview = self._rbuf
        else:
            buf = data
        pos = 0
        try:
            pos = self._consume(buf, now)
        except RemoteProtocolError as exc:
            self._rbuf = bytearray()
            self._fail(exc, now)
        if self.state is State.CLOSED:
            self._rbuf = bytearray()
        elif buf is self._rbuf:
            if pos:
                del self._rbuf[:pos]
                self._rbase += pos
        elif pos < len(buf):
            self._rbuf = bytearray(buf[pos:])
            self._rbase += pos
        else:
            self._rbase += pos
        return self._take_events()

    def connection_lost(self, now: float, *, half_closed: bool = False) -> list[ev.Event]:
        """The TCP connection closed (or reset). A half-received message is a truncated stream:
        :class:`RemoteProtocolError` (the session is CLOSED and reports what was unacknowledged).

        ``half_closed``: the peer only shut down its sending side (TCP FIN), so we can still
        tell it why we end the session -- a truncated stream then gets its SESS_TERM.
        """
        self._check(Input.CONNECTION_LOST)
        if self.state is State.CLOSED:
            return self._take_events()
        truncated = bool(self._rbuf) or self._stream is not None
        self._stream = None
        clean = self._term_sent and self._term_received
        self._rbuf = bytearray()
        if truncated:
            where = self._rbase
            self._fail(
                RemoteProtocolError(
                    f"stream truncated: connection closed inside a message at offset {where}"
                ),
                now,
                send_term=half_closed,
            )
        self._close(clean=clean, error=None if clean else "connection closed without SESS_TERM")
        return self._take_events()

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timer` must be called, or None."""
        if self.state is State.CLOSED:
            return None
        candidates = []
        if self._negotiation_deadline is not None:
            candidates.append(self._negotiation_deadline)
        if self._term_deadline is not None:
            candidates.append(self._term_deadline)
        if self.state in (State.ESTABLISHED, State.ENDING):
            if self.keepalive_interval:
                candidates.append(self._last_sent + self.keepalive_interval)
            idle = self._idle_limit()
            if idle is not None:
                candidates.append(self._last_recv + idle)
            if self.state is State.ESTABLISHED and self.config.session_idle_timeout is not None:
                candidates.append(self._last_transfer + self.config.session_idle_timeout)
        return min(candidates) if candidates else None

    def handle_timer(self, now: float) -> list[ev.Event]:
        """Run every timeout that is due at ``now``."""
        self._check(Input.TIMER)
        if self.state is State.CLOSED:
            return self._take_events()
        if self._negotiation_deadline is not None and now >= self._negotiation_deadline:
            # §4.3/§4.4.3/§4.6: a peer that does not finish negotiation in time is dropped.
            what = {
                State.CONTACT_WAIT: "contact header",
                State.CONTACT_SENT: "contact header",
                State.TLS_NEGOTIATING: "TLS handshake",
                State.SESS_INIT_WAIT: "SESS_INIT",
            }.get(self.state, "negotiation")
            if self.state is State.SESS_INIT_WAIT:
                self._queue_term(SessTermReason.CONTACT_FAILURE, now)
            self._close(clean=False, error=f"timed out waiting for the peer's {what}")
            return self._take_events()
        if self._term_deadline is not None and now >= self._term_deadline:
            self._close(clean=False, error="termination did not complete in time")
            return self._take_events()
        if self.state in (State.ESTABLISHED, State.ENDING):
            idle = self._idle_limit()
            if idle is not None and now >= self._last_recv + idle:
                # §5.1.2: nothing heard for too long -> SESS_TERM "Idle timeout", then close.
                self._queue_term(SessTermReason.IDLE_TIMEOUT, now)
                self._close(clean=False, error="idle timeout: nothing received from the peer")
                return self._take_events()
            if (
                self.state is State.ESTABLISHED
                and self.config.session_idle_timeout is not None
                and now >= self._last_transfer + self.config.session_idle_timeout
                and not self._outgoing
                and self._incoming is None
            ):
                self._begin_termination(SessTermReason.IDLE_TIMEOUT, now)
            if self.keepalive_interval and now >= self._last_sent + self.keepalive_interval:
                self._send_raw(encode_message(Keepalive()), now)
        return self._take_events()

    # ------------------------------------------------------------------ public API: local side

    def tls_established(
        self, now: float, peer_cert_node_ids: frozenset[str] | None = None
    ) -> list[ev.Event]:
        """The adapter finished the §4.4 TLS handshake. ``peer_cert_node_ids`` are the NODE-IDs
        found in the peer's certificate (§4.4.1); they are checked against its SESS_INIT."""
        self._check(Input.TLS_ESTABLISHED)
        self.tls_active = True
        self.peer_cert_node_ids = peer_cert_node_ids or frozenset()
        self._send_sess_init(now)
        return self._take_events()

    def send_transfer(self, data: bytes | bytearray | memoryview, now: float) -> int:
        """Queue a bundle as one transfer (§5.2.2); returns its Transfer ID.

        Segments are at most min(peer Segment MRU, ``max_segment_size``); the START segment
        carries the Transfer Length extension (§5.2.5.1) when the transfer needs more than one
        segment. Raises :class:`TransferTooLarge` above the peer's Transfer MRU.
        """
        self._check(Input.SEND_TRANSFER)
        total = len(data)
        if total > self.peer_transfer_mru:
            raise TransferTooLarge(total, self.peer_transfer_mru, "peer's Transfer MRU")
        if self._next_tid > U64_MAX:
            # §5.2.1: Transfer IDs must not wrap within a session.
            raise LocalProtocolError("Transfer IDs exhausted; start a new session")
        tid = self._next_tid
        self._next_tid += 1
        out = self._out
        size = self._segment_size
        if total <= size:
            # START|END, no extensions: header packed in one call (hot path for small bundles)
            out.append(_SINGLE_SEGMENT.pack(1, 3, tid, 0, total))
            out.append(data if isinstance(data, bytes) else bytes(data))
        else:
            view = memoryview(data)
            pos = 0
            while pos < total:
                end = min(pos + size, total)
                flags = (SegmentFlags.START if pos == 0 else 0) | (
                    SegmentFlags.END if end == total else 0
                )
                flags = int(flags)
                exts = (transfer_length_extension(total),) if pos == 0 else ()
                out.append(encode_segment_header(tid, flags, end - pos, exts))
                out.append(bytes(view[pos:end]))
                pos = end
        self._outgoing[tid] = _Outgoing(total)
        self._last_sent = now
        self._last_transfer = now
        return tid

    def accept_transfer(self, transfer_id: int, now: float) -> list[ev.Event]:
        """Send the final XFER_ACK of a received transfer (call after storing the bundle)."""
        self._check(Input.ANSWER_TRANSFER)
        length = self._awaiting_answer.pop(transfer_id, None)
        if length is None:
            if self.state is State.CLOSED:
                return self._take_events()
            raise LocalProtocolError(f"no received transfer {transfer_id} awaits an answer")
        if self.state is not State.CLOSED:
            # START|END copied from the segment flags would be wrong for multi-segment
            # transfers; §5.2.3 wants the flags of the segment acknowledged, the END one.
            self._out.append(_FINAL_ACK.pack(2, 1, transfer_id, length))
            self._last_sent = now
            self._maybe_finish_ending(now)
        return self._take_events()

    def refuse_transfer(self, transfer_id: int, reason: RefuseReason, now: float) -> list[ev.Event]:
        """§5.2.4: refuse an incoming transfer -- one in progress (after ``TransferStarted``)
        or a complete one awaiting its answer. Use ``COMPLETED`` for a duplicate bundle and
        ``NO_RESOURCES`` when the store is full."""
        self._check(Input.ANSWER_TRANSFER)
        if self.state is State.CLOSED:
            self._awaiting_answer.pop(transfer_id, None)
            return self._take_events()
        if transfer_id in self._awaiting_answer:
            del self._awaiting_answer[transfer_id]
        elif self._incoming is not None and self._incoming.transfer_id == transfer_id:
            if self._incoming.refused:
                return self._take_events()
            self._incoming.refused = True
            self._incoming.chunks.clear()
        else:
            raise LocalProtocolError(f"no incoming transfer {transfer_id} to refuse")
        self._send_msg(XferRefuse(transfer_id, RefuseReason(reason)), now)
        self._maybe_finish_ending(now)
        return self._take_events()

    def terminate(
        self, now: float, reason: SessTermReason = SessTermReason.UNKNOWN
    ) -> list[ev.Event]:
        """§6.1: start an orderly end (SESS_TERM); before contact negotiation is done, close."""
        self._check(Input.TERMINATE)
        if self.state is State.CLOSED or (self.state is State.ENDING and self._term_sent):
            return self._take_events()
        if self.state in (State.CONTACT_WAIT, State.CONTACT_SENT, State.TLS_NEGOTIATING):
            # No SESS_TERM before the contact headers are exchanged (or inside a handshake).
            self._term_reason = reason
            self._close(clean=False, error="terminated locally during negotiation")
        else:
            self._begin_termination(reason, now)
        return self._take_events()

    # ------------------------------------------------------------------ internals

    def _check(self, inp: Input) -> None:
        if (self.state, inp) not in TRANSITIONS:
            raise LocalProtocolError(f"{inp.value} is not allowed in state {self.state.value}")

    def _take_events(self) -> list[ev.Event]:
        events, self._events = self._events, []
        return events

    def _idle_limit(self) -> float | None:
        if self.keepalive_interval:
            return 2.0 * self.keepalive_interval
        return self.config.idle_timeout

    def _send_raw(self, data: bytes, now: float) -> None:
        self._out.append(data)
        self._last_sent = now

    def _send_msg(self, msg: Message, now: float) -> None:
        self._out.append(encode_message(msg))
        self._last_sent = now

    def _consume(self, buf: bytes | bytearray | memoryview, now: float) -> int:
        pos = 0
        end = len(buf)
        while pos < end and self.state is not State.CLOSED:
            if self._stream is not None:
                # Filling a large segment's data in place (no re-parsing, no buffer growth).
                target, filled, head = self._stream
                n = min(len(target) - filled, end - pos)
                target[filled : filled + n] = buf[pos : pos + n]
                pos += n
                filled += n
                if filled < len(target):
                    self._stream = (target, filled, head)
                    return pos
                self._stream = None
                tid, flags, exts = head
                self._dispatch(XferSegment(tid, flags, bytes(target), exts), now)
                continue
            if buf[pos] == 1 and self.state in (State.ESTABLISHED, State.ENDING):
                head = decode_segment_header(buf, pos, self._limits, self._rbase)
                if head is not None:
                    tid, flags, exts, data_start, data_len = head
                    if data_len >= _STREAM_THRESHOLD and end - data_start < data_len:
                        target = bytearray(data_len)
                        have = end - data_start
                        target[:have] = buf[data_start:end]
                        self._stream = (target, have, (tid, flags, exts))
                        return end
                    if end - data_start < data_len:
                        return pos  # the rest of the segment is still on its way
                    # Complete: decode_message would only parse this header a second time.
                    pos = data_start + data_len
                    self._dispatch(XferSegment(tid, flags, bytes(buf[data_start:pos]), exts), now)
                    continue
            if self.state in (State.CONTACT_WAIT, State.CONTACT_SENT):
                header = decode_contact_header(
                    buf[pos : pos + CONTACT_HEADER_LEN], self._rbase + pos
                )
                if header is None:
                    return pos
                pos += CONTACT_HEADER_LEN
                self._on_contact_header(header, now)
                continue
            if self.state is State.TLS_NEGOTIATING:
                raise RemoteProtocolError(
                    "peer sent TCPCL data where the TLS handshake was due (§4.4)",
                    term_reason=SessTermReason.CONTACT_FAILURE,
                )
            try:
                decoded = decode_message(buf, pos, self._limits, self._rbase)
            except MessageDecodeError as exc:
                reject_type = getattr(exc, "reject_type", None)
                if reject_type is not None and self.state in (State.ESTABLISHED, State.ENDING):
                    # §5.1.1: tell the peer which header we could not understand. The stream
                    # cannot be re-framed after an unknown type, so the session ends as well.
                    self._send_msg(MsgReject(RejectReason.MESSAGE_TYPE_UNKNOWN, reject_type), now)
                raise
            if decoded is None:
                return pos
            msg, pos = decoded
            self._dispatch(msg, now)
        return pos

    def _dispatch(self, msg: Message, now: float) -> None:
        inp, handler = _DISPATCH[type(msg)]
        state = self.state
        allowed = TRANSITIONS.get((state, inp))
        if allowed is None:
            self._unexpected(message_type_of(msg), now)
            return
        handler(self, msg, now)
        if self.state is not state and self.state not in allowed:  # pragma: no cover
            raise AssertionError(f"{state} --{inp}--> {self.state} is not in TRANSITIONS")

    def _on_keepalive(self, msg: Keepalive, now: float) -> None:
        self._events.append(ev.KeepaliveReceived())

    def _on_msg_reject(self, msg: MsgReject, now: float) -> None:
        self._events.append(ev.MessageRejected(msg.reason, msg.rejected_header))

    def _unexpected(self, mtype: MessageType, now: float) -> None:
        if self.state in (State.ESTABLISHED, State.ENDING):
            # §5.1.1: a known message at the wrong time is rejected, and the session goes on.
            self._send_msg(MsgReject(RejectReason.MESSAGE_UNEXPECTED, mtype), now)
            return
        raise RemoteProtocolError(
            f"{mtype.name} is not allowed in state {self.state.value}",
            term_reason=SessTermReason.CONTACT_FAILURE,
        )

    # -- contact and session negotiation

    def _on_contact_header(self, header: ContactHeader, now: float) -> None:
        self.peer_contact = header
        if self.role is Role.PASSIVE:
            # §4.1: the passive entity answers with its own header, even to report a mismatch.
            self._send_raw(encode_contact_header(ContactHeader(can_tls=self.config.can_tls)), now)
        if header.version != VERSION:
            if self.role is Role.PASSIVE:
                # §4.3: "Version Mismatch" SESS_TERM, then the session ends.
                self._queue_term(SessTermReason.VERSION_MISMATCH, now)
            # §4.3: an active entity that gets a different version just closes the connection.
            self._term_reason = SessTermReason.VERSION_MISMATCH
            self._close(clean=False, error=f"peer speaks TCPCL version {header.version}, not 4")
            return
        self._events.append(ev.ContactHeaderReceived(header.can_tls))
        both_tls = header.can_tls and self.config.can_tls
        if self.config.require_tls and not both_tls:
            # §4.3: local policy requires TLS and the peer cannot do it.
            self._queue_term(SessTermReason.CONTACT_FAILURE, now)
            self._close(clean=False, error="TLS is required by policy but the peer lacks CAN_TLS")
            return
        if both_tls:
            self.state = State.TLS_NEGOTIATING
            self._negotiation_deadline = now + self.config.tls_timeout
            self._events.append(ev.TlsNegotiationAgreed(server_side=self.role is Role.PASSIVE))
            return
        self._send_sess_init(now)

    def _send_sess_init(self, now: float) -> None:
        c = self.config
        self._send_msg(
            SessInit(
                c.keepalive_interval, c.segment_mru, c.transfer_mru, c.node_id, c.session_extensions
            ),
            now,
        )
        self.state = State.SESS_INIT_WAIT
        self._negotiation_deadline = now + c.sess_init_timeout

    def _on_sess_init(self, msg: SessInit, now: float) -> None:
        self.peer_init = msg
        self._negotiation_deadline = None
        for ext in msg.extensions:
            if ext.critical and ext.item_type not in self.config.known_session_extensions:
                # §4.8: an unrecognised critical session extension ends the session.
                self._begin_termination(SessTermReason.CONTACT_FAILURE, now)
                self._error_note = f"peer requires unknown session extension {ext.item_type}"
                return
        authenticated = False
        if self.tls_active:
            ids = self.peer_cert_node_ids or frozenset()
            policy = self.config.node_id_policy
            if ids and msg.node_id in ids:
                authenticated = True
            elif (ids and policy is not NodeIdPolicy.IGNORE) or policy is NodeIdPolicy.REQUIRE:
                # §4.4.3: the certificate names other nodes (or none, when required).
                self._begin_termination(SessTermReason.CONTACT_FAILURE, now)
                self._error_note = (
                    f"peer's certificate NODE-IDs {sorted(ids)} do not authenticate "
                    f"Node ID {msg.node_id!r}"
                )
                return
        # §4.7: negotiated parameters.
        self.keepalive_interval = min(self.config.keepalive_interval, msg.keepalive_interval)
        self.peer_segment_mru = msg.segment_mru
        self.peer_transfer_mru = msg.transfer_mru
        self._segment_size = max(1, min(self.config.max_segment_size, msg.segment_mru))
        self.state = State.ESTABLISHED
        self._last_transfer = now
        self._events.append(
            ev.SessionEstablished(
                peer_node_id=msg.node_id,
                keepalive_interval=self.keepalive_interval,
                peer_segment_mru=msg.segment_mru,
                peer_transfer_mru=msg.transfer_mru,
                peer_extensions=msg.extensions,
                tls=self.tls_active,
                peer_node_id_authenticated=authenticated,
            )
        )

    # -- transfers

    def _on_segment(self, seg: XferSegment, now: float) -> None:
        self._last_transfer = now
        inc = self._incoming
        if (
            seg.flags & 3 == 3
            and inc is None
            and not seg.extensions
            and self.state is State.ESTABLISHED
            and len(seg.data) <= self.config.transfer_mru
        ):
            # Fast path: a whole bundle in one segment (the common case for bundles below the
            # segment MRU). Nothing to reassemble, so no TransferStarted either: the complete
            # transfer is reported at once and waits for its answer.
            self._awaiting_answer[seg.transfer_id] = len(seg.data)
            self._events.append(ev.TransferReceived(seg.transfer_id, seg.data))
            return
        if seg.start:
            if inc is not None:
                raise RemoteProtocolError(
                    f"XFER_SEGMENT START for transfer {seg.transfer_id} while transfer "
                    f"{inc.transfer_id} is unfinished (§5.2.2 forbids interleaving)"
                )
            inc = _Incoming(seg.transfer_id, seg.transfer_length)
            self._incoming = inc
            refuse: RefuseReason | None = None
            if self.state is State.ENDING:
                refuse = RefuseReason.SESSION_TERMINATING  # §6.1: no new transfers
            elif any(
                e.critical and e.item_type not in self.config.known_transfer_extensions
                for e in seg.extensions
            ):
                refuse = RefuseReason.EXTENSION_FAILURE  # §5.2.5
            elif inc.total_length is not None and inc.total_length > self.config.transfer_mru:
                refuse = RefuseReason.NO_RESOURCES  # §4.7: above our Transfer MRU
            if refuse is not None:
                inc.refused = True
                self._send_msg(XferRefuse(seg.transfer_id, refuse), now)
            else:
                self._events.append(ev.TransferStarted(seg.transfer_id, inc.total_length))
        elif inc is None or inc.transfer_id != seg.transfer_id:
            raise RemoteProtocolError(
                f"XFER_SEGMENT for transfer {seg.transfer_id} without a START segment"
            )
        if inc.refused:
            # §5.2.4: segments already in flight after a refusal are discarded.
            if seg.end:
                self._incoming = None
                self._maybe_finish_ending(now)
            return
        inc.received += len(seg.data)
        if inc.received > self.config.transfer_mru or (
            inc.total_length is not None and inc.received > inc.total_length
        ):
            reason = (
                RefuseReason.NO_RESOURCES
                if inc.received > self.config.transfer_mru
                else RefuseReason.NOT_ACCEPTABLE
            )
            inc.refused = True
            inc.chunks.clear()
            self._send_msg(XferRefuse(seg.transfer_id, reason), now)
            if seg.end:
                self._incoming = None
            return
        if seg.data:
            inc.chunks.append(seg.data)
        if not seg.end:
            # §5.2.3: acknowledge each segment with the cumulative length.
            self._send_msg(XferAck(seg.transfer_id, seg.flags, inc.received), now)
            return
        self._incoming = None
        if inc.total_length is not None and inc.total_length != inc.received:
            self._send_msg(XferRefuse(seg.transfer_id, RefuseReason.NOT_ACCEPTABLE), now)
            return
        data = inc.chunks[0] if len(inc.chunks) == 1 else b"".join(inc.chunks)
        self._awaiting_answer[seg.transfer_id] = inc.received
        self._events.append(ev.TransferReceived(seg.transfer_id, data))

    def _on_ack(self, ack: XferAck, now: float) -> None:
        out = self._outgoing.get(ack.transfer_id)
        if out is None:
            raise RemoteProtocolError(f"XFER_ACK for unknown transfer {ack.transfer_id}")
        if ack.acked_length < out.acked or ack.acked_length > out.total:
            raise RemoteProtocolError(
                f"XFER_ACK for transfer {ack.transfer_id} acknowledges {ack.acked_length} bytes "
                f"(previously {out.acked}, transfer is {out.total})"
            )
        out.acked = ack.acked_length
        self._last_transfer = now
        # Complete once every byte is acknowledged. The ack of the END segment carries END
        # (§5.2.3 copies the segment's flags), but a peer that leaves it off still acknowledged
        # the whole transfer, and waiting for a flag it will never send would stall the bundle.
        if ack.acked_length == out.total:
            del self._outgoing[ack.transfer_id]
            self._events.append(ev.TransferCompleted(ack.transfer_id))
            self._maybe_finish_ending(now)
        else:
            self._events.append(ev.TransferAcknowledged(ack.transfer_id, out.acked, out.total))

    def _on_refuse(self, msg: XferRefuse, now: float) -> None:
        if msg.transfer_id not in self._outgoing:
            # The transfer may already be complete (refusal crossed the final ack); ignore.
            return
        del self._outgoing[msg.transfer_id]
        if msg.reason == RefuseReason.COMPLETED:
            self._events.append(ev.TransferCompleted(msg.transfer_id, refused_as_completed=True))
        else:
            self._events.append(ev.TransferRefused(msg.transfer_id, msg.reason))
        self._maybe_finish_ending(now)

    # -- termination

    _error_note: str | None = None

    def _queue_term(self, reason: int, now: float, reply: bool = False) -> None:
        if not self._term_sent:
            self._send_msg(SessTerm(reason, reply=reply), now)
            self._term_sent = True
            if self._term_reason is None:
                self._term_reason = reason

    def _begin_termination(self, reason: int, now: float) -> None:
        self._queue_term(reason, now)
        self._term_by_peer = False
        self.state = State.ENDING
        self._negotiation_deadline = None
        self._term_deadline = now + self.config.termination_timeout
        self._events.append(ev.SessionTerminationStarted(reason, by_peer=False))
        self._maybe_finish_ending(now)

    def _on_sess_term(self, msg: SessTerm, now: float) -> None:
        self._term_received = True
        if not self._term_sent:
            # §6.1: answer with a SESS_TERM carrying REPLY and the same reason.
            self._term_reason = msg.reason
            self._term_by_peer = True
            self._queue_term(msg.reason, now, reply=True)
            self._events.append(ev.SessionTerminationStarted(msg.reason, by_peer=True))
        self.state = State.ENDING
        self._negotiation_deadline = None
        if self._term_deadline is None:
            self._term_deadline = now + self.config.termination_timeout
        self._maybe_finish_ending(now)

    def _maybe_finish_ending(self, now: float) -> None:
        if self.state is not State.ENDING:
            return
        if not (self._term_sent and self._term_received):
            return
        if self._incoming is not None or self._outgoing or self._awaiting_answer:
            return
        self._close(clean=True)

    def _fail(self, exc: RemoteProtocolError, now: float, send_term: bool = True) -> None:
        """A peer protocol violation: queue SESS_TERM (where one may be sent), close, raise."""
        # §6.1: SESS_TERM may only follow a completed contact-header exchange (and not go in
        # the clear where TLS was agreed); before that the connection is simply closed.
        negotiating = (State.CONTACT_WAIT, State.CONTACT_SENT, State.TLS_NEGOTIATING)
        if send_term and self.state not in negotiating:
            self._queue_term(exc.term_reason, now)
        if self._term_reason is None:
            self._term_reason = exc.term_reason
        self._close(clean=False, error=str(exc))
        exc.events = self._take_events()  # type: ignore[attr-defined]
        raise exc

    def _close(self, clean: bool, error: str | None = None) -> None:
        if self._terminated_reported:
            self.state = State.CLOSED
            return
        self.state = State.CLOSED
        self._stream = None
        self._terminated_reported = True
        self._negotiation_deadline = None
        self._term_deadline = None
        self._incoming = None
        self._awaiting_answer.clear()
        self._events.append(
            ev.SessionTerminated(
                reason=self._term_reason,
                by_peer=self._term_by_peer,
                clean=clean,
                unacknowledged=tuple(self._outgoing),
                error=self._error_note if error is None else error,
            )
        )


_DISPATCH = {
    XferSegment: (Input.RECV_XFER_SEGMENT, Session._on_segment),
    XferAck: (Input.RECV_XFER_ACK, Session._on_ack),
    Keepalive: (Input.RECV_KEEPALIVE, Session._on_keepalive),
    XferRefuse: (Input.RECV_XFER_REFUSE, Session._on_refuse),
    SessInit: (Input.RECV_SESS_INIT, Session._on_sess_init),
    SessTerm: (Input.RECV_SESS_TERM, Session._on_sess_term),
    MsgReject: (Input.RECV_MSG_REJECT, Session._on_msg_reject),
}

_STREAM_THRESHOLD = 256 * 1024  # segments this large are filled in place as they arrive
_SINGLE_SEGMENT = struct.Struct(">BBQLQ")  # type, flags, transfer ID, ext length 0, data length
_FINAL_ACK = struct.Struct(">BBQQ")

__all__ = [
    "TRANSITIONS",
    "Input",
    "NodeIdPolicy",
    "Role",
    "Session",
    "SessionConfig",
    "State",
]

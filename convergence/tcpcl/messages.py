"""RFC 9174 (TCPCLv4) wire format: the contact header and all seven message types.

Every message is a one-octet Message Type (§5.1) followed by a fixed layout; all integers are
big-endian. This module only translates between bytes and frozen dataclasses. It knows nothing of
session state; `session.py` decides what a message *means* at a given moment.

Implemented layouts (section numbers of RFC 9174):

- §4.2 contact header: ``'dtn!' | version U8 | flags U8 (CAN_TLS=0x01)``
- §4.6 SESS_INIT (0x07), §4.8 session extension items, §5.2.5 transfer extension items
- §5.2.2 XFER_SEGMENT (0x01), §5.2.3 XFER_ACK (0x02), §5.2.4 XFER_REFUSE (0x03)
- §5.1.1 MSG_REJECT (0x06): *Reason Code, then Rejected Message Header* -- the order of the
  RFC's Figure 23. (dtn-demo-agent's unit test serialises the header first; we follow the RFC.)
- §5.1.2 KEEPALIVE (0x04), §6.1 SESS_TERM (0x05), §5.2.5.1 the Transfer Length extension.

Reserved flag bits are kept on decode and ignored by the session, as §4.2/§5.2.2/§6.1 require.
Unassigned reason codes decode to plain ``int`` values (the session treats them as "Unknown").

Decoding is incremental: :func:`decode_message` returns ``None`` until a whole message is in the
buffer, so the caller can feed arbitrarily split TCP reads. Malformed bytes raise
:class:`~waystation.convergence.errors.MessageDecodeError` carrying the stream offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from ..errors import LocalProtocolError, MessageDecodeError

MAGIC = b"dtn!"
VERSION = 4
CONTACT_HEADER_LEN = 6
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


class MessageType(IntEnum):
    """§5.1 / §9.5 message type codes."""

    XFER_SEGMENT = 0x01
    XFER_ACK = 0x02
    XFER_REFUSE = 0x03
    KEEPALIVE = 0x04
    SESS_TERM = 0x05
    MSG_REJECT = 0x06
    SESS_INIT = 0x07


class ContactFlags(IntFlag):
    """§4.2 contact header flags."""

    CAN_TLS = 0x01


class SegmentFlags(IntFlag):
    """§5.2.2 XFER_SEGMENT (and §5.2.3 XFER_ACK) message flags."""

    END = 0x01
    START = 0x02


class SessTermFlags(IntFlag):
    """§6.1 SESS_TERM message flags."""

    REPLY = 0x01


class ExtensionFlags(IntFlag):
    """§4.8 / §5.2.5 extension item flags."""

    CRITICAL = 0x01


class SessTermReason(IntEnum):
    """§6.1 Table 9: SESS_TERM reason codes."""

    UNKNOWN = 0x00
    IDLE_TIMEOUT = 0x01
    VERSION_MISMATCH = 0x02
    BUSY = 0x03
    CONTACT_FAILURE = 0x04
    RESOURCE_EXHAUSTION = 0x05


class RefuseReason(IntEnum):
    """§5.2.4 Table 7: XFER_REFUSE reason codes."""

    UNKNOWN = 0x00
    COMPLETED = 0x01
    NO_RESOURCES = 0x02
    RETRANSMIT = 0x03
    NOT_ACCEPTABLE = 0x04
    EXTENSION_FAILURE = 0x05
    SESSION_TERMINATING = 0x06


class RejectReason(IntEnum):
    """§5.1.1 Table 6: MSG_REJECT reason codes."""

    MESSAGE_TYPE_UNKNOWN = 0x01
    MESSAGE_UNSUPPORTED = 0x02
    MESSAGE_UNEXPECTED = 0x03


# Plain-int copies for the hot paths: IntEnum/IntFlag arithmetic runs in Python, and a 1 KiB
# transfer touches these several times.
_XFER_SEGMENT, _XFER_ACK, _XFER_REFUSE, _KEEPALIVE_T, _SESS_TERM, _MSG_REJECT, _SESS_INIT = range(
    1, 8
)
_KEEPALIVE = _KEEPALIVE_T
_END = 0x01
_START = 0x02

TRANSFER_LENGTH_EXT = 0x0001
"""§5.2.5.1: the only transfer extension RFC 9174 defines; value is the total length, U64."""


def _enum_or_int(enum: type[IntEnum], value: int) -> int:
    try:
        return enum(value)
    except ValueError:
        return value


def _raw_if_reserved(flags: int, known: int) -> int:
    """Keep raw flags only when reserved bits are set, so canonical messages compare equal to
    ones built with the boolean fields (the ``-1`` default means "derive from the booleans")."""
    return flags if flags & ~int(known) & 0xFF else -1


@dataclass(frozen=True, slots=True)
class ExtensionItem:
    """§4.8 session / §5.2.5 transfer extension item."""

    item_type: int
    value: bytes = b""
    critical: bool = False
    flags: int = -1  # raw flags as received; -1 means "derive from critical"

    def raw_flags(self) -> int:
        return self.flags if self.flags >= 0 else (ExtensionFlags.CRITICAL if self.critical else 0)


@dataclass(frozen=True, slots=True)
class ContactHeader:
    """§4.2 contact header."""

    can_tls: bool = False
    version: int = VERSION
    flags: int = -1

    def raw_flags(self) -> int:
        return self.flags if self.flags >= 0 else (ContactFlags.CAN_TLS if self.can_tls else 0)


@dataclass(frozen=True, slots=True)
class SessInit:
    """§4.6 SESS_INIT."""

    keepalive_interval: int
    segment_mru: int
    transfer_mru: int
    node_id: str
    extensions: tuple[ExtensionItem, ...] = ()


@dataclass(slots=True)
class XferSegment:
    """§5.2.2 XFER_SEGMENT. ``extensions`` are present only on the START segment."""

    transfer_id: int
    flags: int
    data: bytes
    extensions: tuple[ExtensionItem, ...] = ()

    @property
    def start(self) -> bool:
        return bool(self.flags & _START)

    @property
    def end(self) -> bool:
        return bool(self.flags & _END)

    @property
    def transfer_length(self) -> int | None:
        """Total length from the §5.2.5.1 Transfer Length extension, if present."""
        for ext in self.extensions:
            if ext.item_type == TRANSFER_LENGTH_EXT and len(ext.value) == 8:
                return int.from_bytes(ext.value, "big")
        return None


@dataclass(slots=True)
class XferAck:
    """§5.2.3 XFER_ACK; ``acked_length`` is cumulative from the start of the transfer."""

    transfer_id: int
    flags: int
    acked_length: int


@dataclass(frozen=True, slots=True)
class XferRefuse:
    """§5.2.4 XFER_REFUSE."""

    transfer_id: int
    reason: int


@dataclass(frozen=True, slots=True)
class Keepalive:
    """§5.1.2 KEEPALIVE (no body)."""


@dataclass(frozen=True, slots=True)
class SessTerm:
    """§6.1 SESS_TERM."""

    reason: int
    reply: bool = False
    flags: int = -1

    def raw_flags(self) -> int:
        return self.flags if self.flags >= 0 else (SessTermFlags.REPLY if self.reply else 0)


@dataclass(frozen=True, slots=True)
class MsgReject:
    """§5.1.1 MSG_REJECT."""

    reason: int
    rejected_header: int


Message = SessInit | XferSegment | XferAck | XferRefuse | Keepalive | SessTerm | MsgReject


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Caps that keep a hostile peer from making us buffer unbounded data.

    ``max_segment_data`` is our advertised Segment MRU (§4.6: the peer must not exceed it);
    the extension and node-ID caps bound messages RFC 9174 otherwise lets run to 4 GiB.
    """

    max_segment_data: int = U64_MAX
    max_extensions_length: int = 64 * 1024
    max_node_id_length: int = U16_MAX


DEFAULT_LIMITS = DecodeLimits()

# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------

_B = struct.Struct(">B")
_BB = struct.Struct(">BB")
_BBB = struct.Struct(">BBB")
_BBQ = struct.Struct(">BBQ")
_BBQQ = struct.Struct(">BBQQ")
_BQ = struct.Struct(">BQ")
_BBQ_Q = struct.Struct(">BBQQ")
_SESS_INIT_HEAD = struct.Struct(">BHQQH")
_Q = struct.Struct(">Q")
_L = struct.Struct(">L")
_EXT_HEAD = struct.Struct(">BHH")
_KEEPALIVE_MSG = bytes([_KEEPALIVE_T])


def _check_uint(name: str, value: int, maximum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise LocalProtocolError(f"{name} must be an integer in 0..{maximum}, got {value!r}")


def encode_extensions(items: tuple[ExtensionItem, ...] | list[ExtensionItem]) -> bytes:
    """Encode a §4.8/§5.2.5 extension item list (without its U32 length prefix)."""
    parts = []
    for item in items:
        _check_uint("extension item type", item.item_type, U16_MAX)
        _check_uint("extension item length", len(item.value), U16_MAX)
        parts.append(_EXT_HEAD.pack(item.raw_flags() & 0xFF, item.item_type, len(item.value)))
        parts.append(bytes(item.value))
    return b"".join(parts)


def encode_contact_header(header: ContactHeader) -> bytes:
    """§4.2: ``dtn!``, version, flags."""
    _check_uint("version", header.version, 0xFF)
    return MAGIC + _BB.pack(header.version, header.raw_flags() & 0xFF)


def transfer_length_extension(total_length: int) -> ExtensionItem:
    """§5.2.5.1 Transfer Length extension; sent critical, as the RFC author's agent does."""
    _check_uint("transfer length", total_length, U64_MAX)
    return ExtensionItem(TRANSFER_LENGTH_EXT, _Q.pack(total_length), critical=True)


def encode_segment_header(
    transfer_id: int, flags: int, data_length: int, extensions: tuple[ExtensionItem, ...] = ()
) -> bytes:
    """Encode an XFER_SEGMENT up to and including its Data Length, so the caller can send the
    header and the data in a single write without first copying the data."""
    _check_uint("transfer ID", transfer_id, U64_MAX)
    _check_uint("data length", data_length, U64_MAX)
    if flags & _START:
        ext = encode_extensions(extensions)
        _check_uint("transfer extension items length", len(ext), U32_MAX)
        return b"".join(
            (
                _BBQ.pack(_XFER_SEGMENT, flags & 0xFF, transfer_id),
                _L.pack(len(ext)),
                ext,
                _Q.pack(data_length),
            )
        )
    if extensions:
        raise LocalProtocolError("transfer extension items are only allowed on the START segment")
    return _BBQQ.pack(_XFER_SEGMENT, flags & 0xFF, transfer_id, data_length)


def encode_message(msg: Message) -> bytes:
    """Encode any TCPCLv4 message (§4.6, §5.1, §5.2, §6.1)."""
    if isinstance(msg, XferSegment):
        return encode_segment_header(
            msg.transfer_id, msg.flags, len(msg.data), msg.extensions
        ) + bytes(msg.data)
    if isinstance(msg, XferAck):
        _check_uint("transfer ID", msg.transfer_id, U64_MAX)
        _check_uint("acknowledged length", msg.acked_length, U64_MAX)
        return _BBQ_Q.pack(_XFER_ACK, msg.flags & 0xFF, msg.transfer_id, msg.acked_length)
    if isinstance(msg, XferRefuse):
        _check_uint("transfer ID", msg.transfer_id, U64_MAX)
        _check_uint("refuse reason", int(msg.reason), 0xFF)
        return _BBQ.pack(_XFER_REFUSE, int(msg.reason), msg.transfer_id)
    if isinstance(msg, Keepalive):
        return _KEEPALIVE_MSG
    if isinstance(msg, SessTerm):
        _check_uint("termination reason", int(msg.reason), 0xFF)
        return _BBB.pack(_SESS_TERM, msg.raw_flags() & 0xFF, int(msg.reason))
    if isinstance(msg, MsgReject):
        _check_uint("reject reason", int(msg.reason), 0xFF)
        _check_uint("rejected message header", int(msg.rejected_header), 0xFF)
        # §5.1.1 Figure 23: Reason Code first, then the Rejected Message Header.
        return _BBB.pack(_MSG_REJECT, int(msg.reason), int(msg.rejected_header))
    if isinstance(msg, SessInit):
        _check_uint("keepalive interval", msg.keepalive_interval, U16_MAX)
        _check_uint("segment MRU", msg.segment_mru, U64_MAX)
        _check_uint("transfer MRU", msg.transfer_mru, U64_MAX)
        node_id = msg.node_id.encode("utf-8")
        _check_uint("node ID length", len(node_id), U16_MAX)
        ext = encode_extensions(msg.extensions)
        _check_uint("session extension items length", len(ext), U32_MAX)
        return b"".join(
            (
                _SESS_INIT_HEAD.pack(
                    _SESS_INIT,
                    msg.keepalive_interval,
                    msg.segment_mru,
                    msg.transfer_mru,
                    len(node_id),
                ),
                node_id,
                _L.pack(len(ext)),
                ext,
            )
        )
    raise LocalProtocolError(f"not a TCPCLv4 message: {msg!r}")


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode_contact_header(
    buf: bytes | bytearray | memoryview, base: int = 0
) -> ContactHeader | None:
    """Decode a §4.2 contact header from the start of ``buf``; ``None`` if fewer than 6 bytes.

    A wrong magic is a ``MessageDecodeError``. A version other than 4 decodes fine: what to do
    about it (§4.3: SESS_TERM "Version Mismatch" or close) is the session's decision.
    """
    have = len(buf)
    # Reject a wrong magic as soon as the bytes we have disagree with it, not after 6 bytes.
    prefix = bytes(buf[: min(have, 4)])
    if prefix != MAGIC[: len(prefix)]:
        raise MessageDecodeError(
            base,
            f"contact header magic {prefix!r} is not 'dtn!' (not a TCPCL peer?)",
            term_reason=SessTermReason.CONTACT_FAILURE,
        )
    if have < CONTACT_HEADER_LEN:
        return None
    version, flags = buf[4], buf[5]
    return ContactHeader(
        can_tls=bool(flags & ContactFlags.CAN_TLS),
        version=version,
        flags=_raw_if_reserved(flags, ContactFlags.CAN_TLS),
    )


def _decode_extensions(
    buf: bytes | bytearray | memoryview, start: int, end: int, base: int, what: str
) -> tuple[ExtensionItem, ...]:
    items = []
    pos = start
    while pos < end:
        if end - pos < 5:
            raise MessageDecodeError(
                base + pos, f"{what} extension item header truncated ({end - pos} of 5 bytes left)"
            )
        flags, item_type, length = _EXT_HEAD.unpack_from(buf, pos)
        pos += 5
        if pos + length > end:
            raise MessageDecodeError(
                base + pos,
                f"{what} extension item type {item_type} claims {length} bytes, "
                f"only {end - pos} left in the item list",
            )
        items.append(
            ExtensionItem(
                item_type,
                bytes(buf[pos : pos + length]),
                bool(flags & ExtensionFlags.CRITICAL),
                _raw_if_reserved(flags, ExtensionFlags.CRITICAL),
            )
        )
        pos += length
    return tuple(items)


def decode_segment_header(
    buf: bytes | bytearray | memoryview,
    pos: int = 0,
    limits: DecodeLimits = DEFAULT_LIMITS,
    base: int = 0,
) -> tuple[int, int, tuple[ExtensionItem, ...], int, int] | None:
    """Decode an XFER_SEGMENT (§5.2.2) up to its Data Length, without needing the data.

    Returns ``(transfer_id, flags, extensions, data_start, data_length)`` or ``None`` if the
    header itself is incomplete. Lets a receiver stream a large segment's data into place
    instead of buffering the whole message first.
    """
    have = len(buf) - pos
    if have < 10:
        return None
    flags = buf[pos + 1]
    (tid,) = _Q.unpack_from(buf, pos + 2)
    cur = pos + 10
    extensions: tuple[ExtensionItem, ...] = ()
    if flags & _START:
        if len(buf) - cur < 4:
            return None
        (ext_len,) = _L.unpack_from(buf, cur)
        if ext_len > limits.max_extensions_length:
            raise MessageDecodeError(
                base + cur,
                f"transfer extension items length {ext_len} exceeds our limit "
                f"{limits.max_extensions_length}",
                term_reason=SessTermReason.RESOURCE_EXHAUSTION,
            )
        cur += 4
        if len(buf) - cur < ext_len:
            return None
        extensions = _decode_extensions(buf, cur, cur + ext_len, base, "transfer")
        cur += ext_len
    if len(buf) - cur < 8:
        return None
    (data_len,) = _Q.unpack_from(buf, cur)
    if data_len > limits.max_segment_data:
        raise MessageDecodeError(
            base + cur,
            f"XFER_SEGMENT data length {data_len} exceeds our Segment MRU "
            f"{limits.max_segment_data}",
            term_reason=SessTermReason.RESOURCE_EXHAUSTION,
        )
    return tid, flags, extensions, cur + 8, data_len


def decode_message(
    buf: bytes | bytearray | memoryview,
    pos: int = 0,
    limits: DecodeLimits = DEFAULT_LIMITS,
    base: int = 0,
) -> tuple[Message, int] | None:
    """Decode one message starting at ``buf[pos]``.

    Returns ``(message, end_position)``, or ``None`` when the buffer holds only part of the
    message. ``base`` is added to offsets in errors so they name the position in the stream.
    An unknown message type raises ``MessageDecodeError`` whose ``reject_type`` attribute is set,
    so the session can send MSG_REJECT "Message Type Unknown" (§5.1.1) before terminating.
    """
    have = len(buf) - pos
    if have < 1:
        return None
    mtype = buf[pos]
    if mtype == _XFER_SEGMENT:
        head = decode_segment_header(buf, pos, limits, base)
        if head is None:
            return None
        tid, flags, extensions, cur, data_len = head
        if len(buf) - cur < data_len:
            return None
        data = bytes(buf[cur : cur + data_len])
        return XferSegment(tid, flags, data, extensions), cur + data_len
    if mtype == _XFER_ACK:
        if have < 18:
            return None
        _, flags, tid, acked = _BBQ_Q.unpack_from(buf, pos)
        return XferAck(tid, flags, acked), pos + 18
    if mtype == _XFER_REFUSE:
        if have < 10:
            return None
        _, reason, tid = _BBQ.unpack_from(buf, pos)
        return XferRefuse(tid, _enum_or_int(RefuseReason, reason)), pos + 10
    if mtype == _KEEPALIVE:
        return Keepalive(), pos + 1
    if mtype == _SESS_TERM:
        if have < 3:
            return None
        flags, reason = buf[pos + 1], buf[pos + 2]
        return (
            SessTerm(
                _enum_or_int(SessTermReason, reason),
                bool(flags & SessTermFlags.REPLY),
                _raw_if_reserved(flags, SessTermFlags.REPLY),
            ),
            pos + 3,
        )
    if mtype == _MSG_REJECT:
        if have < 3:
            return None
        return MsgReject(_enum_or_int(RejectReason, buf[pos + 1]), buf[pos + 2]), pos + 3
    if mtype == _SESS_INIT:
        if have < 21:
            return None
        _, keepalive, seg_mru, xfer_mru, nid_len = _SESS_INIT_HEAD.unpack_from(buf, pos)
        if nid_len > limits.max_node_id_length:
            raise MessageDecodeError(
                base + pos + 19,
                f"node ID length {nid_len} exceeds our limit {limits.max_node_id_length}",
                term_reason=SessTermReason.RESOURCE_EXHAUSTION,
            )
        cur = pos + 21
        if len(buf) - cur < nid_len + 4:
            return None
        raw_nid = bytes(buf[cur : cur + nid_len])
        try:
            node_id = raw_nid.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageDecodeError(
                base + cur + exc.start,
                "SESS_INIT node ID is not valid UTF-8",
                term_reason=SessTermReason.CONTACT_FAILURE,
            ) from None
        cur += nid_len
        (ext_len,) = _L.unpack_from(buf, cur)
        if ext_len > limits.max_extensions_length:
            raise MessageDecodeError(
                base + cur,
                f"session extension items length {ext_len} exceeds our limit "
                f"{limits.max_extensions_length}",
                term_reason=SessTermReason.RESOURCE_EXHAUSTION,
            )
        cur += 4
        if len(buf) - cur < ext_len:
            return None
        extensions = _decode_extensions(buf, cur, cur + ext_len, base, "session")
        cur += ext_len
        return SessInit(keepalive, seg_mru, xfer_mru, node_id, extensions), cur
    err = MessageDecodeError(
        base + pos, f"unknown message type 0x{mtype:02x}", term_reason=SessTermReason.UNKNOWN
    )
    err.reject_type = mtype  # type: ignore[attr-defined]
    raise err


def message_type_of(msg: Message) -> MessageType:
    """The §5.1 type code of a decoded message."""
    return _TYPE_OF[type(msg)]


_TYPE_OF: dict[type, MessageType] = {
    XferSegment: MessageType.XFER_SEGMENT,
    XferAck: MessageType.XFER_ACK,
    XferRefuse: MessageType.XFER_REFUSE,
    Keepalive: MessageType.KEEPALIVE,
    SessTerm: MessageType.SESS_TERM,
    MsgReject: MessageType.MSG_REJECT,
    SessInit: MessageType.SESS_INIT,
}

__all__ = [
    "CONTACT_HEADER_LEN",
    "DEFAULT_LIMITS",
    "MAGIC",
    "TRANSFER_LENGTH_EXT",
    "U64_MAX",
    "VERSION",
    "ContactFlags",
    "ContactHeader",
    "DecodeLimits",
    "ExtensionFlags",
    "ExtensionItem",
    "Keepalive",
    "Message",
    "MessageType",
    "MsgReject",
    "RefuseReason",
    "RejectReason",
    "SegmentFlags",
    "SessInit",
    "SessTerm",
    "SessTermFlags",
    "SessTermReason",
    "XferAck",
    "XferRefuse",
    "XferSegment",
    "decode_contact_header",
    "decode_message",
    "decode_segment_header",
    "encode_contact_header",
    "encode_extensions",
    "encode_message",
    "encode_segment_header",
    "message_type_of",
    "transfer_length_extension",
]

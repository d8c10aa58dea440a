"""The local application protocol: versioned CBOR frames over ZeroMQ (docs/app-protocol.md).

This module is the single source of truth for the wire format both the node (``appserver``)
and the client library (``client``) speak. It is sans-I/O: it turns bytes into validated
:class:`Frame` objects and back, and raises :class:`AppProtocolError` with a stable, machine
readable ``code`` for anything malformed, so a server can answer garbage with a precise error.

Every ZeroMQ message carries exactly one frame, a CBOR array::

    [version, kind, rid, body]

``version`` is :data:`PROTOCOL_VERSION`; ``kind`` a text string (an operation name on
requests, ``"ok"``/``"error"``/``"delivery"``/``"deliveries"``/``"keepalive"`` from the node); ``rid`` an unsigned request id
chosen by the client and echoed in the reply (``0`` on requests means "no reply on success");
``body`` a map with text keys.

Error tree::

    AppProtocolError(code, message)          root of this module's errors
     +-- (code values, see ErrorCode)         bad-frame, unsupported-version, unknown-op, ...
"""

from __future__ import annotations

import enum
import io
from dataclasses import dataclass, field
from typing import Any

import cbor2

__all__ = [
    "PROTOCOL_VERSION",
    "PROTOCOL_MINOR",
    "MAX_BATCH",
    "OPS",
    "ErrorCode",
    "AppProtocolError",
    "Frame",
    "encode_frame",
    "decode_frame",
    "require",
    "optional",
    "PRIORITIES",
    "REPORT_KINDS",
]

PROTOCOL_VERSION = 1
# Compatible additions within version 1 (docs/app-protocol.md, "Versioning"): a node reports
# its minor version in the ``hello`` reply (absent = 0). Minor 1: batched deliveries
# (``recv`` argument ``batch``, ``deliveries`` frames) and batched acks (``ack`` argument
# ``keys``), both only when the client asks, so version-1.0 clients see no change. Minor 2:
# batched submission (``send`` argument ``payloads``: 1..MAX_BATCH byte strings sharing the
# other arguments, answered once all are durable with ``{"results": [...]}`` in order, each a
# ``send`` reply or ``{"error": {"code", "message"}}``).
PROTOCOL_MINOR = 2
# Largest ``batch`` a client may ask for in ``recv`` (deliveries per ``deliveries`` frame) and
# most keys in one ``ack``.
MAX_BATCH = 4096

# Operations a client may send (request ``kind``). Kept as a frozen set so the server can
# answer an unknown operation precisely before touching any handler.
OPS = frozenset(
    {
        "hello",
        "register",
        "unregister",
        "recv",
        "stop",
        "ack",
        "send",
        "status",
        "add_route",
        "del_route",
        "add_link",
        "del_link",
        "load_plan",
        # store administration (docs/app-protocol.md, "Store administration")
        "store_list",
        "store_get",
        "store_delete",
        "store_stats",
    }
)

# Reply / push kinds the node sends.
KIND_OK = "ok"
KIND_ERROR = "error"
KIND_DELIVERY = "delivery"
# Several deliveries in one frame (minor 1; only to a client that asked with ``recv batch``).
KIND_DELIVERIES = "deliveries"
# Sent every second to receiving clients so the node notices vanished ones; clients ignore it.
KIND_KEEPALIVE = "keepalive"
NODE_KINDS = frozenset({KIND_OK, KIND_ERROR, KIND_DELIVERY, KIND_DELIVERIES, KIND_KEEPALIVE})

# Priority names map onto RFC 9171 has no priority field in the primary block; the value is
# a local queueing class (BPv6 RFC 5050 classes, kept as node-local metadata).
PRIORITIES = {"bulk": 0, "normal": 1, "expedited": 2}
# Status report kinds of RFC 9171 §4.2.3 bundle processing control flags (bits 14, 16, 17, 18).
REPORT_KINDS = frozenset({"reception", "forwarding", "delivery", "deletion"})


class ErrorCode(enum.StrEnum):
    """Stable error codes carried in ``error`` replies (docs/app-protocol.md, "Errors")."""

    BAD_FRAME = "bad-frame"
    UNSUPPORTED_VERSION = "unsupported-version"
    UNKNOWN_OP = "unknown-op"
    BAD_ARGUMENT = "bad-argument"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    NOT_REGISTERED = "not-registered"
    ALREADY_BOUND = "already-bound"
    STORE_FULL = "store-full"
    NOT_AVAILABLE = "not-available"
    NOT_FOUND = "not-found"
    SHUTTING_DOWN = "shutting-down"
    INTERNAL = "internal"


class AppProtocolError(Exception):
    """A frame or request that breaks the application protocol.

    ``code`` is an :class:`ErrorCode`; ``rid`` the request id when it could be recovered, so
    the reply can still be matched to the request.
    """

    def __init__(self, code: ErrorCode, message: str, rid: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.rid = rid


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded protocol frame."""

    kind: str
    rid: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    version: int = PROTOCOL_VERSION


def encode_frame(kind: str, rid: int = 0, body: dict[str, Any] | None = None) -> bytes:
    """Encode one frame; ``body`` values must be CBOR-encodable (bytes, str, ints, lists, maps)."""
    return cbor2.dumps([PROTOCOL_VERSION, kind, rid, body or {}])


def _decode_cbor(data: bytes) -> Any:
    try:
        decoder = cbor2.CBORDecoder(io.BytesIO(data))
        obj = decoder.decode()
        if decoder.fp.tell() != len(data):
            raise AppProtocolError(ErrorCode.BAD_FRAME, "trailing bytes after the CBOR item")
    except AppProtocolError:
        raise
    except RecursionError:
        raise AppProtocolError(ErrorCode.BAD_FRAME, "CBOR nesting too deep") from None
    except Exception as exc:  # cbor2 raises several types (tags, EOF, value errors)
        raise AppProtocolError(ErrorCode.BAD_FRAME, f"not a CBOR item: {exc}") from None
    return obj


def decode_frame(data: bytes, *, from_node: bool = False) -> Frame:
    """Decode and validate one frame; raise :class:`AppProtocolError` on anything malformed.

    ``from_node`` selects which kinds are acceptable: operation names (client to node) or
    ``ok``/``error``/``delivery`` (node to client).
    """
    if not data:
        raise AppProtocolError(ErrorCode.BAD_FRAME, "empty frame")
    obj = _decode_cbor(data)
    if not isinstance(obj, list) or len(obj) != 4:
        raise AppProtocolError(ErrorCode.BAD_FRAME, "a frame is a CBOR array of 4 items")
    version, kind, rid, body = obj
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid < 2**64:
        raise AppProtocolError(ErrorCode.BAD_FRAME, "rid must be an unsigned integer")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise AppProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version!r} not supported (this node speaks {PROTOCOL_VERSION})",
            rid,
        )
    if not isinstance(kind, str):
        raise AppProtocolError(ErrorCode.BAD_FRAME, "kind must be a text string", rid)
    if not isinstance(body, dict) or not all(isinstance(k, str) for k in body):
        raise AppProtocolError(ErrorCode.BAD_FRAME, "body must be a map with text keys", rid)
    allowed = NODE_KINDS if from_node else OPS
    if kind not in allowed:
        raise AppProtocolError(ErrorCode.UNKNOWN_OP, f"unknown operation {kind[:64]!r}", rid)
    return Frame(kind=kind, rid=rid, body=body, version=version)


_MISSING = object()


def require(body: dict[str, Any], key: str, typ: type | tuple[type, ...], rid: int = 0) -> Any:
    """Fetch a mandatory argument of the given type, or raise a precise ``bad-argument``."""
    value = body.get(key, _MISSING)
    if value is _MISSING:
        raise AppProtocolError(ErrorCode.BAD_ARGUMENT, f"missing argument {key!r}", rid)
    return _check(key, value, typ, rid)


def optional(
    body: dict[str, Any], key: str, typ: type | tuple[type, ...], default: Any, rid: int = 0
) -> Any:
    """Fetch an optional argument (``None`` counts as absent) of the given type."""
    value = body.get(key)
    if value is None:
        return default
    return _check(key, value, typ, rid)


def _check(key: str, value: Any, typ: type | tuple[type, ...], rid: int) -> Any:
    types = typ if isinstance(typ, tuple) else (typ,)
    # bool is an int subclass in Python; a CBOR true/false is never a valid number here.
    ok = False if isinstance(value, bool) and bool not in types else isinstance(value, types)
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise AppProtocolError(
            ErrorCode.BAD_ARGUMENT,
            f"argument {key!r} must be {names}, not {type(value).__name__}",
            rid,
        )
    return value

"""Administrative records and bundle status reports (RFC 9171 §6.1, §6.1.1, §6.2).

An administrative record is the payload of a bundle with the ADMIN_RECORD flag: CBOR
``[record type, content]``. Type 1 is the bundle status report::

    [ [received, forwarded, delivered, deleted, ...],   status items: [asserted] or [true, time]
      reason code, source node ID, creation timestamp, ? fragment offset, ? fragment length ]

:func:`status_report_for` builds the report about a subject bundle (adding times only when the
subject asked for them, and the fragment fields iff it is a fragment, §6.2 step 1);
:func:`status_report_bundle` wraps a report into a bundle for the subject's report-to endpoint;
:func:`encode_admin_record` / :func:`decode_admin_record` convert to and from payload bytes.

Decoding is tolerant in two documented ways: status information with more than four items is
accepted (extra items are kept undecoded in ``extra_status``), and a status time on a
*non-asserted* item is kept rather than rejected (seen in Wireshark's test captures). Records of
types other than 1 decode to :class:`UnknownAdminRecord` carrying the raw content bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .builder import DEFAULT_LIFETIME_MS
from .cborhead import (
    INDEFINITE,
    MAJOR_ARRAY,
    MAJOR_UINT,
    encode_head,
    encode_uint,
    read_array_head,
    read_head,
    skip_item,
)
from .dtntime import CreationTimestamp, TimestampSource
from .eid import EndpointID, decode_eid_cbor
from .errors import BundleError, DecodeError, ValidationError
from .model import (
    PAYLOAD_BLOCK_NUMBER,
    BlockType,
    Bundle,
    BundleFlags,
    BundleId,
    CanonicalBlock,
    CRCType,
    PrimaryBlock,
)

__all__ = [
    "AdminRecordType",
    "BundleStatusReport",
    "StatusItem",
    "StatusReportReason",
    "UnknownAdminRecord",
    "decode_admin_record",
    "encode_admin_record",
    "status_report_bundle",
    "status_report_for",
]


class AdminRecordType(IntEnum):
    BUNDLE_STATUS_REPORT = 1


class StatusReportReason(IntEnum):
    """Bundle status report reason codes: RFC 9171 §6.1.1 Table 1 and RFC 9172 §11.2."""

    NO_ADDITIONAL_INFORMATION = 0
    LIFETIME_EXPIRED = 1
    FORWARDED_OVER_UNIDIRECTIONAL_LINK = 2
    TRANSMISSION_CANCELED = 3
    DEPLETED_STORAGE = 4
    DESTINATION_EID_UNAVAILABLE = 5
    NO_KNOWN_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8
    HOP_LIMIT_EXCEEDED = 9
    TRAFFIC_PARED = 10
    BLOCK_UNSUPPORTED = 11
    # RFC 9172 (BPSec) §11.2
    MISSING_SECURITY_OPERATION = 12
    UNKNOWN_SECURITY_OPERATION = 13
    UNEXPECTED_SECURITY_OPERATION = 14
    FAILED_SECURITY_OPERATION = 15
    CONFLICTING_SECURITY_OPERATION = 16


@dataclass(frozen=True, slots=True)
class StatusItem:
    """One status assertion; ``time_ms`` (DTN time) only if asserted and time was requested."""

    asserted: bool = False
    time_ms: int | None = None


NOT_ASSERTED = StatusItem()


@dataclass(slots=True)
class BundleStatusReport:
    """A bundle status report (§6.1.1) about the bundle identified by source/creation/fragment."""

    source: EndpointID
    creation: CreationTimestamp
    reason: int = StatusReportReason.NO_ADDITIONAL_INFORMATION
    received: StatusItem = NOT_ASSERTED
    forwarded: StatusItem = NOT_ASSERTED
    delivered: StatusItem = NOT_ASSERTED
    deleted: StatusItem = NOT_ASSERTED
    fragment_offset: int | None = None
    fragment_length: int | None = None
    extra_status: list[bytes] = field(default_factory=list)

    @property
    def subject_id(self) -> BundleId:
        return BundleId(self.source, self.creation, self.fragment_offset, self.fragment_length)

    @property
    def record_type(self) -> int:
        return AdminRecordType.BUNDLE_STATUS_REPORT


@dataclass(slots=True)
class UnknownAdminRecord:
    """An administrative record of a type this node does not interpret (raw CBOR content)."""

    record_type: int
    content: bytes


def _item(item: StatusItem) -> bytes:
    if item.time_ms is None:
        return b"\x81" + (b"\xf5" if item.asserted else b"\xf4")
    return b"\x82" + (b"\xf5" if item.asserted else b"\xf4") + encode_uint(item.time_ms)


def encode_admin_record(record: BundleStatusReport | UnknownAdminRecord) -> bytes:
    """The payload bytes of an administrative record bundle (§6.1)."""
    if isinstance(record, UnknownAdminRecord):
        return b"\x82" + encode_uint(record.record_type) + bytes(record.content)
    r = record
    frag = r.fragment_offset is not None
    if frag != (r.fragment_length is not None):
        raise ValidationError("fragment offset and length must both be set or both be None")
    try:
        status = [_item(r.received), _item(r.forwarded), _item(r.delivered), _item(r.deleted)]
        out = bytearray(b"\x82\x01")
        out.append(0x86 if frag else 0x84)
        out += encode_head(MAJOR_ARRAY, 4 + len(r.extra_status))
        out += b"".join(status)
        for extra in r.extra_status:
            out += extra
        out += encode_uint(r.reason)
        out += r.source.to_cbor()
        out += b"\x82" + encode_uint(r.creation[0]) + encode_uint(r.creation[1])
        if frag:
            assert r.fragment_offset is not None and r.fragment_length is not None
            out += encode_uint(r.fragment_offset) + encode_uint(r.fragment_length)
    except ValueError as exc:  # from encode_uint: negative or > 64 bits
        raise ValidationError(f"status report field out of range: {exc}") from None
    return bytes(out)


def _read_bool(buf: bytes | memoryview, pos: int, what: str) -> tuple[bool, int]:
    if pos >= len(buf):
        raise DecodeError(pos, f"{what}: unexpected end of input")
    b = buf[pos]
    if b == 0xF5:
        return True, pos + 1
    if b == 0xF4:
        return False, pos + 1
    raise DecodeError(pos, f"{what}: expected a CBOR boolean")


def _read_uint(buf: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    major, value, end = read_head(buf, pos)
    if major != MAJOR_UINT or value == INDEFINITE:
        raise DecodeError(pos, f"{what}: expected an unsigned integer")
    return value, end


def _read_status_item(buf: bytes | memoryview, pos: int, what: str) -> tuple[StatusItem, int]:
    n, pos = read_array_head(buf, pos, what)
    if n not in (1, 2):
        raise DecodeError(pos, f"{what}: a status item has 1 or 2 elements, not {n}")
    asserted, pos = _read_bool(buf, pos, what)
    time_ms = None
    if n == 2:
        time_ms, pos = _read_uint(buf, pos, f"{what} time")
    return StatusItem(asserted, time_ms), pos


def decode_admin_record(data: bytes | memoryview) -> BundleStatusReport | UnknownAdminRecord:
    """Decode an administrative record payload; raises only :class:`BundleError` subclasses."""
    buf = memoryview(data) if not isinstance(data, memoryview) else data
    try:
        n, pos = read_array_head(buf, 0, "administrative record")
        if n != 2:
            raise DecodeError(0, f"an administrative record has 2 items, not {n}")
        rtype, pos = _read_uint(buf, pos, "administrative record type")
        if rtype != AdminRecordType.BUNDLE_STATUS_REPORT:
            end = skip_item(buf, pos)
            if end != len(buf):
                raise DecodeError(end, "trailing bytes after administrative record")
            return UnknownAdminRecord(rtype, bytes(buf[pos:end]))
        start = pos
        n, pos = read_array_head(buf, pos, "status report")
        if n not in (4, 6):
            raise DecodeError(start, f"a status report has 4 or 6 items, not {n}")
        at = pos
        count, pos = read_array_head(buf, pos, "status information")
        if count < 4:
            raise DecodeError(at, f"status information needs at least 4 items, not {count}")
        items = []
        for name in ("received", "forwarded", "delivered", "deleted"):
            item, pos = _read_status_item(buf, pos, f"{name} status")
            items.append(item)
        extra = []
        for _ in range(count - 4):
            end = skip_item(buf, pos)
            extra.append(bytes(buf[pos:end]))
            pos = end
        reason, pos = _read_uint(buf, pos, "reason code")
        source, pos = decode_eid_cbor(buf, pos)
        at = pos
        k, pos = read_array_head(buf, pos, "creation timestamp")
        if k != 2:
            raise DecodeError(at, "creation timestamp must have 2 items")
        ctime, pos = _read_uint(buf, pos, "creation time")
        seq, pos = _read_uint(buf, pos, "sequence number")
        frag_offset = frag_length = None
        if n == 6:
            frag_offset, pos = _read_uint(buf, pos, "fragment offset")
            frag_length, pos = _read_uint(buf, pos, "fragment length")
        if pos != len(buf):
            raise DecodeError(pos, "trailing bytes after status report")
    except BundleError:
        raise
    except (IndexError, ValueError) as exc:  # defensive: keep the error contract on any input
        raise DecodeError(0, f"malformed administrative record: {exc}") from None
    return BundleStatusReport(
        source=source,
        creation=CreationTimestamp(ctime, seq),
        reason=reason,
        received=items[0],
        forwarded=items[1],
        delivered=items[2],
        deleted=items[3],
        fragment_offset=frag_offset,
        fragment_length=frag_length,
        extra_status=extra,
    )


def status_report_for(
    subject: Bundle,
    *,
    reason: int = StatusReportReason.NO_ADDITIONAL_INFORMATION,
    received_ms: int | None = None,
    forwarded_ms: int | None = None,
    delivered_ms: int | None = None,
    deleted_ms: int | None = None,
) -> BundleStatusReport:
    """The status report about ``subject`` asserting each status whose time is given.

    Times are included only if the subject set STATUS_TIME_REQUESTED (§6.1.1); the fragment
    offset and payload length are included iff the subject is a fragment (§6.2).
    """
    with_time = bool(subject.primary.flags & BundleFlags.STATUS_TIME_REQUESTED)

    def item(t: int | None) -> StatusItem:
        if t is None:
            return NOT_ASSERTED
        return StatusItem(True, t if with_time else None)

    p = subject.primary
    frag_offset = frag_length = None
    if subject.is_fragment:
        frag_offset, frag_length = p.fragment_offset, len(subject.payload)
    return BundleStatusReport(
        source=p.source,
        creation=p.creation,
        reason=reason,
        received=item(received_ms),
        forwarded=item(forwarded_ms),
        delivered=item(delivered_ms),
        deleted=item(deleted_ms),
        fragment_offset=frag_offset,
        fragment_length=frag_length,
    )


def status_report_bundle(
    report: BundleStatusReport | UnknownAdminRecord,
    *,
    source: EndpointID,
    destination: EndpointID,
    timestamps: TimestampSource | None = None,
    creation: CreationTimestamp | None = None,
    lifetime_ms: int = DEFAULT_LIFETIME_MS,
    crc_type: int = CRCType.CRC32C,
) -> Bundle:
    """A bundle carrying ``report`` from this node (``source``, its node ID) to ``destination``
    (the subject's report-to EID). Admin records never request status reports (§4.2.3)."""
    if destination.is_null:
        raise ValidationError("status reports to dtn:none are not sent (§6.2)")
    if creation is None:
        if timestamps is None:
            raise ValidationError("need a creation timestamp or a TimestampSource")
        creation = timestamps.next()
    blocks = []
    if creation.time_ms == 0:
        blocks.append(CanonicalBlock.bundle_age(0, 2, 0, crc_type))
    blocks.append(
        CanonicalBlock(
            BlockType.PAYLOAD, PAYLOAD_BLOCK_NUMBER, 0, crc_type, encode_admin_record(report)
        )
    )
    primary = PrimaryBlock(
        flags=BundleFlags.ADMIN_RECORD,
        crc_type=crc_type,
        destination=destination,
        source=source,
        report_to=source.node_id if not source.is_null else source,
        creation=creation,
        lifetime_ms=lifetime_ms,
    )
    return Bundle(primary, blocks)

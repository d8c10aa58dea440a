"""Administrative records and bundle status reports (RFC 9171 §6.1, §6.2)."""

from __future__ import annotations

from types import ModuleType

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.admin import (
    BundleStatusReport,
    StatusItem,
    StatusReportReason,
    UnknownAdminRecord,
    decode_admin_record,
    encode_admin_record,
    status_report_bundle,
    status_report_for,
)
from waystation.bundle.builder import build_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import DTN_NONE, IpnEID
from waystation.bundle.errors import BundleError, ValidationError
from waystation.bundle.fragment import split_bundle
from waystation.bundle.model import BundleFlags

from tests.bundle.test_refdata_vectors import BUNDLES


def test_reason_codes() -> None:
    assert StatusReportReason.NO_ADDITIONAL_INFORMATION == 0
    assert StatusReportReason.BLOCK_UNSUPPORTED == 11
    assert StatusReportReason.MISSING_SECURITY_OPERATION == 12
    assert StatusReportReason.CONFLICTING_SECURITY_OPERATION == 16
    assert len(StatusReportReason) == 17


def test_report_for_bundle_without_status_time() -> None:
    subject = build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        b"x",
        creation=CreationTimestamp(5, 1),
        flags=BundleFlags.REPORT_DELIVERY,
    )
    report = status_report_for(subject, delivered_ms=99)
    assert report.delivered == StatusItem(True, None)
    assert report.received == StatusItem(False)
    raw = encode_admin_record(report)
    assert cbor2.loads(raw) == [1, [[[False], [False], [True], [False]], 0, [2, [1, 1]], [5, 1]]]
    assert decode_admin_record(raw) == report
    assert report.subject_id == subject.bundle_id


def test_report_for_fragment_with_status_time() -> None:
    subject = build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        b"0123456789",
        creation=CreationTimestamp(5, 1),
        flags=BundleFlags.REPORT_RECEPTION | BundleFlags.STATUS_TIME_REQUESTED,
    )
    second = split_bundle(subject, 4)[1]
    report = status_report_for(second, received_ms=1234, reason=StatusReportReason.DEPLETED_STORAGE)
    raw = encode_admin_record(report)
    assert cbor2.loads(raw) == [
        1,
        [[[True, 1234], [False], [False], [False]], 4, [2, [1, 1]], [5, 1], 4, 6],
    ]
    back = decode_admin_record(raw)
    assert back == report
    assert back.subject_id == second.bundle_id


def test_status_report_bundle(impl: ModuleType) -> None:
    subject = build_bundle(
        "ipn:1.1",
        "ipn:2.1",
        b"x",
        creation=CreationTimestamp(5, 1),
        flags=BundleFlags.REPORT_DELETION,
    )
    report = status_report_for(subject, deleted_ms=7, reason=StatusReportReason.LIFETIME_EXPIRED)
    b = status_report_bundle(
        report,
        source=IpnEID(3, 0),
        destination=subject.primary.report_to or IpnEID(1, 0),
        creation=CreationTimestamp(10, 0),
    )
    assert b.is_admin_record
    decoded = impl.decode_bundle(impl.encode_bundle(b))
    assert decode_admin_record(decoded.payload) == report
    with pytest.raises(ValidationError):
        status_report_bundle(
            report, source=IpnEID(3, 0), destination=DTN_NONE, creation=CreationTimestamp(1, 0)
        )


def test_wireshark_capture_status_report() -> None:
    # tshark: "Source: ipn:93.185, DTN Time: 1396536125, Seq: 281", reason 3 (transmission canceled)
    from waystation.bundle.pycodec import decode_bundle

    entry = BUNDLES["dtn_udpcl_bpv7_bpsec_bib_admin"]
    bundle = decode_bundle(bytes.fromhex(entry["bundle_hex"]), validate=False)
    report = decode_admin_record(bundle.payload)
    assert isinstance(report, BundleStatusReport)
    assert report.source == IpnEID(93, 185)
    assert report.creation == (1396536125, 281)
    assert report.reason == StatusReportReason.TRANSMISSION_CANCELED
    assert report.deleted.asserted and not report.received.asserted
    assert encode_admin_record(report) == bytes(bundle.payload)


def test_unknown_record_type_kept() -> None:
    raw = cbor2.dumps([7, {"a": [1, 2]}])
    record = decode_admin_record(raw)
    assert record == UnknownAdminRecord(7, cbor2.dumps({"a": [1, 2]}))
    assert encode_admin_record(record) == raw


@pytest.mark.parametrize(
    "obj",
    [
        [1],
        [1, [[[True]] * 3, 0, [2, [1, 1]], [5, 1]]],
        [1, [[[True]] * 4, 0, [2, [1, 1]], [5, 1], 3]],
        [1, [[["yes"]] * 4, 0, [2, [1, 1]], [5, 1]]],
        [1, [[[True, -1]] * 4, 0, [2, [1, 1]], [5, 1]]],
        [1, [[[True]] * 4, 0, [9, 0], [5, 1]]],
        [1, [[[True]] * 4, 0, [2, [1, 1]], [5]]],
    ],
)
def test_malformed_reports_rejected(obj: object) -> None:
    with pytest.raises(BundleError):
        decode_admin_record(cbor2.dumps(obj))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=60))
def test_fuzz_admin_records(data: bytes) -> None:
    try:
        decode_admin_record(data)
    except BundleError:
        pass

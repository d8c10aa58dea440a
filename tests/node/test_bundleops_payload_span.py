"""The payload span learnt at reception (bundleops.payload_span): delivery slices the wire at
these offsets instead of decoding the bundle again, so they must be exactly the decoded
payload's bytes - for every bundle either codec encodes, and never wrong for tails in a
non-canonical form (then: None, and the caller decodes)."""

from __future__ import annotations

from types import ModuleType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.bundleops import inspect, payload_span

from tests.strategies import bundles

_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(bundle=bundles(max_payload=2000))
def test_span_is_the_decoded_payload(impl: ModuleType, bundle: object) -> None:
    wire = impl.encode_bundle(bundle)
    decoded = impl.decode_bundle(wire)
    span = payload_span(wire, decoded)
    assert span is not None  # our encoders always write the canonical tail
    start, end = span
    assert wire[start:end] == bytes(decoded.payload)


@_SETTINGS
@given(bundle=bundles(max_payload=600, allow_fragments=False))
def test_inspect_records_the_span(bundle: object) -> None:
    from waystation.bundle import codec

    wire = codec.encode_bundle(bundle)
    try:
        info = inspect(wire, 1_000, 1 << 20)
    except Exception:  # e.g. creation time 0 and an age that makes no expiry: not our subject
        return
    assert info.payload_span is not None
    start, end = info.payload_span
    decoded = codec.decode_bundle(wire)
    assert wire[start:end] == bytes(decoded.payload)
    # the key inspect builds without a BundleId object is the bundle ID's key (§5.9 dedup)
    assert info.key == decoded.bundle_id.key()


def _long_crc_head(wire: bytes, crc_len: int) -> bytes:
    """Re-encode the payload block's CRC field with a one-byte length argument (0x58 n):
    still valid CBOR that a lenient decoder accepts, but not the canonical head."""
    body, crc = wire[: -1 - crc_len], wire[-1 - crc_len + 1 : -1]
    return body + bytes([0x58, len(crc)]) + crc + b"\xff"


@_SETTINGS
@given(bundle=bundles(max_payload=300), data=st.data())
def test_noncanonical_crc_head_gives_none_or_the_truth(
    impl: ModuleType, bundle: object, data: st.DataObject
) -> None:
    wire = impl.encode_bundle(bundle)
    crc = int(impl.decode_bundle(wire).blocks[-1].crc_type)
    if not crc:
        return
    odd = _long_crc_head(wire, 3 if crc == 1 else 5)
    try:
        decoded = impl.decode_bundle(odd)
    except Exception:  # the decoder may refuse the long head; then nothing is sliced at all
        return
    span = payload_span(odd, decoded)
    if span is not None:
        assert odd[span[0] : span[1]] == bytes(decoded.payload)

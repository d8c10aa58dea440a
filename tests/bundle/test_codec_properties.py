"""Property-based tests of the codec: round trips over random valid bundles, canonical output,
and fuzzing with random and mutated input (decode raises nothing but BundleError)."""

from __future__ import annotations

from types import ModuleType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.bundle.errors import BundleError
from waystation.bundle.model import Bundle

from tests.strategies import bundles, mutated_bundle_bytes

FAST = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(bundle=bundles())
def test_roundtrip_decode_encode(impl: ModuleType, bundle: Bundle) -> None:
    raw = impl.encode_bundle(bundle)
    decoded = impl.decode_bundle(raw)
    assert decoded == bundle
    # canonical: re-encoding the decoded bundle gives the same bytes
    assert impl.encode_bundle(decoded) == raw
    assert decoded.bundle_id == bundle.bundle_id
    assert decoded.bundle_id.key() == bundle.bundle_id.key()


@FAST
@given(bundle=bundles())
def test_payload_is_zero_copy_view_of_input(impl: ModuleType, bundle: Bundle) -> None:
    raw = impl.encode_bundle(bundle)
    decoded = impl.decode_bundle(raw)
    payload = decoded.payload
    assert isinstance(payload, memoryview)
    assert payload.obj is raw  # a view into the caller's buffer, not a copy
    assert payload.readonly


@FAST
@given(bundle=bundles(max_payload=50))
def test_encoding_is_deterministic_and_equal_for_bytes_or_views(
    impl: ModuleType, bundle: Bundle
) -> None:
    raw = impl.encode_bundle(bundle)
    bundle.blocks[-1].data = memoryview(bytes(bundle.payload))
    assert impl.encode_bundle(bundle) == raw


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=200))
def test_fuzz_random_bytes_raise_only_bundle_errors(impl: ModuleType, data: bytes) -> None:
    try:
        impl.decode_bundle(data)
    except BundleError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=120))
def test_fuzz_bytes_after_bundle_start_raise_only_bundle_errors(
    impl: ModuleType, data: bytes
) -> None:
    for prefix in (b"\x9f\x89\x07", b"\x9f\x88\x07\x00\x00", b"\x9f"):
        try:
            impl.decode_bundle(prefix + data)
        except BundleError:
            pass


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=mutated_bundle_bytes())
def test_fuzz_mutated_bundles_raise_only_bundle_errors(impl: ModuleType, data: bytes) -> None:
    for validate in (True, False):
        try:
            bundle = impl.decode_bundle(data, validate=validate)
        except BundleError:
            continue
        # whatever decodes must encode again (possibly canonicalised) or fail cleanly
        try:
            impl.encode_bundle(bundle)
        except BundleError:
            assert not validate

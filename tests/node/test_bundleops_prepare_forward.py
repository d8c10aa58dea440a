"""prepare_forward (RFC 9171 §5.4 step 4, §4.4.1-§4.4.3) against its straightforward reference:
the lean one-pass version must give the very same bytes for every bundle, on both codecs, and
must not change bundles it has no reason to change."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation import bundleops
from waystation.bundle.model import BlockType

from tests.strategies import bundles, eids

_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def on_codec(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Run bundleops on the codec under test (the pure reference, then the Cython twin)."""
    monkeypatch.setattr(bundleops, "codec", impl)
    return impl


@_SETTINGS
@given(
    bundle=bundles(max_payload=400),
    node=eids,
    received=st.integers(0, 2**40),
    residence=st.integers(-5, 10**7),
)
def test_same_bytes_as_the_reference(
    on_codec: ModuleType, bundle: object, node: object, received: int, residence: int
) -> None:
    wire = on_codec.encode_bundle(bundle)
    kw = {"node_eid": node, "received_ms": received, "now_ms": received + residence}
    try:
        expected = bundleops.prepare_forward_reference(wire, **kw)
    except Exception as exc:  # e.g. an age that overflows 2^64: both must refuse alike
        with pytest.raises(type(exc)):
            bundleops.prepare_forward(wire, **kw)
        return
    got = bundleops.prepare_forward(wire, **kw)
    assert got == expected
    # and it did its job: the Previous Node block names this node (§4.4.1)
    assert on_codec.decode_bundle(got).previous_node == node


@_SETTINGS
@given(bundle=bundles(max_payload=100), node=eids)
def test_twice_is_stable_for_previous_node(on_codec: ModuleType, bundle: object, node: object) -> None:
    """A second transmission by the same node keeps one Previous Node block (replaced, not
    added), exactly as the reference does."""
    wire = on_codec.encode_bundle(bundle)
    once = bundleops.prepare_forward(wire, node_eid=node, received_ms=0, now_ms=0)
    twice = bundleops.prepare_forward(once, node_eid=node, received_ms=0, now_ms=0)
    ref = bundleops.prepare_forward_reference(once, node_eid=node, received_ms=0, now_ms=0)
    assert twice == ref
    blocks = on_codec.decode_bundle(twice).blocks
    assert sum(1 for b in blocks if b.block_type == BlockType.PREVIOUS_NODE) == 1

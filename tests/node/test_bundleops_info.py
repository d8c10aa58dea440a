"""bundleops.inspect's BundleInfo (RFC 9171 §5.6 step 1) against the decoded model, on both
codecs: the identity-keyed EID cache and the direct Hop Count read must give what the model's
own properties give, for every bundle hypothesis draws."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation import bundleops
from waystation.bundle.model import BlockType, CanonicalBlock, CRCType, hop_count_data

from tests.strategies import bundles

_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def on_codec(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setattr(bundleops, "codec", impl)
    return impl


@_SETTINGS
@given(bundle=bundles())
def test_info_matches_the_model(on_codec: ModuleType, bundle: object) -> None:
    wire = on_codec.encode_bundle(bundle)
    decoded = on_codec.decode_bundle(wire)
    p = decoded.primary
    if not p.creation.time_ms and decoded.bundle_age_ms is None:
        return  # no expiry: inspect refuses it (tested elsewhere)
    for _ in range(2):  # the second pass hits the EID cache
        info = bundleops.inspect(wire, 1_000, 1 << 26)
        assert info.key == decoded.bundle_id.key()
        assert (info.source, info.destination, info.report_to) == (
            str(p.source),
            str(p.destination),
            str(p.report_to),
        )
        hop = decoded.hop_count
        assert info.hop_exceeded == bool(hop is not None and hop.exceeded)


@pytest.mark.parametrize(
    ("limit", "count"), [(5, 1), (1, 2), (23, 23), (23, 24), (30, 31), (300, 2), (2, 300)]
)
def test_hop_exceeded_in_every_encoding_size(limit: int, count: int) -> None:
    blocks = [
        CanonicalBlock(BlockType.HOP_COUNT, 2, 0, CRCType.NONE, hop_count_data(limit, count)),
        CanonicalBlock(BlockType.PAYLOAD, 1, 0, CRCType.NONE, b"x"),
    ]
    assert bundleops._hop_exceeded(blocks) is (count > limit)


@given(st.sampled_from(["dtn://a/x", "ipn:3.4", "dtn:none", "ipn:1.0"]))
def test_equal_eids_that_are_different_objects_give_the_same_facts(text: str) -> None:
    from waystation.bundle.eid import parse_eid

    one, two = parse_eid(text), parse_eid(text)
    assert bundleops._eid_facts(one)[1:] == bundleops._eid_facts(two)[1:] == (
        str(one),
        one.to_cbor(),
    )

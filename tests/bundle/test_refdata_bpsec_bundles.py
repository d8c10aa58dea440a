"""Whole-bundle acceptance of third-party bundles that carry BPSec blocks: the RFC 9173
Appendix A examples and two bundles made by NASA's HDTN. The security operations themselves are
tested under tests/bpsec; here we check the codec reads them and writes them back unchanged."""

from __future__ import annotations

from types import ModuleType

import pytest
from waystation.bundle.errors import ValidationError
from waystation.bundle.model import BlockType

from tests.conftest import REFDATA, load_refdata_json


@pytest.mark.parametrize("name", ["A1", "A2", "A3", "A4"])
@pytest.mark.parametrize("which", ["input_bundle_hex", "expected_bundle_hex"])
def test_rfc9173_appendix_a(impl: ModuleType, name: str, which: str) -> None:
    raw = bytes.fromhex(load_refdata_json(f"rfc9173_{name}.json")[which])
    if name == "A3" and which == "expected_bundle_hex":
        # A.3's final bundle has a BIB over the primary block, so a missing primary CRC is fine
        bundle = impl.decode_bundle(raw)
        assert any(b.block_type == BlockType.BLOCK_INTEGRITY for b in bundle.blocks)
    else:
        # no primary CRC and nothing protecting the primary block: not a valid RFC 9171 bundle
        with pytest.raises(ValidationError, match="no CRC"):
            impl.decode_bundle(raw)
        bundle = impl.decode_bundle(raw, validate=False)
    assert impl.encode_bundle(bundle) == raw


@pytest.mark.parametrize("name,sec_type", [("bib_1.bin", 11), ("bcb_1.bin", 12)])
def test_hdtn_bundles(impl: ModuleType, name: str, sec_type: int) -> None:
    raw = (REFDATA / "hdtn_bpsec" / name).read_bytes()
    bundle = impl.decode_bundle(raw)
    assert str(bundle.primary.source) == "ipn:1.1"
    assert [b.block_type for b in bundle.blocks] == [
        sec_type,
        BlockType.HOP_COUNT,
        BlockType.PAYLOAD,
    ]
    assert bundle.hop_count == (100, 0)
    assert impl.encode_bundle(bundle) == raw

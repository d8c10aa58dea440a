"""Text and JSON views of bundles (used by the CLI and in logs)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from waystation.bundle.describe import bundle_to_dict, format_bundle
from waystation.bundle.model import Bundle

from tests.strategies import bundles


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(bundle=bundles(max_payload=100))
def test_any_valid_bundle_describes_as_json_and_text(bundle: Bundle) -> None:
    d = bundle_to_dict(bundle, max_bytes=8)
    assert json.loads(json.dumps(d)) == d
    assert d["primary"]["source"] == str(bundle.primary.source)
    assert len(d["blocks"]) == len(bundle.blocks)
    text = format_bundle(bundle)
    assert str(bundle.primary.destination) in text

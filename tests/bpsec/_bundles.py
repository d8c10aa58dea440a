"""Bundle bytes <-> model for the BPSec tests, through the project codec.

``decode`` skips the RFC 9171 rule checks (CBOR layout and CRCs are still checked) because
RFC 9173 Appendix A bundles are not strictly valid RFC 9171 bundles (see refdata/README.md);
``decode_strict`` is the node's path.
"""

from __future__ import annotations

from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.model import Bundle


def decode(data: bytes) -> Bundle:
    return decode_bundle(data, validate=False)


def decode_strict(data: bytes) -> Bundle:
    return decode_bundle(data)


def encode(bundle: Bundle) -> bytes:
    return bytes(encode_bundle(bundle))

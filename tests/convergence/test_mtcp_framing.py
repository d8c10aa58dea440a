"""MTCP framing (draft-ietf-dtn-mtcpcl): CBOR byte-string frames, incremental and hostile input."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.convergence.errors import MessageDecodeError
from waystation.convergence.mtcp.framing import MtcpDecoder, encode_frame, encode_head


@pytest.mark.parametrize("size", [0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 20])
def test_frame_is_the_cbor_byte_string_encoding(size: int) -> None:
    data = bytes(size)
    assert encode_frame(data) == cbor2.dumps(data)


def test_eight_byte_length_head() -> None:
    assert encode_head(1 << 32) == b"\x5b" + (1 << 32).to_bytes(8, "big")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 50), max_size=20))
def test_frames_decode_under_any_split(bundles, cuts) -> None:
    wire = b"".join(encode_frame(b) for b in bundles)
    dec = MtcpDecoder()
    out, pos = [], 0
    for c in cuts:
        out += dec.feed(wire[pos : pos + c])
        pos += c
    out += dec.feed(wire[pos:])
    assert out == bundles and dec.pending == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x01", "major type 0"),
        (b"\x60abc", "major type 3"),
        (b"\x5f\x41a\xff", "indefinite-length"),
        (b"\x5c", "reserved"),
    ],
)
def test_non_byte_string_frames_are_errors(data: bytes, match: str) -> None:
    with pytest.raises(MessageDecodeError, match=match):
        MtcpDecoder().feed(data)


def test_oversized_frame_is_refused_from_its_head() -> None:
    dec = MtcpDecoder(max_bundle_size=1000)
    with pytest.raises(MessageDecodeError, match="exceeds the limit"):
        dec.feed(b"\x5a\x00\x10\x00\x00")


def test_error_offset_counts_from_stream_start() -> None:
    dec = MtcpDecoder()
    assert dec.feed(encode_frame(b"abc")) == [b"abc"]
    with pytest.raises(MessageDecodeError) as info:
        dec.feed(b"\x00")
    assert info.value.offset == 4


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_give_bundles_or_decode_error_only(data: bytes) -> None:
    try:
        MtcpDecoder(max_bundle_size=1 << 16).feed(data)
    except MessageDecodeError:
        pass

"""The application protocol's frame codec (docs/app-protocol.md, "Frames" and "Errors")."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.appproto import (
    OPS,
    PROTOCOL_VERSION,
    AppProtocolError,
    ErrorCode,
    decode_frame,
    encode_frame,
    optional,
    require,
)

bodies = st.dictionaries(
    st.text(max_size=8),
    st.one_of(
        st.integers(0, 2**64 - 1), st.binary(max_size=32), st.text(max_size=16), st.booleans()
    ),
    max_size=5,
)


@settings(max_examples=200)
@given(op=st.sampled_from(sorted(OPS)), rid=st.integers(0, 2**64 - 1), body=bodies)
def test_every_request_round_trips(op: str, rid: int, body: dict) -> None:
    frame = decode_frame(encode_frame(op, rid, body))
    assert (frame.kind, frame.rid, frame.body, frame.version) == (op, rid, body, PROTOCOL_VERSION)


@settings(max_examples=300)
@given(data=st.binary(max_size=64))
def test_random_bytes_raise_only_the_protocol_error(data: bytes) -> None:
    try:
        decode_frame(data)
    except AppProtocolError as exc:
        assert exc.code in set(ErrorCode)


@settings(max_examples=200)
@given(
    obj=st.recursive(
        st.one_of(
            st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.binary(max_size=5)
        ),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_wrong_shapes_are_bad_frames_not_crashes(obj: object) -> None:
    try:
        frame = decode_frame(cbor2.dumps(obj))
    except AppProtocolError:
        return
    assert frame.kind in OPS


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ErrorCode.BAD_FRAME),
        (b"\xff\xff", ErrorCode.BAD_FRAME),
        (cbor2.dumps([1, "send", 1]), ErrorCode.BAD_FRAME),
        (cbor2.dumps([1, "send", 1, {}]) + b"\x00", ErrorCode.BAD_FRAME),
        (cbor2.dumps([1, "send", -1, {}]), ErrorCode.BAD_FRAME),
        (cbor2.dumps([1, "send", 1, {1: 2}]), ErrorCode.BAD_FRAME),
        (cbor2.dumps([2, "send", 5, {}]), ErrorCode.UNSUPPORTED_VERSION),
        (cbor2.dumps([1, "launch_missiles", 7, {}]), ErrorCode.UNKNOWN_OP),
        (cbor2.dumps([1, 42, 7, {}]), ErrorCode.BAD_FRAME),
        (b"\x81" * 100_000, ErrorCode.BAD_FRAME),  # nesting bomb
    ],
)
def test_malformed_frames_get_precise_codes(data: bytes, code: ErrorCode) -> None:
    with pytest.raises(AppProtocolError) as info:
        decode_frame(data)
    assert info.value.code == code


def test_error_keeps_the_request_id_when_readable() -> None:
    with pytest.raises(AppProtocolError) as info:
        decode_frame(cbor2.dumps([1, "nope", 99, {}]))
    assert info.value.rid == 99


def test_node_kinds_are_separate_from_operations() -> None:
    assert decode_frame(encode_frame("ok", 3, {}), from_node=True).kind == "ok"
    with pytest.raises(AppProtocolError):
        decode_frame(encode_frame("send", 3, {}), from_node=True)


def test_argument_helpers_name_the_argument() -> None:
    with pytest.raises(AppProtocolError, match="missing argument 'payload'"):
        require({}, "payload", bytes)
    with pytest.raises(AppProtocolError, match="'lifetime_ms' must be int, not bool"):
        optional({"lifetime_ms": True}, "lifetime_ms", int, None)
    assert optional({"x": None}, "x", int, 5) == 5

"""RFC 9174 message encode/decode against the third-party vectors in tcpclv4_vectors.json."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.convergence.errors import LocalProtocolError, MessageDecodeError
from waystation.convergence.tcpcl.messages import (
    ContactHeader,
    ExtensionItem,
    Keepalive,
    MsgReject,
    RefuseReason,
    RejectReason,
    SessInit,
    SessTerm,
    SessTermReason,
    XferAck,
    XferRefuse,
    XferSegment,
    decode_contact_header,
    decode_message,
    encode_contact_header,
    encode_message,
    transfer_length_extension,
)

from tests.conftest import load_refdata_json

VECTORS = {v["name"]: v for v in load_refdata_json("tcpclv4_vectors.json")["vectors"]}


def _decode_all(data: bytes):
    decoded = decode_message(data)
    assert decoded is not None
    msg, end = decoded
    assert end == len(data)
    return msg


def _expected_message(name: str, e: dict):
    t = e.get("msg_type")
    if t == 7:
        exts = tuple(
            ExtensionItem(x["type"], x["value_ascii"].encode(), x["critical"])
            for x in e["ext_items"]
        )
        return SessInit(e["keepalive"], e["segment_mru"], e["transfer_mru"], e["node_id"], exts)
    if t == 5:
        return SessTerm(e["reason"], bool(e["flags"] & 1))
    if t == 4:
        return Keepalive()
    if t == 6:
        return MsgReject(e["reason"], e["rejected_msg_header"])
    if t == 3:
        return XferRefuse(e["transfer_id"], e["reason"])
    if t == 1:
        exts = tuple(
            transfer_length_extension(x["transfer_length"]) for x in e.get("ext_items", [])
        )
        return XferSegment(e["transfer_id"], e["flags"], e["data_ascii"].encode(), exts)
    if t == 2:
        return XferAck(e["transfer_id"], e["flags"], e["acked_length"])
    raise AssertionError(name)


CONTACT = [n for n in VECTORS if n.startswith("contact_header")]
# 06 07 02 is dtn-demo-agent's header-first MSG_REJECT; the vectors' notes say not to use it as
# a positive vector. It is checked separately below under the RFC's field order.
MESSAGES = [
    n for n in VECTORS if not n.startswith("contact_header") and n != "msg_reject_unsupported"
]


@pytest.mark.parametrize("name", CONTACT)
def test_contact_header_vector(name: str) -> None:
    v = VECTORS[name]
    data = bytes.fromhex(v["hex"])
    header = decode_contact_header(data)
    assert header is not None
    assert header.version == v["expect"]["version"]
    assert header.can_tls is v["expect"]["CAN_TLS"]
    assert header.raw_flags() == v["expect"]["flags"]
    assert encode_contact_header(header) == data
    assert encode_contact_header(ContactHeader(can_tls=v["expect"]["CAN_TLS"])) == data


@pytest.mark.parametrize("name", MESSAGES)
def test_message_vector_decodes(name: str) -> None:
    v = VECTORS[name]
    data = bytes.fromhex(v["hex"])
    assert _decode_all(data) == _expected_message(name, v["expect"])


@pytest.mark.parametrize("name", MESSAGES)
def test_message_vector_encodes_byte_for_byte(name: str) -> None:
    v = VECTORS[name]
    assert encode_message(_expected_message(name, v["expect"])).hex() == v["hex"]


@pytest.mark.parametrize("name", MESSAGES)
def test_every_truncation_of_a_vector_is_incomplete_not_an_error(name: str) -> None:
    data = bytes.fromhex(VECTORS[name]["hex"])
    for cut in range(len(data)):
        assert decode_message(data[:cut]) is None


def test_msg_reject_follows_rfc_figure_order() -> None:
    # RFC 9174 §5.1.1: Reason Code, then Rejected Message Header.
    assert encode_message(MsgReject(RejectReason.MESSAGE_UNSUPPORTED, 7)) == bytes.fromhex("060207")
    v = VECTORS["msg_reject_unsupported"]
    msg = _decode_all(bytes.fromhex(v["hex"]))
    order = v["rfc9174_field_order_decoding"]
    assert msg == MsgReject(order["reason"], order["rejected_msg_header"])


def test_transfer_length_extension_value() -> None:
    seg = _decode_all(bytes.fromhex(VECTORS["xfer_segment_start_total_length_ext"]["hex"]))
    assert isinstance(seg, XferSegment) and seg.start and not seg.end
    assert seg.transfer_length == 800


def test_known_reason_codes_decode_to_enums() -> None:
    assert _decode_all(bytes.fromhex("050003")).reason is SessTermReason.BUSY
    assert _decode_all(bytes.fromhex("030200000000000004d2")).reason is RefuseReason.NO_RESOURCES
    # Unassigned codes stay plain ints (the session treats them as Unknown).
    assert _decode_all(bytes.fromhex("0500ff")).reason == 0xFF


def test_bad_magic_is_reported_at_the_first_wrong_byte() -> None:
    with pytest.raises(MessageDecodeError) as info:
        decode_contact_header(b"GET / HTTP/1.1")
    assert info.value.offset == 0
    with pytest.raises(MessageDecodeError):
        decode_contact_header(b"dx")
    assert decode_contact_header(b"dtn") is None


def test_unknown_message_type_names_the_type() -> None:
    with pytest.raises(MessageDecodeError) as info:
        decode_message(b"\x09abc", base=100)
    assert info.value.offset == 100
    assert info.value.reject_type == 9  # type: ignore[attr-defined]
    assert "0x09" in str(info.value)


def test_extension_item_overrunning_its_list_is_an_error() -> None:
    # SESS_INIT whose extension list is 6 bytes long but whose item claims 5 value bytes.
    bad = bytes.fromhex("070000" + "00" * 16 + "00000000000601fffe000578")
    with pytest.raises(MessageDecodeError, match="claims 5 bytes"):
        decode_message(bad)


def test_node_id_must_be_utf8() -> None:
    bad = bytes.fromhex("070000" + "00" * 16 + "0002ff fe00000000".replace(" ", ""))
    with pytest.raises(MessageDecodeError, match="UTF-8"):
        decode_message(bad)


def test_segment_above_segment_mru_is_refused_before_buffering() -> None:
    from waystation.convergence.tcpcl.messages import DecodeLimits

    header = bytes.fromhex("0103000000000000000100000000") + (10**9).to_bytes(8, "big")
    with pytest.raises(MessageDecodeError, match="Segment MRU"):
        decode_message(header, limits=DecodeLimits(max_segment_data=1 << 20))


def test_encoder_refuses_out_of_range_fields() -> None:
    with pytest.raises(LocalProtocolError):
        encode_message(XferAck(-1, 0, 0))
    with pytest.raises(LocalProtocolError):
        encode_message(SessInit(70000, 0, 0, "x"))
    with pytest.raises(LocalProtocolError):
        encode_message(SessInit(0, 0, 0, "x" * 70000))


# ---------------------------------------------------------------------------- properties

u64 = st.integers(0, 2**64 - 1)
ext = st.builds(
    lambda t, v, f: ExtensionItem(t, v, bool(f & 1), f if f & ~1 else -1),
    st.integers(0, 0xFFFF),
    st.binary(max_size=20),
    st.integers(0, 255),
)
messages = st.one_of(
    st.builds(
        SessInit,
        st.integers(0, 0xFFFF),
        u64,
        u64,
        st.text(max_size=30),
        st.lists(ext, max_size=3).map(tuple),
    ),
    st.builds(
        lambda tid, start, end, data, exts: XferSegment(
            tid, (2 if start else 0) | (1 if end else 0), data, tuple(exts) if start else ()
        ),
        u64,
        st.booleans(),
        st.booleans(),
        st.binary(max_size=64),
        st.lists(ext, max_size=2),
    ),
    st.builds(XferAck, u64, st.integers(0, 255), u64),
    st.builds(XferRefuse, u64, st.sampled_from(list(RefuseReason))),
    st.just(Keepalive()),
    st.builds(
        lambda r, f: SessTerm(r, bool(f & 1), f if f & ~1 else -1),
        st.sampled_from(list(SessTermReason)),
        st.integers(0, 255),
    ),
    st.builds(MsgReject, st.sampled_from(list(RejectReason)), st.integers(0, 255)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, min_size=1, max_size=6), st.data())
def test_stream_of_messages_round_trips_under_any_split(msgs, data) -> None:
    wire = b"".join(encode_message(m) for m in msgs)
    cut = data.draw(st.integers(0, len(wire)))
    # Decode incrementally as a receiver with two TCP reads would.
    out, buf, pos = [], bytearray(wire[:cut]), 0
    for chunk in (b"", wire[cut:]):
        buf += chunk
        while (r := decode_message(buf, pos)) is not None:
            m, pos = r
            out.append(m)
    assert out == msgs


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode_or_raise_decode_error_only(data: bytes) -> None:
    pos = 0
    try:
        while (r := decode_message(data, pos)) is not None:
            _, pos = r
    except MessageDecodeError:
        pass

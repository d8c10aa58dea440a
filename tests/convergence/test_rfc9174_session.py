"""RFC 9174 session procedures on the sans-I/O core: negotiation, transfers, timeouts, ends."""

from __future__ import annotations

import pytest
from waystation.convergence.errors import LocalProtocolError, RemoteProtocolError, TransferTooLarge
from waystation.convergence.tcpcl import events as ev
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
    encode_contact_header,
    encode_message,
    transfer_length_extension,
)
from waystation.convergence.tcpcl.session import (
    TRANSITIONS,
    Input,
    NodeIdPolicy,
    Role,
    Session,
    SessionConfig,
    State,
)

from tests.convergence.tcpcl_helpers import established, messages_in, of_type, pair, pump


def test_active_sends_contact_header_first_and_passive_waits() -> None:
    a, p = pair()
    assert a.data_to_send() == encode_contact_header(ContactHeader(can_tls=False))
    assert p.data_to_send() == b""
    assert a.state is State.CONTACT_SENT and p.state is State.CONTACT_WAIT


def test_session_negotiates_minimum_keepalive_and_peer_mrus() -> None:
    a, p = pair(
        SessionConfig("dtn://a/", keepalive_interval=10, segment_mru=1000, transfer_mru=5000),
        SessionConfig("dtn://p/", keepalive_interval=60),
    )
    ea, ep = pump(a, p)
    (est_a,) = of_type(ea, ev.SessionEstablished)
    (est_p,) = of_type(ep, ev.SessionEstablished)
    assert est_a.peer_node_id == "dtn://p/" and est_p.peer_node_id == "dtn://a/"
    assert est_a.keepalive_interval == est_p.keepalive_interval == 10  # §4.7: the minimum
    assert est_p.peer_segment_mru == 1000 and est_p.peer_transfer_mru == 5000
    with pytest.raises(TransferTooLarge):
        p.send_transfer(b"x" * 5001, 0.0)


def test_multi_segment_transfer_is_acked_cumulatively_and_released_on_final_ack() -> None:
    a, p = established(p_cfg=SessionConfig("dtn://p/", segment_mru=4))
    tid = a.send_transfer(b"0123456789", 1.0)
    wire = a.data_to_send()
    segs = messages_in(wire)
    assert [s.flags for s in segs] == [2, 0, 1]  # START, middle, END (§5.2.2)
    assert segs[0].transfer_length == 10  # §5.2.5.1 on the START segment
    assert all(len(s.data) <= 4 for s in segs)
    ep = p.receive_data(wire, 1.0)
    (got,) = of_type(ep, ev.TransferReceived)
    assert got.data == b"0123456789"
    acks = messages_in(p.data_to_send())
    assert [m.acked_length for m in acks] == [4, 8]  # the final ack waits for the application
    ea = a.receive_data(encode_message(acks[0]) + encode_message(acks[1]), 1.0)
    assert [e.acked_length for e in of_type(ea, ev.TransferAcknowledged)] == [4, 8]
    assert a.unacknowledged == (tid,)
    p.accept_transfer(tid, 1.0)
    ea = a.receive_data(p.data_to_send(), 1.0)
    assert of_type(ea, ev.TransferCompleted) == [ev.TransferCompleted(tid)]
    assert a.unacknowledged == ()


def test_refused_as_completed_counts_as_delivered() -> None:
    a, p = established()
    tid = a.send_transfer(b"dup", 0.0)
    ea, _ep = pump(a, p)
    p.refuse_transfer(tid, RefuseReason.COMPLETED, 0.0)
    ea, _ = pump(a, p)
    assert of_type(ea, ev.TransferCompleted) == [
        ev.TransferCompleted(tid, refused_as_completed=True)
    ]


@pytest.mark.parametrize("reason", [r for r in RefuseReason if r is not RefuseReason.COMPLETED])
def test_refusal_reasons_reach_the_sender(reason: RefuseReason) -> None:
    a, p = established()
    tid = a.send_transfer(b"bundle", 0.0)
    pump(a, p)
    p.refuse_transfer(tid, reason, 0.0)
    ea, _ = pump(a, p)
    assert of_type(ea, ev.TransferRefused) == [ev.TransferRefused(tid, reason)]
    assert a.unacknowledged == ()


def test_refusing_mid_transfer_discards_the_remaining_segments() -> None:
    a, p = established(p_cfg=SessionConfig("dtn://p/", segment_mru=2))
    tid = a.send_transfer(b"abcdef", 0.0)
    wire = a.data_to_send()
    first = encode_message(messages_in(wire)[0])
    ep = p.receive_data(first, 0.0)
    assert of_type(ep, ev.TransferStarted) == [ev.TransferStarted(tid, 6)]
    p.refuse_transfer(tid, RefuseReason.NO_RESOURCES, 0.0)
    ep = p.receive_data(wire[len(first) :], 0.0)
    assert of_type(ep, ev.TransferReceived) == []
    sent = messages_in(p.data_to_send())
    assert sent[-1] == XferRefuse(tid, RefuseReason.NO_RESOURCES)


def test_transfer_above_our_transfer_mru_is_refused_no_resources() -> None:
    _a, p = established(p_cfg=SessionConfig("dtn://p/", transfer_mru=100))
    # Bypass the sender's own check to play a misbehaving peer.
    seg = XferSegment(0, 3, b"x" * 10, (transfer_length_extension(1000),))
    p.receive_data(encode_message(seg), 0.0)
    assert messages_in(p.data_to_send()) == [XferRefuse(0, RefuseReason.NO_RESOURCES)]


def test_unknown_critical_transfer_extension_is_refused_extension_failure() -> None:
    _a, p = established()
    seg = XferSegment(0, 3, b"x", (ExtensionItem(0x7777, b"?", critical=True),))
    p.receive_data(encode_message(seg), 0.0)
    assert messages_in(p.data_to_send()) == [XferRefuse(0, RefuseReason.EXTENSION_FAILURE)]
    ok = XferSegment(1, 3, b"y", (ExtensionItem(0x7777, b"?", critical=False),))
    ep = p.receive_data(encode_message(ok), 0.0)
    assert of_type(ep, ev.TransferReceived) == [ev.TransferReceived(1, b"y")]


def test_unknown_critical_session_extension_ends_session_with_contact_failure() -> None:
    a, p = pair(SessionConfig("dtn://a/", session_extensions=(ExtensionItem(9, b"", True),)))
    _ea, ep = pump(a, p)
    assert of_type(ep, ev.SessionEstablished) == []
    assert a.closed and p.closed
    (term,) = of_type(ep, ev.SessionTerminated)
    assert term.reason == SessTermReason.CONTACT_FAILURE and "extension 9" in (term.error or "")


def test_non_critical_unknown_session_extension_is_ignored() -> None:
    _a, p = established(SessionConfig("dtn://a/", session_extensions=(ExtensionItem(9, b"x"),)))
    assert p.peer_init is not None and p.peer_init.extensions[0].item_type == 9


def test_passive_answers_other_version_with_version_mismatch() -> None:
    p = Session(Role.PASSIVE, SessionConfig("dtn://p/"), 0.0)
    events = p.receive_data(b"dtn!\x03\x00", 0.0)
    out = p.data_to_send()
    assert out[:6] == encode_contact_header(ContactHeader())
    assert messages_in(out[6:]) == [SessTerm(SessTermReason.VERSION_MISMATCH)]
    assert p.closed and of_type(events, ev.SessionTerminated)[0].reason == 2


def test_active_closes_without_sess_term_on_other_version() -> None:
    a = Session(Role.ACTIVE, SessionConfig("dtn://a/"), 0.0)
    a.data_to_send()
    a.receive_data(b"dtn!\x03\x00", 0.0)
    assert a.closed and a.data_to_send() == b""


def test_tls_required_but_peer_cannot() -> None:
    a, p = pair(
        SessionConfig("dtn://a/"), SessionConfig("dtn://p/", can_tls=True, require_tls=True)
    )
    ea, _ep = pump(a, p)
    assert p.closed and a.closed
    assert of_type(ea, ev.SessionTerminated)[0].reason == SessTermReason.CONTACT_FAILURE


def _tls_pair(policy: NodeIdPolicy, cert_ids: frozenset[str]):
    a, p = pair(
        SessionConfig("dtn://a/", can_tls=True),
        SessionConfig("dtn://p/", can_tls=True, node_id_policy=policy),
    )
    ea, ep = pump(a, p)
    assert of_type(ea, ev.TlsNegotiationAgreed) == [ev.TlsNegotiationAgreed(server_side=False)]
    assert of_type(ep, ev.TlsNegotiationAgreed) == [ev.TlsNegotiationAgreed(server_side=True)]
    a.tls_established(0.0, frozenset({"dtn://p/"}))
    p.tls_established(0.0, cert_ids)
    return a, p, pump(a, p)


def test_tls_node_id_matching_the_certificate_is_authenticated() -> None:
    _a, _p, (_ea, ep) = _tls_pair(NodeIdPolicy.REQUIRE, frozenset({"dtn://a/"}))
    (est,) = of_type(ep, ev.SessionEstablished)
    assert est.tls and est.peer_node_id_authenticated


@pytest.mark.parametrize(
    ("policy", "ids", "ok"),
    [
        (NodeIdPolicy.IF_PRESENT, frozenset({"dtn://mallory/"}), False),
        (NodeIdPolicy.IF_PRESENT, frozenset(), True),
        (NodeIdPolicy.REQUIRE, frozenset(), False),
        (NodeIdPolicy.IGNORE, frozenset({"dtn://mallory/"}), True),
    ],
)
def test_tls_node_id_policy(policy: NodeIdPolicy, ids: frozenset[str], ok: bool) -> None:
    _a, _p, (_ea, ep) = _tls_pair(policy, ids)
    assert bool(of_type(ep, ev.SessionEstablished)) is ok
    if not ok:
        assert of_type(ep, ev.SessionTerminated)[0].reason == SessTermReason.CONTACT_FAILURE


def test_data_in_place_of_tls_handshake_is_a_protocol_error() -> None:
    a, p = pair(SessionConfig("dtn://a/", can_tls=True), SessionConfig("dtn://p/", can_tls=True))
    p.receive_data(a.data_to_send(), 0.0)
    with pytest.raises(RemoteProtocolError, match="TLS"):
        p.receive_data(encode_message(Keepalive()), 0.0)
    assert p.closed


def test_keepalive_is_sent_and_idle_peer_is_dropped() -> None:
    a, _p = established(SessionConfig("dtn://a/", keepalive_interval=5), now=0.0)
    assert a.next_deadline() == 5.0
    a.handle_timer(5.0)
    assert messages_in(a.data_to_send()) == [Keepalive()]
    # §5.1.2: nothing received for twice the interval -> SESS_TERM "Idle timeout".
    events = a.handle_timer(10.0)
    assert messages_in(a.data_to_send()) == [SessTerm(SessTermReason.IDLE_TIMEOUT)]
    assert a.closed and of_type(events, ev.SessionTerminated)[0].reason == 1


def test_keepalive_received_resets_idle_deadline() -> None:
    a, _p = established(SessionConfig("dtn://a/", keepalive_interval=5))
    assert of_type(a.receive_data(encode_message(Keepalive()), 9.0), ev.KeepaliveReceived)
    a.handle_timer(10.0)
    assert not a.closed


@pytest.mark.parametrize("role", [Role.ACTIVE, Role.PASSIVE])
def test_contact_header_timeout_closes(role: Role) -> None:
    s = Session(role, SessionConfig("dtn://x/", contact_timeout=3), 0.0)
    assert s.next_deadline() == 3.0
    events = s.handle_timer(3.0)
    assert s.closed and "contact header" in (events[0].error or "")


def test_sess_init_timeout_sends_contact_failure() -> None:
    a, p = pair(SessionConfig("dtn://a/", sess_init_timeout=2))
    p.receive_data(a.data_to_send(), 0.0)
    a.receive_data(p.data_to_send()[:6], 0.0)  # contact header only; SESS_INIT withheld
    a.data_to_send()
    a.handle_timer(2.0)
    assert a.closed and messages_in(a.data_to_send()) == [SessTerm(SessTermReason.CONTACT_FAILURE)]


def test_session_idle_timeout_ends_session_politely() -> None:
    a, p = established(SessionConfig("dtn://a/", keepalive_interval=0, session_idle_timeout=7))
    a.handle_timer(7.0)
    assert a.state is State.ENDING
    ea, _ep = pump(a, p)
    assert a.closed and p.closed
    assert of_type(ea, ev.SessionTerminated)[0].clean


def test_orderly_termination_lets_transfer_in_progress_finish() -> None:
    a, p = established()
    tid = a.send_transfer(b"last bundle", 0.0)
    a.terminate(0.0, SessTermReason.BUSY)
    with pytest.raises(LocalProtocolError):
        a.send_transfer(b"too late", 0.0)
    ea, ep = pump(a, p)
    assert p.state is State.ENDING and a.state is State.ENDING
    ep = p.accept_transfer(tid, 0.0)  # the last answer completes p's side of the ending
    ea, _ = pump(a, p)
    assert of_type(ea, ev.TransferCompleted) == [ev.TransferCompleted(tid)]
    assert a.closed and p.closed
    assert of_type(ep, ev.SessionTerminated)[0] == ev.SessionTerminated(
        SessTermReason.BUSY, by_peer=True, clean=True
    )


def test_new_transfer_after_sess_term_is_refused_session_terminating() -> None:
    a, p = established()
    p.terminate(0.0)
    a.receive_data(p.data_to_send(), 0.0)  # a replies; p still waits for it
    p.receive_data(encode_message(XferSegment(5, 3, b"x")), 0.0)
    assert messages_in(p.data_to_send()) == [XferRefuse(5, RefuseReason.SESSION_TERMINATING)]


def test_unacknowledged_transfers_are_reported_when_the_connection_drops() -> None:
    a, _p = established()
    t1 = a.send_transfer(b"one", 0.0)
    t2 = a.send_transfer(b"two", 0.0)
    events = a.connection_lost(0.0)
    (term,) = of_type(events, ev.SessionTerminated)
    assert term.unacknowledged == (t1, t2) and not term.clean


def test_unexpected_message_when_established_is_rejected_and_session_continues() -> None:
    _a, p = established()
    p.receive_data(encode_message(SessInit(0, 1, 1, "dtn://again/")), 0.0)
    assert messages_in(p.data_to_send()) == [MsgReject(RejectReason.MESSAGE_UNEXPECTED, 7)]
    assert p.established


def test_peer_msg_reject_is_reported() -> None:
    _a, p = established()
    events = p.receive_data(encode_message(MsgReject(RejectReason.MESSAGE_UNSUPPORTED, 4)), 0.0)
    assert of_type(events, ev.MessageRejected) == [ev.MessageRejected(2, 4)]


def test_unknown_message_type_gets_msg_reject_then_sess_term() -> None:
    _a, p = established()
    with pytest.raises(RemoteProtocolError):
        p.receive_data(b"\x42", 0.0)
    assert messages_in(p.data_to_send()) == [
        MsgReject(RejectReason.MESSAGE_TYPE_UNKNOWN, 0x42),
        SessTerm(SessTermReason.UNKNOWN),
    ]
    assert p.closed


def test_error_keeps_events_that_came_before_it() -> None:
    _a, p = established()
    with pytest.raises(RemoteProtocolError) as info:
        p.receive_data(encode_message(Keepalive()) + b"\xff", 0.0)
    kinds = [type(e) for e in info.value.events]  # type: ignore[attr-defined]
    assert kinds == [ev.KeepaliveReceived, ev.SessionTerminated]


@pytest.mark.parametrize(
    "bad",
    [
        encode_message(XferSegment(9, 0, b"no start")),
        encode_message(XferAck(77, 1, 3)),
        encode_message(XferSegment(1, 2, b"a")) + encode_message(XferSegment(2, 2, b"b")),
    ],
    ids=["segment-without-start", "ack-for-unknown-transfer", "interleaved-transfers"],
)
def test_transfer_protocol_violations_end_with_sess_term(bad: bytes) -> None:
    _a, p = established()
    with pytest.raises(RemoteProtocolError):
        p.receive_data(bad, 0.0)
    assert p.closed
    assert isinstance(messages_in(p.data_to_send())[-1], SessTerm)


def test_truncated_stream_is_a_remote_protocol_error() -> None:
    a, p = established()
    a.send_transfer(b"x" * 100, 0.0)
    wire = a.data_to_send()
    p.receive_data(wire[:50], 0.0)
    with pytest.raises(RemoteProtocolError, match="truncated"):
        p.connection_lost(0.0)
    assert p.closed


def test_local_calls_in_wrong_state_raise_local_protocol_error() -> None:
    a, _p = pair()
    with pytest.raises(LocalProtocolError):
        a.send_transfer(b"x", 0.0)
    with pytest.raises(LocalProtocolError):
        a.tls_established(0.0)
    _a2, p2 = established()
    with pytest.raises(LocalProtocolError):
        p2.accept_transfer(123, 0.0)


def test_transition_table_covers_every_state() -> None:
    states_with_exits = {s for s, _ in TRANSITIONS}
    assert states_with_exits == set(State)
    for (_, inp), targets in TRANSITIONS.items():
        assert isinstance(inp, Input) and targets


@pytest.mark.parametrize("chunk", [1000, 65536, 300_001])
def test_large_segment_streams_in_place_under_any_chunking(chunk: int) -> None:
    a, p = established(p_cfg=SessionConfig("dtn://p/", segment_mru=1 << 20))
    big = bytes(range(256)) * 4000 + b"tail"  # > 1 MiB: two segments, both streamed
    tid = a.send_transfer(big, 0.0)
    small = a.send_transfer(b"after", 0.0)
    wire = a.data_to_send()
    events = []
    for i in range(0, len(wire), chunk):
        events += p.receive_data(wire[i : i + chunk], 0.0)
    got = of_type(events, ev.TransferReceived)
    assert [(e.transfer_id, e.data) for e in got] == [(tid, big), (small, b"after")]


def test_connection_lost_inside_a_streamed_segment_is_truncation() -> None:
    a, p = established()
    a.send_transfer(bytes(600_000), 0.0)
    wire = a.data_to_send()
    p.receive_data(wire[:400_000], 0.0)
    with pytest.raises(RemoteProtocolError, match="truncated"):
        p.connection_lost(0.0)

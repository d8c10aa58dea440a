"""Hypothesis sweeps of the TCPCLv4 session core: every state x every input, any byte stream.

Two sessions talk through an in-memory wire whose delivery (and corruption) hypothesis controls.
Invariants: only the library's own error types escape, and only with the right blame; a peer
violation leaves the session CLOSED with a SESS_TERM queued when one may be sent; no transfer
is delivered twice; with a clean wire every bundle is delivered and released exactly once.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.convergence.errors import LocalProtocolError, RemoteProtocolError, TransferTooLarge
from waystation.convergence.tcpcl import events as ev
from waystation.convergence.tcpcl.messages import (
    RefuseReason,
    SessTerm,
    SessTermReason,
    encode_message,
)
from waystation.convergence.tcpcl.session import (
    TRANSITIONS,
    Input,
    Role,
    Session,
    SessionConfig,
    State,
)

from tests.convergence.tcpcl_helpers import messages_in
from tests.convergence.test_rfc9174_messages import messages

NEGOTIATING = (State.CONTACT_WAIT, State.CONTACT_SENT, State.TLS_NEGOTIATING)

actions = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(0, 1), st.integers(1, 200)),
        st.tuples(st.just("deliver"), st.integers(0, 1), st.just(10**6)),
        st.tuples(st.just("send"), st.integers(0, 1), st.integers(0, 40)),
        st.tuples(st.just("send"), st.integers(0, 1), st.integers(0, 40)),
        st.tuples(st.just("deliver"), st.integers(0, 1), st.just(10**6)),
        st.tuples(st.just("answer"), st.integers(0, 1), st.none()),
        st.tuples(st.just("answer"), st.integers(0, 1), st.sampled_from([None, *RefuseReason])),
        st.tuples(st.just("terminate"), st.integers(0, 1), st.sampled_from(list(SessTermReason))),
        st.tuples(st.just("timer"), st.one_of(st.floats(0, 3), st.floats(0, 100))),
        st.tuples(
            st.just("inject"),
            st.integers(0, 1),
            st.one_of(messages.map(encode_message), st.binary(min_size=1, max_size=12)),
        ),
        st.tuples(st.just("drop"), st.integers(0, 1)),
    ),
    max_size=40,
)


class Side:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.outbox = bytearray()
        self.received: list[int] = []
        self.awaiting: list[int] = []
        self.completed: set[int] = set()
        self.refused: set[int] = set()
        self.sent: dict[int, bytes] = {}
        self.data: dict[int, bytes] = {}
        self.errors = 0

    def take(self, events) -> None:
        for e in events:
            if isinstance(e, ev.TransferReceived):
                assert e.transfer_id not in self.received, "transfer delivered twice"
                self.received.append(e.transfer_id)
                self.awaiting.append(e.transfer_id)
                self.data[e.transfer_id] = e.data
            elif isinstance(e, ev.TransferCompleted):
                assert e.transfer_id not in self.completed
                self.completed.add(e.transfer_id)
            elif isinstance(e, ev.TransferRefused):
                self.refused.add(e.transfer_id)
            elif isinstance(e, ev.SessionTerminated):
                assert self.s.closed


def _feed(dst: Side, data: bytes, now: float) -> None:
    before = dst.s.state
    try:
        dst.take(dst.s.receive_data(data, now))
    except RemoteProtocolError as exc:
        dst.errors += 1
        assert dst.s.closed
        dst.take(exc.events)  # type: ignore[attr-defined]
        out = dst.s.data_to_send()
        if before not in (*NEGOTIATING, State.ENDING) and out:
            # The clean end the RFC asks for: the last thing we say is SESS_TERM.
            assert isinstance(messages_in(out)[-1], SessTerm)
        dst.outbox += out
        return
    dst.outbox += dst.s.data_to_send()


def _local(side: Side, inp: Input, fn, *args):
    allowed = (side.s.state, inp) in TRANSITIONS
    try:
        result = fn(*args)
    except LocalProtocolError:
        return None
    assert allowed, f"{inp} succeeded in {side.s.state} although the table forbids it"
    return result


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions, st.booleans(), st.booleans())
def test_any_sequence_of_inputs_keeps_the_invariants(steps, clean_wire: bool, warm: bool) -> None:
    now = 0.0
    cfg_a = SessionConfig("dtn://a/", keepalive_interval=7, max_segment_size=16)
    cfg_p = SessionConfig("dtn://p/", keepalive_interval=5, segment_mru=16, transfer_mru=30)
    sides = [Side(Session(Role.ACTIVE, cfg_a, now)), Side(Session(Role.PASSIVE, cfg_p, now))]
    sides[0].outbox += sides[0].s.data_to_send()
    corrupted = False
    if warm:
        # Start most runs from an established session, so the sweep reaches every state.
        steps = [("deliver", 0, 6), ("deliver", 1, 200), ("deliver", 0, 200), *steps]
    for step in steps:
        kind = step[0]
        if kind == "deliver":
            src, dst = sides[step[1]], sides[1 - step[1]]
            chunk = bytes(src.outbox[: step[2]])
            del src.outbox[: step[2]]
            if chunk and not dst.s.closed:
                _feed(dst, chunk, now)
        elif kind == "send":
            side = sides[step[1]]
            payload = bytes([step[2] % 251]) * step[2]
            tid = _local(side, Input.SEND_TRANSFER, side.s.send_transfer, payload, now)
            if tid is not None:
                side.sent[tid] = payload
            side.outbox += side.s.data_to_send()
        elif kind == "answer":
            side = sides[step[1]]
            if side.awaiting:
                tid = side.awaiting.pop(0)
                if step[2] is None:
                    side.take(
                        _local(side, Input.ANSWER_TRANSFER, side.s.accept_transfer, tid, now) or []
                    )
                else:
                    side.take(
                        _local(
                            side, Input.ANSWER_TRANSFER, side.s.refuse_transfer, tid, step[2], now
                        )
                        or []
                    )
                side.outbox += side.s.data_to_send()
        elif kind == "terminate":
            side = sides[step[1]]
            side.take(_local(side, Input.TERMINATE, side.s.terminate, now, step[2]) or [])
            side.outbox += side.s.data_to_send()
        elif kind == "timer":
            now += step[1]
            for side in sides:
                deadline = side.s.next_deadline()
                if deadline is not None and deadline <= now:
                    side.take(side.s.handle_timer(now))
                    side.outbox += side.s.data_to_send()
                if side.s.closed:
                    assert side.s.next_deadline() is None
        elif kind == "inject" and not clean_wire:
            corrupted = True
            dst = sides[step[1]]
            if not dst.s.closed:
                _feed(dst, step[2], now)
        elif kind == "drop" and not clean_wire:
            corrupted = True
            for side in sides:
                try:
                    side.take(side.s.connection_lost(now))
                except RemoteProtocolError as exc:
                    assert side.s.closed
                    side.take(exc.events)  # type: ignore[attr-defined]
            break

    # Everything delivered was delivered intact.
    for me, peer in ((sides[0], sides[1]), (sides[1], sides[0])):
        for tid, data in me.data.items():
            if not corrupted:
                assert peer.sent[tid] == data

    if corrupted:
        return
    # Liveness on a clean wire: drain, answer everything, drain again -> all sends released.
    for _ in range(50):
        moved = False
        for i in (0, 1):
            src, dst = sides[i], sides[1 - i]
            if src.outbox and not dst.s.closed:
                chunk = bytes(src.outbox)
                src.outbox.clear()
                _feed(dst, chunk, now)
                moved = True
            elif src.outbox:
                src.outbox.clear()
            while dst.awaiting and not dst.s.closed:
                dst.take(dst.s.accept_transfer(dst.awaiting.pop(0), now))
                dst.outbox += dst.s.data_to_send()
                moved = True
        if not moved:
            break
    assert sides[0].errors == sides[1].errors == 0
    for side in sides:
        if side.s.state in (State.ESTABLISHED,):
            # No loss: every transfer either completed or is still listed for retry.
            assert set(side.sent) == side.completed | side.refused | set(side.s.unacknowledged)
            assert side.s.unacknowledged == ()


def _session_in(state: State) -> Session:
    """A passive session driven into ``state`` by a scripted peer."""
    tls = state is State.TLS_NEGOTIATING
    a = Session(Role.ACTIVE, SessionConfig("dtn://a/", can_tls=tls), 0.0)
    p = Session(Role.PASSIVE, SessionConfig("dtn://p/", can_tls=tls), 0.0)
    if state is State.CONTACT_WAIT:
        return p
    if state is State.CONTACT_SENT:
        return a
    p.receive_data(a.data_to_send()[:6], 0.0)
    if state in (State.SESS_INIT_WAIT, State.TLS_NEGOTIATING):
        return p
    a.receive_data(p.data_to_send(), 0.0)
    p.receive_data(a.data_to_send(), 0.0)
    if state is State.ENDING:
        p.send_transfer(b"pending", 0.0)  # keeps p in ENDING until acknowledged
        a.terminate(0.0)
        p.receive_data(a.data_to_send(), 0.0)
    assert p.state is state or a.state is state
    return p if p.state is state else a


LIVE_STATES = [s for s in State if s is not State.CLOSED]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(LIVE_STATES),
    st.lists(st.one_of(messages.map(encode_message), st.binary(max_size=30)), max_size=4),
)
def test_every_state_accepts_or_cleanly_rejects_every_input(state: State, chunks) -> None:
    s = _session_in(state)
    s.data_to_send()
    for chunk in chunks:
        before = s.state
        try:
            s.receive_data(chunk, 1.0)
        except RemoteProtocolError:
            assert s.closed
            out = s.data_to_send()
            if before not in (*NEGOTIATING, State.ENDING) and out:
                # (in ENDING our one SESS_TERM already went out; §6.1 sends it once)
                assert isinstance(messages_in(out)[-1], SessTerm)
            break
        assert (
            s.state is before
            or (before, Input.RECV_SESS_TERM) in TRANSITIONS
            or s.closed
            or (before in (State.CONTACT_WAIT, State.CONTACT_SENT, State.SESS_INIT_WAIT))
        )
        s.data_to_send()
    # Local inputs in whatever state we ended in: either allowed by the table or refused.
    for inp, call in (
        (Input.SEND_TRANSFER, lambda: s.send_transfer(b"x", 2.0)),
        (Input.TERMINATE, lambda: s.terminate(2.0)),
        (Input.TIMER, lambda: s.handle_timer(1000.0)),
        (Input.CONNECTION_LOST, lambda: s.connection_lost(1000.0)),
    ):
        allowed = (s.state, inp) in TRANSITIONS
        try:
            call()
        except TransferTooLarge:
            assert s.peer_transfer_mru < 1  # allowed by state, refused by the peer's MRU
        except LocalProtocolError:
            assert not allowed
        except RemoteProtocolError:
            assert inp is Input.CONNECTION_LOST and s.closed
    assert s.closed

"""In-memory plumbing for sans-I/O TCPCLv4 session tests."""

from __future__ import annotations

from waystation.convergence.tcpcl import events as ev
from waystation.convergence.tcpcl.messages import decode_contact_header, decode_message
from waystation.convergence.tcpcl.session import Role, Session, SessionConfig


def pair(
    a_cfg: SessionConfig | None = None, p_cfg: SessionConfig | None = None, now: float = 0.0
) -> tuple[Session, Session]:
    a = Session(Role.ACTIVE, a_cfg or SessionConfig("dtn://a/"), now)
    p = Session(Role.PASSIVE, p_cfg or SessionConfig("dtn://p/"), now)
    return a, p


def pump(a: Session, p: Session, now: float = 0.0) -> tuple[list[ev.Event], list[ev.Event]]:
    """Move bytes both ways until quiet; returns (events at a, events at p)."""
    ea: list[ev.Event] = []
    ep: list[ev.Event] = []
    for _ in range(100):
        x, y = a.data_to_send(), p.data_to_send()
        if not x and not y:
            break
        if x:
            ep += p.receive_data(x, now)
        if y:
            ea += a.receive_data(y, now)
    return ea, ep


def established(a_cfg=None, p_cfg=None, now: float = 0.0) -> tuple[Session, Session]:
    a, p = pair(a_cfg, p_cfg, now)
    pump(a, p, now)
    assert a.established and p.established
    return a, p


def messages_in(wire: bytes, contact_header: bool = False) -> list:
    """Decode a captured byte stream into messages (for asserting what a session sent)."""
    out: list = []
    pos = 0
    if contact_header:
        out.append(decode_contact_header(wire[:6]))
        pos = 6
    while (r := decode_message(wire, pos)) is not None:
        m, pos = r
        out.append(m)
    assert pos == len(wire), "trailing partial message"
    return out


def of_type(events, cls):
    return [e for e in events if isinstance(e, cls)]

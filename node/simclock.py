"""The node's clock: real time, or a scaled clock shared by several processes.

``waystation node --clock-scale 60 --clock-start 2024-05-09T20:40:00Z`` runs the whole node -
creation timestamps, expiry, contact start/end - on simulated DTN time that advances 60 times
faster than real time. Everything reads the same :class:`~waystation.bundle.dtntime.Clock`, so
a replay takes exactly the code path real time takes (only ``wall_time`` divides by the factor).

Several nodes (the demo's three processes) must agree on simulated time. A clock anchored at
monotonic "now" would differ by each process's start-up time multiplied by the factor, so
:class:`AnchoredScaledClock` is anchored to a shared *wall-clock* instant instead
(``--clock-anchor UNIX_SECONDS``, default: when the node starts): it reads ``start_ms`` at that
instant. Deviation from a real deployment: the simulated time follows the host's real-time
clock, so a step of the system clock (NTP) steps every simulated clock on the host alike.
"""

from __future__ import annotations

import time
from typing import Any

from waystation.bundle.dtntime import Clock, SystemClock, parse_dtn_time

__all__ = ["AnchoredScaledClock", "clock_from_config", "parse_clock_start"]


class AnchoredScaledClock:
    """DTN time = ``start_ms + (time.time() - anchor_unix_s) * factor`` (see module docstring).

    Before the anchor the clock reads earlier than ``start_ms``; it is monotonic as long as the
    host's real-time clock is."""

    __slots__ = ("_anchor", "_factor", "_start_ms")

    def __init__(self, factor: float, start_ms: int, anchor_unix_s: float | None = None) -> None:
        if not factor > 0:
            raise ValueError("the clock scale must be positive")
        self._factor = float(factor)
        self._start_ms = int(start_ms)
        self._anchor = time.time() if anchor_unix_s is None else float(anchor_unix_s)

    @property
    def factor(self) -> float:
        return self._factor

    @property
    def start_ms(self) -> int:
        return self._start_ms

    @property
    def anchor_unix_s(self) -> float:
        return self._anchor

    def now_ms(self) -> int:
        return self._start_ms + int((time.time() - self._anchor) * 1000 * self._factor)

    def real_seconds(self, dtn_ms: float) -> float:
        """Real seconds that pass while this clock advances ``dtn_ms``."""
        return dtn_ms / 1000 / self._factor

    def __repr__(self) -> str:
        return (
            f"AnchoredScaledClock({self._factor}, start_ms={self._start_ms}, "
            f"anchor_unix_s={self._anchor})"
        )


def parse_clock_start(value: Any) -> int:
    """DTN ms from an int (DTN ms), ``"now"`` or an ISO 8601 string (UTC if no zone).

    Raises ``ValueError`` naming the bad value."""
    if isinstance(value, bool):
        raise ValueError(f"clock start {value!r}: expected ISO 8601 time or DTN ms")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("clock start must not be before the DTN epoch")
        return value
    ms = parse_dtn_time(str(value).strip(), "clock start")
    if ms < 0:
        raise ValueError("clock start must not be before the DTN epoch (2000-01-01)")
    return ms


def clock_from_config(config: Any) -> Clock:
    """The clock a node config asks for: real time unless ``clock_scale`` or ``clock_start``."""
    scale = getattr(config, "clock_scale", None)
    start = getattr(config, "clock_start", None)
    anchor = getattr(config, "clock_anchor", None)
    if scale is None and start is None:
        return SystemClock()
    return AnchoredScaledClock(
        1.0 if scale is None else float(scale),
        SystemClock().now_ms() if start is None else int(start),
        anchor,
    )

"""DTN time (RFC 9171 §4.2.6, §4.2.7) and injectable clocks.

DTN time is an unsigned count of milliseconds since 2000-01-01 00:00:00 UTC, ignoring leap
seconds (like POSIX time). A creation time of 0 means "this node has no accurate clock"; such
bundles must carry a Bundle Age block (§4.2.7, §4.4.2) and keep unique sequence numbers.

Clocks are injected everywhere time matters:

* :class:`SystemClock` - real wall-clock time;
* :class:`ManualClock` - test time that only moves when told to;
* :class:`ScaledClock` - wall-clock time running ``factor`` times faster from an origin, so a day
  of orbits can be replayed in minutes through the same code path as real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = [
    "DTN_EPOCH",
    "DTN_EPOCH_UNIX_S",
    "Clock",
    "CreationTimestamp",
    "ManualClock",
    "ScaledClock",
    "SystemClock",
    "TimestampSource",
    "datetime_to_dtn_ms",
    "dtn_ms_to_datetime",
    "dtn_ms_to_unix_s",
    "parse_dtn_time",
    "unix_s_to_dtn_ms",
]

#: Seconds between the Unix epoch and the DTN epoch (2000-01-01T00:00:00Z).
DTN_EPOCH_UNIX_S = 946684800
DTN_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_U64 = 0xFFFFFFFFFFFFFFFF


def unix_s_to_dtn_ms(unix_s: float) -> int:
    return round((unix_s - DTN_EPOCH_UNIX_S) * 1000)


def dtn_ms_to_unix_s(dtn_ms: int) -> float:
    return dtn_ms / 1000 + DTN_EPOCH_UNIX_S


def dtn_ms_to_datetime(dtn_ms: int) -> datetime:
    return DTN_EPOCH + timedelta(milliseconds=dtn_ms)


def datetime_to_dtn_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: give a timezone (UTC) to convert to DTN time")
    delta = dt - DTN_EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def parse_dtn_time(text: str, label: str = "time") -> int:
    """DTN ms from ``now``, a bare integer (DTN ms) or an ISO 8601 time (UTC if no zone), as
    operators type them; ``ValueError`` starting with ``label`` and the text otherwise."""
    if text == "now":
        return SystemClock().now_ms()
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{label} {text!r}: use ISO 8601 (2024-05-09T20:40:00Z), 'now' or DTN ms"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return datetime_to_dtn_ms(dt)


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current DTN time in milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The host's wall clock as DTN time."""

    __slots__ = ()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 - DTN_EPOCH_UNIX_S * 1000

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock for tests: it reads ``now_ms`` and moves only by :meth:`advance` / :meth:`set`."""

    __slots__ = ("_now",)

    def __init__(self, now_ms: int = 0) -> None:
        if now_ms < 0:
            raise ValueError("DTN time cannot be negative")
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("a ManualClock only moves forward; use set() to jump")
        self._now += ms
        return self._now

    def set(self, now_ms: int) -> None:
        if now_ms < 0:
            raise ValueError("DTN time cannot be negative")
        self._now = now_ms

    def __repr__(self) -> str:
        return f"ManualClock({self._now})"


class ScaledClock:
    """Wall-clock time sped up by ``factor`` from ``origin_ms`` (DTN ms; default: now).

    ``now = origin_ms + (monotonic elapsed since construction) * factor``. Use
    :meth:`real_seconds` to turn a DTN-time delay into a real sleep.
    """

    __slots__ = ("_factor", "_origin_ms", "_start_ns")

    def __init__(self, factor: float, origin_ms: int | None = None) -> None:
        if not factor > 0:
            raise ValueError("the scale factor must be positive")
        self._factor = float(factor)
        self._origin_ms = SystemClock().now_ms() if origin_ms is None else int(origin_ms)
        self._start_ns = time.monotonic_ns()

    @property
    def factor(self) -> float:
        return self._factor

    def now_ms(self) -> int:
        elapsed_ms = (time.monotonic_ns() - self._start_ns) / 1_000_000
        return self._origin_ms + int(elapsed_ms * self._factor)

    def real_seconds(self, dtn_ms: float) -> float:
        """Real seconds that pass while this clock advances ``dtn_ms``."""
        return dtn_ms / 1000 / self._factor

    def __repr__(self) -> str:
        return f"ScaledClock({self._factor}, origin_ms={self._origin_ms})"


class CreationTimestamp(NamedTuple):
    """Bundle creation timestamp (§4.2.7): DTN time in ms (0 = no clock) and a sequence number."""

    time_ms: int
    sequence: int

    @property
    def has_clock(self) -> bool:
        return self.time_ms != 0


class TimestampSource:
    """Hands out creation timestamps that are unique for this node (§4.2.7).

    The sequence number restarts at 0 whenever the clock moves on. When the clock stands still
    or goes *backwards* (NTP step), we keep the last time handed out and keep counting, so a pair
    can never repeat. With ``accurate_clock=False`` every timestamp has time 0 and only the
    sequence number distinguishes bundles (the caller must then add a Bundle Age block).
    Thread-safe.
    """

    def __init__(self, clock: Clock, *, accurate_clock: bool = True) -> None:
        self._clock = clock
        self._accurate = accurate_clock
        self._last_time = -1
        self._seq = 0
        self._lock = threading.Lock()

    @property
    def accurate_clock(self) -> bool:
        return self._accurate

    def next(self) -> CreationTimestamp:
        now = self._clock.now_ms() if self._accurate else 0
        with self._lock:
            if now > self._last_time:
                self._last_time = now
                self._seq = 0
            else:
                self._seq += 1
                if self._seq > _U64:
                    raise OverflowError("creation sequence numbers exhausted for this time")
            return CreationTimestamp(self._last_time, self._seq)

    __call__ = next

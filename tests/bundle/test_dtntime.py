"""DTN time and clocks (RFC 9171 §4.2.6, §4.2.7)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from waystation.bundle.dtntime import (
    DTN_EPOCH_UNIX_S,
    Clock,
    CreationTimestamp,
    ManualClock,
    ScaledClock,
    SystemClock,
    TimestampSource,
    datetime_to_dtn_ms,
    dtn_ms_to_datetime,
    unix_s_to_dtn_ms,
)


def test_epoch() -> None:
    assert datetime(2000, 1, 1, tzinfo=UTC).timestamp() == DTN_EPOCH_UNIX_S
    assert dtn_ms_to_datetime(0) == datetime(2000, 1, 1, tzinfo=UTC)
    assert datetime_to_dtn_ms(datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1000
    assert unix_s_to_dtn_ms(DTN_EPOCH_UNIX_S + 1.5) == 1500
    with pytest.raises(ValueError):
        datetime_to_dtn_ms(datetime(2020, 1, 1))


def test_system_clock_is_now() -> None:
    now = SystemClock().now_ms()
    assert abs(now - unix_s_to_dtn_ms(time.time())) < 1000
    assert isinstance(SystemClock(), Clock)


def test_manual_clock() -> None:
    c = ManualClock(10)
    assert c.now_ms() == 10
    assert c.advance(5) == 15
    c.set(3)
    assert c.now_ms() == 3
    with pytest.raises(ValueError):
        c.advance(-1)


def test_scaled_clock_runs_faster() -> None:
    c = ScaledClock(1000.0, origin_ms=1_000_000)
    first = c.now_ms()
    time.sleep(0.02)
    assert c.now_ms() - first >= 15_000  # 20 ms real * 1000
    assert c.real_seconds(60_000) == pytest.approx(0.06)
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_timestamp_source_unique_pairs() -> None:
    clock = ManualClock(100)
    ts = TimestampSource(clock)
    assert ts.next() == CreationTimestamp(100, 0)
    assert ts.next() == CreationTimestamp(100, 1)
    clock.advance(1)
    assert ts.next() == CreationTimestamp(101, 0)
    clock.set(50)  # clock stepped backwards: keep counting on the last time, never repeat
    assert ts.next() == CreationTimestamp(101, 1)


def test_timestamp_source_without_clock() -> None:
    ts = TimestampSource(ManualClock(5000), accurate_clock=False)
    stamps = [ts.next() for _ in range(3)]
    assert stamps == [(0, 0), (0, 1), (0, 2)]
    assert not stamps[0].has_clock


def test_timestamp_source_thread_safe() -> None:
    ts = TimestampSource(ManualClock(1))
    out: list[CreationTimestamp] = []

    def worker() -> None:
        for _ in range(500):
            out.append(ts.next())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 2000

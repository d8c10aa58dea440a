"""The C CRCs of the Cython twin (ext/ws_crc.h) against the pure-Python reference (RFC 9171
§4.2.1): check values, chaining, every length and alignment around the SIMD/slicing boundaries,
and the SSE4.2 three-stream path against the slicing-by-8 fallback."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle import crc as pycrc

# Lengths around the slicing-by-8 step (8), the short three-stream block (3 x 256) and the long
# one (3 x 8192), where off-by-one errors would hide.
EDGE_LENGTHS = sorted(
    {0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65}
    | {3 * 256 + d for d in (-9, -8, -1, 0, 1, 7, 8, 9)}
    | {3 * 8192 + d for d in (-8, -1, 0, 1, 8)}
    | {512 + d for d in (-1, 0, 1, 15, 16, 63, 64, 65)}  # carry-less-multiply threshold
    | {2 * 3 * 8192 + 3 * 256 + 5}
)


def test_check_values(fast: ModuleType) -> None:
    assert fast.crc16_x25(b"123456789") == 0x906E
    assert fast.crc32c(b"123456789") == 0xE3069283
    assert fast.crc32c_software(b"123456789") == 0xE3069283


@pytest.mark.parametrize("length", EDGE_LENGTHS)
def test_lengths_and_alignments_match_reference(fast: ModuleType, length: int) -> None:
    blob = os.urandom(length + 8)
    for offset in range(8):  # every alignment of the start pointer
        view = memoryview(blob)[offset : offset + length]
        expected32 = fast.crc32c_software(view)
        assert fast.crc32c(view) == expected32
        assert fast.crc32c_instruction(view) == expected32
        if length <= 4096:  # the pure reference runs at a few MB/s
            assert expected32 == pycrc.crc32c(view)
            assert fast.crc16_x25(view) == pycrc.crc16_x25(view)


def test_large_buffer_crc16_against_reference(fast: ModuleType) -> None:
    blob = os.urandom(20_000)
    assert fast.crc16_x25(blob) == pycrc.crc16_x25(blob)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 3000))
def test_chaining(fast: ModuleType, data: bytes, cut: int) -> None:
    cut = min(cut, len(data))
    for func in (fast.crc16_x25, fast.crc32c, fast.crc32c_software, fast.crc32c_instruction):
        assert func(data[cut:], func(data[:cut])) == func(data)
    assert fast.crc32c(data[cut:], fast.crc32c(data[:cut])) == pycrc.crc32c(data)
    assert fast.crc16_x25(data[cut:], fast.crc16_x25(data[:cut])) == pycrc.crc16_x25(data)


@pytest.mark.parametrize(
    "data",
    [b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4], [97, 98, 99], (97, 98, 99)],
    ids=["bytes", "bytearray", "memoryview", "list", "tuple"],
)
def test_argument_types_like_reference(fast: ModuleType, data: object) -> None:
    assert fast.crc16_x25(data) == pycrc.crc16_x25(data)  # type: ignore[arg-type]
    assert fast.crc32c(data) == pycrc.crc32c(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, 0x10000, 2**40, 1.5, "x", None])
def test_odd_start_values_like_reference(fast: ModuleType, value: object) -> None:
    for name in ("crc16_x25", "crc32c"):
        try:
            expected: object = getattr(pycrc, name)(b"abc", value)
        except Exception as exc:  # the reference's exception class is the spec
            with pytest.raises(type(exc)):
                getattr(fast, name)(b"abc", value)
        else:
            assert getattr(fast, name)(b"abc", value) == expected


def test_strided_view_like_reference(fast: ModuleType) -> None:
    view = memoryview(bytes(range(40)))[::3]
    assert fast.crc32c(view) == pycrc.crc32c(view)
    assert fast.crc16_x25(view) == pycrc.crc16_x25(view)


def test_reports_hardware_path(fast: ModuleType) -> None:
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.exists() else ""
    if " sse4_2" in flags:
        assert fast.CRC32C_HARDWARE is True
        if " pclmulqdq" in flags:
            assert fast.CRC32C_CLMUL is True

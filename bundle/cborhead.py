"""A minimal CBOR (RFC 8949) head reader/writer for the BPv7 codec.

Why not cbor2: RFC 9171 CRCs (§4.2.1) are computed over the *exact bytes* of each block, so the
decoder must know where every block starts and ends in the input, and must be able to hand out the
payload as a zero-copy ``memoryview``. cbor2 6 offers neither, so the reference codec walks the
input itself with the functions here.

Only what BPv7 needs: unsigned integers (major 0), byte strings (2), text strings (3), arrays (4)
and the indefinite-length array start/break of the bundle itself. Reading accepts every valid
encoding of an integer (non-shortest forms included, as RFC 8949 §4.2 shortest form is only
*preferred*); writing always produces the shortest ("preferred"/deterministic, RFC 8949 §4.2.1)
form, which is what makes our encoding canonical. Every failure raises
:class:`~waystation.bundle.errors.DecodeError` with the byte offset of the offending head.
"""

from __future__ import annotations

from .errors import DecodeError

__all__ = [
    "INDEFINITE",
    "MAJOR_ARRAY",
    "MAJOR_BYTES",
    "MAJOR_NEGINT",
    "MAJOR_TAG",
    "MAJOR_TEXT",
    "MAJOR_UINT",
    "MAJOR_MAP",
    "MAJOR_SIMPLE",
    "encode_head",
    "encode_uint",
    "encode_bytes",
    "encode_text",
    "read_head",
    "read_uint",
    "read_bytes",
    "read_text",
    "read_array_head",
    "skip_item",
]

MAJOR_UINT = 0
MAJOR_NEGINT = 1
MAJOR_BYTES = 2
MAJOR_TEXT = 3
MAJOR_ARRAY = 4
MAJOR_MAP = 5
MAJOR_TAG = 6
MAJOR_SIMPLE = 7
#: ``read_head`` returns this as the argument of an indefinite-length head (additional info 31).
INDEFINITE = -1

_MAJOR_NAMES = ("uint", "negint", "bytes", "text", "array", "map", "tag", "simple/float")
_MAX_NESTING = 64  # skip_item recursion guard: BPv7 structures are shallow


def major_name(major: int) -> str:
    return _MAJOR_NAMES[major]


def read_head(buf: bytes | memoryview, pos: int) -> tuple[int, int, int]:
    """Read one CBOR head at ``pos``: return ``(major, argument, position after the head)``.

    ``argument`` is ``INDEFINITE`` for additional information 31 (indefinite length, or the
    "break" stop code when major is 7). Reserved additional information 28..30 is an error.
    """
    n = len(buf)
    if pos >= n:
        raise DecodeError(pos, "unexpected end of input")
    ib = buf[pos]
    major = ib >> 5
    ai = ib & 0x1F
    if ai < 24:
        return major, ai, pos + 1
    if ai == 24:
        if pos + 2 > n:
            raise DecodeError(pos, "truncated 1-byte CBOR argument")
        return major, buf[pos + 1], pos + 2
    if ai == 25:
        if pos + 3 > n:
            raise DecodeError(pos, "truncated 2-byte CBOR argument")
        return major, (buf[pos + 1] << 8) | buf[pos + 2], pos + 3
    if ai == 26:
        if pos + 5 > n:
            raise DecodeError(pos, "truncated 4-byte CBOR argument")
        return major, int.from_bytes(buf[pos + 1 : pos + 5], "big"), pos + 5
    if ai == 27:
        if pos + 9 > n:
            raise DecodeError(pos, "truncated 8-byte CBOR argument")
        return major, int.from_bytes(buf[pos + 1 : pos + 9], "big"), pos + 9
    if ai == 31:
        return major, INDEFINITE, pos + 1
    raise DecodeError(pos, f"reserved CBOR additional information {ai}")


def read_uint(buf: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    """Read an unsigned integer (major type 0); ``what`` names the field for the error."""
    major, arg, end = read_head(buf, pos)
    if major != MAJOR_UINT or arg == INDEFINITE:
        raise DecodeError(
            pos, f"{what}: expected unsigned integer, got CBOR {_describe(major, arg)}"
        )
    return arg, end


def read_array_head(buf: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    """Read a *definite-length* array head; return ``(item count, position after head)``."""
    major, arg, end = read_head(buf, pos)
    if major != MAJOR_ARRAY:
        raise DecodeError(pos, f"{what}: expected array, got CBOR {_describe(major, arg)}")
    if arg == INDEFINITE:
        raise DecodeError(pos, f"{what}: indefinite-length array not allowed here")
    return arg, end


def read_bytes(buf: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    """Read a definite-length byte string head; return ``(content start, content end)``.

    The content itself is ``buf[start:end]``; the caller decides whether to copy or view it.
    """
    major, arg, start = read_head(buf, pos)
    if major != MAJOR_BYTES:
        raise DecodeError(pos, f"{what}: expected byte string, got CBOR {_describe(major, arg)}")
    if arg == INDEFINITE:
        raise DecodeError(pos, f"{what}: indefinite-length byte string not allowed")
    end = start + arg
    if end > len(buf):
        raise DecodeError(pos, f"{what}: byte string of {arg} bytes runs past end of input")
    return start, end


def read_text(buf: bytes | memoryview, pos: int, what: str) -> tuple[str, int]:
    """Read a definite-length UTF-8 text string; return ``(text, position after it)``."""
    major, arg, start = read_head(buf, pos)
    if major != MAJOR_TEXT:
        raise DecodeError(pos, f"{what}: expected text string, got CBOR {_describe(major, arg)}")
    if arg == INDEFINITE:
        raise DecodeError(pos, f"{what}: indefinite-length text string not allowed")
    end = start + arg
    if end > len(buf):
        raise DecodeError(pos, f"{what}: text string of {arg} bytes runs past end of input")
    try:
        text = bytes(buf[start:end]).decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(pos, f"{what}: text string is not valid UTF-8") from None
    return text, end


def skip_item(buf: bytes | memoryview, pos: int, depth: int = 0) -> int:
    """Return the position just after the well-formed CBOR data item at ``pos``.

    Used to find the extent of items we do not interpret. Indefinite-length items are accepted
    here (RFC 8949 §3.2) since this is only about well-formedness.
    """
    if depth > _MAX_NESTING:
        raise DecodeError(pos, "CBOR nesting too deep")
    major, arg, end = read_head(buf, pos)
    if major in (MAJOR_UINT, MAJOR_NEGINT):
        if arg == INDEFINITE:
            raise DecodeError(pos, "indefinite length on an integer")
        return end
    if major in (MAJOR_BYTES, MAJOR_TEXT):
        if arg == INDEFINITE:
            while True:
                if end >= len(buf):
                    raise DecodeError(end, "unterminated indefinite-length string")
                if buf[end] == 0xFF:
                    return end + 1
                cmajor, carg, cend = read_head(buf, end)
                if cmajor != major or carg == INDEFINITE:
                    raise DecodeError(end, "bad chunk in indefinite-length string")
                end = cend + carg
            # unreachable
        end += arg
        if end > len(buf):
            raise DecodeError(pos, "string runs past end of input")
        return end
    if major in (MAJOR_ARRAY, MAJOR_MAP):
        if arg == INDEFINITE:
            while True:
                if end >= len(buf):
                    raise DecodeError(end, "unterminated indefinite-length container")
                if buf[end] == 0xFF:
                    return end + 1
                end = skip_item(buf, end, depth + 1)
        count = arg * 2 if major == MAJOR_MAP else arg
        if count > len(buf) - end:  # every item takes at least one byte
            raise DecodeError(pos, "container claims more items than bytes remain")
        for _ in range(count):
            end = skip_item(buf, end, depth + 1)
        return end
    if major == MAJOR_TAG:
        if arg == INDEFINITE:
            raise DecodeError(pos, "indefinite length on a tag")
        return skip_item(buf, end, depth + 1)
    # major 7: simple values and floats; the head already covers the float bytes.
    if arg == INDEFINITE:
        raise DecodeError(pos, "unexpected CBOR break")
    ai = buf[pos] & 0x1F
    if ai == 24 and arg < 32:
        raise DecodeError(pos, "invalid two-byte simple value")
    return end


def encode_head(major: int, value: int) -> bytes:
    """Encode a CBOR head in the shortest form (RFC 8949 §4.2.1 preferred serialization)."""
    mt = major << 5
    if value < 24:
        return bytes((mt | value,))
    if value < 0x100:
        return bytes((mt | 24, value))
    if value < 0x10000:
        return bytes((mt | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((mt | 26,)) + value.to_bytes(4, "big")
    if value < 0x10000000000000000:
        return bytes((mt | 27,)) + value.to_bytes(8, "big")
    raise ValueError(f"CBOR argument {value} does not fit in 64 bits")


def encode_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"negative value {value} where an unsigned integer is required")
    return encode_head(MAJOR_UINT, value)


def encode_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return encode_head(MAJOR_BYTES, len(data)) + bytes(data)


def encode_text(text: str) -> bytes:
    raw = text.encode("utf-8")
    return encode_head(MAJOR_TEXT, len(raw)) + raw


def _describe(major: int, arg: int) -> str:
    if arg == INDEFINITE:
        return "break" if major == MAJOR_SIMPLE else f"indefinite {_MAJOR_NAMES[major]}"
    return _MAJOR_NAMES[major]

"""Sans-I/O MTCP framing (draft-ietf-dtn-mtcpcl-01 §3, as µD3TN and dtn7 speak it).

A frame is one bundle wrapped as a definite-length CBOR byte string (major type 2): a head of
1, 2, 3, 5 or 9 bytes (RFC 8949 §3: additional information 0-23 inline, 24-27 for a 1/2/4/8-byte
length) followed by the bundle. There is no handshake, no acknowledgement and no keepalive: the
only reliability is TCP's, so a sender cannot know which bundles a peer stored when a connection
breaks. Frames of any other major type, indefinite lengths (additional information 31) and
reserved values (28-30) are protocol errors -- the stream cannot be re-synchronised after them.
"""

from __future__ import annotations

import struct

from ..errors import MessageDecodeError, TransferTooLarge

_HEAD_1 = struct.Struct(">BB")
_HEAD_2 = struct.Struct(">BH")
_HEAD_4 = struct.Struct(">BL")
_HEAD_8 = struct.Struct(">BQ")


def encode_head(length: int) -> bytes:
    """The shortest CBOR byte-string head for ``length`` bytes (RFC 8949 §4.2.1 preferred)."""
    if length < 24:
        return bytes([0x40 | length])
    if length < 0x100:
        return _HEAD_1.pack(0x58, length)
    if length < 0x1_0000:
        return _HEAD_2.pack(0x59, length)
    if length < 0x1_0000_0000:
        return _HEAD_4.pack(0x5A, length)
    return _HEAD_8.pack(0x5B, length)


def encode_frame(bundle: bytes | bytearray | memoryview) -> bytes:
    """One MTCP frame: head and bundle joined, so it goes out in one write."""
    return encode_head(len(bundle)) + bytes(bundle)


class MtcpDecoder:
    """Incremental MTCP frame decoder: feed bytes, get complete bundles."""

    def __init__(self, max_bundle_size: int = 1 << 32) -> None:
        self.max_bundle_size = max_bundle_size
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self._need: int | None = None  # total frame length once the head is known
        self._head_len = 0

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished frame (non-zero at EOF means a truncated stream)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add bytes; return every bundle completed by them. Raises ``MessageDecodeError``."""
        self._buf += data
        out: list[bytes] = []
        buf = self._buf
        pos = 0
        while True:
            if self._need is None:
                head = self._parse_head(buf, pos)
                if head is None:
                    break
                self._head_len, length = head
                if length > self.max_bundle_size:
                    raise MessageDecodeError(
                        self._offset + pos,
                        f"MTCP frame of {length} bytes exceeds the limit of {self.max_bundle_size}",
                    )
                self._need = self._head_len + length
            if len(buf) - pos < self._need:
                break
            out.append(bytes(buf[pos + self._head_len : pos + self._need]))
            pos += self._need
            self._need = None
        if pos:
            del buf[:pos]
            self._offset += pos
        return out

    def _parse_head(self, buf: bytearray, pos: int) -> tuple[int, int] | None:
        if pos >= len(buf):
            return None
        first = buf[pos]
        major, info = first >> 5, first & 0x1F
        if major != 2:
            raise MessageDecodeError(
                self._offset + pos,
                f"MTCP frame must be a CBOR byte string (major type 2), got major type {major}",
            )
        if info < 24:
            return 1, info
        if info > 27:
            kind = "indefinite-length" if info == 31 else "reserved"
            raise MessageDecodeError(
                self._offset + pos, f"MTCP frame has a {kind} byte-string head (0x{first:02x})"
            )
        size = 1 << (info - 24)
        if len(buf) - pos < 1 + size:
            return None
        return 1 + size, int.from_bytes(buf[pos + 1 : pos + 1 + size], "big")


def check_size(length: int, limit: int) -> None:
    if length > limit:
        raise TransferTooLarge(length, limit, "MTCP")

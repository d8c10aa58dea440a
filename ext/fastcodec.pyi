"""Type stub of the compiled twin of :mod:`waystation.bundle.pycodec` (see ext/fastcodec.pyx)."""

from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock

__all__: list[str]

DEFAULT_MAX_BUNDLE_SIZE: int
#: True when CRC-32C runs on the SSE4.2 crc32 instruction (else slicing-by-8).
CRC32C_HARDWARE: bool
#: True when CRC-32C of 512 bytes and more uses carry-less-multiply (PCLMULQDQ) folding.
CRC32C_CLMUL: bool
#: Which model constructors take the slot-filling fast path.
FAST_PATHS: dict[str, bool]

def crc16_x25(data: bytes | bytearray | memoryview, value: int = 0) -> int: ...
def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int: ...
def crc32c_software(data: bytes | bytearray | memoryview, value: int = 0) -> int: ...
def crc32c_instruction(data: bytes | bytearray | memoryview, value: int = 0) -> int: ...
def decode_bundle(
    data: bytes | bytearray | memoryview,
    *,
    max_size: int | None = ...,
    validate: bool = True,
) -> Bundle: ...
def encode_bundle(bundle: Bundle) -> bytes: ...
def encode_primary_block(primary: PrimaryBlock) -> bytes: ...
def encode_canonical_block(block: CanonicalBlock) -> bytes: ...

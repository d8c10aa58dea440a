"""Type stub of the compiled twin of :mod:`waystation.store.pyrecords` (see ext/storerec.pyx)."""

from collections.abc import Sequence
from typing import Any

from waystation.store.api import BundleMeta

__all__: list[str]

#: True when BundleMeta's slot layout is the one the fast path was written for.
FAST_PATH: bool

def fill_in(meta: BundleMeta, size: int, seq: int, checksum: int) -> BundleMeta: ...
def h8(text: str | bytes) -> bytes: ...
def index_keys(
    key: bytes, m: BundleMeta, seq_no: int | None = None
) -> list[tuple[str, bytes, bytes]]: ...
def pack_put(
    key: bytes, wire: bytes, meta: Any, seq: int
) -> tuple[bytes, int, list[tuple[str, bytes, bytes]]]: ...
def pack_deletion(
    seq: int, key: bytes, disposition: str, reason: int, time_ms: int, meta: BundleMeta
) -> bytes: ...
def unpack_meta(raw: bytes) -> BundleMeta: ...
def stage_puts(
    run: Sequence[Any],
    start: int,
    counters: list[int],
    limits: tuple[int | None, int | None],
    dbs: dict[str, Any],
    flags: tuple[int, int],
    out: tuple[list[Any], list[Any], dict[str, list[Any]], list[Any]],
) -> int: ...
def fill_in_run(accepted: Sequence[tuple[int, Any, int, int, int]], results: list[Any]) -> None: ...
def stage_deletes(
    specs: Sequence[Any],
    get_meta: Any,
    del_seq: int,
    dbs: dict[str, Any],
    out: tuple[list[Any], list[Any], list[Any], list[bytes]],
) -> tuple[int, int, int]: ...

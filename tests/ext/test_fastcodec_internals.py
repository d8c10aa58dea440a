"""Properties of the Cython twin that the differential tests do not reach directly: the payload
view it hands out (built by narrowing one memoryview in place), the decoded-EID cache under
heavy collision, and the call signatures."""

from __future__ import annotations

import gc
import sys
from types import ModuleType

import pytest
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import DtnEID, IpnEID
from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock


def make(payload: bytes, source: object = None, crc: int = 2) -> Bundle:
    primary = PrimaryBlock(
        0, crc, IpnEID(2, 1), source or IpnEID(1, 1), IpnEID(1, 0), CreationTimestamp(5, 0), 60_000
    )
    return Bundle(primary, [CanonicalBlock(1, 1, 0, crc, payload)])


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_payload_view_behaves_like_a_slice(pure: ModuleType, fast: ModuleType, kind: type) -> None:
    payload = bytes(range(200))
    data = kind(pure.encode_bundle(make(payload)))
    got = fast.decode_bundle(data).payload
    ref = pure.decode_bundle(data).payload
    assert isinstance(got, memoryview)
    assert got.obj is data and ref.obj is data
    for attr in (
        "readonly",
        "nbytes",
        "shape",
        "strides",
        "format",
        "itemsize",
        "ndim",
        "c_contiguous",
        "contiguous",
    ):
        assert getattr(got, attr) == getattr(ref, attr), attr
    assert bytes(got) == got.tobytes() == payload
    assert len(got) == 200 and got[0] == 0 and got[-1] == 199
    assert bytes(got[10:20]) == payload[10:20]
    assert got.hex() == payload.hex()
    if kind is bytes:
        assert hash(got) == hash(payload)


def test_payload_view_keeps_bytearray_locked(pure: ModuleType, fast: ModuleType) -> None:
    data = bytearray(pure.encode_bundle(make(b"abc")))
    bundle = fast.decode_bundle(data)
    with pytest.raises(BufferError):
        data.extend(b"x")  # exported, exactly as with the reference's zero-copy slice
    bundle.payload.release()
    del bundle
    gc.collect()
    data.extend(b"x")


def test_eid_cache_survives_collisions(pure: ModuleType, fast: ModuleType) -> None:
    sources = [IpnEID(n, n % 7) for n in range(1, 3000)] + [
        DtnEID(f"node{n}", f"svc/{n}") for n in range(500)
    ]
    encoded = [pure.encode_bundle(make(b"p", src)) for src in sources]
    for _ in range(2):  # the second pass hits (or collides in) the cache
        for src, data in zip(sources, encoded):
            assert fast.decode_bundle(data).primary.source == src


def test_decode_arguments_are_keyword_only(pure: ModuleType, fast: ModuleType) -> None:
    data = pure.encode_bundle(make(b"x"))
    for module in (pure, fast):
        with pytest.raises(TypeError):
            module.decode_bundle(data, 100)
        assert module.decode_bundle(data, max_size=None, validate=False) == make(b"x")


def test_many_blocks_take_the_heap_path(pure: ModuleType, fast: ModuleType) -> None:
    bundle = make(b"payload")
    bundle.blocks[:0] = [CanonicalBlock(200, n, 0, n % 3, bytes([n])) for n in range(2, 60)]
    data = pure.encode_bundle(bundle)
    assert fast.encode_bundle(bundle) == data
    assert fast.decode_bundle(data) == bundle == pure.decode_bundle(data)


def test_threads_share_the_caches_safely(pure: ModuleType, fast: ModuleType) -> None:
    """Concurrent decodes and encodes (the GIL switches inside cache misses) stay exact."""
    import threading

    cases = []
    for n in range(400):
        src = IpnEID(n + 1, n % 5) if n % 3 else DtnEID(f"n{n}", "x")
        bundle = make(bytes([n % 256]) * (n % 40), src, crc=n % 3 or 1)
        cases.append((bundle, pure.encode_bundle(bundle)))
    failures: list[str] = []

    def worker(offset: int) -> None:
        for i in range(len(cases) * 3):
            bundle, data = cases[(i * 7 + offset) % len(cases)]
            if fast.decode_bundle(data) != bundle or fast.encode_bundle(bundle) != data:
                failures.append(f"case {(i * 7 + offset) % len(cases)}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures

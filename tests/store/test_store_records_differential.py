"""``waystation.ext.storerec`` (Cython) against ``waystation.store.pyrecords`` (the reference).

Same bytes for every record, equal index entries, and the same exception class and message for
every input -- including the shapes the compiled fast path does not handle itself (int and str
subclasses, bools, surrogates, over-long names, negative numbers, odd ``extra`` values, objects
that are not a ``BundleMeta`` at all). The selection module honours the environment variables
the codec does.
"""

from __future__ import annotations

import copy
import importlib
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.store import pyrecords, records
from waystation.store.api import (
    BundleMeta,
    CustodyState,
    DeletionRecord,
    Disposition,
    Priority,
)


@pytest.fixture(scope="module")
def fast() -> ModuleType:
    if os.environ.get("WAYSTATION_PUREPYTHON") == "1":
        pytest.skip("pure-Python pass: the Cython twin is tested in the extension pass")
    try:
        return importlib.import_module("waystation.ext.storerec")
    except ImportError as exc:
        if os.environ.get("WAYSTATION_REQUIRE_EXT") == "1":
            pytest.fail(f"waystation.ext.storerec not importable: {exc}")
        pytest.skip(f"waystation.ext.storerec not built: {exc}")


class Flag(int):
    """An int subclass (what an IntEnum from elsewhere would look like)."""


u64 = st.integers(0, 2**64 - 1)
odd_int = st.sampled_from([-1, 2**64, True, Flag(3), 1.5, "7", None])
ints = u64 | st.integers(0, 300) | odd_int
names = (
    st.text(max_size=12)
    | st.text(min_size=60, max_size=80)
    | st.sampled_from(["", "ipn:2.1", "dtn://x/é", "\ud800", "a" * 300])
)
opt_names = st.none() | names | st.sampled_from([b"bytes", 5])
def _nested(depth: int) -> Any:
    return 0 if depth == 0 else [_nested(depth - 1)]


extras = st.dictionaries(
    st.text(max_size=6), st.integers() | st.binary(max_size=6) | st.none(), max_size=3
) | st.sampled_from(
    [
        {},
        {"f": object()},
        {"big": 2**70},
        {(1, 2): "tuple key"},
        [],
        None,
        # the compiled encoder's edges: 64-bit limits, tuples, nesting past its depth limit,
        # an unencodable surrogate, a float and an int subclass (the last three: cbor2's call)
        {"lo": -(2**63), "lo-1": -(2**63) - 1, "hi": 2**63, "top": 2**64 - 1, "over": 2**64},
        {"t": (1, "a", (b"b", None)), "b": [True, False]},
        {"deep": _nested(16), "deeper": _nested(20)},
        {"s": "\ud800"},
        {"x": 1.5},
        {"flag": Flag(2)},
        {b"k": 1, 3: {4: [5]}},
    ]
)
states = st.sampled_from([*CustodyState, "queued", "bogus", 3])
priorities = st.sampled_from([*Priority, 0, 2, 3, -1, True, Flag(1)])


@st.composite
def any_meta(draw: st.DrawFn) -> Any:
    values = {
        "received_ms": draw(ints),
        "expiry_ms": draw(ints),
        "destination": draw(names),
        "source": draw(names),
        "state": draw(states),
        "queue": draw(opt_names),
        "priority": draw(priorities),
        "local_endpoint": draw(opt_names),
        "retries": draw(ints),
        "adu_key": draw(st.none() | st.binary(max_size=12) | st.sampled_from([b"x" * 300, "s"])),
        "fragment_offset": draw(st.none() | ints),
        "total_adu_length": draw(st.none() | ints),
        "report_to": draw(opt_names),
        "deletion_reason": draw(st.none() | ints),
        "extra": draw(extras),
        "size": draw(ints),
        "seq": draw(ints),
        "checksum": draw(ints),
    }
    return BundleMeta(**values)


# what a node keeps in ``extra`` (e.g. {"c": [creation_ms, seq], "lt": ..., "f": ...}): plain
# CBOR values, which the compiled unpack_meta decodes itself
plain_values = st.recursive(
    st.integers(-(2**64), 2**64 - 1) | st.text(max_size=5) | st.binary(max_size=5)
    | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=3) | st.integers(-5, 5), inner, max_size=3),
    max_leaves=8,
)
plain_extras = st.dictionaries(st.text(max_size=4) | st.integers(-3, 3), plain_values, max_size=4)


@st.composite
def good_meta(draw: st.DrawFn) -> BundleMeta:
    text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)
    return BundleMeta(
        received_ms=draw(u64),
        expiry_ms=draw(u64),
        destination=draw(text),
        source=draw(text),
        state=draw(st.sampled_from(list(CustodyState))),
        queue=draw(st.none() | text),
        priority=draw(st.sampled_from(list(Priority))),
        local_endpoint=draw(st.none() | text),
        retries=draw(st.integers(0, 5)),
        adu_key=draw(st.none() | st.binary(min_size=1, max_size=12)),
        fragment_offset=draw(st.none() | u64),
        total_adu_length=draw(st.none() | u64),
        report_to=draw(st.none() | text),
        extra=draw(plain_extras),
    )


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # the comparison is the point: same class, same message
        return ("raised", type(exc), str(exc))


keys = st.binary(min_size=1, max_size=40)
wires = st.binary(min_size=1, max_size=3000)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, wire=wires, meta=any_meta(), seq=ints)
def test_pack_put_matches_reference(
    fast: ModuleType, key: bytes, wire: bytes, meta: Any, seq: Any
) -> None:
    assert outcome(fast.pack_put, key, wire, meta, seq) == outcome(
        pyrecords.pack_put, key, wire, meta, seq
    )


class _Op:
    """A ``PutOp`` look-alike (stage_puts reads ``.key``, ``.wire``, ``.meta``)."""

    __slots__ = ("key", "meta", "wire")

    def __init__(self, key: Any, wire: Any, meta: Any) -> None:
        self.key, self.wire, self.meta = key, wire, meta


odd_keys = keys | st.sampled_from([b"", b"k" * 401, bytearray(b"ba"), "text"])
odd_wires = wires | st.sampled_from([b"", bytearray(b"ba"), memoryview(b"mv"), None])
limits = st.tuples(st.none() | st.integers(0, 8), st.none() | st.integers(0, 12_000))


def _stage(mod: ModuleType, run: list[Any], start: int, limit: Any, seq: int) -> Any:
    # strings stand in for the LMDB database handles: staging only passes them through
    dbs = {name: name.upper() for name in ("meta", "data", *_IX_NAMES)}
    counters = [seq, 3, 100]
    out: tuple[list[Any], list[Any], dict[str, list[Any]], list[Any]] = ([], [], {}, [])
    stop = mod.stage_puts(run, start, counters, limit, dbs, (17, 4), out)
    results: list[Any] = [None] * len(run)
    mod.fill_in_run(out[3], results)
    return stop, counters, out[:3], [(a[0], a[2], a[3], a[4]) for a in out[3]], results


_IX_NAMES = ("ix_dest", "ix_exp", "ix_queue", "ix_local", "ix_adu")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.tuples(odd_keys, odd_wires, any_meta()), max_size=6),
    start=st.integers(0, 6),
    limit=limits,
    seq=st.integers(0, 2**40),
)
def test_stage_puts_matches_reference(
    fast: ModuleType, ops: list[tuple[Any, Any, Any]], start: int, limit: Any, seq: int
) -> None:
    """Same stop position, counters, bulk-insert items, accepted puts and filled-in metas."""
    mine = [_Op(k, w, copy.copy(m)) for k, w, m in ops]
    theirs = [_Op(k, w, copy.copy(m)) for k, w, m in ops]
    got = _stage(fast, mine, min(start, len(ops)), limit, seq)
    want = _stage(pyrecords, theirs, min(start, len(ops)), limit, seq)
    assert got == want
    assert [op.meta for op in mine] == [op.meta for op in theirs]


def _comparable(value: Any) -> Any:
    if isinstance(value, BaseException):
        return ("raised", type(value), str(value))
    return value


def _stage_del(mod: ModuleType, specs: list[Any], stored: dict[bytes, bytes]) -> Any:
    dbs = {name: name.upper() for name in ("meta", "data", *_IX_NAMES)}
    out: tuple[list[Any], list[Any], list[Any], list[bytes]] = ([], [], [], [])
    last = mod.stage_deletes(specs, stored.get, 40, dbs, out)
    results, deletes, records, packed = out
    return last, [_comparable(r) for r in results], deletes, records, packed


reasons = st.integers(0, 255) | st.sampled_from([-1, 256, True, Flag(4), "3", None])
dispositions = st.sampled_from([*Disposition, "forwarded", "nope", 3])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stored=st.lists(st.tuples(keys, good_meta()), max_size=4),
    picks=st.lists(
        st.tuples(st.integers(0, 5), reasons, dispositions, st.none() | u64)
        | st.sampled_from([KeyError("bad op")]),
        max_size=7,
    ),
    garbage=st.binary(max_size=8),
)
def test_stage_deletes_matches_reference(
    fast: ModuleType,
    stored: list[tuple[bytes, BundleMeta]],
    picks: list[Any],
    garbage: bytes,
) -> None:
    """Same results (records or errors), keys to delete and log records; unknown keys,
    repeated keys, bad reasons/dispositions and a corrupt record included."""
    records = {k: pyrecords.pack_put(k, b"w" * (i + 1), m, i + 1)[0] for i, (k, m) in
               enumerate(stored)}
    records[b"corrupt"] = garbage
    names = [*records, b"missing"]
    specs = [
        p if isinstance(p, BaseException) else (names[p[0] % len(names)], *p[1:3], p[3] or 5)
        for p in picks
    ]
    assert _stage_del(fast, specs, records) == _stage_del(pyrecords, specs, records)


@settings(max_examples=200, deadline=None)
@given(key=keys, wire=wires, meta=good_meta(), seq=u64)
def test_pack_put_record_reads_back(
    fast: ModuleType, key: bytes, wire: bytes, meta: BundleMeta, seq: int
) -> None:
    import zlib

    packed, checksum, entries = fast.pack_put(key, wire, meta, seq)
    assert (packed, checksum, entries) == pyrecords.pack_put(key, wire, meta, seq)
    back = BundleMeta.from_cbor(packed)
    assert (back.size, back.seq, back.checksum) == (len(wire), seq, zlib.crc32(wire))
    assert back.deletion_reason is None
    assert back.copy(size=0, seq=0, checksum=0) == meta.copy(size=0, seq=0, checksum=0)


@settings(max_examples=300, deadline=None)
@given(key=keys, meta=any_meta(), seq=st.none() | ints)
def test_index_keys_match_reference(fast: ModuleType, key: bytes, meta: Any, seq: Any) -> None:
    assert outcome(fast.index_keys, key, meta, seq) == outcome(pyrecords.index_keys, key, meta, seq)


@settings(max_examples=300, deadline=None)
@given(
    seq=ints,
    key=keys | st.sampled_from(["str key"]),
    disposition=st.sampled_from([*Disposition, "forwarded", "other", 5]),
    reason=ints,
    time_ms=ints,
    meta=any_meta(),
)
def test_pack_deletion_matches_reference(
    fast: ModuleType, seq: Any, key: Any, disposition: Any, reason: Any, time_ms: Any, meta: Any
) -> None:
    args = (seq, key, disposition, reason, time_ms, meta)
    assert outcome(fast.pack_deletion, *args) == outcome(pyrecords.pack_deletion, *args)


@settings(max_examples=100, deadline=None)
@given(meta=good_meta(), reason=st.integers(0, 255), time_ms=u64, seq=u64, key=keys)
def test_deletion_record_is_to_cbor_of_the_record(
    meta: BundleMeta, reason: int, time_ms: int, seq: int, key: bytes
) -> None:
    record = DeletionRecord(
        seq, key, Disposition.EXPIRED, reason, time_ms, meta.copy(deletion_reason=reason)
    )
    packed = records.pack_deletion(seq, key, Disposition.EXPIRED, reason, time_ms, meta)
    assert packed == record.to_cbor()
    assert DeletionRecord.from_cbor(packed) == record


@settings(max_examples=200, deadline=None)
@given(meta=any_meta(), size=u64, seq=u64, checksum=u64)
def test_fill_in_matches_reference(
    fast: ModuleType, meta: Any, size: int, seq: int, checksum: int
) -> None:
    mine, theirs = copy.copy(meta), copy.copy(meta)
    got = outcome(fast.fill_in, mine, size, seq, checksum)
    want = outcome(pyrecords.fill_in, theirs, size, seq, checksum)
    if got[0] == "ok":
        assert want[0] == "ok" and got[1] is mine and want[1] is theirs
        assert mine == theirs
        assert type(mine.state) is type(theirs.state)
        assert type(mine.priority) is type(theirs.priority)
    else:
        assert got == want


@settings(max_examples=200, deadline=None)
@given(meta=good_meta(), seq=u64, wire=wires, cut=st.integers(0, 200), flip=st.integers(0, 255))
def test_unpack_meta_matches_reference(
    fast: ModuleType, meta: BundleMeta, seq: int, wire: bytes, cut: int, flip: int
) -> None:
    raw = pyrecords.pack_put(b"k", wire, meta, seq)[0]
    got = fast.unpack_meta(raw)
    assert got == pyrecords.unpack_meta(raw) == BundleMeta.from_cbor(raw)
    assert repr(got.extra) == repr(meta.extra)  # True is not 1, a list not a tuple
    damaged = [
        raw[:cut],
        raw + b"\x00",
        raw[: cut % len(raw)] + bytes([flip]) + raw[cut % len(raw) + 1 :],
        raw.replace(b"\x93", b"\x94", 1) + b"\xf6",  # a trailing (future) field
        pyrecords.pack_deletion(1, b"k", "deleted", 3, 4, meta),
    ]
    for data in damaged:
        assert outcome(fast.unpack_meta, data) == outcome(pyrecords.unpack_meta, data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=120) | st.sampled_from([b"", b"\x93", b"\x80", "text", None]))
def test_unpack_meta_garbage_matches_reference(fast: ModuleType, data: Any) -> None:
    assert outcome(fast.unpack_meta, data) == outcome(pyrecords.unpack_meta, data)


def test_h8_matches_reference(fast: ModuleType) -> None:
    for text in ["", "ipn:2.1", "dtn://é/x", "\ud800", b"adu", b""]:
        assert fast.h8(text) == pyrecords.h8(text)
    assert fast.FAST_PATH  # the slot layout is the one the module was written for


def test_meta_is_not_changed(fast: ModuleType) -> None:
    meta = BundleMeta(received_ms=1, expiry_ms=2, destination="ipn:2.1", source="ipn:1.1")
    before = meta.copy()
    fast.pack_put(b"k", b"wire", meta, 9)
    fast.pack_deletion(1, b"k", Disposition.DELETED, 3, 4, meta)
    assert meta == before


PROBE = "from waystation.store import records; print(records.IMPLEMENTATION)"


def run_probe(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYSTATION_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )


def test_selection_honours_the_environment() -> None:
    for name in pyrecords.__all__:
        assert hasattr(records, name)
    forced = run_probe({"WAYSTATION_PUREPYTHON": "1"})
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == "python"
    contradiction = run_probe({"WAYSTATION_PUREPYTHON": "1", "WAYSTATION_REQUIRE_EXT": "1"})
    assert contradiction.returncode != 0
    assert "ImportError" in contradiction.stderr

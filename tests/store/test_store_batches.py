"""Batches (what the group-commit writer hands a backend) behave exactly like the same
operations applied one by one on the memory reference: same per-op outcomes, same end state.

The LMDB backend has a bulk path for runs of puts (one ``putmulti`` per sub-database) that
falls back to op-by-op when a duplicate hides in the run; this differential test pins both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.store.lmdb_store import LmdbBundleStore
from waystation.store.memory import MemoryBundleStore
from waystation.store.ops import DeleteOp, PutOp, SweepOp, UpdateOp

from tests.store.bundles import make_wire, meta_for

WIRES = {n: make_wire(n, payload_size=100 + 40 * n) for n in range(8)}


def _op(spec: tuple[str, int]) -> Any:
    kind, n = spec
    bid, wire, bundle = WIRES[n]
    if kind == "put":
        return PutOp(bid.key(), wire, meta_for(bundle, expiry_ms=1000 + n))
    if kind == "bad":
        return PutOp(bid.key(), wire, meta_for(bundle, priority=9))
    if kind == "delete":
        return DeleteOp(bid.key(), 3, now_ms=1)
    if kind == "update":
        return UpdateOp(bid.key(), {"queue": f"ipn:{n}.0"})
    return SweepOp(1000 + n, 2)


def _outcome(result: Any) -> Any:
    if isinstance(result, BaseException):
        return type(result).__name__
    if isinstance(result, list):
        return [r.key for r in result]
    return getattr(result, "seq", None) or getattr(result, "key", None)


specs = st.tuples(
    st.sampled_from(["put"] * 6 + ["bad", "delete", "update", "sweep"]), st.integers(0, 7)
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(specs, min_size=1, max_size=12), min_size=1, max_size=5),
    max_count=st.none() | st.integers(1, 6),
)
def test_batches_match_the_reference(
    tmp_path_factory: Any, batches: list[Any], max_count: int | None
) -> None:
    path: Path = tmp_path_factory.mktemp("batch") / "s"
    lmdb_store = LmdbBundleStore(path, max_count=max_count)
    reference = MemoryBundleStore(max_count=max_count)
    try:
        for batch in batches:
            got = lmdb_store.apply_batch([_op(s) for s in batch])
            want = reference.apply_batch([_op(s) for s in batch])
            assert [_outcome(r) for r in got] == [_outcome(r) for r in want], batch
        assert [(e.key, e.meta) for e in lmdb_store.entries()] == [
            (e.key, e.meta) for e in reference.entries()
        ]
        assert lmdb_store.stats().bytes == reference.stats().bytes
        assert lmdb_store.check() == []
        for key, wire in ((b.key(), w) for b, w, _ in WIRES.values()):
            if reference.contains(key):
                assert lmdb_store.get(key) == wire
    finally:
        lmdb_store.close()

"""Bad input never escapes as an unexpected exception type and never damages the store.

Hypothesis calls every public method of both backends with arguments drawn from a pool of
wrong types and edge values; the only acceptable failures are StoreError (incl. InvalidMeta,
a ValueError) and TypeError, and afterwards the LMDB store's cross-check must be clean.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.store.api import BundleMeta, StoreError

from tests.store.bundles import make_wire, meta_for

WEIRD: list[Any] = [
    None,
    0,
    -1,
    2**64,
    2**70,
    1.5,
    "",
    "ipn:2.1",
    "x" * 600,
    "\ud800",
    b"",
    b"k",
    b"\x00" * 600,
    [],
    {},
    object(),
    True,
    BundleMeta(1, 2, "a", "b"),
    bytearray(b"abc"),
    memoryview(b"ab"),
]
METHODS = {
    "put": 3,
    "get": 1,
    "get_meta": 1,
    "contains": 1,
    "delete": 2,
    "by_destination": 1,
    "expiring_before": 1,
    "queue": 1,
    "pending_local": 1,
    "fragments": 1,
    "sweep_expired": 1,
}
calls = st.one_of(
    st.tuples(
        st.sampled_from(sorted(METHODS)), st.lists(st.sampled_from(WEIRD), min_size=3, max_size=3)
    ),
    st.tuples(
        st.just("update_meta"),
        st.dictionaries(
            st.sampled_from(["queue", "priority", "state", "extra", "expiry_ms", "bogus", "seq"]),
            st.sampled_from(WEIRD),
            max_size=3,
        ),
    ),
    st.tuples(
        st.sampled_from(["entries", "deletions"]),
        st.dictionaries(
            st.sampled_from(["limit", "after", "since_seq"]), st.sampled_from(WEIRD), max_size=2
        ),
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(calls, min_size=1, max_size=12))
def test_weird_arguments(make_store: Any, script: list[Any]) -> None:
    store = make_store()
    bid, wire, bundle = make_wire(1)
    store.put(bid, wire, meta_for(bundle))
    for name, args in script:
        try:
            if name == "update_meta":
                store.update_meta(bid, **args)
            elif name == "delete_kw":
                store.delete(
                    bid, args["reason"], disposition=args["disposition"], now_ms=args["now_ms"]
                )
            elif name == "sweep_kw":
                store.sweep_expired(args["now_ms"], batch=args["batch"])
            elif name in ("entries", "deletions"):
                kwargs = {
                    k: v
                    for k, v in args.items()
                    if (name == "entries" and k in ("limit", "after"))
                    or (name == "deletions" and k in ("limit", "since_seq"))
                }
                getattr(store, name)(**kwargs)
            else:
                getattr(store, name)(*args[: METHODS[name]])
        except (StoreError, TypeError):
            pass
    if store.contains(bid):  # a sweep may legitimately have expired it
        assert store.get(bid) == wire
    if hasattr(store, "check"):
        assert store.check() == []
    store.close()  # hypothesis runs many examples per fixture: do not pile up open maps

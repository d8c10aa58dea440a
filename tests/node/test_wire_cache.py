"""The node's wire cache: a byte budget that is never exceeded, and lookups that never lie.

The cache only saves store reads, so what matters is (a) a hit returns exactly the bytes put
for that key, (b) the held bytes never exceed the budget and match what is held, and
(c) discard/replace keep the accounting right. Checked against a plain dict model.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.wirecache import WireCache

_keys = st.binary(min_size=1, max_size=3)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _keys, st.binary(max_size=40)),
        st.tuples(st.just("get"), _keys, st.just(b"")),
        st.tuples(st.just("discard"), _keys, st.just(b"")),
    ),
    max_size=60,
)


@given(budget=st.integers(0, 100), ops=_ops)
@settings(max_examples=150, deadline=None)
def test_cache_hits_are_exact_and_the_budget_holds(budget: int, ops: list) -> None:
    cache = WireCache(budget)
    last_put: dict[bytes, bytes] = {}
    for op, key, wire in ops:
        if op == "put":
            cache.put(key, wire)
            last_put[key] = wire
        elif op == "discard":
            cache.discard(key)
            last_put.pop(key, None)
        else:
            got = cache.get(key)
            assert got is None or got == last_put.get(key)
        assert cache.bytes <= budget
        assert cache.bytes == sum(len(w) for w in cache._entries.values())


def test_oldest_entries_go_first_when_the_budget_is_full() -> None:
    cache = WireCache(10)
    cache.put(b"a", b"1234")
    cache.put(b"b", b"1234")
    cache.put(b"c", b"1234")  # needs room: "a" (the oldest) goes
    assert cache.get(b"a") is None
    assert cache.get(b"b") == b"1234" and cache.get(b"c") == b"1234"
    assert (cache.hits, cache.misses) == (2, 1)


def test_a_wire_larger_than_the_budget_is_not_kept_and_drops_a_stale_entry() -> None:
    cache = WireCache(8)
    cache.put(b"k", b"old")
    cache.put(b"k", b"x" * 9)
    assert cache.get(b"k") is None  # never the stale b"old"
    assert cache.bytes == 0 and len(cache) == 0

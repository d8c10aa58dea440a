"""``resolve_key``: a full store key from hex or a unique hex prefix (shared by the offline
``waystation store`` CLI and the node's store admin operations), on both backends.

It seeks to the prefix's whole bytes instead of walking the store from the start, so it is
checked against a brute-force answer for every prefix length of every stored key."""

from __future__ import annotations

from typing import Any

import pytest
from waystation.store.api import StoreError, iter_all, resolve_key

from tests.store.bundles import make_wire, meta_for


def _fill(store: Any, n: int) -> list[bytes]:
    for seq in range(n):
        bid, wire, bundle = make_wire(seq)
        store.put(bid, wire, meta_for(bundle))
    return [e.key for e in iter_all(store)]


def test_every_prefix_resolves_like_a_brute_force_scan(store: Any) -> None:
    keys = _fill(store, 40)
    hexes = [k.hex() for k in keys]
    for k in keys:
        h = k.hex()
        for n in range(1, len(h) + 1):
            prefix = h[:n]
            matches = [x for x in hexes if x.startswith(prefix)]
            if n == len(h) or len(matches) == 1:
                assert resolve_key(store, prefix.upper()) == k, prefix
            else:
                with pytest.raises(StoreError, match=rf"ambiguous \({len(matches)} bundles\)"):
                    resolve_key(store, prefix)


def test_bad_and_unknown_keys_are_precise_errors(store: Any) -> None:
    keys = _fill(store, 3)
    with pytest.raises(StoreError, match="not a hex key"):
        resolve_key(store, "xyz")
    with pytest.raises(StoreError, match="not a hex key"):
        resolve_key(store, "  ")
    missing = "ff" * len(keys[0])
    assert not any(k.hex() == missing for k in keys)
    with pytest.raises(StoreError, match=f"no bundle with key {missing}"):
        resolve_key(store, missing)

"""Fixtures: every contract test runs once per backend (memory reference and LMDB)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from waystation.store.lmdb_store import LmdbBundleStore
from waystation.store.memory import MemoryBundleStore

StoreFactory = Callable[..., Any]


@pytest.fixture(params=["memory", "lmdb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """``make_store(**quota)`` -> a fresh store of the parametrized backend (closed afterwards)."""
    opened: list[Any] = []

    def factory(**kwargs: Any) -> Any:
        if request.param == "memory":
            store: Any = MemoryBundleStore(**kwargs)
        else:
            store = LmdbBundleStore(tmp_path / f"store{len(opened)}", **kwargs)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> Any:
    return make_store()

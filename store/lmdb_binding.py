"""Selects the LMDB binding: the compiled ``waystation.ext.lmdbfast`` when available.

Selection (one rule for every twin, :mod:`waystation.ext.twins`):

* ``WAYSTATION_PUREPYTHON=1`` forces :mod:`waystation.store.pylmdb_driver` (py-lmdb);
* ``WAYSTATION_REQUIRE_EXT=1`` makes a missing or incomplete extension an ``ImportError``;
* otherwise the extension is used if it imports and has every name of
  ``pylmdb_driver.__all__``.

Only ONE binding may open a given store in a process (LMDB's POSIX locks are per process), so
the whole LMDB backend goes through :data:`driver`. ``IMPLEMENTATION`` is "cython" or
"python".
"""

from __future__ import annotations

from types import ModuleType

from waystation.ext.twins import select_twin
from waystation.store import pylmdb_driver as _pylmdb_driver

__all__ = ["IMPLEMENTATION", "driver"]

driver: ModuleType
driver, IMPLEMENTATION = select_twin("lmdbfast", _pylmdb_driver, "LMDB binding")

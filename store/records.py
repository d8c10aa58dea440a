"""Selects the record builder: the Cython twin ``waystation.ext.storerec`` when available.

Selection (one rule for every twin, :mod:`waystation.ext.twins`):

* ``WAYSTATION_PUREPYTHON=1`` forces :mod:`waystation.store.pyrecords` (the reference);
* ``WAYSTATION_REQUIRE_EXT=1`` makes a missing or incomplete extension an ``ImportError``;
* otherwise the extension is used if it imports and has every name of ``pyrecords.__all__``.

``IMPLEMENTATION`` says which one is active ("cython" or "python"); both give byte-identical
records and raise the same exceptions (``tests/store/test_store_records_differential.py``).
"""

from __future__ import annotations

from types import ModuleType

from waystation.ext.twins import select_twin
from waystation.store import pyrecords as _pyrecords

__all__ = [
    "IMPLEMENTATION",
    "fill_in",
    "fill_in_run",
    "h8",
    "index_keys",
    "pack_deletion",
    "pack_put",
    "stage_deletes",
    "stage_puts",
    "unpack_meta",
]


def _select() -> tuple[ModuleType, str]:
    return select_twin("storerec", _pyrecords, "Cython store records module")


_impl, IMPLEMENTATION = _select()

fill_in = _impl.fill_in
fill_in_run = _impl.fill_in_run
h8 = _impl.h8
index_keys = _impl.index_keys
pack_put = _impl.pack_put
pack_deletion = _impl.pack_deletion
stage_deletes = _impl.stage_deletes
stage_puts = _impl.stage_puts
unpack_meta = _impl.unpack_meta


def implementation_module() -> ModuleType:
    """The module that builds store records in this process."""
    return _impl

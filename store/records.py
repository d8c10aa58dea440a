"""Selects the record builder: the Cython twin ``waystation.ext.storerec`` when available.

Selection follows :mod:`waystation.bundle.codec`:

* ``WAYSTATION_PUREPYTHON=1`` forces :mod:`waystation.store.pyrecords` (the reference);
* ``WAYSTATION_REQUIRE_EXT=1`` makes a missing or incomplete extension an ``ImportError``;
* otherwise the extension is used if it imports and has every name of ``pyrecords.__all__``.

``IMPLEMENTATION`` says which one is active ("cython" or "python"); both give byte-identical
records and raise the same exceptions (``tests/store/test_store_records_differential.py``).
"""

from __future__ import annotations

import os
from types import ModuleType

from waystation.store import pyrecords as _pyrecords

__all__ = [
    "IMPLEMENTATION",
    "fill_in",
    "h8",
    "index_keys",
    "pack_deletion",
    "pack_put",
    "unpack_meta",
]


def _select() -> tuple[ModuleType, str]:
    require = os.environ.get("WAYSTATION_REQUIRE_EXT") == "1"
    if os.environ.get("WAYSTATION_PUREPYTHON") == "1":
        if require:
            raise ImportError("WAYSTATION_REQUIRE_EXT=1 contradicts WAYSTATION_PUREPYTHON=1")
        return _pyrecords, "python"
    try:
        from waystation.ext import storerec  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        if require:
            raise ImportError(
                "WAYSTATION_REQUIRE_EXT=1 but the Cython store records module "
                f"waystation.ext.storerec cannot be imported: {exc}"
            ) from exc
        return _pyrecords, "python"
    missing = [name for name in _pyrecords.__all__ if not hasattr(storerec, name)]
    if missing:
        if require:
            raise ImportError(f"waystation.ext.storerec lacks {', '.join(missing)}")
        return _pyrecords, "python"
    return storerec, "cython"


_impl, IMPLEMENTATION = _select()

fill_in = _impl.fill_in
h8 = _impl.h8
index_keys = _impl.index_keys
pack_put = _impl.pack_put
pack_deletion = _impl.pack_deletion
unpack_meta = _impl.unpack_meta


def implementation_module() -> ModuleType:
    """The module that builds store records in this process."""
    return _impl

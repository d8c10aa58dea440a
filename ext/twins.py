"""Choosing between a Cython twin in ``waystation.ext`` and its pure-Python reference.

One rule for every twin (the codec, the store's record builder):

* ``WAYSTATION_PUREPYTHON=1`` forces the pure-Python reference;
* ``WAYSTATION_REQUIRE_EXT=1`` makes a missing or incomplete extension an ``ImportError`` at
  import time (CI sets it, so a silently failed build cannot pass);
* otherwise the extension is used if it imports and has every name of the reference's
  ``__all__``, else the reference.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["select_twin"]


def select_twin(ext_name: str, reference: ModuleType, what: str) -> tuple[ModuleType, str]:
    """(module, "cython" | "python") for ``waystation.ext.<ext_name>`` vs ``reference``.

    ``what`` names the extension in error messages ("Cython codec", ...).
    """
    require = os.environ.get("WAYSTATION_REQUIRE_EXT") == "1"
    if os.environ.get("WAYSTATION_PUREPYTHON") == "1":
        if require:
            raise ImportError("WAYSTATION_REQUIRE_EXT=1 contradicts WAYSTATION_PUREPYTHON=1")
        return reference, "python"
    qualname = f"waystation.ext.{ext_name}"
    try:
        ext = importlib.import_module(qualname)
    except ImportError as exc:
        if require:
            raise ImportError(
                f"WAYSTATION_REQUIRE_EXT=1 but the {what} {qualname} cannot be imported: {exc}"
            ) from exc
        return reference, "python"
    missing = [name for name in reference.__all__ if not hasattr(ext, name)]
    if missing:
        if require:
            raise ImportError(f"{qualname} lacks {', '.join(missing)}")
        return reference, "python"
    return ext, "cython"

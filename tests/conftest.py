"""Shared fixtures.

``impl`` runs a test once per codec implementation (the pure-Python reference and the Cython
twin). With ``WAYSTATION_REQUIRE_EXT=1`` a missing extension is an error, not a skip, so CI cannot
pass while the compiled path silently failed to build.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# shared/ sits beside the project checkout (../shared), in CI and in development alike.
REFDATA = Path(os.environ.get("WAYSTATION_REFDATA", REPO.parent / "shared" / "refdata"))


@pytest.fixture(scope="session")
def refdata() -> Path:
    if not REFDATA.is_dir():
        pytest.fail(f"reference data not found at {REFDATA} (set WAYSTATION_REFDATA)")
    return REFDATA


def load_refdata_json(name: str) -> Any:
    return json.loads((REFDATA / name).read_text())


_IMPLS = {
    "python": "waystation.bundle.pycodec",
    "cython": "waystation.ext.fastcodec",
}


@pytest.fixture(params=list(_IMPLS))
def impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The codec module under test: the pure-Python reference, then its Cython twin.

    A missing (or incomplete: lacking a name of ``pycodec.__all__``) twin is skipped, unless
    ``WAYSTATION_REQUIRE_EXT=1`` (then it fails the test).
    """
    name = request.param
    try:
        module = importlib.import_module(_IMPLS[name])
    except ImportError as exc:
        if os.environ.get("WAYSTATION_REQUIRE_EXT") == "1":
            pytest.fail(f"{_IMPLS[name]} not importable with WAYSTATION_REQUIRE_EXT=1: {exc}")
        pytest.skip(f"{_IMPLS[name]} not built: {exc}")
    reference = importlib.import_module(_IMPLS["python"])
    missing = [n for n in reference.__all__ if not hasattr(module, n)]
    if missing:
        # the twin is built while it is being written; an incomplete one is treated as absent
        if os.environ.get("WAYSTATION_REQUIRE_EXT") == "1":
            pytest.fail(f"{_IMPLS[name]} lacks {', '.join(missing)}")
        pytest.skip(f"{_IMPLS[name]} incomplete: lacks {', '.join(missing)}")
    yield module

"""Shared fixtures.

``impl`` runs a test once per codec implementation (the pure-Python reference and the Cython
twin). With ``WAYSTATION_REQUIRE_EXT=1`` a missing extension is an error, not a skip, so CI cannot
pass while the compiled path silently failed to build.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
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

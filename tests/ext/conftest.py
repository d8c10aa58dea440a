"""Fixtures for the Cython twin's own tests: the compiled module, or a skip (a failure under
``WAYSTATION_REQUIRE_EXT=1``, so CI cannot pass while the extension silently did not build).

Under ``WAYSTATION_PUREPYTHON=1`` (CI's second, pure-Python pass) these tests are skipped: they
test the twin itself, which the first pass already did, and CI time is shared."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def fast() -> ModuleType:
    if os.environ.get("WAYSTATION_PUREPYTHON") == "1":
        pytest.skip("pure-Python pass: the Cython twin is tested in the extension pass")
    try:
        return importlib.import_module("waystation.ext.fastcodec")
    except ImportError as exc:
        if os.environ.get("WAYSTATION_REQUIRE_EXT") == "1":
            pytest.fail(f"waystation.ext.fastcodec not importable: {exc}")
        pytest.skip(f"waystation.ext.fastcodec not built: {exc}")


@pytest.fixture(scope="session")
def pure() -> ModuleType:
    return importlib.import_module("waystation.bundle.pycodec")

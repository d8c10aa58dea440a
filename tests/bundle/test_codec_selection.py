"""``waystation.bundle.codec`` picks the Cython twin or the pure reference per the environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from waystation.bundle import codec, pycodec

PROBE = "from waystation.bundle import codec; print(codec.IMPLEMENTATION)"


def run(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYSTATION_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )


def test_surface_matches_reference() -> None:
    assert codec.IMPLEMENTATION in ("python", "cython")
    for name in pycodec.__all__:
        assert hasattr(codec, name)
    assert codec.implementation_module().__name__.endswith(("pycodec", "fastcodec"))


def test_purepython_forced() -> None:
    result = run({"WAYSTATION_PUREPYTHON": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "python"


def test_require_ext_contradicting_purepython_fails_loudly() -> None:
    result = run({"WAYSTATION_PUREPYTHON": "1", "WAYSTATION_REQUIRE_EXT": "1"})
    assert result.returncode != 0
    assert "ImportError" in result.stderr


def test_default_prefers_the_twin_when_built() -> None:
    try:
        import waystation.ext.fastcodec  # noqa: F401
    except ImportError:
        pytest.skip("Cython twin not built")
    result = run({"WAYSTATION_REQUIRE_EXT": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cython"

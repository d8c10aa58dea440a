"""The node process's garbage-collector settings (waystation.gctune), checked in a child
process so the test run's own collector is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from waystation.gctune import THRESHOLDS

_CHILD = """
import gc, json
from waystation.gctune import tune_gc
tuned = tune_gc()
print(json.dumps([tuned, gc.get_threshold(), gc.get_freeze_count()]))
"""


def _run(env_value: str | None) -> list[object]:
    env = dict(os.environ)
    env.pop("WAYSTATION_GC", None)
    if env_value is not None:
        env["WAYSTATION_GC"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    result: list[object] = json.loads(out.stdout)
    return result


def test_the_node_freezes_start_up_objects_and_collects_less_often() -> None:
    tuned, thresholds, frozen = _run(None)
    assert tuned is True
    assert tuple(thresholds) == THRESHOLDS  # type: ignore[arg-type]
    assert isinstance(frozen, int) and frozen > 1000  # the imported modules, at least


def test_waystation_gc_default_keeps_cpythons_settings() -> None:
    tuned, thresholds, frozen = _run("default")
    assert tuned is False
    assert tuple(thresholds) == (700, 10, 10)  # type: ignore[arg-type]
    assert frozen == 0

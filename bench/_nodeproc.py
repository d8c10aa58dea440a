"""The node-process launcher the tests use (``tests/node_launch.py``), for the benchmarks.

Benchmarks run as ``python bench/X.py``, which puts bench/ (not the checkout) on ``sys.path``;
this module adds the checkout so there is one definition of "start a node and wait until its
socket answers".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.node_launch import free_port, spawn_node, wait_until_up

__all__ = ["free_port", "spawn_node", "wait_until_up"]

"""Garbage-collector settings for a long-running node process.

Why: a node allocates a handful of short-lived objects per bundle (decoded blocks, metadata,
tuples for the store's bulk calls), nearly all freed by reference counting. CPython's default
collector still runs a young-generation pass every 700 net allocations and, every hundred of
those, a full pass over every live object -- the imported modules, the configuration, the
agent's tables. Measured node to node with 10,000 x 1 KiB bundles (interleaved, three pairs):
5,614-6,145 -> 6,246-6,455 bundles/s, CPU per bundle A 86-93 -> 83-85 us, B 131-145 ->
127-128 us.

``gc.freeze()`` moves everything that exists once the node has imported and configured itself
into a permanent generation that no pass visits again; a higher young-generation threshold
makes passes rarer. Reference cycles are still collected, only later. ``WAYSTATION_GC=default``
keeps CPython's settings (for comparison, or to rule this out when chasing memory).
"""

from __future__ import annotations

import gc
import os

__all__ = ["THRESHOLDS", "tune_gc"]

#: (young generation, middle, old) collection thresholds set by :func:`tune_gc`
THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> bool:
    """Freeze what exists now and raise the thresholds; False if the environment opts out."""
    if os.environ.get("WAYSTATION_GC", "").strip().lower() == "default":
        return False
    gc.collect()  # so that garbage from start-up is not frozen with the live objects
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return True

"""Small persistent node state beside the store: registrations and runtime static routes.

Kept in ``<data dir>/node-state.json``, rewritten atomically (write a temporary file, fsync,
rename, fsync the directory) on every change, so a SIGKILL leaves either the old or the new
version. Registrations change rarely; bundles never go through this file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["NodeState", "load_state", "save_state"]

log = logging.getLogger(__name__)
STATE_VERSION = 1


@dataclass
class NodeState:
    registrations: list[str] = field(default_factory=list)
    routes: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "registrations": self.registrations, "routes": self.routes}


def load_state(path: Path) -> NodeState:
    """Read the state file; a missing file is an empty state, a damaged one is logged and
    replaced by an empty state (bundles are in the store, so nothing stored is lost)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NodeState()
    except (OSError, ValueError) as exc:
        log.error("node state %s unreadable (%s); starting without registrations", path, exc)
        return NodeState()
    if not isinstance(raw, dict) or raw.get("v") != STATE_VERSION:
        log.error("node state %s has an unknown format; ignoring it", path)
        return NodeState()
    regs = [r for r in raw.get("registrations", []) if isinstance(r, str)]
    routes = [
        {"pattern": r["pattern"], "next_hop": r["next_hop"]}
        for r in raw.get("routes", [])
        if isinstance(r, dict)
        and isinstance(r.get("pattern"), str)
        and isinstance(r.get("next_hop"), str)
    ]
    return NodeState(regs, routes)


def save_state(path: Path, state: NodeState) -> None:
    tmp = path.with_suffix(".tmp")
    data = json.dumps(state.to_json(), indent=1).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)

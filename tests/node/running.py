"""An in-process node service for the duration of an ``async with`` block."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from waystation.config import NodeConfig
from waystation.service import NodeService

__all__ = ["running_node"]


@contextlib.asynccontextmanager
async def running_node(config: NodeConfig, **kwargs: Any) -> AsyncIterator[NodeService]:
    """Start ``NodeService(config, **kwargs)``; stop it on the way out, whatever happened."""
    node = NodeService(config, **kwargs)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()

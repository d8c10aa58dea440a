"""Write operations as values, so a batch of them can share one durable transaction.

The group-commit writer (:mod:`waystation.store.group_commit`) queues these and hands a batch
to a backend's ``apply_batch``; each operation succeeds or fails on its own (a duplicate in
the middle of a batch does not cost its neighbours their commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from waystation.store.api import BundleMeta, Disposition, ReasonCode

__all__ = ["DeleteOp", "PutOp", "StoreOp", "SweepOp", "UpdateOp"]


@dataclass(slots=True)
class PutOp:
    key: bytes
    wire: bytes
    meta: BundleMeta


@dataclass(slots=True)
class DeleteOp:
    key: bytes
    reason: int = ReasonCode.NO_ADDITIONAL_INFORMATION
    disposition: Disposition = Disposition.DELETED
    now_ms: int | None = None


@dataclass(slots=True)
class UpdateOp:
    key: bytes
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SweepOp:
    now_ms: int
    batch: int = 256


StoreOp = PutOp | DeleteOp | UpdateOp | SweepOp

"""Bundle custody store: the BundleStore interface, an in-memory reference and LMDB.

Public names live in :mod:`waystation.store.api` (errors, ``BundleMeta``, ``BundleStore``);
backends in :mod:`waystation.store.memory` and :mod:`waystation.store.lmdb_store`; the asyncio
group-commit wrapper in :mod:`waystation.store.group_commit`.
"""

from waystation.store.api import (
    BundleMeta,
    BundleNotFound,
    BundleStore,
    CustodyState,
    DeletionRecord,
    Disposition,
    DuplicateBundle,
    InvalidMeta,
    Priority,
    ReasonCode,
    StoreClosed,
    StoreCorrupt,
    StoredEntry,
    StoreError,
    StoreFull,
    StoreStats,
)

__all__ = [
    "BundleMeta",
    "BundleNotFound",
    "BundleStore",
    "CustodyState",
    "DeletionRecord",
    "Disposition",
    "DuplicateBundle",
    "InvalidMeta",
    "Priority",
    "ReasonCode",
    "StoreClosed",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreStats",
    "StoredEntry",
]

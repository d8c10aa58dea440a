"""The pure-Python LMDB binding: py-lmdb itself, plus the two bulk calls the store uses.

This is the reference twin of the compiled ``waystation.ext.lmdbfast`` (a binding to the
system liblmdb): the store talks to whichever :mod:`waystation.store.lmdb_binding` selected,
through exactly these names. Environments, transactions, cursors and exceptions are py-lmdb's
own; :func:`put_many` and :func:`delete_many` are written here over py-lmdb with the results
the compiled twin gives (``tests/store/test_store_lmdb_binding.py`` checks that).

py-lmdb bundles its own LMDB (0.9.3x); the compiled twin links the system's (Debian 12:
0.9.24). Both use the same data-file and lock-file formats (docs/store.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

from lmdb import (
    BadValsizeError,
    CorruptedError,
    Cursor,
    Environment,
    Error,
    IncompatibleError,
    InvalidError,
    MapFullError,
    MapResizedError,
    NotFoundError,
    PageNotFoundError,
    PanicError,
    Transaction,
    VersionMismatchError,
    open,  # py-lmdb's name (shadows the builtin here on purpose: both twins read the same)
    version,
)

__all__ = [
    "APPEND",
    "NOOVERWRITE",
    "BadValsizeError",
    "CorruptedError",
    "Cursor",
    "Environment",
    "Error",
    "IncompatibleError",
    "InvalidError",
    "MapFullError",
    "MapResizedError",
    "NotFoundError",
    "PageNotFoundError",
    "PanicError",
    "Transaction",
    "VersionMismatchError",
    "commit",
    "delete_many",
    "open",
    "put_many",
    "version",
]

#: put_many flag: refuse (and stop at) an item whose key exists (LMDB's ``MDB_NOOVERWRITE``).
NOOVERWRITE = 0x10
#: put_many flag: the key probably sorts after every key of its sub-database, so put it with
#: LMDB's ``MDB_APPEND`` (fills the last leaf page instead of splitting it in half); a key
#: that does not sort last is put plainly. A hint: it never changes what ends up stored.
APPEND = 0x20000
_FLAGS = NOOVERWRITE | APPEND


def put_many(txn: Any, items: Iterable[tuple[Any, bytes, bytes, int]]) -> int:
    """Insert ``items`` = ``[(db, key, value, flags), ...]`` in order.

    ``flags`` is 0, or :data:`NOOVERWRITE` and/or :data:`APPEND` (a hint that never changes
    the outcome). Returns ``len(items)``, or the index of the first NOOVERWRITE item whose key
    existed; items after it are not applied and the caller should abort the transaction. Runs
    of plain items for one sub-database go through one ``putmulti``; NOOVERWRITE items are
    put one by one so the stop is exact.
    """
    items = list(items)
    total = len(items)
    for item in items:  # check every item before applying any, as the compiled twin does
        if len(item) != 4:
            raise ValueError(f"put_many items are (db, key, value, flags), not {item!r}")
        if item[3] & ~_FLAGS:
            raise ValueError(
                f"put_many: unsupported flags {item[3]!r} (NOOVERWRITE and/or APPEND, or 0)"
            )
    i = 0
    while i < total:
        db, key, value, flags = items[i]
        if flags & NOOVERWRITE:
            # an append refused (key not last) is retried plainly: False is then a duplicate
            if not (
                flags & APPEND and txn.put(key, value, db=db, overwrite=False, append=True)
            ) and not txn.put(key, value, db=db, overwrite=False):
                return i
            i += 1
            continue
        j = i + 1
        while j < total and items[j][0] is db and items[j][3] == flags:
            j += 1
        run = [(k, v) for _, k, v, _ in items[i:j]]
        with txn.cursor(db=db) as cur:
            if flags & APPEND:
                consumed, added = cur.putmulti(run, append=True)
                if added == consumed == len(run):
                    i = j
                    continue
            # some key did not sort last: put the run plainly (re-putting the ones that
            # were appended stores the same values again)
            cur.putmulti(run)
        i = j
    return total


def commit(txn: Any, wake_fd: int | None = None) -> None:
    """``txn.commit()``; first write one byte to ``wake_fd`` (if given).

    The group-commit writer wakes the event loop this way to hand it the previous batch's
    results while this commit syncs. Errors writing ``wake_fd`` are ignored (a full pipe
    already holds a wake-up).
    """
    if wake_fd is not None:
        with contextlib.suppress(OSError):
            os.write(wake_fd, b"\0")
    txn.commit()


def delete_many(txn: Any, items: Iterable[tuple[Any, bytes]]) -> int:
    """Delete ``items`` = ``[(db, key), ...]`` in order; how many of them existed."""
    found = 0
    for db, key in items:
        if txn.delete(key, db=db):
            found += 1
    return found

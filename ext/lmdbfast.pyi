"""Type stub of the compiled LMDB binding (see ext/lmdbfast.pyx; twin of store/pylmdb_driver)."""

from collections.abc import Iterable, Iterator
from typing import Any

from lmdb import (
    BadValsizeError as BadValsizeError,
)
from lmdb import (
    CorruptedError as CorruptedError,
)
from lmdb import (
    Error as Error,
)
from lmdb import (
    IncompatibleError as IncompatibleError,
)
from lmdb import (
    InvalidError as InvalidError,
)
from lmdb import (
    MapFullError as MapFullError,
)
from lmdb import (
    MapResizedError as MapResizedError,
)
from lmdb import (
    NotFoundError as NotFoundError,
)
from lmdb import (
    PageNotFoundError as PageNotFoundError,
)
from lmdb import (
    PanicError as PanicError,
)
from lmdb import (
    VersionMismatchError as VersionMismatchError,
)

__all__: list[str]

NOOVERWRITE: int
APPEND: int

class Database:
    env: Environment

class Environment:
    def __init__(
        self,
        path: str | bytes,
        map_size: int = ...,
        subdir: bool = ...,
        readonly: bool = ...,
        metasync: bool = ...,
        sync: bool = ...,
        map_async: bool = ...,
        mode: int = ...,
        create: bool = ...,
        readahead: bool = ...,
        writemap: bool = ...,
        meminit: bool = ...,
        max_readers: int = ...,
        max_dbs: int = ...,
        max_spare_txns: int = ...,
        lock: bool = ...,
    ) -> None: ...
    @property
    def readonly(self) -> bool: ...
    def path(self) -> str: ...
    def begin(
        self,
        db: Database | None = None,
        parent: None = None,
        write: bool = False,
        buffers: bool = False,
    ) -> Transaction: ...
    def open_db(
        self,
        key: bytes | None = None,
        txn: Transaction | None = None,
        reverse_key: bool = False,
        dupsort: bool = False,
        create: bool = True,
        integerkey: bool = False,
        integerdup: bool = False,
        dupfixed: bool = False,
    ) -> Database: ...
    def info(self) -> dict[str, int]: ...
    def stat(self) -> dict[str, int]: ...
    def set_mapsize(self, map_size: int) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Environment: ...
    def __exit__(self, *exc: object) -> None: ...

class Transaction:
    env: Environment
    def get(self, key: bytes, default: Any = None, db: Database | None = None) -> Any: ...
    def put(
        self,
        key: bytes,
        value: bytes,
        dupdata: bool = True,
        overwrite: bool = True,
        append: bool = False,
        db: Database | None = None,
    ) -> bool: ...
    def delete(self, key: bytes, value: bytes = b"", db: Database | None = None) -> bool: ...
    def cursor(self, db: Database | None = None) -> Cursor: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def put_many(self, items: Iterable[tuple[Database | None, bytes, bytes, int]]) -> int: ...
    def delete_many(self, items: Iterable[tuple[Database | None, bytes]]) -> int: ...
    def __enter__(self) -> Transaction: ...
    def __exit__(self, *exc: object) -> None: ...

class Cursor:
    txn: Transaction
    def first(self) -> bool: ...
    def next(self) -> bool: ...
    def set_range(self, key: bytes) -> bool: ...
    def key(self) -> bytes: ...
    def value(self) -> bytes: ...
    def item(self) -> tuple[bytes, bytes]: ...
    def iternext(self, keys: bool = True, values: bool = True) -> Iterator[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Cursor: ...
    def __exit__(self, *exc: object) -> None: ...

def version() -> tuple[int, int, int]: ...
def open(path: str | bytes, **kwargs: Any) -> Environment: ...
def put_many(
    txn: Transaction, items: Iterable[tuple[Database | None, bytes, bytes, int]]
) -> int: ...
def commit(txn: Transaction, wake_fd: int | None = None) -> None: ...
def delete_many(txn: Transaction, items: Iterable[tuple[Database | None, bytes]]) -> int: ...
def _tune(begin: bool | None = None, bulk: bool | None = None) -> tuple[bool, bool]: ...

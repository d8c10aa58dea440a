"""The two LMDB bindings: the compiled ``waystation.ext.lmdbfast`` and its reference
``waystation.store.pylmdb_driver`` (py-lmdb) give the same results, raise py-lmdb's exception
classes, and read and write each other's stores -- also at the same time from two processes
(same data-file and lock-file formats although they link different LMDB versions).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.store import lmdb_binding, pylmdb_driver
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire, meta_for

ROOT = Path(__file__).resolve().parents[2]


def _compiled() -> ModuleType:
    if os.environ.get("WAYSTATION_PUREPYTHON") == "1":
        pytest.skip("pure-Python pass: the Cython twin is tested in the extension pass")
    try:
        return importlib.import_module("waystation.ext.lmdbfast")
    except ImportError as exc:
        if os.environ.get("WAYSTATION_REQUIRE_EXT") == "1":
            pytest.fail(f"waystation.ext.lmdbfast not importable: {exc}")
        pytest.skip(f"waystation.ext.lmdbfast not built: {exc}")


@pytest.fixture
def fast() -> ModuleType:
    return _compiled()


def test_selection_follows_the_twin_rules() -> None:
    if os.environ.get("WAYSTATION_PUREPYTHON") == "1":
        assert lmdb_binding.IMPLEMENTATION == "python"
        assert lmdb_binding.driver is pylmdb_driver
    elif os.environ.get("WAYSTATION_REQUIRE_EXT") == "1":
        assert lmdb_binding.IMPLEMENTATION == "cython"
    for name in pylmdb_driver.__all__:
        assert hasattr(lmdb_binding.driver, name), name


# -- differential: the same random operations on one environment per binding ---------------

keys = st.one_of(
    st.lists(st.sampled_from(b"abc\x00\xff"), min_size=1, max_size=3).map(bytes),
    st.just(b""),  # LMDB refuses empty keys: both must raise BadValsizeError
    st.binary(min_size=512, max_size=512),  # beyond LMDB's 511-byte key limit
)
values = st.one_of(st.binary(max_size=24), st.binary(min_size=3000, max_size=6000))
dbs = st.sampled_from([None, "a", "b"])
ops = st.one_of(
    st.tuples(st.just("put"), dbs, keys, values, st.booleans()),
    st.tuples(st.just("delete"), dbs, keys),
    st.tuples(st.just("get"), dbs, keys),
    st.tuples(
        st.just("put_many"),
        # flags: bit 0 NOOVERWRITE, bit 1 APPEND (keys from a small alphabet sort last or not)
        st.lists(st.tuples(dbs, keys, values, st.integers(0, 3)), max_size=12),
    ),
    st.tuples(st.just("delete_many"), st.lists(st.tuples(dbs, keys), max_size=12)),
    st.tuples(st.just("walk"), dbs, st.one_of(st.none(), keys), st.booleans()),
    st.tuples(st.just("commit")),
)


class _Side:
    """One environment driven through one binding; every call returns a comparable outcome."""

    def __init__(self, mod: ModuleType, path: Path) -> None:
        self.mod = mod
        self.env = mod.open(str(path), map_size=16 << 20, max_dbs=4, sync=False)
        with self.env.begin(write=True) as txn:
            self.dbs = {n: self.env.open_db(n.encode(), txn=txn) for n in ("a", "b")}
        self.dbs[None] = None  # type: ignore[index]
        self.txn = self.env.begin(write=True)

    def apply(self, op: tuple[Any, ...]) -> Any:
        try:
            return self._apply(op)
        except (lmdb.Error, TypeError, ValueError) as exc:
            if isinstance(exc, lmdb.Error) and op[0] != "get":
                self._restart(abort=True)  # LMDB: a failed write poisons its transaction
            return ("raised", type(exc).__name__)

    def _restart(self, *, abort: bool) -> None:
        if abort:
            self.txn.abort()
        else:
            self.txn.commit()
        self.txn = self.env.begin(write=True)

    def _apply(self, op: tuple[Any, ...]) -> Any:
        kind, txn, dbs = op[0], self.txn, self.dbs
        if kind == "put":
            _, db, key, value, overwrite = op
            return txn.put(key, value, overwrite=overwrite, db=dbs[db])
        if kind == "delete":
            return txn.delete(op[2], db=dbs[op[1]])
        if kind == "get":
            return txn.get(op[2], db=dbs[op[1]])
        if kind == "put_many":
            noov, append = self.mod.NOOVERWRITE, self.mod.APPEND
            items = [
                (dbs[d], k, v, (noov if f & 1 else 0) | (append if f & 2 else 0))
                for d, k, v, f in op[1]
            ]
            done = self.mod.put_many(txn, items)
            if done != len(items):
                self._restart(abort=True)  # the documented contract after a short return
            return done
        if kind == "delete_many":
            return self.mod.delete_many(txn, [(dbs[d], k) for d, k in op[1]])
        if kind == "walk":
            _, db, start, keys_only = op
            with txn.cursor(db=dbs[db]) as cur:
                found = cur.first() if start is None else cur.set_range(start)
                head = (found, cur.key(), cur.value())
                rest = list(cur.iternext(keys=True, values=not keys_only))
                return head, rest, cur.key(), cur.next()
        if kind == "commit":
            self._restart(abort=False)
            return None
        raise AssertionError(kind)

    def contents(self) -> dict[Any, list[tuple[bytes, bytes]]]:
        self.txn.commit()
        with self.env.begin() as txn:
            out = {n: list(txn.cursor(db=db)) for n, db in self.dbs.items()}
        self.env.close()
        return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=st.lists(ops, max_size=25))
def test_both_bindings_give_the_same_results(
    program: list[tuple[Any, ...]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    fast = _compiled()
    base = tmp_path_factory.mktemp("diff")
    ours, ref = _Side(fast, base / "fast"), _Side(pylmdb_driver, base / "py")
    for op in program:
        assert ours.apply(op) == ref.apply(op), op
    assert ours.contents() == ref.contents()


# -- the bulk calls --------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["fast", "python"])
def test_put_many_stops_at_the_first_existing_key(which: str, tmp_path: Path) -> None:
    mod = _compiled() if which == "fast" else pylmdb_driver
    env = mod.open(str(tmp_path), map_size=1 << 22, max_dbs=2)
    try:
        with env.begin(write=True) as txn:
            db = env.open_db(b"d", txn=txn)
            assert mod.put_many(txn, [(db, b"k1", b"1", 0), (None, b"k2", b"2", 0)]) == 2
        noov = mod.NOOVERWRITE
        txn = env.begin(write=True)
        items = [(db, b"k0", b"0", noov), (db, b"k1", b"x", noov), (db, b"k9", b"9", noov)]
        assert mod.put_many(txn, items) == 1
        txn.abort()
        with env.begin(write=True) as txn:
            assert mod.put_many(txn, [(db, b"k1", b"new", 0)]) == 1  # plain put overwrites
            assert mod.put_many(txn, []) == 0
            assert mod.delete_many(txn, [(db, b"k1"), (db, b"zz"), (None, b"k2")]) == 2
            assert txn.get(b"k1", db=db) is None
        with pytest.raises(ValueError), env.begin(write=True) as txn:
            mod.put_many(txn, [(db, b"k", b"v", 0x20)])  # MDB_NODUPDATA is not offered
    finally:
        env.close()


@pytest.mark.parametrize("which", ["fast", "python"])
def test_append_is_a_hint_that_never_changes_the_contents(which: str, tmp_path: Path) -> None:
    """Keys that sort last are appended, others put plainly; duplicates are still refused."""
    mod = _compiled() if which == "fast" else pylmdb_driver
    env = mod.open(str(tmp_path), map_size=1 << 24, max_dbs=2)
    app, noov = mod.APPEND, mod.NOOVERWRITE
    try:
        with env.begin(write=True) as txn:
            db = env.open_db(b"d", txn=txn)
            ascending = [(db, b"%05d" % i, b"v" * 1000, app) for i in range(0, 400, 2)]
            assert mod.put_many(txn, ascending) == len(ascending)
            # not last: in the middle, equal to the last key (overwrites), before the first
            mixed = [
                (db, b"00101", b"mid", app),
                (db, b"00398", b"new", app),
                (db, b"0", b"first", app | noov),
                (db, b"99999", b"last", app | noov),
            ]
            assert mod.put_many(txn, mixed) == len(mixed)
        with env.begin() as txn:
            got = dict(txn.cursor(db=db))
        assert len(got) == 200 + 3
        assert got[b"00101"] == b"mid" and got[b"00398"] == b"new"
        assert got[b"0"] == b"first" and got[b"99999"] == b"last"
        # a duplicate is refused whether or not it is the last key
        for dup in (b"99999", b"00100"):
            txn = env.begin(write=True)
            assert mod.put_many(txn, [(db, dup, b"x", app | noov)]) == 0
            txn.abort()
        # appended pages are filled: 200 ascending 1 KB values take over 70 pages when
        # each split halves a page, under 60 when it leaves the old page full
        assert env.info()["last_pgno"] < 64
    finally:
        env.close()


# -- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["fast", "python"])
def test_errors_are_py_lmdbs_classes(which: str, tmp_path: Path) -> None:
    mod = _compiled() if which == "fast" else pylmdb_driver
    env = mod.open(str(tmp_path), map_size=64 << 10, max_dbs=2)
    try:
        with pytest.raises(lmdb.NotFoundError) as nf:
            env.open_db(b"missing", create=False)
        assert nf.value.code == -30798 and "MDB_NOTFOUND" in str(nf.value)
        txn = env.begin(write=True)
        with pytest.raises(lmdb.MapFullError) as full:
            mod.put_many(txn, [(None, b"%05d" % i, b"x" * 500, 0) for i in range(1000)])
        assert "MDB_MAP_FULL" in str(full.value)
        txn.abort()
        with env.begin(write=True) as txn, pytest.raises(lmdb.BadValsizeError):
            txn.put(b"", b"v")
        txn = env.begin()
        txn.abort()
        with pytest.raises(lmdb.Error, match="closed/deleted/dropped"):
            txn.get(b"k")
        with pytest.raises(TypeError), env.begin(write=True) as txn:
            txn.put("text", b"v")
    finally:
        env.close()


def test_closing_the_environment_ends_its_transactions(fast: ModuleType, tmp_path: Path) -> None:
    env = fast.open(str(tmp_path), map_size=1 << 22)
    with env.begin(write=True) as txn:
        txn.put(b"k", b"v")
    reader = env.begin()
    cur = reader.cursor()
    assert cur.first()
    env.close()
    for call in (lambda: reader.get(b"k"), cur.key, lambda: env.begin()):
        with pytest.raises(lmdb.Error, match="closed/deleted/dropped"):
            call()
    reader.abort()  # harmless on an ended transaction
    env.close()  # idempotent


def test_one_environment_per_process(fast: ModuleType, tmp_path: Path) -> None:
    env = fast.open(str(tmp_path), map_size=1 << 22)
    try:
        with pytest.raises(lmdb.Error, match="already open in this process"):
            fast.open(str(tmp_path), map_size=1 << 22)
    finally:
        env.close()
    fast.open(str(tmp_path), map_size=1 << 22).close()  # closed: may be opened again


# -- the two bindings on one store -----------------------------------------------------------

_PEER = textwrap.dedent(
    """
    import sys
    from waystation.store import lmdb_binding
    from waystation.store.lmdb_store import LmdbBundleStore
    from tests.store.bundles import make_wire, meta_for

    path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = LmdbBundleStore(path)
    for i in range(first, first + count):
        b, w, x = make_wire(i)
        store.put(b, w, meta_for(x))
    print(lmdb_binding.IMPLEMENTATION, store.stats().count, flush=True)
    sys.stdin.readline()  # hold the store open (and a reader slot) until told
    print(store.stats().count, len(store.check()), flush=True)
    store.close()
    """
)


def _peer(pure: bool, path: Path, first: int, count: int) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("WAYSTATION_REQUIRE_EXT", None)
    env.pop("WAYSTATION_PUREPYTHON", None)
    if pure:
        env["WAYSTATION_PUREPYTHON"] = "1"
    return subprocess.Popen(
        [sys.executable, "-c", _PEER, str(path), str(first), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_a_store_is_shared_by_both_bindings_at_once(fast: ModuleType, tmp_path: Path) -> None:
    """A py-lmdb process and a liblmdb process hold one store open together, each writes,
    each sees the other's bundles: the lock table and data file formats agree."""
    path = tmp_path / "store"
    LmdbBundleStore(path).close()
    py_peer = _peer(True, path, 0, 20)
    fast_peer = None
    try:
        assert py_peer.stdout is not None and py_peer.stdin is not None
        assert py_peer.stdout.readline().split() == ["python", "20"]
        fast_peer = _peer(False, path, 100, 15)
        assert fast_peer.stdout is not None and fast_peer.stdin is not None
        assert fast_peer.stdout.readline().split() == ["cython", "35"]
        py_peer.stdin.write("\n")
        py_peer.stdin.flush()
        assert py_peer.stdout.readline().split() == ["35", "0"]  # sees the other's writes
        fast_peer.stdin.write("\n")
        fast_peer.stdin.flush()
        assert fast_peer.stdout.readline().split() == ["35", "0"]
        assert py_peer.wait(30) == 0 and fast_peer.wait(30) == 0
    finally:
        for p in (py_peer, fast_peer):
            if p is not None and p.poll() is None:
                p.kill()
    # and this process, with whichever binding it selected, reads what both wrote
    with LmdbBundleStore(path) as store:
        assert store.stats().count == 35
        assert store.check() == []
        b, w, _ = make_wire(107)
        assert store.get(b) == w


def test_store_written_by_one_binding_opens_with_the_other(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with LmdbBundleStore(path) as store:
        for i in range(10):
            b, w, x = make_wire(i)
            store.put(b, w, meta_for(x))
        store.delete(make_wire(3)[0])
    other = lmdb_binding.IMPLEMENTATION != "python"
    peer = _peer(other, path, 50, 5)
    out, _ = peer.communicate("\n", timeout=60)
    assert out.split()[1:] == ["14", "14", "0"]
    with LmdbBundleStore(path) as store:
        assert store.stats().count == 14
        assert store.check() == []
        assert [r.key for r in store.deletions()] == [make_wire(3)[0].key()]

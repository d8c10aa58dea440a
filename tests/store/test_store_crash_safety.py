"""Crash safety: SIGKILL a writer at random moments; every acknowledged bundle must survive.

A forked child process (``crash_writer.py``) puts real bundles through the group-commit path as fast
as it can and prints ``ack <seq>`` after each put returns. The parent kills it with SIGKILL at
a random moment, 20 times over the same store directory; after each kill the store must reopen
(with a full offline page walk), every acknowledged bundle must be present and byte-identical,
and data, metadata, checksums and all indexes must agree.

Also: a truncated or overwritten data file gives ``StoreCorrupt`` with a clear message, never a
crash (LMDB itself would SIGBUS reading past a truncated file's end).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from waystation.store.api import BundleMeta, StoreCorrupt, StoreError
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store import crash_writer
from tests.store.bundles import make_wire
from tests.store.crash_writer import payload_size

KILLS = 20


def _run_and_kill(path: Path, first: int, rng: random.Random) -> set[int]:
    """Fork a writer, SIGKILL it at a random moment after its first ack; return the acks."""
    read_fd, write_fd = os.pipe()
    # fork, not spawn: the child starts writing at once instead of importing everything again
    proc = multiprocessing.get_context("fork").Process(
        target=crash_writer.run, args=(str(path), first, write_fd), daemon=True
    )
    proc.start()
    os.close(write_fd)
    acked: set[int] = set()
    started = threading.Event()

    def reader() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            for line in pipe:
                if line.startswith(b"ack "):
                    acked.add(int(line[4:]))
                    started.set()  # writing is under way: from here on any moment is fair game

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    if not started.wait(30):
        proc.kill()
        raise AssertionError(f"writer acknowledged nothing (exit code {proc.exitcode})")
    time.sleep(rng.uniform(0.0, 0.3))
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    thread.join(10)  # drain everything the child wrote before it died
    assert proc.exitcode == -signal.SIGKILL
    return acked


def test_kill_9_loses_no_acknowledged_bundle(tmp_path: Path) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    path = tmp_path / "store"
    all_acked: set[int] = set()
    for round_no in range(KILLS):
        acked = _run_and_kill(path, first=round_no * 1_000_000, rng=rng)
        all_acked |= acked
        with LmdbBundleStore(path, max_bytes=1 << 30, verify="full") as store:
            for seq in sorted(acked):
                bid, wire, _ = make_wire(seq, payload_size=payload_size(seq))
                assert store.get(bid) == wire, f"round {round_no}: bundle {seq} damaged"
            assert store.check() == []
            assert store.stats().count >= len(all_acked)
    # every bundle acknowledged in any round is still there at the end
    with LmdbBundleStore(path, max_bytes=1 << 30) as store:
        for seq in sorted(all_acked):
            assert store.contains(make_wire(seq, payload_size=payload_size(seq))[0])


def _filled_store(path: Path, n: int = 200) -> None:
    with LmdbBundleStore(path) as store:
        for i in range(n):
            bid, wire, bundle = make_wire(i, payload_size=2000)
            store.put(bid, wire, BundleMeta.for_bundle(bundle, received_ms=1))


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9])
def test_truncated_data_file_is_store_corrupt(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "store"
    _filled_store(path)
    data = path / "data.mdb"
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(int(size * keep))
    for verify in ("quick", "full"):
        with pytest.raises(StoreCorrupt) as info:
            LmdbBundleStore(path, verify=verify)  # type: ignore[arg-type]
        assert "data.mdb" in str(info.value) or str(path) in str(info.value)


def test_overwritten_meta_pages_are_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "store"
    _filled_store(path)
    with open(path / "data.mdb", "r+b") as f:
        f.write(os.urandom(8192))  # both LMDB meta pages
    with pytest.raises(StoreCorrupt):
        LmdbBundleStore(path)


def test_scribbled_data_pages_found_by_full_verify(tmp_path: Path) -> None:
    path = tmp_path / "store"
    _filled_store(path)
    data = path / "data.mdb"
    size = data.stat().st_size
    rng = random.Random(7)
    with open(data, "r+b") as f:
        for _ in range(20):
            f.seek(rng.randrange(8192, size - 64))
            f.write(os.urandom(64))
    with pytest.raises(StoreCorrupt):
        LmdbBundleStore(path, verify="full")


def test_flipped_payload_byte_is_caught_by_checksum(tmp_path: Path) -> None:
    path = tmp_path / "store"
    bid, wire, bundle = make_wire(1, payload_size=3000)
    with LmdbBundleStore(path) as store:
        store.put(bid, wire, BundleMeta.for_bundle(bundle, received_ms=1))
    data = path / "data.mdb"
    raw = bytearray(data.read_bytes())
    at = raw.find(wire[200:260])
    assert at > 0
    raw[at] ^= 0xFF
    data.write_bytes(bytes(raw))
    with LmdbBundleStore(path) as store:
        with pytest.raises(StoreCorrupt, match="checksum"):
            store.get(bid)
        assert store.check() != []


def test_missing_data_file_is_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "store"
    _filled_store(path, 3)
    (path / "data.mdb").unlink()
    with pytest.raises(StoreCorrupt, match="missing or empty"):
        LmdbBundleStore(path)


def test_foreign_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError):
        LmdbBundleStore(tmp_path / "f")
    with pytest.raises(StoreError):
        LmdbBundleStore(tmp_path / "nothing", create=False)
    with pytest.raises(StoreCorrupt):
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "data.mdb").write_bytes(os.urandom(20000))
        LmdbBundleStore(tmp_path / "junk")


def test_foreign_lmdb_environment_is_refused_untouched(tmp_path: Path) -> None:
    import lmdb

    env = lmdb.open(str(tmp_path / "other"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
    env.close()
    before = (tmp_path / "other" / "data.mdb").read_bytes()
    with pytest.raises(StoreCorrupt, match="not a waystation store"):
        LmdbBundleStore(tmp_path / "other")
    assert (tmp_path / "other" / "data.mdb").read_bytes() == before


def test_store_without_its_marker_is_recognised(tmp_path: Path) -> None:
    """A crash between creating the environment and writing the marker loses nothing."""
    path = tmp_path / "store"
    _filled_store(path, 5)
    (path / "waystation-store.json").unlink()
    with LmdbBundleStore(path) as store:
        assert store.stats().count == 5
    assert (path / "waystation-store.json").exists()

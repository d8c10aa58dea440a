"""Crash safety: SIGKILL a writer at random moments; every acknowledged bundle must survive.

A child process (``crash_writer.py``) puts real bundles through the group-commit path as fast
as it can and prints ``ack <seq>`` after each put returns. The parent kills it with SIGKILL at
a random moment, 20 times over the same store directory; after each kill the store must reopen
(with a full offline page walk), every acknowledged bundle must be present and byte-identical,
and data, metadata, checksums and all indexes must agree.

Also: a truncated or overwritten data file gives ``StoreCorrupt`` with a clear message, never a
crash (LMDB itself would SIGBUS reading past a truncated file's end).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from waystation.store.api import BundleMeta, StoreCorrupt, StoreError
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire
from tests.store.crash_writer import payload_size

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 20


def _run_and_kill(path: Path, first: int, rng: random.Random) -> set[int]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: set[int] = set()
    ready = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ack "):
                acked.add(int(line[4:]))
                ready.set()  # writing is under way: from here on any moment is fair game

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    if not ready.wait(30):
        proc.kill()
        raise AssertionError(f"writer did not start: {proc.stderr.read() if proc.stderr else ''}")
    time.sleep(rng.uniform(0.0, 0.3))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    thread.join(10)  # drain everything the child flushed before it died
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    return acked


def test_kill_9_loses_no_acknowledged_bundle(tmp_path: Path) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    path = tmp_path / "store"
    all_acked: set[int] = set()
    for round_no in range(KILLS):
        acked = _run_and_kill(path, first=round_no * 1_000_000, rng=rng)
        assert acked, f"round {round_no}: the writer acknowledged nothing before the kill"
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

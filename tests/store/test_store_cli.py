"""``waystation store`` on a stopped node's data directory: list, show, export, delete, stats,
check and log, plus the precise errors for a missing or damaged store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from waystation.cli import main
from waystation.store.lmdb_store import LmdbBundleStore

from tests.store.bundles import make_wire, meta_for


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    with LmdbBundleStore(tmp_path / "store") as store:
        for i in range(6):
            bid, wire, bundle = make_wire(i, dest_node=2 + i % 2, payload_size=100 + i)
            store.put(
                bid,
                wire,
                meta_for(bundle, queue="ipn:9.0" if i % 2 else None, extra={"raw": b"\x01"}),
            )
    return tmp_path


def run(data_dir: Path, *argv: str) -> int:
    return main(["store", "--data-dir", str(data_dir), *argv])


def keys(data_dir: Path) -> list[str]:
    with LmdbBundleStore(data_dir / "store") as store:
        return [e.key.hex() for e in store.entries()]


def test_list_filters(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "list") == 0
    assert "6 bundle(s)" in capsys.readouterr().out
    assert run(data_dir, "list", "--destination", "ipn:3.1", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(r["destination"] == "ipn:3.1" for r in rows)
    assert all(r["extra"] == {"raw": "01"} for r in rows)
    assert run(data_dir, "list", "--queue", "ipn:9.0", "--state", "received") == 0
    assert "3 bundle(s)" in capsys.readouterr().out
    assert run(data_dir, "list", "--state", "local") == 0
    assert "0 bundle(s)" in capsys.readouterr().out


def test_show_decodes_the_bundle(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = keys(data_dir)[2]
    assert run(data_dir, "show", key, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["key"] == key
    assert doc["bundle"]["destination"] == "ipn:2.1"
    assert doc["bundle"]["blocks"][-1]["type"] == 1  # the payload block
    assert doc["bundle_id"].startswith("ipn:1.1 @")


def test_export_is_byte_identical(data_dir: Path, tmp_path: Path) -> None:
    key = keys(data_dir)[1]
    out = tmp_path / "b.bundle"
    assert run(data_dir, "export", key, "-o", str(out)) == 0
    with LmdbBundleStore(data_dir / "store") as store:
        assert out.read_bytes() == store.get(bytes.fromhex(key))


def test_delete_records_reason(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = keys(data_dir)[0]
    assert run(data_dir, "delete", key, "--reason", "no_known_route") == 0
    assert "reason 6" in capsys.readouterr().out
    assert key not in keys(data_dir)
    assert run(data_dir, "log", "--json") == 0
    (entry,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (entry["key"], entry["reason"], entry["disposition"]) == (key, 6, "deleted")


def test_stats_and_check(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "stats", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] == 6 and doc["queues"] == {"ipn:9.0": 3}
    assert doc["by_state"] == {"received": 6}
    assert run(data_dir, "check") == 0
    assert capsys.readouterr().out.strip().endswith("ok")


def test_errors_are_one_line_and_nonzero(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(data_dir, "show", "ffff") == 1
    assert "no bundle with key ffff" in capsys.readouterr().err
    assert run(data_dir, "show", "zz") == 1
    assert "not a hex key" in capsys.readouterr().err
    assert run(data_dir, "show", keys(data_dir)[0][:10]) == 1
    assert "ambiguous" in capsys.readouterr().err
    assert run(tmp_path / "nowhere", "list") == 2
    assert "no store at" in capsys.readouterr().err
    data = data_dir / "store" / "data.mdb"
    data.write_bytes(data.read_bytes()[:8192])
    assert run(data_dir, "list") == 2
    assert "truncated" in capsys.readouterr().err

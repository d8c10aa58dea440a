"""``waystation store`` against a real running node process: the verbs go through its app
socket (store_list/get/delete/stats), and the same data directory works offline once the node
has stopped."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from waystation.bundle import codec

from tests.integration.test_node_process import NodeProcess, node  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(90)


def test_store_verbs_through_a_running_node(node: NodeProcess, tmp_path: Path) -> None:  # noqa: F811
    for text in ("doomed", "kept"):
        assert node.cli("send", "dtn://itest/inbox", text).returncode == 0
    store = ["store", "--data-dir", str(node.data)]

    listed = node.cli(*store, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.decode().splitlines()]
    assert len(rows) == 2 and {r["destination"] for r in rows} == {"dtn://itest/inbox"}
    assert node.cli(*store, "list", "-d", "dtn://itest/none", "--json").stdout == b""

    by_payload: dict[bytes, str] = {}
    for r in rows:
        out = tmp_path / f"{r['key']}.bundle"
        exported = node.cli(*store, "export", r["key"], "-o", str(out))
        assert exported.returncode == 0, exported.stderr
        by_payload[codec.decode_bundle(out.read_bytes()).payload] = r["key"]
    doomed = by_payload[b"doomed"]

    shown = node.cli(*store, "show", doomed[:-2], "--json")  # a unique prefix
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["key"] == doomed and doc["bundle"]["destination"] == "dtn://itest/inbox"

    stats = json.loads(node.cli(*store, "stats", "--json").stdout)
    assert stats["count"] == 2 and stats["held"]["count"] == 2  # the node's own view

    deleted = node.cli(*store, "delete", doomed, "--reason", "transmission-canceled")
    assert deleted.returncode == 0, deleted.stderr
    assert "through the node" in deleted.stdout.decode()
    unknown = node.cli(*store, "delete", "00" * 12)
    assert unknown.returncode == 1
    assert unknown.stderr.decode().strip() == (
        "waystation store: no bundle with key " + "00" * 12 + " (not-found)"
    )

    got = node.cli("recv", "dtn://itest/inbox", "-n", "2", "--wait", "1.5")
    assert got.stdout == b"kept\n"  # the deleted bundle is never delivered

    node.stop(signal.SIGTERM)
    offline = node.cli(*store, "log", "--json")  # the directory, now without a node
    assert any(
        json.loads(line)["key"] == doomed and json.loads(line)["reason"] == 3
        for line in offline.stdout.decode().splitlines()
    )
    assert node.cli(*store, "list", "--json").returncode == 0
    gone = node.cli(*store, "--socket", str(node.socket), "list")
    assert gone.returncode == 2 and b"no node socket at" in gone.stderr

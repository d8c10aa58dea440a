"""A full *disk* (not the quota) becomes StoreFull, and the store stays usable and intact.

Runs the child in a private mount namespace (``unshare -m``) on a 3 MiB tmpfs, so the host's
filesystems are never touched; skipped where that is not permitted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("disk_full_child.py")


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root and mount namespaces")
def test_disk_full_is_store_full_and_recoverable(tmp_path: Path) -> None:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size=3m tmpfs {mnt} && exec {sys.executable} {CHILD} {mnt / 'store'}"
    )
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["error"] is not None and "disk full" in report["error"]
    assert report["stored_before_full"] > 5
    assert report["readable"] is True
    assert report["accepted_after_delete"] is True
    assert report["check"] == []
    assert report["reopened_intact"] is True
    assert report["check_after_reopen"] == []

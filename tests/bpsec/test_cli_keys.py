"""``waystation keys`` end to end (in-process CLI, real files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from waystation.bundle.bpsec.keystore import KeyStore
from waystation.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_keys_workflow_between_two_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    rc, out, _ = run(capsys, "keys", "--data-dir", a, "generate")
    assert rc == 0 and "fingerprint" in out
    rc, out, _ = run(capsys, "keys", "--data-dir", a, "generate")
    assert rc == 1  # refuses to overwrite
    rc, pem, _ = run(capsys, "keys", "--data-dir", a, "export")
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "a.pem").write_text(pem)
    rc, out, _ = run(capsys, "keys", "--data-dir", b, "trust", "node-a", str(tmp_path / "a.pem"),
                     "--node", "ipn:1.0")
    assert rc == 0
    rc, out, err = run(capsys, "keys", "--data-dir", b, "symmetric", "add", "ab")
    assert rc == 0 and len(err.strip()) == 64  # generated key shown once, on stderr
    secret = err.strip()
    rc, out, _ = run(capsys, "keys", "--data-dir", b, "list", "--json")
    doc = json.loads(out)
    assert doc["trusted"][0]["node"] == "ipn:1.0"
    assert doc["symmetric"] == ["ab"]
    assert secret not in out
    rc, out, _ = run(capsys, "keys", "--data-dir", a, "show", "--json")
    assert json.loads(out)["fingerprint"] == doc["trusted"][0]["fingerprint"]
    assert KeyStore.for_data_dir(Path(b)).symmetric("ab").material.hex() == secret
    rc, _, err = run(capsys, "keys", "--data-dir", b, "symmetric", "add", "x", "--hex", "zz")
    assert rc == 1 and "hex" in err
    rc, _, _ = run(capsys, "keys", "--data-dir", b, "untrust", "node-a")
    assert rc == 0
    rc, _, err = run(capsys, "keys", "--data-dir", b, "untrust", "node-a")
    assert rc == 1 and "no trusted key" in err

"""The ``waystation bundle`` commands (including the offline ``bundle demo`` tour)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from waystation.bundle.pycodec import decode_bundle
from waystation.cli import main


def test_encode_then_decode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.bundle"
    rc = main(
        [
            "bundle",
            "encode",
            "--src",
            "ipn:1.1",
            "--dst",
            "dtn://b/app",
            "--payload",
            "hi",
            "--hop-limit",
            "7",
            "--report",
            "delivery",
            "--crc",
            "crc16",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    b = decode_bundle(out.read_bytes())
    assert bytes(b.payload) == b"hi" and b.hop_count == (7, 0) and b.primary.crc_type == 1
    assert str(b.primary.report_to) == "ipn:1.0"
    capsys.readouterr()
    assert main(["bundle", "decode", "--json", str(out)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["primary"]["destination"] == "dtn://b/app"
    assert d["payload_text"] == "hi"
    assert main(["bundle", "decode", str(out)]) == 0
    assert "ipn:1.1 -> dtn://b/app" in capsys.readouterr().out


def test_decode_reports_precise_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x9f\x89\x07")
    assert main(["bundle", "decode", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "DecodeError" in err and "at byte" in err
    hexfile = tmp_path / "hex"
    hexfile.write_text("zz")
    assert main(["bundle", "decode", "--hex", str(hexfile)]) == 1
    assert main(["bundle", "decode", str(tmp_path / "missing")]) == 1


def test_encode_rejects_bad_eids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "bundle",
            "encode",
            "--src",
            "ipn:x",
            "--dst",
            "ipn:2.1",
            "--payload",
            "x",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 1
    assert "ipn" in capsys.readouterr().err


def test_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "demo"]) == 0
    out = capsys.readouterr().out
    assert "identical = True" in out and "CRCError" in out

"""RFC 9174 §4.4.1 certificates: NODE-ID in the subjectAltName, and the `waystation tls` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from waystation.cli import main
from waystation.convergence.errors import TlsPolicyError
from waystation.convergence.tls import (
    ID_ON_BUNDLE_EID,
    TlsSettings,
    make_ca,
    make_node_certificate,
    node_ids_from_certificate,
)


def test_node_certificate_carries_bundle_eid_other_name_and_uri() -> None:
    ca = make_ca()
    cert = x509.load_pem_x509_certificate(make_node_certificate("ipn:10.0", ca).cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    (other,) = san.get_values_for_type(x509.OtherName)
    assert other.type_id == ID_ON_BUNDLE_EID
    # The value is the DER IA5String (RFC 9174 Appendix C): tag 0x16, length, ASCII.
    assert other.value == b"\x16\x08ipn:10.0"
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["ipn:10.0"]
    assert node_ids_from_certificate(cert) == {"ipn:10.0"}


def test_node_id_read_from_other_name_alone_and_from_der() -> None:
    ca = make_ca()
    pem = make_node_certificate("dtn://a/", ca, uri_san=False).cert_pem
    cert = x509.load_pem_x509_certificate(pem)
    from cryptography.hazmat.primitives.serialization import Encoding

    assert node_ids_from_certificate(cert.public_bytes(Encoding.DER)) == {"dtn://a/"}


def test_certificate_without_node_id() -> None:
    ca = make_ca()
    cert = make_node_certificate(
        "dtn://a/", ca, uri_san=False, bundle_eid_san=False, dns_names=("a.example",)
    )
    assert node_ids_from_certificate(x509.load_pem_x509_certificate(cert.cert_pem)) == frozenset()


def test_missing_files_give_a_tls_policy_error(tmp_path: Path) -> None:
    with pytest.raises(TlsPolicyError, match="cannot load certificate"):
        TlsSettings(tmp_path / "no.crt", tmp_path / "no.key").context(True)


def test_cli_makes_ca_and_certificate_and_shows_node_id(tmp_path: Path, capsys) -> None:
    assert main(["tls", "make-ca", str(tmp_path)]) == 0
    assert main(["tls", "make-cert", "ipn:7.0", "--ca", str(tmp_path), "--name", "n7"]) == 0
    assert (tmp_path / "n7.key").stat().st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert main(["tls", "show", str(tmp_path / "n7.crt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["node_ids"] == ["ipn:7.0"]
    # No silent overwrite; precise errors for bad input.
    assert main(["tls", "make-cert", "ipn:7.0", "--ca", str(tmp_path), "--name", "n7"]) == 1
    assert "already exist" in capsys.readouterr().err
    assert main(["tls", "make-cert", "not-a-uri", "--ca", str(tmp_path)]) == 1
    assert main(["tls", "make-cert", "ipn:1.0", "--ca", str(tmp_path / "nope")]) == 1
    assert "make-ca" in capsys.readouterr().err
    (tmp_path / "junk.crt").write_bytes(b"junk")
    assert main(["tls", "show", str(tmp_path / "junk.crt")]) == 1


def test_node_id_from_a_certificate_made_by_openssl(tmp_path: Path) -> None:
    """A third-party encoder: the openssl command HDTN documents for TCPCLv4 node certificates
    (otherName id-on-bundleEID with an IA5String)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed")
    crt = tmp_path / "c.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp_path / "k.pem"),
            "-out",
            str(crt),
            "-days",
            "2",
            "-subj",
            "/CN=hdtn-style",
            "-addext",
            "subjectAltName = otherName:1.3.6.1.5.5.7.8.11;IA5:ipn:10.0, URI:https://x.example/",
        ],
        check=True,
        capture_output=True,
    )
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    # The https URI is not a node ID; only dtn:/ipn: URIs and BundleEID otherNames count.
    assert node_ids_from_certificate(cert) == {"ipn:10.0"}

"""RFC 9173 Appendix A: reproduce all four examples byte for byte, and verify/decrypt them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from waystation.bundle.bpsec import (
    BcbAesGcm,
    BibHmacSha2,
    StaticKeys,
    SymmetricKey,
    add_confidentiality,
    add_integrity,
    decrypt,
    verify_integrity,
)
from waystation.bundle.bpsec.contexts.bib_hmac_sha2 import ippt_parts
from waystation.bundle.bpsec.errors import SecurityCheckFailed
from waystation.bundle.eid import parse_eid

from ._bundles import decode, encode

REFDATA = Path(__file__).resolve().parents[2].parent / "shared" / "refdata"


def vector(name: str) -> dict[str, Any]:
    return json.loads((REFDATA / f"rfc9173_{name}.json").read_text())


def key(hexkey: str, name: str = "k") -> SymmetricKey:
    return SymmetricKey(name, bytes.fromhex(hexkey))


def test_a1_simple_integrity_reproduces_bib_and_bundle() -> None:
    v = vector("A1")
    bundle = decode(bytes.fromhex(v["input_bundle_hex"]))
    ctx = BibHmacSha2(key(v["keys"]["hmac_key_hex"]), variant=7, scope_flags=0)
    out = add_integrity(bundle, [1], ctx, parse_eid("ipn:2.1"), number=2)
    assert encode(out).hex() == v["expected_bundle_hex"]


def test_a1_ippt_matches_rfc() -> None:
    from waystation.bundle.bpsec.canonical import encode_primary
    from waystation.bundle.bpsec.operations import _scope, _views

    v = vector("A1")
    bundle = decode(bytes.fromhex(v["input_bundle_hex"]))
    scope = _scope(encode_primary(bundle.primary), _views(bundle), 1, (11, 2, 0),
                   parse_eid("ipn:2.1"))
    assert b"".join(ippt_parts(scope, 0)).hex() == v["ippt_hex"]


def test_a1_verify_and_accept() -> None:
    v = vector("A1")
    signed = decode(bytes.fromhex(v["expected_bundle_hex"]))
    keys = StaticKeys([key(v["keys"]["hmac_key_hex"])])
    same, outcomes = verify_integrity(signed, keys)
    assert [o.target for o in outcomes] == [1]
    assert encode(same).hex() == v["expected_bundle_hex"]  # verifier leaves the BIB
    accepted, _ = verify_integrity(signed, keys, remove=True)
    assert encode(accepted).hex() == v["input_bundle_hex"]  # acceptor removes it


def test_a1_wrong_key_fails() -> None:
    v = vector("A1")
    signed = decode(bytes.fromhex(v["expected_bundle_hex"]))
    with pytest.raises(SecurityCheckFailed) as info:
        verify_integrity(signed, StaticKeys([key("00" * 16)]))
    assert info.value.target == 1
    assert info.value.reason_code == 15


def test_a2_confidentiality_with_key_wrap_reproduces_bundle() -> None:
    v = vector("A2")
    k = v["keys"]
    bundle = decode(bytes.fromhex(v["input_bundle_hex"]))
    ctx = BcbAesGcm(
        key(k["key_encryption_key_hex"]),
        variant=1,
        scope_flags=0,
        wrap=True,
        iv=bytes.fromhex(k["iv_hex"]),
        cek=bytes.fromhex(k["content_encryption_key_hex"]),
    )
    out = add_confidentiality(bundle, [1], ctx, parse_eid("ipn:2.1"), number=2)
    assert encode(out).hex() == v["expected_bundle_hex"]


def test_a2_decrypt_with_kek() -> None:
    v = vector("A2")
    enc = decode(bytes.fromhex(v["expected_bundle_hex"]))
    plain, outcomes = decrypt(enc, StaticKeys([key(v["keys"]["key_encryption_key_hex"])]))
    assert [(o.service, o.target) for o in outcomes] == [("confidentiality", 1)]
    assert encode(plain).hex() == v["input_bundle_hex"]


def test_a3_multiple_sources_reproduces_bundle() -> None:
    v = vector("A3")
    k = v["keys"]
    bundle = decode(bytes.fromhex(v["input_bundle_hex"]))
    bcb = BcbAesGcm(key(k["bcb_content_encryption_key_hex"]), variant=1, scope_flags=0,
                    iv=bytes.fromhex(k["bcb_iv_hex"]))
    step1 = add_confidentiality(bundle, [1], bcb, parse_eid("ipn:2.1"), number=4)
    bib = BibHmacSha2(key(k["bib_hmac_key_hex"]), variant=5, scope_flags=0)
    step2 = add_integrity(step1, [0, 2], bib, parse_eid("ipn:3.0"), number=3)
    assert encode(step2).hex() == v["expected_bundle_hex"]


def test_a3_accept_whole_bundle() -> None:
    v = vector("A3")
    k = v["keys"]
    final = decode(bytes.fromhex(v["expected_bundle_hex"]))
    keys_bib = StaticKeys([key(k["bib_hmac_key_hex"])])
    keys_bcb = StaticKeys([key(k["bcb_content_encryption_key_hex"])])
    verified, outcomes = verify_integrity(final, keys_bib, remove=True)
    assert sorted(o.target for o in outcomes) == [0, 2]
    plain, _ = decrypt(verified, keys_bcb)
    assert encode(plain).hex() == v["input_bundle_hex"]


def test_a4_full_scope_reproduces_bundle() -> None:
    v = vector("A4")
    k = v["keys"]
    bundle = decode(bytes.fromhex(v["input_bundle_hex"]))
    bib = BibHmacSha2(key(k["bib_hmac_key_hex"]), variant=6, scope_flags=7)
    signed = add_integrity(bundle, [1], bib, parse_eid("ipn:2.1"), number=3)
    bcb = BcbAesGcm(key(k["bcb_content_encryption_key_hex"]), variant=3, scope_flags=7,
                    iv=bytes.fromhex(k["bcb_iv_hex"]))
    # The RFC lists the BIB first among the BCB targets and places the BCB after the BIB.
    out = add_confidentiality(signed, [3, 1], bcb, parse_eid("ipn:2.1"), number=2, position=1)
    assert encode(out).hex() == v["expected_bundle_hex"]


def test_a4_decrypt_then_verify_and_accept() -> None:
    v = vector("A4")
    k = v["keys"]
    final = decode(bytes.fromhex(v["expected_bundle_hex"]))
    plain, outcomes = decrypt(final, StaticKeys([key(k["bcb_content_encryption_key_hex"])]))
    assert sorted(o.target for o in outcomes) == [1, 3]
    assert plain.blocks[0].data.hex() == v["bcb_inputs"]["bib_plaintext_btsd_hex"]
    accepted, outcomes = verify_integrity(plain, StaticKeys([key(k["bib_hmac_key_hex"])]),
                                          remove=True)
    assert [o.target for o in outcomes] == [1]
    assert encode(accepted).hex() == v["input_bundle_hex"]


def test_a3_whole_bundle_accepted_by_destination_policy() -> None:
    # A.3's final bundle is the only strictly valid RFC 9171 bundle of Appendix A: decode it
    # with full validation and run the destination's security policy over it.
    from waystation.bundle.bpsec.keystore import MemoryKeys
    from waystation.bundle.bpsec.policy import SecurityPolicy, apply_inbound_policy

    from ._bundles import decode_strict

    v = vector("A3")
    k = v["keys"]
    policy = SecurityPolicy.from_config(["ipn:1.0"], {
        "sign_originated": False,
        "require_signature": False,
        "rules": [
            {"role": "acceptor", "context": "bcb-aes-gcm", "key": "bcb", "variant": 1},
            {"role": "acceptor", "context": "bib-hmac-sha2", "key": "bib",
             "targets": ["primary", 7]},
        ],
    })
    keys = MemoryKeys(symmetric=[key(k["bib_hmac_key_hex"], "bib"),
                                 key(k["bcb_content_encryption_key_hex"], "bcb")])
    verdict = apply_inbound_policy(decode_strict(bytes.fromhex(v["expected_bundle_hex"])),
                                   policy, keys)
    assert verdict.accepted, verdict.reason
    assert encode(verdict.bundle).hex() == v["input_bundle_hex"]
    assert sorted((type(e).__name__, e.target) for e in verdict.events) == [
        ("ConfidentialityAccepted", 1), ("IntegrityVerified", 0), ("IntegrityVerified", 2)]

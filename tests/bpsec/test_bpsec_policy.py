"""Security policy: defaults, configuration, verdicts with RFC 9172 reason codes, and the
three-node scenario (A signs and encrypts, B forwards without keys, C verifies and decrypts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from waystation.bundle.bpsec import PolicyError, SecurityReason, SymmetricKey
from waystation.bundle.bpsec.asb import AbstractSecurityBlock, encode_asb
from waystation.bundle.bpsec.keystore import KeyStore, MemoryKeys, public_key_text
from waystation.bundle.bpsec.policy import (
    BundleRejected,
    ConfidentialityAccepted,
    IntegrityVerified,
    SecurityPolicy,
    SecurityRule,
    apply_inbound_policy,
    apply_outbound_policy,
)
from waystation.bundle.eid import parse_eid
from waystation.bundle.model import CanonicalBlock

from ._bundles import decode_strict, encode
from ._factory import make_bundle


def nodes(tmp_path: Path) -> tuple[KeyStore, KeyStore, KeyStore]:
    a, b, c = (KeyStore.for_data_dir(tmp_path / n) for n in "abc")
    for store in (a, b, c):
        store.identity()
    c.trust("a", public_key_text(a.identity().public), node="ipn:1.0")
    shared = a.add_symmetric("a-to-c")
    c.add_symmetric("a-to-c", shared.material)
    return a, b, c


ENCRYPT_TO_C = {
    "rules": [
        {"name": "encrypt-to-c", "role": "source", "context": "bcb-aes-gcm",
         "destination": "ipn:3.*", "key": "a-to-c"},
        {"name": "decrypt-from-a", "role": "acceptor", "context": "bcb-aes-gcm",
         "source": "ipn:1.*", "key": "a-to-c"},
    ]
}


def test_a_signs_and_encrypts_b_forwards_c_verifies_and_decrypts(tmp_path: Path) -> None:
    a, b, c = nodes(tmp_path)
    pol_a = SecurityPolicy.from_config(["ipn:1.0"], ENCRYPT_TO_C)
    pol_b = SecurityPolicy.from_config(["ipn:2.0"], None)
    pol_c = SecurityPolicy.from_config(["ipn:3.0"], ENCRYPT_TO_C)
    original = make_bundle(b"top secret telemetry" * 10)

    wire = encode(apply_outbound_policy(original, pol_a, a))
    assert b"top secret" not in wire

    # B: not the destination, no keys for A's traffic: it verifies nothing and forwards as is.
    at_b = apply_inbound_policy(decode_strict(wire), pol_b, b)
    assert at_b.accepted and not at_b.events
    forwarded = encode(at_b.bundle)
    assert forwarded == wire

    at_c = apply_inbound_policy(decode_strict(forwarded), pol_c, c)
    assert at_c.accepted, at_c.reason
    assert bytes(at_c.bundle.payload) == bytes(original.payload)
    assert not [x for x in at_c.bundle.blocks if x.block_type in (11, 12)]  # all accepted
    kinds = sorted(type(e).__name__ for e in at_c.events)
    assert kinds == ["ConfidentialityAccepted", "ConfidentialityAccepted", "IntegrityVerified"]
    assert any(isinstance(e, IntegrityVerified) and e.context_id == 3 for e in at_c.events)
    assert any(isinstance(e, ConfidentialityAccepted) and e.target == 1 for e in at_c.events)


def test_unsigned_bundle_rejected_with_missing_operation(tmp_path: Path) -> None:
    _, _, c = nodes(tmp_path)
    verdict = apply_inbound_policy(make_bundle(), SecurityPolicy.default(["ipn:3.0"]), c)
    assert not verdict.accepted
    assert verdict.reason_code == SecurityReason.MISSING_SECURITY_OPERATION == 12
    assert isinstance(verdict.events[-1], BundleRejected)


def test_untrusted_signer_rejected_with_failed_operation(tmp_path: Path) -> None:
    _, b, c = nodes(tmp_path)
    signed = apply_outbound_policy(make_bundle(), SecurityPolicy.default(["ipn:1.0"]), b)
    verdict = apply_inbound_policy(signed, SecurityPolicy.default(["ipn:3.0"]), c)
    assert not verdict.accepted and verdict.reason_code == 15


def test_tampered_signed_bundle_rejected(tmp_path: Path) -> None:
    a, _, c = nodes(tmp_path)
    signed = apply_outbound_policy(make_bundle(), SecurityPolicy.default(["ipn:1.0"]), a)
    signed.blocks[-1].data = b"forged payload"
    verdict = apply_inbound_policy(signed, SecurityPolicy.default(["ipn:3.0"]), c)
    assert (verdict.accepted, verdict.reason_code) == (False, 15)


def test_signed_bundle_accepted_and_bib_removed_at_destination(tmp_path: Path) -> None:
    a, _, c = nodes(tmp_path)
    signed = apply_outbound_policy(make_bundle(), SecurityPolicy.default(["ipn:1.0"]), a)
    assert [x.block_type for x in signed.blocks].count(11) == 1
    verdict = apply_inbound_policy(decode_strict(encode(signed)),
                                   SecurityPolicy.default(["ipn:3.0"]), c)
    assert verdict.accepted
    assert encode(verdict.bundle) == encode(make_bundle())


def test_unknown_context_and_conflicts_get_their_reason_codes(tmp_path: Path) -> None:
    _, _, c = nodes(tmp_path)
    pol = SecurityPolicy.default(["ipn:3.0"])
    unknown = make_bundle()
    asb = AbstractSecurityBlock((1,), 77, parse_eid("ipn:1.0"), (), (((1, b"?"),),))
    unknown.blocks.insert(0, CanonicalBlock(11, 5, 0, 0, encode_asb(asb)))
    assert apply_inbound_policy(unknown, pol, c).reason_code == 13
    conflict = make_bundle()
    for n in (5, 6):
        conflict.blocks.insert(0, CanonicalBlock(11, n, 0, 0, encode_asb(asb)))
    assert apply_inbound_policy(conflict, pol, c).reason_code == 16
    garbage = make_bundle()
    garbage.blocks.insert(0, CanonicalBlock(12, 5, 1, 0, b"\xff\xff"))
    assert apply_inbound_policy(garbage, pol, c).reason_code == 15


def test_fragments_are_deferred() -> None:
    frag = make_bundle()
    frag.primary.flags |= 1
    frag.primary.fragment_offset, frag.primary.total_adu_length = 0, 999
    verdict = apply_inbound_policy(frag, SecurityPolicy.default(["ipn:3.0"]), MemoryKeys())
    assert verdict.accepted and verdict.deferred


def test_policy_config_errors_are_precise() -> None:
    with pytest.raises(PolicyError, match="role"):
        SecurityPolicy.from_config(["ipn:1.0"], {"rules": [{"role": "x", "context": "cose-sign1"}]})
    with pytest.raises(PolicyError, match="needs a key"):
        SecurityRule("r", "source", "bcb-aes-gcm")
    with pytest.raises(PolicyError, match="unknown keys"):
        SecurityPolicy.from_config(["ipn:1.0"], {"sign": True})
    with pytest.raises(PolicyError, match="primary"):
        SecurityRule("r", "source", "bcb-aes-gcm", key="k", targets=("primary",))
    off = SecurityPolicy.from_config(["ipn:1.0"], {"sign_originated": False,
                                                  "require_signature": False})
    assert off.rules == ()
    b = make_bundle()
    assert apply_outbound_policy(b, off, MemoryKeys()) is b


def test_waypoint_rules_skip_what_is_already_secured() -> None:
    # A waypoint (forwarder) rule for traffic from ipn:1.* meets a bundle that is already
    # signed and encrypted: nothing to add, and no exception.
    keys = MemoryKeys(symmetric=[SymmetricKey("w", b"\x07" * 32)])
    origin = SecurityPolicy.from_config(["ipn:1.0"], {"rules": [
        {"role": "source", "context": "bcb-aes-gcm", "key": "w"}]})
    secured = apply_outbound_policy(make_bundle(), origin, keys)
    waypoint = SecurityPolicy.from_config(["ipn:2.0"], {"sign_originated": False, "rules": [
        {"role": "source", "context": "bcb-aes-gcm", "key": "w", "source": "ipn:1.*"},
        {"role": "source", "context": "bib-hmac-sha2", "key": "w", "source": "ipn:1.*"}]})
    again = apply_outbound_policy(secured, waypoint, keys, originated=False)
    assert encode(again) == encode(secured)


def test_destination_never_delivers_an_encrypted_payload(tmp_path: Path) -> None:
    # C has no rule (or key) for A's encryption: rejecting beats delivering ciphertext.
    a, _, c = nodes(tmp_path)
    sealed = apply_outbound_policy(make_bundle(), SecurityPolicy.from_config(["ipn:1.0"],
                                                                             ENCRYPT_TO_C), a)
    verdict = apply_inbound_policy(sealed, SecurityPolicy.default(["ipn:3.0"]), c)
    assert (verdict.accepted, verdict.reason_code) == (False, 15)
    assert "no acceptor rule" in verdict.reason

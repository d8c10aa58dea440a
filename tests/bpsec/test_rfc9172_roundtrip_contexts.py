"""Every context and parameter combination: add, encode, decode, verify/decrypt, remove."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from waystation.bundle.bpsec import (
    BcbAesGcm,
    BibHmacSha2,
    CoseMac0,
    CoseSign1,
    SecurityCheckFailed,
    SigningKey,
    StaticKeys,
    SymmetricKey,
    TrustedKey,
    add_confidentiality,
    add_integrity,
    decrypt,
    verify_integrity,
)
from waystation.bundle.eid import parse_eid

from ._bundles import decode, encode
from ._factory import make_bundle

SRC = parse_eid("ipn:1.0")
K16 = SymmetricKey("k16", bytes(range(16)))
K32 = SymmetricKey("k32", bytes(range(32)))
KHMAC = SymmetricKey("khmac", b"\x5a" * 48)


@pytest.mark.parametrize(
    ("variant", "scope", "wrap", "targets"),
    [(v, s, w, t) for v, s, w in itertools.product((5, 6, 7), range(8), (False, True))
     for t in ([1],)] + [(6, 7, False, [0, 1, 2]), (5, 1, True, [0])],
)
def test_bib_hmac_sha2_roundtrip(variant: int, scope: int, wrap: bool, targets: list[int]) -> None:
    key = K32 if wrap else KHMAC
    original = make_bundle()
    signed = add_integrity(original, targets, BibHmacSha2(key, variant, scope, wrap), SRC)
    received = decode(encode(signed))
    keys = StaticKeys([key])
    _, outcomes = verify_integrity(received, keys)
    assert sorted(o.target for o in outcomes) == sorted(targets)
    accepted, _ = verify_integrity(received, keys, remove=True)
    assert encode(accepted) == encode(original)
    with pytest.raises(SecurityCheckFailed):
        verify_integrity(received, StaticKeys([SymmetricKey("other", b"\x01" * len(key.material))]))


@pytest.mark.parametrize(
    ("variant", "scope", "wrap"),
    list(itertools.product((1, 3), range(8), (False, True))),
)
def test_bcb_aes_gcm_roundtrip(variant: int, scope: int, wrap: bool) -> None:
    key = K32 if (wrap or variant == 3) else K16
    original = make_bundle()
    sealed = add_confidentiality(original, [1, 2], BcbAesGcm(key, variant, scope, wrap), SRC)
    assert sealed.payload != original.payload
    assert len(sealed.payload) == len(original.payload)  # RFC 9173 §4.6: same length
    received = decode(encode(sealed))
    plain, outcomes = decrypt(received, StaticKeys([key]))
    assert sorted(o.target for o in outcomes) == [1, 2]
    assert encode(plain) == encode(original)


def _signing_keys() -> list[SigningKey]:
    return [
        SigningKey(ed25519.Ed25519PrivateKey.generate()),
        SigningKey(ec.generate_private_key(ec.SECP256R1())),
        SigningKey(ec.generate_private_key(ec.SECP384R1())),
    ]


@pytest.mark.parametrize("key", _signing_keys(), ids=["ed25519", "p256", "p384"])
@pytest.mark.parametrize(
    "aad_scope", [{0: 1, -1: 1, -2: 1}, {0: 1}, {-1: 1}, {2: 3, 0: 1}], ids=str
)
def test_cose_sign1_roundtrip(key: SigningKey, aad_scope: dict[int, int]) -> None:
    original = make_bundle()
    signed = add_integrity(original, [1], CoseSign1(key, aad_scope=aad_scope), SRC)
    received = decode(encode(signed))
    trusted = StaticKeys(trusted=[TrustedKey("a", key.public, node="ipn:1.0")])
    accepted, outcomes = verify_integrity(received, trusted, remove=True)
    assert [(o.target, o.context_id) for o in outcomes] == [(1, 3)]
    assert encode(accepted) == encode(original)
    # The same key trusted for another node does not vouch for ipn:1.0 (no impersonation).
    wrong_node = StaticKeys(trusted=[TrustedKey("a", key.public, node="ipn:9.0")])
    with pytest.raises(SecurityCheckFailed):
        verify_integrity(received, wrong_node)


@pytest.mark.parametrize("alg", [4, 5, 6, 7])
def test_cose_mac0_roundtrip(alg: int) -> None:
    original = make_bundle()
    signed = add_integrity(original, [0, 1], CoseMac0(KHMAC, alg=alg), SRC)
    received = decode(encode(signed))
    _, outcomes = verify_integrity(received, StaticKeys([KHMAC]))
    assert sorted(o.target for o in outcomes) == [0, 1]


@pytest.mark.parametrize(("alg", "key"), [(1, K16), (3, K32)])
def test_cose_encrypt0_roundtrip(alg: int, key: SymmetricKey) -> None:
    from waystation.bundle.bpsec import CoseEncrypt0

    original = make_bundle()
    sealed = add_confidentiality(original, [1, 2], CoseEncrypt0(key, alg=alg), SRC)
    assert len(sealed.payload) == len(original.payload) + 16  # ciphertext || tag
    received = decode(encode(sealed))
    plain, outcomes = decrypt(received, StaticKeys([key]))
    assert sorted(o.target for o in outcomes) == [1, 2]
    assert encode(plain) == encode(original)
    with pytest.raises(SecurityCheckFailed):
        decrypt(received, StaticKeys([SymmetricKey(key.name, bytes(len(key.material)))]))

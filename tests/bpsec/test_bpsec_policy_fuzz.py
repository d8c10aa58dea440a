"""Hostile input through the node's entry point: a verdict, never an unexpected exception."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.bpsec import SigningKey, SymmetricKey, TrustedKey
from waystation.bundle.bpsec.keystore import MemoryKeys
from waystation.bundle.bpsec.policy import SecurityPolicy, check_wire, protect_wire
from waystation.bundle.errors import BundleError

from ._bundles import encode
from ._factory import make_bundle

SIGNER = SigningKey(ed25519.Ed25519PrivateKey.generate())
SHARED = SymmetricKey("k", b"\x33" * 32)
RULES = {
    "rules": [
        {"role": "source", "context": "bcb-aes-gcm", "key": "k"},
        {"role": "source", "context": "bib-hmac-sha2", "key": "k", "targets": ["primary"]},
        {"role": "acceptor", "context": "bcb-aes-gcm", "key": "k"},
        {"role": "acceptor", "context": "bib-hmac-sha2", "key": "k", "targets": ["primary"]},
    ]
}
KEYS = MemoryKeys(SIGNER, [SHARED], [TrustedKey("a", SIGNER.public, node="ipn:1.0")])
WIRE = protect_wire(encode(make_bundle()), SecurityPolicy.from_config(["ipn:1.0"], RULES), KEYS)
AT_C = SecurityPolicy.from_config(["ipn:3.0"], RULES)


def test_unmodified_bundle_is_accepted() -> None:
    verdict, out = check_wire(WIRE, AT_C, KEYS)
    assert verdict.accepted, verdict.reason
    assert out == encode(make_bundle())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4))
def test_mutated_bundles_get_a_verdict(flips: list[tuple[int, int]]) -> None:
    wire = bytearray(WIRE)
    for index, mask in flips:
        wire[index % len(wire)] ^= mask
    try:
        verdict, _ = check_wire(bytes(wire), AT_C, KEYS)
    except BundleError as exc:  # only the codec may refuse (CRC, structure)
        assert "bpsec" not in type(exc).__module__
        return
    if verdict.accepted:
        # Only possible when the mutation hit bytes outside the protected content.
        assert bytes(verdict.bundle.payload) == bytes(make_bundle().payload)
    else:
        assert verdict.reason_code in (8, 12, 13, 15, 16)


@settings(max_examples=300, deadline=None)
@given(
    block=st.integers(0, 10),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1,
                   max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 200)),
)
def test_corrupted_block_data_gets_a_verdict(block: int, flips: list[tuple[int, int]],
                                             cut: int | None) -> None:
    # Corrupt the block-type-specific data after decoding (as if the CRCs had been fixed up):
    # this reaches the ASB parser and the contexts rather than the codec's CRC check.
    from waystation.bundle.bpsec.policy import apply_inbound_policy

    from ._bundles import decode

    bundle = decode(WIRE)
    target = bundle.blocks[block % len(bundle.blocks)]
    data = bytearray(target.data)
    for index, mask in flips:
        if data:
            data[index % len(data)] ^= mask
    if cut is not None:
        data = data[:cut]
    target.data = bytes(data)
    verdict = apply_inbound_policy(bundle, AT_C, KEYS)
    if verdict.accepted:
        assert bytes(verdict.bundle.payload) == bytes(make_bundle().payload)
    else:
        assert verdict.reason_code in (8, 12, 13, 15, 16)


SIGN_ONLY = protect_wire(encode(make_bundle()), SecurityPolicy.default(["ipn:1.0"]), KEYS)


@settings(max_examples=400, deadline=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1,
                   max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 150)),
)
def test_corrupted_cose_bib_gets_a_verdict(flips: list[tuple[int, int]], cut: int | None) -> None:
    from waystation.bundle.bpsec.policy import apply_inbound_policy

    from ._bundles import decode

    bundle = decode(SIGN_ONLY)
    (bib,) = [b for b in bundle.blocks if b.block_type == 11]
    data = bytearray(bib.data)
    for index, mask in flips:
        data[index % len(data)] ^= mask
    bib.data = bytes(data if cut is None else data[:cut])
    verdict = apply_inbound_policy(bundle, SecurityPolicy.default(["ipn:3.0"]), KEYS)
    if not verdict.accepted:
        assert verdict.reason_code in (8, 12, 13, 15, 16)

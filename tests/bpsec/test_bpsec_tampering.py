"""Flip any byte of a signed target (or of the primary block in its AAD): verification fails."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.bpsec import (
    BibHmacSha2,
    CoseSign1,
    SecurityCheckFailed,
    SigningKey,
    StaticKeys,
    SymmetricKey,
    TrustedKey,
    add_integrity,
    verify_integrity,
)
from waystation.bundle.bpsec.canonical import encode_primary
from waystation.bundle.eid import parse_eid
from waystation.bundle.errors import BundleError
from waystation.bundle.pycodec import encode_primary_block  # the reference, vs the selected codec

from ._bundles import decode, encode
from ._factory import make_bundle

SIGNER = SigningKey(ed25519.Ed25519PrivateKey.generate())
TRUST = StaticKeys(trusted=[TrustedKey("a", SIGNER.public, node="ipn:1.0")])
HKEY = SymmetricKey("h", b"\x42" * 32)
PAYLOAD = bytes(range(48))


def _signed(ctx) -> tuple[bytes, int, int]:  # type: ignore[no-untyped-def]
    wire = encode(add_integrity(make_bundle(PAYLOAD), [1], ctx, parse_eid("ipn:1.0")))
    start = wire.rindex(PAYLOAD)
    return wire, start, start + len(PAYLOAD)


@pytest.mark.parametrize(
    ("ctx", "keys"),
    [(CoseSign1(SIGNER), TRUST), (BibHmacSha2(HKEY), StaticKeys([HKEY]))],
    ids=["cose-ed25519", "hmac-sha384"],
)
def test_every_payload_byte_is_covered(ctx, keys) -> None:  # type: ignore[no-untyped-def]
    wire, start, end = _signed(ctx)
    verify_integrity(decode(wire), keys)
    for i in range(start, end):
        tampered = bytearray(wire)
        tampered[i] ^= 0x80
        bundle = decode(_fix_crcs(bytes(tampered)))
        with pytest.raises(SecurityCheckFailed) as info:
            verify_integrity(bundle, keys)
        assert info.value.target == 1
        assert info.value.reason_code == 15


def _fix_crcs(wire: bytes) -> bytes:
    # Recompute CRCs so the tampering reaches the security layer (an attacker can do that too).
    return encode(decode_lenient_crc(wire))


def decode_lenient_crc(wire: bytes):  # type: ignore[no-untyped-def]
    import cbor2
    from waystation.bundle.dtntime import CreationTimestamp
    from waystation.bundle.eid import EndpointID
    from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock

    items = cbor2.loads(wire)
    p = items[0]
    primary = PrimaryBlock(p[1], p[2], EndpointID.from_cbor_obj(p[3]),
                           EndpointID.from_cbor_obj(p[4]), EndpointID.from_cbor_obj(p[5]),
                           CreationTimestamp(*p[6]), p[7])
    return Bundle(primary, [CanonicalBlock(*b[:5]) for b in items[1:]])


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["lifetime", "sequence", "time", "destination", "flags"]),
       delta=st.integers(1, 1000))
def test_primary_block_changes_break_cose_signature(field: str, delta: int) -> None:
    # The default COSE AAD scope includes the whole primary block: re-addressing or re-timing
    # a signed bundle is detected even though only the payload is the target.
    wire, _, _ = _signed(CoseSign1(SIGNER))
    bundle = decode(wire)
    p = bundle.primary
    if field == "lifetime":
        p.lifetime_ms += delta
    elif field == "sequence":
        p.creation = p.creation._replace(sequence=p.creation.sequence + delta)
    elif field == "time":
        p.creation = p.creation._replace(time_ms=p.creation.time_ms + delta)
    elif field == "destination":
        p.destination = parse_eid(f"ipn:{3 + delta}.1")
    else:
        p.flags ^= 0x20  # "application acknowledgement requested"
    with pytest.raises(SecurityCheckFailed):
        verify_integrity(decode(encode(bundle)), TRUST)


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_random_corruption_never_verifies_falsely(index: int, mask: int) -> None:
    wire, _, _ = _signed(CoseSign1(SIGNER))
    tampered = bytearray(wire)
    tampered[index % len(wire)] ^= mask
    try:
        bundle = decode(bytes(tampered))
    except BundleError:
        return  # the codec caught it (CRC or structure)
    try:
        verify_integrity(bundle, TRUST)
    except BundleError:
        return
    # Verified: then every byte that matters must be unchanged.
    assert bytes(bundle.payload) == PAYLOAD
    assert encode_primary(bundle.primary) == encode_primary(decode(wire).primary)


@settings(max_examples=100, deadline=None)
@given(
    seq=st.integers(0, 2**64 - 1),
    t=st.integers(0, 2**64 - 1),
    lifetime=st.integers(0, 2**64 - 1),
    crc=st.sampled_from([0, 1, 2]),
    frag=st.booleans(),
)
def test_canonical_primary_matches_codec(seq: int, t: int, lifetime: int, crc: int,
                                         frag: bool) -> None:
    b = make_bundle(crc_type=crc)
    p = b.primary
    p.creation = p.creation._replace(time_ms=t, sequence=seq)
    p.lifetime_ms = lifetime
    if frag:
        p.flags |= 1
        p.fragment_offset, p.total_adu_length = 5, 500
    assert encode_primary(p) == bytes(encode_primary_block(p))

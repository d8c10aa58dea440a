"""RFC 9172 §3 rules on adding and receiving security blocks, and hostile ASBs."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.bpsec import (
    AbstractSecurityBlock,
    BcbAesGcm,
    BibHmacSha2,
    ConflictingSecurity,
    ForbiddenOperation,
    MalformedSecurityBlock,
    StaticKeys,
    SymmetricKey,
    UnknownSecurityContext,
    add_confidentiality,
    add_integrity,
    decode_asb,
    decrypt,
    encode_asb,
    security_blocks,
    verify_integrity,
)
from waystation.bundle.eid import parse_eid
from waystation.bundle.model import CanonicalBlock

from ._bundles import decode, encode
from ._factory import make_bundle

SRC = parse_eid("ipn:1.0")
KEY = SymmetricKey("k", b"\x11" * 32)
BIB = BibHmacSha2(KEY)
BCB = BcbAesGcm(KEY)


def test_bib_must_not_target_a_security_block() -> None:
    b = add_integrity(make_bundle(), [1], BIB, SRC, number=5)
    with pytest.raises(ForbiddenOperation, match=r"§3\.7"):
        add_integrity(b, [5], BIB, SRC)


def test_no_second_bib_on_same_target() -> None:
    b = add_integrity(make_bundle(), [1], BIB, SRC)
    with pytest.raises(ForbiddenOperation, match=r"§3\.2"):
        add_integrity(b, [1], BIB, SRC)


def test_no_bib_over_an_encrypted_target() -> None:
    b = add_confidentiality(make_bundle(), [1], BCB, SRC)
    with pytest.raises(ForbiddenOperation, match=r"§3\.9"):
        add_integrity(b, [1], BIB, SRC)


def test_bcb_must_not_target_primary_or_bcb_or_twice() -> None:
    with pytest.raises(ForbiddenOperation, match="primary"):
        add_confidentiality(make_bundle(), [0], BCB, SRC)
    b = add_confidentiality(make_bundle(), [1], BCB, SRC, number=9)
    with pytest.raises(ForbiddenOperation):
        add_confidentiality(b, [9], BCB, SRC)
    with pytest.raises(ForbiddenOperation, match="already encrypted"):
        add_confidentiality(b, [1], BCB, SRC)


def test_bcb_sets_replicate_flag() -> None:
    b = add_confidentiality(make_bundle(), [1], BCB, SRC, number=9)
    assert b.block_by_number(9).flags & 0x01  # type: ignore[union-attr]


def test_bcb_over_signed_target_encrypts_the_bib_too() -> None:
    signed = add_integrity(make_bundle(), [1], BIB, SRC, number=5)
    sealed = add_confidentiality(signed, [1], BCB, SRC, number=6)
    blocks = {sb.number: sb for sb in security_blocks(sealed)}
    assert blocks[5].asb is None  # BIB is ciphertext now
    assert blocks[6].asb is not None and set(blocks[6].asb.targets) == {1, 5}
    plain, _ = decrypt(sealed, StaticKeys([KEY]))
    accepted, outcomes = verify_integrity(plain, StaticKeys([KEY]), remove=True)
    assert [o.target for o in outcomes] == [1]
    assert encode(accepted) == encode(make_bundle())


def test_bcb_encrypts_whole_multi_target_bib_when_it_covers_its_own_header() -> None:
    signed = add_integrity(make_bundle(), [0, 1, 2], BIB, SRC, number=5)  # scope 7
    sealed = add_confidentiality(signed, [1], BCB, SRC, number=6)
    (bcb,) = [sb for sb in security_blocks(sealed) if not sb.is_bib]
    assert bcb.asb is not None and set(bcb.asb.targets) == {1, 5}
    plain, _ = decrypt(sealed, StaticKeys([KEY]))
    _, outcomes = verify_integrity(plain, StaticKeys([KEY]))
    assert sorted(o.target for o in outcomes) == [0, 1, 2]


def test_bcb_splits_a_multi_target_bib() -> None:
    bib = BibHmacSha2(KEY, scope_flags=3)  # own header not in scope: results can move
    signed = add_integrity(make_bundle(), [0, 1, 2], bib, SRC, number=5)
    sealed = add_confidentiality(signed, [1], BCB, SRC, number=6)
    readable = [sb for sb in security_blocks(sealed) if sb.is_bib and sb.asb is not None]
    assert [sb.asb.targets for sb in readable] == [(0, 2)]  # type: ignore[union-attr]
    # A verifier without the AES key still checks the primary and age block signatures.
    _, outcomes = verify_integrity(sealed, StaticKeys([KEY]))
    assert sorted(o.target for o in outcomes) == [0, 2]
    plain, _ = decrypt(sealed, StaticKeys([KEY]))
    _, outcomes = verify_integrity(plain, StaticKeys([KEY]))
    assert sorted(o.target for o in outcomes) == [0, 1, 2]


def test_fragment_payload_cannot_be_secured() -> None:
    b = make_bundle()
    b.primary.flags |= 0x01
    b.primary.fragment_offset, b.primary.total_adu_length = 0, 100
    with pytest.raises(ForbiddenOperation, match="fragment"):
        add_integrity(b, [1], BIB, SRC)


def _with_block(bundle, block_type: int, number: int, asb: AbstractSecurityBlock):  # type: ignore[no-untyped-def]
    bundle.blocks.insert(0, CanonicalBlock(block_type, number, 0, 0, encode_asb(asb)))
    return bundle


def test_received_duplicate_bib_targets_conflict() -> None:
    b = add_integrity(make_bundle(), [1], BIB, SRC, number=5)
    asb = decode_asb(bytes(b.block_by_number(5).data))  # type: ignore[union-attr]
    _with_block(b, 11, 6, asb)
    with pytest.raises(ConflictingSecurity) as info:
        security_blocks(b)
    assert info.value.reason_code == 16


def test_received_bib_over_bcb_conflicts() -> None:
    b = add_confidentiality(make_bundle(), [1], BCB, SRC, number=5)
    asb = AbstractSecurityBlock((5,), 1, SRC, (), (((1, b"x" * 48),),))
    _with_block(b, 11, 6, asb)
    with pytest.raises(ConflictingSecurity):
        security_blocks(b)


def test_received_missing_target_is_malformed() -> None:
    asb = AbstractSecurityBlock((42,), 1, SRC, (), (((1, b"x"),),))
    b = _with_block(make_bundle(), 11, 6, asb)
    with pytest.raises(MalformedSecurityBlock):
        security_blocks(b)


def test_unknown_context_is_reported_as_such() -> None:
    asb = AbstractSecurityBlock((1,), 99, SRC, (), (((1, b"x"),),))
    b = _with_block(make_bundle(), 11, 6, asb)
    with pytest.raises(UnknownSecurityContext) as info:
        verify_integrity(b, StaticKeys([KEY]))
    assert info.value.reason_code == 13


def test_context_in_wrong_block_type_is_malformed() -> None:
    asb = AbstractSecurityBlock((1,), 2, SRC, (), (((1, b"x" * 16),),))
    b = _with_block(make_bundle(), 11, 6, asb)
    with pytest.raises(MalformedSecurityBlock):
        verify_integrity(b, StaticKeys([KEY]))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x80\x01\x00\x82\x02\x82\x01\x00\x80",  # no targets
        b"\x81\x01\x01\x00\x82\x02\x82\x01\x00\x82\x80\x80",  # two result sets, one target
        b"\x82\x01\x01\x01\x00\x82\x02\x82\x01\x00\x82\x80\x80",  # repeated target
        b"\x81\x01\x01\x01\x82\x02\x82\x01\x00\x81\x80",  # flags say params, none there
        b"\x81\x01\x01\x00\x82\x02\x82\x01\x00\x81\x80\x00",  # trailing item
        b"\x81\x01\xf5\x00\x82\x02\x82\x01\x00\x81\x80",  # context id is a bool
        b"\x81\x01\x01\x00\x82\x09\x00\x81\x80",  # bad EID scheme
        b"\x81\x01\x01\x00\x82\x02\x82\x01\x00\x81\x81\x01",  # result not a pair
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # absurd length
    ],
)
def test_malformed_asb_rejected_precisely(raw: bytes) -> None:
    with pytest.raises(MalformedSecurityBlock):
        decode_asb(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_escape_as_other_errors(raw: bytes) -> None:
    try:
        decode_asb(raw)
    except MalformedSecurityBlock:
        pass


pairs = st.lists(st.tuples(st.integers(-5, 300), st.one_of(st.integers(0, 2**64 - 1),
                                                          st.binary(max_size=20))), max_size=3)


@settings(max_examples=150, deadline=None)
@given(
    targets=st.lists(st.integers(0, 2**20), min_size=1, max_size=5, unique=True),
    context=st.integers(-(2**15), 2**15),
    params=pairs,
    data=st.data(),
    source=st.sampled_from(["ipn:1.0", "dtn://a/", "ipn:977.5", "dtn://x.y/svc"]),
)
def test_asb_roundtrip(targets, context, params, data, source) -> None:  # type: ignore[no-untyped-def]
    results = tuple(tuple(data.draw(pairs)) for _ in targets)
    asb = AbstractSecurityBlock(tuple(targets), context, parse_eid(source), tuple(params), results)
    raw = encode_asb(asb)
    assert decode_asb(raw) == asb
    assert encode_asb(decode_asb(raw)) == raw
    # And cbor2 agrees it is a well-formed sequence of 5 or 6 items.
    assert cbor2.loads(raw) == list(targets)


@settings(max_examples=40, deadline=None)
@given(
    n_extra=st.integers(0, 3),
    bib_targets=st.sets(st.integers(0, 4), min_size=1),
    bcb_targets=st.sets(st.integers(1, 4), min_size=1),
    shuffle=st.randoms(use_true_random=False),
    position=st.integers(0, 5),
)
def test_any_block_order_and_targets_roundtrip(  # type: ignore[no-untyped-def]
    n_extra, bib_targets, bcb_targets, shuffle, position
) -> None:
    extra = tuple((192 + i, 2 + i, bytes([i]) * (i + 3)) for i in range(n_extra))
    original = make_bundle(extra=extra)
    numbers = {0, 1} | {2 + i for i in range(n_extra)}
    bib_t = sorted(t for t in bib_targets if t in numbers)
    bcb_t = sorted(t for t in bcb_targets if t in numbers)
    b = original
    if bib_t:
        b = add_integrity(b, bib_t, BibHmacSha2(KEY), SRC, position=position)
    if bcb_t:
        b = add_confidentiality(b, bcb_t, BcbAesGcm(KEY), SRC, position=position)
    # Shuffle canonical blocks (payload stays last): order carries no meaning (RFC 9171 §4.1).
    head = b.blocks[:-1]
    shuffle.shuffle(head)
    b.blocks = [*head, b.blocks[-1]]
    received = decode(encode(b))
    plain, _ = decrypt(received, StaticKeys([KEY]))
    accepted, outcomes = verify_integrity(plain, StaticKeys([KEY]), remove=True)
    assert sorted(o.target for o in outcomes) == bib_t
    assert sorted(encode(accepted)) == sorted(encode(original))  # same blocks, any order
    assert {x.number: bytes(x.data) for x in accepted.blocks} == {
        x.number: bytes(x.data) for x in original.blocks
    }

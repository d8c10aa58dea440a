"""Differential tests: the Cython twin (waystation.ext.fastcodec) against the pure-Python
reference (waystation.bundle.pycodec), which is the specification.

For every input both must agree: the same bytes from the encoders; equal bundles (with the same
types for block data: a memoryview for the payload, bytes otherwise) from the decoders; or the
same exception class, with the same offset and message for DecodeError and ValidationError.
Inputs: random valid bundles (tests/strategies.py), random damage to their encodings, random
bytes, and model objects with random bad fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import DTN_NONE, DtnEID, IpnEID
from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock

from tests.strategies import bundles, mutated_bundle_bytes

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(func: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    try:
        return ("ok", func(*args, **kwargs))
    except Exception as exc:  # the reference's exception class is part of the specification
        return ("error", type(exc), getattr(exc, "offset", None), str(exc))


def data_types(bundle: Bundle) -> list[type]:
    return [type(block.data) for block in bundle.blocks]


def assert_same(expected: tuple[Any, ...], got: tuple[Any, ...]) -> None:
    assert got[0] == expected[0], f"reference gave {expected}, twin gave {got}"
    if expected[0] == "ok":
        assert got[1] == expected[1]
        if isinstance(expected[1], Bundle):
            assert data_types(got[1]) == data_types(expected[1])
            assert [getattr(b.data, "readonly", None) for b in got[1].blocks] == [
                getattr(b.data, "readonly", None) for b in expected[1].blocks
            ]
    else:
        assert got[1:] == expected[1:]


def assert_decode_same(pure: ModuleType, fast: ModuleType, data: Any, **kwargs: Any) -> None:
    assert_same(
        outcome(pure.decode_bundle, data, **kwargs), outcome(fast.decode_bundle, data, **kwargs)
    )


# --- valid bundles -------------------------------------------------------------------------------


@SETTINGS
@given(bundles())
def test_random_bundles_same_bytes_and_objects(
    pure: ModuleType, fast: ModuleType, bundle: Bundle
) -> None:
    encoded = pure.encode_bundle(bundle)
    assert fast.encode_bundle(bundle) == encoded
    assert fast.encode_primary_block(bundle.primary) == pure.encode_primary_block(bundle.primary)
    for block in bundle.blocks:
        assert fast.encode_canonical_block(block) == pure.encode_canonical_block(block)
    decoded = fast.decode_bundle(encoded)
    assert decoded == pure.decode_bundle(encoded) == bundle
    assert data_types(decoded) == data_types(pure.decode_bundle(encoded))
    # what the twin decoded, it encodes again to the same bytes
    assert fast.encode_bundle(decoded) == encoded


@settings(max_examples=40, deadline=None)
@given(bundles(max_payload=200_000, max_extra_blocks=1))
def test_large_payloads(pure: ModuleType, fast: ModuleType, bundle: Bundle) -> None:
    encoded = fast.encode_bundle(bundle)
    assert encoded == pure.encode_bundle(bundle)
    assert fast.decode_bundle(encoded) == bundle


# --- damaged and arbitrary input ------------------------------------------------------------------


@SETTINGS
@given(mutated_bundle_bytes())
def test_mutated_encodings_same_outcome(pure: ModuleType, fast: ModuleType, data: bytes) -> None:
    assert_decode_same(pure, fast, data)
    assert_decode_same(pure, fast, data, validate=False)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_same_outcome(pure: ModuleType, fast: ModuleType, data: bytes) -> None:
    assert_decode_same(pure, fast, data)
    assert_decode_same(pure, fast, b"\x9f" + data)


@SETTINGS
@given(bundles(max_payload=40, max_extra_blocks=2), st.data())
def test_truncations_and_self_described_tag(
    pure: ModuleType, fast: ModuleType, bundle: Bundle, draw: st.DataObject
) -> None:
    encoded = pure.encode_bundle(bundle)
    cut = draw.draw(st.integers(0, len(encoded)))
    assert_decode_same(pure, fast, encoded[:cut])
    assert_decode_same(pure, fast, b"\xd9\xd9\xf7" + encoded)
    assert_decode_same(pure, fast, b"\xd9\xd9\xf7" + encoded[:cut])


@pytest.mark.parametrize(
    "wrap",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: memoryview(bytearray(b)),
        lambda b: memoryview(b"xx" + b + b"yy")[2:-2],
        lambda b: memoryview(b).cast("c"),
        lambda b: memoryview(bytes(x for c in b for x in (c, 0)))[::2],  # strided
        lambda b: list(b),
        lambda b: b.hex(),
    ],
    ids=[
        "bytes",
        "bytearray",
        "memoryview",
        "mv-bytearray",
        "mv-slice",
        "mv-cast",
        "mv-strided",
        "list",
        "str",
    ],
)
def test_input_types_same_outcome(
    pure: ModuleType, fast: ModuleType, wrap: Callable[[bytes], Any]
) -> None:
    primary = PrimaryBlock(
        0, 1, IpnEID(2, 1), DtnEID("src", "app"), DTN_NONE, CreationTimestamp(9, 1), 60_000
    )
    bundle = Bundle(
        primary, [CanonicalBlock(7, 2, 0, 2, b"\x05"), CanonicalBlock(1, 1, 0, 2, b"payload")]
    )
    encoded = pure.encode_bundle(bundle)
    assert_decode_same(pure, fast, wrap(encoded))
    assert_decode_same(pure, fast, wrap(encoded[:-3]))


@pytest.mark.parametrize("max_size", [None, 0, 10, 10_000, 2**70, 1.5])
def test_max_size_same_outcome(pure: ModuleType, fast: ModuleType, max_size: Any) -> None:
    primary = PrimaryBlock(
        0, 2, IpnEID(2, 1), IpnEID(3, 1), IpnEID(3, 0), CreationTimestamp(9, 1), 1
    )
    encoded = pure.encode_bundle(Bundle(primary, [CanonicalBlock(1, 1, 0, 0, b"x" * 50)]))
    assert_decode_same(pure, fast, encoded, max_size=max_size)


# --- model objects with bad fields ----------------------------------------------------------------

BAD_VALUES = st.one_of(
    st.sampled_from([None, -1, 2**64, 2**64 - 1, 1.0, True, "1", b"", (), 3, 7, 0]),
    st.integers(-5, 5),
)


@SETTINGS
@given(bundles(max_payload=30, max_extra_blocks=1), st.data())
def test_bad_model_fields_same_outcome(
    pure: ModuleType, fast: ModuleType, bundle: Bundle, draw: st.DataObject
) -> None:
    target = draw.draw(st.sampled_from(["primary", "block", "bundle"]))
    if target == "primary":
        name = draw.draw(st.sampled_from([f.name for f in dataclasses.fields(PrimaryBlock)]))
        value = draw.draw(
            st.one_of(
                BAD_VALUES, st.just((1, 2, 3)), st.just(CreationTimestamp(-1, 0)), st.just(DTN_NONE)
            )
        )
        setattr(bundle.primary, name, value)
    elif target == "block":
        block = draw.draw(st.sampled_from(bundle.blocks))
        name = draw.draw(st.sampled_from([f.name for f in dataclasses.fields(CanonicalBlock)]))
        value = draw.draw(
            st.one_of(
                BAD_VALUES,
                st.just(bytearray(b"ab")),
                st.just(memoryview(b"abcd")[::2]),
                st.just("text"),
            )
        )
        setattr(block, name, value)
    else:
        bundle.blocks = draw.draw(
            st.sampled_from([[], tuple(bundle.blocks), bundle.blocks[::-1], [*bundle.blocks, None]])
        )
    assert_same(outcome(pure.encode_bundle, bundle), outcome(fast.encode_bundle, bundle))
    assert_same(
        outcome(pure.encode_primary_block, bundle.primary),
        outcome(fast.encode_primary_block, bundle.primary),
    )
    for block in bundle.blocks:
        assert_same(
            outcome(pure.encode_canonical_block, block), outcome(fast.encode_canonical_block, block)
        )


@pytest.mark.parametrize("thing", [None, b"", 1, "bundle", object()])
def test_non_model_arguments_same_outcome(
    pure: ModuleType, fast: ModuleType, thing: object
) -> None:
    for name in ("encode_bundle", "encode_primary_block", "encode_canonical_block"):
        assert_same(outcome(getattr(pure, name), thing), outcome(getattr(fast, name), thing))


def test_public_names_match_reference(pure: ModuleType, fast: ModuleType) -> None:
    assert list(fast.__all__) == list(pure.__all__)
    for name in pure.__all__:
        assert hasattr(fast, name), name
    assert fast.DEFAULT_MAX_BUNDLE_SIZE == pure.DEFAULT_MAX_BUNDLE_SIZE


def test_fast_paths_active(fast: ModuleType) -> None:
    """The model still fits the slot-filling fast path (else the twin silently slows down)."""
    assert all(fast.FAST_PATHS.values()), fast.FAST_PATHS


def test_error_order_released_view_before_missing_payload(
    pure: ModuleType, fast: ModuleType
) -> None:
    """The reference checks "payload last" first, even before a block's unreadable data."""
    released = memoryview(b"abc")
    released.release()
    primary = PrimaryBlock(
        0, 1, IpnEID(2, 1), IpnEID(3, 1), IpnEID(3, 0), CreationTimestamp(9, 1), 1
    )
    for blocks in (
        [CanonicalBlock(200, 2, 0, 0, released), CanonicalBlock(201, 3, 0, 0, b"")],
        [CanonicalBlock(200, 2, 0, 0, released), CanonicalBlock(1, 1, 0, 0, b"")],
    ):
        bundle = Bundle(primary, blocks)
        assert_same(outcome(pure.encode_bundle, bundle), outcome(fast.encode_bundle, bundle))
        assert outcome(fast.encode_bundle, bundle)[0] == "error"


# --- RFC rule violations, one per rule of the twin's fast validity check --------------------------


def _raw_bundle(pure: ModuleType, primary: PrimaryBlock, blocks: list[CanonicalBlock]) -> bytes:
    """Encode without any checks on the block list (the payload need not be last)."""
    return (
        b"\x9f"
        + pure.encode_primary_block(primary)
        + b"".join(pure.encode_canonical_block(b) for b in blocks)
        + b"\xff"
    )


def _ext(btype: int, number: int, data: bytes) -> CanonicalBlock:
    return CanonicalBlock(btype, number, 0, 0, data)


PREV_NODE = b"\x82\x02\x82\x01\x00"
HOP_OK = b"\x82\x01\x00"

# rule -> (primary field changes, blocks inserted at the front, payload field changes,
#          blocks appended after the payload)
RULE_BREAKERS: dict[
    str, tuple[dict[str, Any], list[CanonicalBlock], dict[str, Any], list[CanonicalBlock]]
] = {
    "duplicate number": ({}, [_ext(200, 1, b"")], {}, []),
    "duplicate ext number": ({}, [_ext(200, 9, b""), _ext(201, 9, b"")], {}, []),
    "block number 0": ({}, [_ext(200, 0, b"")], {}, []),
    "payload number 2": ({}, [], {"number": 3}, []),
    "number 1 not payload": ({}, [_ext(200, 1, b"")], {"number": 5}, []),
    "payload not last": ({}, [], {}, [_ext(200, 77, b"")]),
    "two payloads": ({}, [CanonicalBlock(1, 1, 0, 0, b"x")], {}, []),
    "hop limit 0": ({}, [_ext(10, 50, b"\x82\x00\x00")], {}, []),
    "hop limit 256": ({}, [_ext(10, 50, b"\x82\x19\x01\x00\x00")], {}, []),
    "hop count 3 items": ({}, [_ext(10, 50, b"\x83\x01\x00\x00")], {}, []),
    "hop count trailing": ({}, [_ext(10, 50, HOP_OK + b"\x00")], {}, []),
    "two hop counts": ({}, [_ext(10, 50, HOP_OK), _ext(10, 51, HOP_OK)], {}, []),
    "age trailing": ({}, [_ext(7, 60, b"\x01\x00")], {}, []),
    "age not uint": ({}, [_ext(7, 60, b"\x41\x00")], {}, []),
    "age empty": ({}, [_ext(7, 60, b"")], {}, []),
    "previous node garbage": ({}, [_ext(6, 61, PREV_NODE[:-1])], {}, []),
    "previous node trailing": ({}, [_ext(6, 61, PREV_NODE + b"\x00")], {}, []),
    "previous node twice": ({}, [_ext(6, 61, PREV_NODE), _ext(6, 62, PREV_NODE)], {}, []),
    "previous node ok": ({}, [_ext(6, 61, PREV_NODE)], {}, []),
    "admin record with reports": ({"flags": 0x2 | 0x4000}, [], {}, []),
    "anonymous fragmentable": ({"source": DTN_NONE, "flags": 0}, [], {}, []),
    "anonymous with reports": ({"source": DTN_NONE, "flags": 0x4 | 0x20000}, [], {}, []),
    "anonymous status time": ({"source": DTN_NONE, "flags": 0x4 | 0x40}, [], {}, []),
    "anonymous ipn:0.0": ({"source": IpnEID(0, 0), "flags": 0}, [], {}, []),
    "creation 0 without age": ({"creation": CreationTimestamp(0, 3)}, [], {}, []),
    "no crc, no bib": ({"crc_type": 0}, [], {}, []),
    "no crc, bib not on primary": ({"crc_type": 0}, [_ext(11, 70, b"\x81\x01")], {}, []),
    "no crc, bib on primary": ({"crc_type": 0}, [_ext(11, 70, b"\x82\x01\x00")], {}, []),
    "no crc, bib garbage": ({"crc_type": 0}, [_ext(11, 70, b"\x82\x00")], {}, []),
    "fragment past ADU": ({"flags": 1, "fragment_offset": 5, "total_adu_length": 6}, [], {}, []),
    "fragment fits": (
        {"flags": 1, "fragment_offset": 0, "total_adu_length": 2**64 - 1},
        [],
        {},
        [],
    ),
    "fragment offset huge": (
        {"flags": 1, "fragment_offset": 2**64 - 1, "total_adu_length": 2**64 - 1},
        [],
        {},
        [],
    ),
}


VALID_CASES = {"previous node ok", "no crc, bib on primary", "fragment fits"}


@pytest.mark.parametrize("rule", sorted(RULE_BREAKERS))
def test_rule_violations_same_outcome(pure: ModuleType, fast: ModuleType, rule: str) -> None:
    primary_changes, before, payload_changes, after = RULE_BREAKERS[rule]
    primary = PrimaryBlock(
        0, 2, IpnEID(2, 1), IpnEID(3, 1), IpnEID(3, 0), CreationTimestamp(9, 1), 10
    )
    payload = CanonicalBlock(1, 1, 0, 2, b"payload")
    for name, value in primary_changes.items():
        setattr(primary, name, value)
    for name, value in payload_changes.items():
        setattr(payload, name, value)
    age = [] if rule == "creation 0 without age" else [CanonicalBlock(7, 2, 0, 1, b"\x05")]
    data = _raw_bundle(pure, primary, [*before, *age, payload, *after])
    expected = outcome(pure.decode_bundle, data)
    assert (expected[0] == "ok") == (rule in VALID_CASES), expected  # the case tests its rule
    assert_same(expected, outcome(fast.decode_bundle, data))
    assert_decode_same(pure, fast, data, validate=False)

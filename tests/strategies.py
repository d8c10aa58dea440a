"""Hypothesis strategies for BPv7 objects, shared by the codec tests and the differential
(pure-Python vs Cython) tests.

``bundles()`` only generates bundles that satisfy every rule of
:func:`waystation.bundle.validate.validate_bundle`, so ``decode(encode(b)) == b`` must hold for
each of them. ``mutated_bundle_bytes()`` yields encodings of such bundles with random damage, for
fuzzing decoders.
"""

from __future__ import annotations

from hypothesis import strategies as st
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import DTN_NONE, DtnEID, EndpointID, IpnEID
from waystation.bundle.model import (
    BlockType,
    Bundle,
    BundleFlags,
    CanonicalBlock,
    PrimaryBlock,
    bundle_age_data,
    hop_count_data,
)

U32 = 2**32 - 1
U64 = 2**64 - 1

_REG_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;="
_VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))

# integers that exercise every CBOR head length
uints64 = st.one_of(
    st.integers(0, 23),
    st.integers(24, 255),
    st.integers(256, 65535),
    st.integers(65536, U32),
    st.integers(U32 + 1, U64),
)
uints32 = st.one_of(st.integers(0, 23), st.integers(24, 65535), st.integers(65536, U32))

dtn_eids = st.builds(
    DtnEID,
    st.text(_REG_NAME_CHARS, min_size=1, max_size=20),
    st.text(_VCHAR, max_size=20),
)
ipn_eids = st.builds(
    IpnEID,
    uints32.filter(lambda n: n != 0),
    uints32,
    st.one_of(st.just(0), uints32),
)
eids: st.SearchStrategy[EndpointID] = st.one_of(dtn_eids, ipn_eids)
eids_or_none: st.SearchStrategy[EndpointID] = st.one_of(eids, st.just(DTN_NONE))

crc_types = st.sampled_from([0, 1, 2])
_RESERVED_BUNDLE_BITS = 0x18 | 0x3F80 | 0x8000 | 0x180000
_REPORTS = int(BundleFlags.status_report_requests())


@st.composite
def bundles(
    draw: st.DrawFn,
    *,
    max_payload: int = 300,
    max_extra_blocks: int = 4,
    allow_fragments: bool = True,
) -> Bundle:
    """A random bundle that obeys every RFC 9171 rule we validate."""
    payload = draw(st.binary(max_size=max_payload))
    source = draw(st.one_of(eids, eids, eids, st.just(DTN_NONE)))
    flags = draw(
        st.sampled_from(
            [0, 0x4, 0x20, 0x40, 0x4000, 0x10000, 0x20000, 0x40000, _REPORTS | 0x40, 0x2]
        )
    )
    flags |= draw(st.sampled_from([0, 0, 0x8, 0x100, 0x80000, 1 << 40]))  # reserved bits survive
    if flags & BundleFlags.ADMIN_RECORD:
        flags &= ~_REPORTS
    if source.is_null:
        flags = (flags & ~(_REPORTS | BundleFlags.STATUS_TIME_REQUESTED)) | 0x4
    frag_offset = adu_length = None
    if allow_fragments and not flags & 0x4 and draw(st.booleans()):
        flags |= BundleFlags.IS_FRAGMENT
        frag_offset = draw(st.integers(0, 10_000))
        adu_length = frag_offset + len(payload) + draw(st.integers(0, 10_000))
    creation = CreationTimestamp(draw(st.one_of(st.just(0), uints64)), draw(uints64))
    blocks: list[CanonicalBlock] = []
    number = st.integers(2, 10_000)
    used: set[int] = {1}

    def fresh_number() -> int:
        n = draw(number.filter(lambda x: x not in used))
        used.add(n)
        return n

    needs_age = creation.time_ms == 0
    if needs_age or draw(st.booleans()):
        blocks.append(
            CanonicalBlock(
                BlockType.BUNDLE_AGE,
                fresh_number(),
                draw(st.sampled_from([0, 1])),
                draw(crc_types),
                bundle_age_data(draw(uints64)),
            )
        )
    if draw(st.booleans()):
        blocks.append(
            CanonicalBlock(
                BlockType.HOP_COUNT,
                fresh_number(),
                draw(st.sampled_from([0, 1, 0x10])),
                draw(crc_types),
                hop_count_data(draw(st.integers(1, 255)), draw(st.integers(0, 300))),
            )
        )
    if draw(st.booleans()):
        blocks.append(
            CanonicalBlock(
                BlockType.PREVIOUS_NODE,
                fresh_number(),
                draw(st.sampled_from([0, 1])),
                draw(crc_types),
                draw(eids).node_id.to_cbor(),
            )
        )
    for _ in range(draw(st.integers(0, max_extra_blocks))):
        blocks.append(
            CanonicalBlock(
                draw(st.one_of(st.integers(13, 255), st.integers(192, 2**20))),
                fresh_number(),
                draw(st.integers(0, 0x7F)),
                draw(crc_types),
                draw(st.binary(max_size=40)),
            )
        )
    blocks = draw(st.permutations(blocks))
    primary_crc = draw(crc_types)
    if primary_crc == 0:
        # §4.3.1: only allowed when a BIB covers the primary block; add a minimal stand-in.
        blocks.insert(
            0, CanonicalBlock(BlockType.BLOCK_INTEGRITY, fresh_number(), 0, 0, b"\x82\x00\x01")
        )
    blocks.append(
        CanonicalBlock(
            BlockType.PAYLOAD,
            1,
            draw(st.sampled_from([0, 1, 2, 4, 0x10])),
            draw(crc_types),
            payload,
        )
    )
    primary = PrimaryBlock(
        flags,
        primary_crc,
        draw(eids),
        source,
        draw(eids_or_none),
        creation,
        draw(uints64),
        frag_offset,
        adu_length,
    )
    return Bundle(primary, list(blocks))


@st.composite
def mutated_bundle_bytes(draw: st.DrawFn) -> bytes:
    """The encoding of a random valid bundle with random byte flips, cuts and insertions."""
    from waystation.bundle.pycodec import encode_bundle

    data = bytearray(encode_bundle(draw(bundles(max_payload=40, max_extra_blocks=2))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[i : i + draw(st.integers(1, 4))]
    return bytes(data)

"""Endpoint IDs: RFC 9171 §4.2.5.1 (dtn, ipn) and RFC 9758 (three-component ipn)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waystation.bundle.eid import (
    DTN_NONE,
    IPN_NULL,
    DtnEID,
    EndpointID,
    IpnEID,
    eid_from_cbor,
    parse_eid,
)
from waystation.bundle.errors import DecodeError, EIDError

from tests.strategies import eids_or_none


@pytest.mark.parametrize(
    "text,expected",
    [
        ("dtn:none", DTN_NONE),
        ("dtn://node/", DtnEID("node", "")),
        ("dtn://node/svc/sub~x", DtnEID("node", "svc/sub~x")),
        ("DTN://node/a", DtnEID("node", "a")),
        ("ipn:1.2", IpnEID(1, 2)),
        ("ipn:0.1.2", IpnEID(1, 2)),
        ("ipn:977000.5279.7390", IpnEID(5279, 7390, 977000)),
        ("ipn:4196183048192001.1", IpnEID(1, 1, 977000)),  # legacy FQNN text form
        ("ipn:0.5", IPN_NULL),  # RFC 9758 §3.4.1
    ],
)
def test_parse(text: str, expected: EndpointID) -> None:
    assert parse_eid(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "none",
        "dtn:",
        "dtn:node/x",
        "dtn:///x",
        "dtn://node",
        "dtn://no de/x",
        "dtn://node/with space",
        "dtn://node/ü",
        "ipn:1",
        "ipn:1.2.3.4",
        "ipn:-1.2",
        "ipn:1.x",
        "ipn:1.4294967296",
        "ipn:1.4294967296.1",
        "http://example.com/",
        "ipn:1.+2",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(EIDError):
        parse_eid(text)


def test_node_ids_and_singletons() -> None:
    assert parse_eid("ipn:5.7").node_id == IpnEID(5, 0)
    assert parse_eid("ipn:3.5.7").node_id == IpnEID(5, 0, 3)
    assert parse_eid("dtn://n/app").node_id == DtnEID("n", "")
    assert parse_eid("dtn://n/").is_node_id
    assert not parse_eid("dtn://n/~group").is_singleton
    assert DTN_NONE.is_null and IPN_NULL.is_null and not IpnEID(1, 0).is_null
    with pytest.raises(EIDError):
        _ = DTN_NONE.node_id


def test_equality_and_hashing() -> None:
    assert IpnEID(1, 2) == parse_eid("ipn:0.1.2")
    assert hash(IpnEID(1, 2)) == hash(parse_eid("ipn:1.2"))
    assert IpnEID(1, 2) != DtnEID("1", "2")
    assert len({DTN_NONE, parse_eid("dtn:none"), IpnEID(0, 0)}) == 2
    with pytest.raises(AttributeError):
        IpnEID(1, 2).node = 3  # type: ignore[misc]


def test_three_element_encoding_only_for_nonzero_authority() -> None:
    assert IpnEID(1, 2).to_cbor().hex() == "8202820102"
    assert IpnEID(1, 2, 977000).to_cbor().hex() == "8202831a000ee8680102"


def test_cbor_obj_roundtrip() -> None:
    for eid in (DTN_NONE, DtnEID("a.b", "c"), IpnEID(1, 2), IpnEID(1, 2, 3)):
        assert EndpointID.from_cbor_obj(eid.to_cbor_obj()) == eid
    for bad in ([1], [1, 1], [9, 0], [2, [1]], [2, [1, -1]], "x", [1, b"//a/"]):
        with pytest.raises(EIDError):
            EndpointID.from_cbor_obj(bad)


@settings(max_examples=200, deadline=None)
@given(eid=eids_or_none)
def test_text_and_cbor_roundtrip(eid: EndpointID) -> None:
    assert parse_eid(str(eid)) == eid
    assert eid_from_cbor(eid.to_cbor()) == eid
    import cbor2

    assert cbor2.dumps(eid.to_cbor_obj()) == eid.to_cbor()
    assert EndpointID.from_cbor_obj(cbor2.loads(eid.to_cbor())) == eid


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=30))
def test_decoding_random_bytes_raises_only_bundle_errors(data: bytes) -> None:
    try:
        eid_from_cbor(data)
    except (EIDError, DecodeError):
        pass


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=30))
def test_parsing_random_text_raises_only_eid_errors(text: str) -> None:
    try:
        parse_eid(text)
    except EIDError:
        pass

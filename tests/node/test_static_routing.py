"""The static routing table and the identity's idea of which endpoints are local."""

from __future__ import annotations

from waystation.identity import LocalIdentity
from waystation.routing import ChainRouter, StaticRouter


def test_most_specific_pattern_wins() -> None:
    r = StaticRouter()
    r.add("*", "dtn://default/")
    r.add("ipn:2.*", "ipn:2.0")
    r.add("ipn:2.7", "ipn:9.0")
    assert r.next_hops("ipn:2.7", 0, 0) == ["ipn:9.0", "ipn:2.0", "dtn://default/"]
    assert r.next_hops("ipn:2.1", 0, 0)[0] == "ipn:2.0"
    assert r.next_hops("dtn://x/y", 0, 0) == ["dtn://default/"]


def test_replace_and_remove_routes() -> None:
    r = StaticRouter()
    r.add("dtn://m/*", "dtn://a/")
    r.add("dtn://m/*", "dtn://b/")
    assert r.next_hops("dtn://m/app", 0, 0) == ["dtn://b/"]
    assert r.remove("dtn://m/*") and not r.remove("dtn://m/*")
    assert r.next_hops("dtn://m/app", 0, 0) == []


def test_remembered_answers_follow_every_table_change() -> None:
    """Answers are kept per destination; a change to the table must never serve a stale one,
    and a caller that changes the list it got does not change the next answer."""
    r = StaticRouter()
    r.add("*", "dtn://default/")
    first = r.next_hops("dtn://m/app", 0, 0)
    assert first == ["dtn://default/"]
    first.append("dtn://junk/")
    assert r.next_hops("dtn://m/app", 0, 0) == ["dtn://default/"]
    r.add("dtn://m/*", "dtn://b/")
    assert r.next_hops("dtn://m/app", 0, 0) == ["dtn://b/", "dtn://default/"]
    r.remove("*")
    assert r.next_hops("dtn://m/app", 0, 0) == ["dtn://b/"]


def test_chain_router_concatenates_without_duplicates() -> None:
    a, b = StaticRouter(), StaticRouter()
    a.add("*", "dtn://x/")
    b.add("*", "dtn://x/")
    b.add("dtn://q/*", "dtn://y/")
    assert ChainRouter([a, b]).next_hops("dtn://q/1", 0, 0) == ["dtn://x/", "dtn://y/"]


def test_identity_owns_its_dtn_and_ipn_endpoints() -> None:
    ident = LocalIdentity("dtn://mars/", ipn_node=5)
    assert ident.owns("dtn://mars/inbox") and ident.owns("ipn:5.1")
    assert not ident.owns("dtn://venus/inbox") and not ident.owns("ipn:6.1")
    assert not ident.owns("not an eid")
    assert ident.echo_eids == ["dtn://mars/echo", "ipn:5.2047"]
    assert ident.admin_eids == ["dtn://mars/", "ipn:5.0"]

"""A signs and encrypts, B forwards without keys, C verifies and decrypts — over real TCPCLv4
sessions on loopback (the convergence layer's link factories), with policy at each hop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from waystation.bundle.bpsec.keystore import KeyStore, public_key_text
from waystation.bundle.bpsec.policy import SecurityPolicy, check_wire, protect_wire
from waystation.convergence.nodelinks import tcpcl_factory

from ._bundles import encode
from ._factory import make_bundle

RULES = {
    "rules": [
        {"name": "encrypt-to-c", "role": "source", "context": "bcb-aes-gcm",
         "destination": "ipn:3.*", "key": "a-to-c"},
        {"name": "decrypt-from-a", "role": "acceptor", "context": "bcb-aes-gcm",
         "source": "ipn:1.*", "key": "a-to-c"},
    ]
}


class Node:
    """Just enough of a node for the link factories: link events and bundle reception."""

    def __init__(self, node_id: str, keys: KeyStore, policy: SecurityPolicy) -> None:
        self.node_id, self.keys, self.policy = node_id, keys, policy
        self.up: dict[str, asyncio.Event] = {}
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.verdicts: list[Any] = []

    def _event(self, link_id: str) -> asyncio.Event:
        return self.up.setdefault(link_id, asyncio.Event())

    def link_up(self, link: Any) -> None:
        self._event(link.link_id).set()

    def link_down(self, link: Any, reason: str) -> None:
        self._event(link.link_id).clear()

    async def bundle_received(self, link: Any, wire: bytes) -> bool:
        verdict, out = check_wire(wire, self.policy, self.keys)
        self.verdicts.append(verdict)
        if verdict.accepted:
            await self.received.put(out)
        return True


def test_sign_encrypt_forward_verify_decrypt_over_tcpcl(tmp_path: Path) -> None:
    a_keys, b_keys, c_keys = (KeyStore.for_data_dir(tmp_path / n) for n in "abc")
    c_keys.trust("a", public_key_text(a_keys.identity().public), node="ipn:1.0")
    shared = a_keys.add_symmetric("a-to-c")
    c_keys.add_symmetric("a-to-c", shared.material)
    a = Node("ipn:1.0", a_keys, SecurityPolicy.from_config(["ipn:1.0"], RULES))
    b = Node("ipn:2.0", b_keys, SecurityPolicy.from_config(["ipn:2.0"], None))
    c = Node("ipn:3.0", c_keys, SecurityPolicy.from_config(["ipn:3.0"], RULES))
    original = make_bundle(b"attitude quaternion 0.7071 0 0.7071 0 " * 30)

    async def scenario() -> None:
        c_listen = await tcpcl_factory("c-in", {"listen": "127.0.0.1:0", "node_id": c.node_id},
                                       c)
        b_listen = await tcpcl_factory("b-in", {"listen": "127.0.0.1:0", "node_id": b.node_id},
                                       b)
        b_to_c = await tcpcl_factory("b-c", {"address": c_listen.address,
                                             "node_id": b.node_id}, b)
        a_to_b = await tcpcl_factory("a-b", {"address": b_listen.address,
                                             "node_id": a.node_id}, a)
        try:
            await asyncio.wait_for(a._event("a-b").wait(), 10)
            await asyncio.wait_for(b._event("b-c").wait(), 10)
            wire = protect_wire(encode(original), a.policy, a.keys)
            assert b"attitude" not in wire
            await a_to_b.send(wire)
            at_b = await asyncio.wait_for(b.received.get(), 10)
            assert at_b == wire  # B, not the destination and without keys, changed nothing
            await b_to_c.send(at_b)
            at_c = await asyncio.wait_for(c.received.get(), 10)
            assert at_c == encode(original)  # decrypted, verified, security blocks removed
        finally:
            for obj in (a_to_b, b_to_c, b_listen, c_listen):
                await obj.close()

    asyncio.run(scenario())
    (verdict,) = c.verdicts
    assert verdict.accepted
    assert {type(e).__name__ for e in verdict.events} == {"IntegrityVerified",
                                                         "ConfidentialityAccepted"}

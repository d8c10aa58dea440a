"""BPSec throughput: our bundle-level operations vs the bare cryptography primitive.

For each payload size (1 KiB, 64 KiB) and operation this prints operations per second for

* ``ours``: the waystation call on a Bundle model (add_integrity / verify_integrity /
  add_confidentiality / decrypt), including IPPT/AAD construction, ASB encoding/decoding,
  the RFC 9172 rule checks and the new Bundle;
* ``raw``: the cryptography primitive alone on the payload bytes (Ed25519 sign/verify,
  HMAC-SHA384, AES-256-GCM encrypt/decrypt) — the floor no implementation goes under;

and the ratio ours/raw, measured in the same run (median of 5 timed rounds each). A second
table runs whole bundles through a source node (outbound policy + encode) and a destination
(decode + inbound policy) with the default signing policy and with security off, and a third
sends bundles node to node over a real TCPCLv4 session on loopback with the policies applied
at both ends (signing on vs off). Run:
``.venv/bin/python bench/bpsec.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from waystation.bundle.bpsec import (
    BcbAesGcm,
    BibHmacSha2,
    CoseSign1,
    SigningKey,
    StaticKeys,
    SymmetricKey,
    TrustedKey,
    add_confidentiality,
    add_integrity,
    decrypt,
    verify_integrity,
)
from waystation.bundle.bpsec.keystore import MemoryKeys
from waystation.bundle.bpsec.policy import (
    SecurityPolicy,
    apply_inbound_policy,
    apply_outbound_policy,
    check_wire,
    protect_wire,
)
from waystation.bundle.codec import decode_bundle, encode_bundle
from waystation.bundle.dtntime import CreationTimestamp
from waystation.bundle.eid import EndpointID, parse_eid
from waystation.bundle.model import Bundle, CanonicalBlock, PrimaryBlock


def bundle_of(size: int) -> Bundle:
    primary = PrimaryBlock(0, 2, parse_eid("ipn:3.1"), parse_eid("ipn:1.1"),
                           parse_eid("ipn:1.1"), CreationTimestamp(813110400000, 1), 3_600_000)
    return Bundle(primary, [CanonicalBlock(1, 1, 0, 2, bytes(size))])


def rate(fn: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    n = 1
    while True:  # calibrate to about seconds/rounds per round
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > seconds / rounds / 4:
            break
        n *= 2
    per_round = max(1, int(n * (seconds / rounds) / dt))
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_round):
            fn()
        samples.append(per_round / (time.perf_counter() - t0))
    return statistics.median(samples)


Case = tuple[str, Callable[[], object], Callable[[], object]]


def cases(
    size: int,
    signer: SigningKey,
    trust: StaticKeys,
    hkey: SymmetricKey,
    akey: SymmetricKey,
    src: EndpointID,
) -> list[Case]:
    b = bundle_of(size)
    data = bytes(size)
    aes = AESGCM(akey.material)
    iv = b"\x01" * 12
    signed = add_integrity(b, [1], CoseSign1(signer), src)
    hsigned = add_integrity(b, [1], BibHmacSha2(hkey), src)
    sealed = add_confidentiality(b, [1], BcbAesGcm(akey), src)
    private = signer.private
    public = signer.public
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    sig = private.sign(data)
    ct = aes.encrypt(iv, data, b"")
    return [
        ("sign   COSE_Sign1 Ed25519",
         lambda: add_integrity(b, [1], CoseSign1(signer), src),
         lambda: private.sign(data)),
        ("verify COSE_Sign1 Ed25519",
         lambda: verify_integrity(signed, trust),
         lambda: public.verify(sig, data)),
        ("sign   BIB-HMAC-SHA2 384",
         lambda: add_integrity(b, [1], BibHmacSha2(hkey), src),
         lambda: hmac.new(hkey.material, data, "sha384").digest()),
        ("verify BIB-HMAC-SHA2 384",
         lambda: verify_integrity(hsigned, StaticKeys([hkey])),
         lambda: hmac.new(hkey.material, data, "sha384").digest()),
        ("encrypt BCB-AES-GCM 256",
         lambda: add_confidentiality(b, [1], BcbAesGcm(akey), src),
         lambda: aes.encrypt(iv, data, b"")),
        ("decrypt BCB-AES-GCM 256",
         lambda: decrypt(sealed, StaticKeys([akey])),
         lambda: aes.decrypt(iv, ct, b"")),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter rounds (CI smoke run)")
    args = ap.parse_args()
    seconds = 0.25 if args.quick else 1.5
    src = parse_eid("ipn:1.0")
    signer = SigningKey(ed25519.Ed25519PrivateKey.generate())
    trust = StaticKeys(trusted=[TrustedKey("a", signer.public, node="ipn:1.0")])
    hkey = SymmetricKey("h", b"\x42" * 48)
    akey = SymmetricKey("a", b"\x24" * 32)
    print(f"{'operation':<34}{'size':>7}{'ours/s':>12}{'raw/s':>12}{'ours/raw':>10}")
    for size in (1024, 65536):
        for name, ours, raw in cases(size, signer, trust, hkey, akey, src):
            r_ours = rate(ours, seconds)
            r_raw = rate(raw, seconds)
            print(f"{name:<34}{size:>7}{r_ours:>12,.0f}{r_raw:>12,.0f}{r_ours / r_raw:>10.2f}")
            sys.stdout.flush()
    print()
    print("pipeline: one bundle through source node (policy + encode) and destination")
    print("(decode + policy), default policy (COSE_Sign1 Ed25519) vs security off")
    print(f"{'pipeline':<34}{'size':>7}{'signed/s':>12}{'plain/s':>12}{'ratio':>10}")
    keys = MemoryKeys(identity=signer, trusted=[TrustedKey("a", signer.public, node="ipn:1.0")])
    on_a = SecurityPolicy.default(["ipn:1.0"])
    on_c = SecurityPolicy.default(["ipn:3.0"])
    off = SecurityPolicy.from_config(["ipn:1.0"], {"sign_originated": False,
                                                  "require_signature": False})
    for size in (1024, 65536):
        b = bundle_of(size)

        def through(pol_a: SecurityPolicy, pol_c: SecurityPolicy, b: Bundle = b) -> None:
            wire = encode_bundle(apply_outbound_policy(b, pol_a, keys))
            verdict = apply_inbound_policy(decode_bundle(wire), pol_c, keys)
            assert verdict.accepted

        r_on = rate(lambda: through(on_a, on_c), seconds)
        r_off = rate(lambda: through(off, off), seconds)
        print(f"{'source+destination':<34}{size:>7}{r_on:>12,.0f}{r_off:>12,.0f}"
              f"{r_on / r_off:>10.2f}")
    print()
    print("node to node over TCPCLv4 on loopback: A applies its outbound policy and sends,")
    print("C receives and applies its inbound policy (XFER_ACK after it), 32 transfers in flight")
    print(f"{'tcpcl A -> C':<34}{'size':>7}{'signed/s':>12}{'plain/s':>12}{'ratio':>10}")
    for size, count in ((1024, 300 if args.quick else 2000), (65536, 100 if args.quick else 600)):
        r_on = asyncio.run(tcpcl_rate(size, count, on_a, on_c, keys))
        r_off = asyncio.run(tcpcl_rate(size, count, off, off, keys))
        print(f"{'signed vs security off':<34}{size:>7}{r_on:>12,.0f}{r_off:>12,.0f}"
              f"{r_on / r_off:>10.2f}")
    return 0


class _Sink:
    """The receiving end: inbound policy on every bundle, counts accepted ones."""

    def __init__(self, node_id: str, policy: SecurityPolicy, keys: MemoryKeys, want: int) -> None:
        self.node_id, self.policy, self.keys, self.want = node_id, policy, keys, want
        self.accepted = 0
        self.done = asyncio.Event()
        self.up = asyncio.Event()

    def link_up(self, link: object) -> None:
        self.up.set()

    def link_down(self, link: object, reason: str) -> None:
        self.up.clear()

    async def bundle_received(self, link: object, wire: bytes) -> bool:
        verdict, _ = check_wire(wire, self.policy, self.keys)
        self.accepted += verdict.accepted
        if self.accepted >= self.want:
            self.done.set()
        return True


async def tcpcl_rate(size: int, count: int, pol_a: SecurityPolicy, pol_c: SecurityPolicy,
                     keys: MemoryKeys) -> float:
    from waystation.convergence.nodelinks import tcpcl_factory

    sink = _Sink("ipn:3.0", pol_c, keys, count)
    source = _Sink("ipn:1.0", pol_a, keys, 0)
    listener = await tcpcl_factory("c", {"listen": "127.0.0.1:0", "node_id": "ipn:3.0"}, sink)
    link = await tcpcl_factory("a", {"address": listener.address, "node_id": "ipn:1.0"}, source)
    try:
        await asyncio.wait_for(source.up.wait(), 10)
        plain = bytes(encode_bundle(bundle_of(size)))
        t0 = time.perf_counter()
        sent = 0
        while sent < count:
            batch = min(32, count - sent)
            await asyncio.gather(*(link.send(protect_wire(plain, pol_a, keys))
                                   for _ in range(batch)))
            sent += batch
        await asyncio.wait_for(sink.done.wait(), 60)
        return count / (time.perf_counter() - t0)
    finally:
        await link.close()
        await listener.close()


if __name__ == "__main__":
    sys.exit(main())

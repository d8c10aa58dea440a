"""BPSec in the node service (issue 7), in-process: real LMDB stores and key files, bundles
handed to ``NodeService.bundle_received`` as a convergence layer would.

Covers the identity key (created on first start, 0600), signing of originated bundles, the
default trust rule ("trusted": verify when the source node's key is trusted), the strict and
off modes, deletion with the RFC 9172 §11.2 reason code plus a deletion status report, and
that a forwarder without verifier rules stores the received bytes unchanged.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from waystation.agent import BundleDeleted, StatusReportGenerated
from waystation.bundle import admin, codec
from waystation.bundle.bpsec.keystore import KeyStore
from waystation.bundle.dtntime import CreationTimestamp, SystemClock
from waystation.bundle.model import BlockType, BundleFlags
from waystation.bundleops import originate
from waystation.client import AsyncClient
from waystation.config import ConfigError, NodeConfig, load_config
from waystation.security import NodeSecurity
from waystation.service import NodeService
from waystation.store.api import iter_all

from tests.node.running import running_node

pytestmark = pytest.mark.timeout(60)

BIB = int(BlockType.BLOCK_INTEGRITY)


def run(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(fn())  # type: ignore[arg-type]


def config(tmp: Path, name: str, security: dict[str, Any] | None = None) -> NodeConfig:
    return NodeConfig(
        node_id=f"dtn://{name}/",
        data_dir=tmp / name / "data",
        runtime_dir=tmp / name / "run",
        security=security,
    )


class StubLink:
    """What ``bundle_received`` needs from a link: its id."""

    link_id = "stub"
    peer = "dtn://x/"


def make_wire(source: str, destination: str, payload: bytes = b"hello", *, report: bool = True,
              seq: int = 1) -> bytes:
    now = SystemClock().now_ms()
    wire, _ = originate(
        source=source,
        destination=destination,
        payload=payload,
        creation=CreationTimestamp(now, seq),
        lifetime_ms=3_600_000,
        flags=int(BundleFlags.REPORT_DELETION) if report else 0,
        report_to=source if report else None,
    )
    return wire


def signer(tmp: Path, name: str) -> NodeSecurity:
    """Node ``name``'s security as a source (its own key store under tmp/name-keys)."""
    sec = NodeSecurity(tmp / f"{name}-keys", [f"dtn://{name}/"])
    sec.start()
    return sec


def trust(node: NodeService, name: str, sec: NodeSecurity) -> None:
    KeyStore.for_data_dir(node.config.data_dir).trust(
        name, sec.store.identity().public, f"dtn://{name}/"
    )


class Recorder:
    def __init__(self, node: NodeService) -> None:
        self.outputs: list[Any] = []
        node.on_output.append(self.outputs.append)

    def deleted(self) -> list[BundleDeleted]:
        return [o for o in self.outputs if isinstance(o, BundleDeleted)]

    def reports(self) -> list[StatusReportGenerated]:
        return [o for o in self.outputs if isinstance(o, StatusReportGenerated)]


def stored(node: NodeService) -> list[bytes]:
    assert node.store is not None
    return [node.store.store.get(e.key) for e in iter_all(node.store.store)]


def block_types(wire: bytes) -> list[int]:
    return [int(b.block_type) for b in codec.decode_bundle(wire).blocks]


async def receive(node: NodeService, wire: bytes) -> bool:
    return await asyncio.wait_for(node.bundle_received(StubLink(), wire), 10)  # type: ignore[arg-type]


def test_identity_key_is_created_0600_on_first_start_and_kept(tmp_path: Path) -> None:
    async def main() -> None:
        node = NodeService(config(tmp_path, "b"), app_socket=False)
        key = tmp_path / "b" / "data" / "keys" / "identity.pem"
        assert not key.exists()
        await node.start()
        await node.stop()
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        first = key.read_bytes()
        node = NodeService(config(tmp_path, "b"), app_socket=False)
        await node.start()
        await node.stop()
        assert key.read_bytes() == first

    run(main)


def test_originated_bundles_leave_signed_and_self_addressed_ones_stay_plain(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with running_node(config(tmp_path, "a")) as node:
            async with AsyncClient(runtime_dir=node.config.runtime_dir) as c:
                await c.send("dtn://far/inbox", b"to the world")
                await c.send("dtn://a/inbox", b"to myself")
            wires = {str(codec.decode_bundle(w).primary.destination): w for w in stored(node)}
            far = codec.decode_bundle(wires["dtn://far/inbox"])
            bibs = [b for b in far.blocks if int(b.block_type) == BIB]
            assert len(bibs) == 1 and bytes(far.payload) == b"to the world"
            assert BIB not in block_types(wires["dtn://a/inbox"])
            assert node.security.counters["protected"] == 1
            # The signature verifies with the node's own key, as its peers will check it.
            KeyStore.for_data_dir(tmp_path / "far").trust(
                "a", node.security.store.identity().public, "dtn://a/"
            )
            far_node = NodeSecurity(tmp_path / "far", ["dtn://far/"], {"require_signature": True})
            assert far_node.check_sync(wires["dtn://far/inbox"]).accepted

    run(main)


def test_signed_bundle_from_a_trusted_node_is_verified_and_delivered_without_its_bib(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        a = signer(tmp_path, "a")
        async with running_node(config(tmp_path, "b"), app_socket=False) as node:
            trust(node, "a", a)
            wire = a.protect_sync(make_wire("dtn://a/", "dtn://b/in"))
            assert BIB in block_types(wire)
            assert await receive(node, wire)
            await asyncio.sleep(0.05)
            (kept,) = stored(node)
            assert BIB not in block_types(kept)  # the acceptor removed what it verified
            assert bytes(codec.decode_bundle(kept).payload) == b"hello"

    run(main)


@pytest.mark.parametrize("attack", ["unsigned", "tampered", "foreign-key"])
def test_bad_bundle_from_a_trusted_node_is_deleted_with_reason_code_and_reported(
    tmp_path: Path, attack: str
) -> None:
    async def main() -> None:
        a = signer(tmp_path, "a")
        node = NodeService(config(tmp_path, "b"), app_socket=False)
        rec = Recorder(node)
        await node.start()
        try:
            trust(node, "a", a)
            wire = make_wire("dtn://a/", "dtn://b/in")
            if attack == "tampered":
                bundle = codec.decode_bundle(a.protect_sync(wire))
                bundle.payload_block.data = b"jello"  # re-encoded: CRCs fixed like an attacker
                wire = codec.encode_bundle(bundle)
            elif attack == "foreign-key":
                # Mallory's own key, claiming to sign for dtn://a/.
                wire = NodeSecurity(tmp_path / "m-keys", ["dtn://a/"]).protect_sync(wire)
            expected = 12 if attack == "unsigned" else 15
            # Deleted, not refused: the peer must not retry a bundle that will never pass.
            assert await receive(node, wire)
            await asyncio.sleep(0.1)
            assert [d.reason for d in rec.deleted()] == [expected]
            assert [(r.kind, r.reason) for r in rec.reports()] == [("deletion", expected)]
            # The report bundle itself waits in the store for a route to dtn://a/ ...
            (report_wire,) = stored(node)
            report = codec.decode_bundle(report_wire)
            assert report.is_admin_record and str(report.primary.destination) == "dtn://a/"
            record = admin.decode_admin_record(bytes(report.payload))
            assert isinstance(record, admin.BundleStatusReport)
            assert record.reason == expected and record.deleted.asserted
            assert node.agent.counters["rejected"] == 1
            # ... and the rejected bundle is remembered: a resend is a duplicate, not a retry.
            assert await receive(node, wire)
            assert len(rec.deleted()) == 1
        finally:
            await node.stop()

    run(main)


def test_no_status_report_unless_asked(tmp_path: Path) -> None:
    async def main() -> None:
        a = signer(tmp_path, "a")
        node = NodeService(config(tmp_path, "b"), app_socket=False)
        rec = Recorder(node)
        await node.start()
        try:
            trust(node, "a", a)
            assert await receive(node, make_wire("dtn://a/", "dtn://b/in", report=False))
            await asyncio.sleep(0.05)
            assert [d.reason for d in rec.deleted()] == [12]
            assert rec.reports() == [] and stored(node) == []
        finally:
            await node.stop()

    run(main)


def test_default_accepts_nodes_without_keys_so_fresh_nodes_can_talk(tmp_path: Path) -> None:
    async def main() -> None:
        stranger = signer(tmp_path, "s")
        node = NodeService(config(tmp_path, "b"), app_socket=False)
        rec = Recorder(node)
        await node.start()
        try:
            assert await receive(node, make_wire("dtn://u/", "dtn://b/in", seq=1))
            assert await receive(node, stranger.protect_sync(make_wire("dtn://s/", "dtn://b/in",
                                                                       seq=2)))
            await asyncio.sleep(0.05)
            assert rec.deleted() == [] and len(stored(node)) == 2
        finally:
            await node.stop()

    run(main)


def test_require_signature_true_rejects_untrusted_and_unsigned(tmp_path: Path) -> None:
    async def main() -> None:
        stranger = signer(tmp_path, "s")
        node = NodeService(config(tmp_path, "b", {"require_signature": True}), app_socket=False)
        rec = Recorder(node)
        await node.start()
        try:
            assert await receive(node, make_wire("dtn://u/", "dtn://b/in", seq=1))
            assert await receive(node, stranger.protect_sync(make_wire("dtn://s/", "dtn://b/in",
                                                                       seq=2)))
            await asyncio.sleep(0.1)
            assert sorted(d.reason for d in rec.deleted()) == [12, 15]
        finally:
            await node.stop()

    run(main)


def test_require_signature_false_checks_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        a = signer(tmp_path, "a")
        node = NodeService(config(tmp_path, "b", {"require_signature": False,
                                                  "sign_originated": False}), app_socket=False)
        await node.start()
        try:
            trust(node, "a", a)
            assert await receive(node, make_wire("dtn://a/", "dtn://b/in"))
            await asyncio.sleep(0.05)
            assert len(stored(node)) == 1 and node.security.counters["checked"] == 0
        finally:
            await node.stop()

    run(main)


def test_forwarder_without_verifier_rules_keeps_the_received_bytes(tmp_path: Path) -> None:
    async def main() -> None:
        a = signer(tmp_path, "a")
        async with running_node(config(tmp_path, "b"), app_socket=False) as node:
            trust(node, "a", a)  # even a trusted source is not checked at a forwarder
            wire = a.protect_sync(make_wire("dtn://a/", "dtn://c/in"))
            assert await receive(node, wire)
            await asyncio.sleep(0.05)
            assert stored(node) == [wire]
            assert node.security.counters["checked"] == 0

    run(main)


def test_our_missing_key_refuses_the_bundle_instead_of_deleting_it(tmp_path: Path) -> None:
    rule = {"role": "acceptor", "context": "bcb-aes-gcm", "key": "not-installed"}

    async def main() -> None:
        node = NodeService(config(tmp_path, "b", {"rules": [rule]}), app_socket=False)
        rec = Recorder(node)
        await node.start()
        try:
            assert not await receive(node, make_wire("dtn://u/", "dtn://b/in"))
            assert rec.deleted() == [] and stored(node) == []
        finally:
            await node.stop()

    run(main)


def test_security_table_errors_name_the_key(tmp_path: Path) -> None:
    bad = {
        'require_signature = "sometimes"': "require_signature",
        "sign_everything = true": "sign_everything",
        '[[security.rules]]\nrole = "source"\ncontext = "rot13"': "context",
        '[[security.rules]]\nrole = "source"\ncontext = "bcb-aes-gcm"': "needs a key",
    }
    for body, needle in bad.items():
        path = tmp_path / "n.toml"
        path.write_text(f"[security]\n{body}\n")
        with pytest.raises(ConfigError, match=needle):
            load_config(path)


def test_keys_command_and_node_share_the_default_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from waystation.bundle.bpsec.keys import fingerprint
    from waystation.cli import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert main(["keys", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["path"] == str(tmp_path / "xdg" / "waystation" / "keys" / "identity.pem")

    async def main_node() -> None:
        node = NodeService(load_config(None, node_id="dtn://x/", runtime_dir=tmp_path / "run"),
                           app_socket=False)
        await node.start()
        try:
            assert fingerprint(node.security.store.identity().public) == shown["fingerprint"]
        finally:
            await node.stop()

    run(main_node)


def test_check_never_raises_on_mutated_signed_bundles(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    a = signer(tmp_path, "a")
    b = NodeSecurity(tmp_path / "b-keys", ["dtn://b/"])
    KeyStore.for_data_dir(tmp_path / "b-keys").trust("a", a.store.identity().public, "dtn://a/")
    good = a.protect_sync(make_wire("dtn://a/", "dtn://b/in", b"payload " * 8))
    assert b.check_sync(good).accepted

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)),
                    min_size=1, max_size=4),
           st.integers(0, len(good)))
    def check(flips: list[tuple[int, int]], cut: int) -> None:
        wire = bytearray(good)
        for pos, value in flips:
            wire[pos] = value
        result = b.check_sync(bytes(wire[: max(cut, 1)]))
        if result.accepted and bytes(wire[: max(cut, 1)]) != good:
            # Anything accepted must still carry A's exact payload (CRC-protected changes
            # elsewhere are either rejected or outside what the signature covers).
            bundle = codec.decode_bundle(result.wire)
            assert bytes(bundle.payload) == b"payload " * 8
        elif not result.accepted:
            assert result.reason_code in (8, 12, 13, 15, 16)

    check()


def test_batched_worker_gives_each_caller_its_own_result_or_error(tmp_path: Path) -> None:
    from waystation.bundle.errors import BundleError

    sec = signer(tmp_path, "a")
    wires = [make_wire("dtn://a/", "dtn://c/in", b"%d" % i, seq=i) for i in range(40)]
    expected = [sec.protect_sync(w) for w in wires]  # Ed25519 signatures are deterministic

    async def main() -> None:
        calls = [sec.protect(w) for w in wires[:20]] + [sec.protect(b"\xff garbage")]
        calls += [sec.protect(w) for w in wires[20:]]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[20], BundleError)
        assert results[:20] + results[21:] == expected
        sec.close()

    run(main)

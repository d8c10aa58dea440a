"""UDP convergence layer: datagram rules (draft-sipos-dtn-udpcl) and real loopback sockets."""

from __future__ import annotations

import asyncio

import pytest
from waystation.convergence.errors import MessageDecodeError, TransferTooLarge
from waystation.convergence.udp import (
    IPV4_MAX_PAYLOAD,
    DatagramKind,
    classify_datagram,
    open_endpoint,
)

pytestmark = pytest.mark.timeout(30)


def _bundle(size: int) -> bytes:
    # A CBOR indefinite array start, as every BPv7 bundle begins, padded to size.
    return b"\x9f" + bytes(size - 1)


def test_bpv7_bundle_and_keepalive_are_recognised() -> None:
    assert classify_datagram(_bundle(10)).kind is DatagramKind.BUNDLE
    assert classify_datagram(b"\x82\x01\x02").kind is DatagramKind.BUNDLE
    assert classify_datagram(b"").kind is DatagramKind.KEEPALIVE


@pytest.mark.parametrize(
    ("data", "match"),
    [(b"\x06\x00", "BPv6"), (b"\xa1\x01\x02", "extension map"), (b"hello", "not a CBOR array")],
)
def test_non_bundles_are_refused_with_a_reason(data: bytes, match: str) -> None:
    with pytest.raises(MessageDecodeError, match=match):
        classify_datagram(data)


def test_bundles_cross_loopback_one_per_datagram() -> None:
    async def main():
        got: list[tuple[bytes, object]] = []
        done = asyncio.Event()

        class Sink:
            def bundle_received(self, ep, data, addr):
                got.append(data)
                if len(got) == 3:
                    done.set()

        rx = await open_endpoint("127.0.0.1", 0, Sink())
        tx = await open_endpoint("127.0.0.1", 0)
        bundles = [_bundle(1), _bundle(1400), _bundle(IPV4_MAX_PAYLOAD)]
        for b in bundles:
            await tx.send(b, rx.local_address)
        tx.send_keepalive(rx.local_address)
        await asyncio.wait_for(done.wait(), 5)
        assert sorted(got, key=len) == bundles
        await asyncio.sleep(0.05)
        assert rx.counters["keepalives"] == 1
        await tx.close()
        await rx.close()

    asyncio.run(main())


def test_oversized_bundle_is_refused_before_sending() -> None:
    async def main():
        tx = await open_endpoint("127.0.0.1", 0, max_bundle_size=1200)
        with pytest.raises(
            TransferTooLarge, match="1201 bytes exceeds the UDP datagram limit of 1200"
        ):
            await tx.send(_bundle(1201), ("127.0.0.1", 9))
        assert tx.counters["bundles_sent"] == 0
        await tx.close()

    asyncio.run(main())


def test_garbage_datagrams_are_counted_and_dropped() -> None:
    async def main():
        got: list[bytes] = []

        class Sink:
            def bundle_received(self, ep, data, addr):
                got.append(data)

        rx = await open_endpoint("127.0.0.1", 0, Sink())
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=rx.local_address
        )
        tr.sendto(b"GET /")
        tr.sendto(b"\x06bpv6")
        tr.sendto(_bundle(5))
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [_bundle(5)]
        assert rx.counters["dropped"] == 2 and "BPv6" in (rx.last_error or "")
        tr.close()
        await rx.close()

    asyncio.run(main())

"""Random frames against a running node's socket: every one gets an error (or a valid answer),
and the node keeps serving well-behaved clients (issue 4: bad input never disturbs the node)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waystation.appproto import OPS, decode_frame
from waystation.client import Client
from waystation.config import NodeConfig
from waystation.service import NodeService

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def node_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    cfg = NodeConfig(
        node_id="dtn://fuzz/", data_dir=tmp / "data", runtime_dir=tmp / "run", max_payload=4096
    )
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            node = NodeService(cfg)
            await node.start()
            holder["loop"] = asyncio.get_running_loop()
            holder["stop"] = stop = asyncio.Event()
            ready.set()
            await stop.wait()
            await node.stop()

        asyncio.run(main())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(20)
    yield f"ipc://{cfg.socket_path}"
    holder["loop"].call_soon_threadsafe(holder["stop"].set)
    t.join(20)


values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64 - 1),
        st.text(max_size=20),
        st.binary(max_size=40),
        st.floats(allow_nan=True),
        st.sampled_from(["dtn://fuzz/in", "dtn://x/y", "ipn:1.2", "dtn:none", ""]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
arg_names = st.sampled_from(
    [
        "destination",
        "payload",
        "endpoint",
        "lifetime_ms",
        "priority",
        "reports",
        "key",
        "window",
        "transient",
        "source",
        "report_to",
        "pattern",
        "next_hop",
        "id",
        "kind",
        "path",
    ]
)
requests = st.builds(
    lambda op, rid, body: cbor2.dumps([1, op, rid, body]),
    st.one_of(st.sampled_from(sorted(OPS - {"recv"})), st.text(max_size=10)),
    st.integers(1, 2**32),
    st.dictionaries(arg_names, values, max_size=5),
)
frames = st.one_of(st.binary(max_size=80), requests, values.map(lambda v: cbor2.dumps(v)))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_random_frames_get_answers_and_the_node_keeps_serving(
    node_endpoint: str, batch: list[bytes]
) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(node_endpoint)
    try:
        for frame in batch:
            sock.send(frame)
        # Every frame is answered (requests with rid 0 are answered only on error, and our
        # strategies never produce a valid rid-0 request), with a decodable frame.
        for _ in batch:
            assert sock.poll(5000), "the node stopped answering"
            reply = decode_frame(sock.recv(), from_node=True)
            assert reply.kind in ("ok", "error", "keepalive")
            if reply.kind == "error":
                assert reply.body["code"] != "internal", reply.body
    finally:
        sock.close(linger=0)
    with Client(node_endpoint, timeout=5) as good:
        assert good.hello()["node_id"] == "dtn://fuzz/"

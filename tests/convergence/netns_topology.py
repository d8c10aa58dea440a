"""Three network namespaces joined by veth pairs, with the router namespace's forwarding path
running through the packet-level link emulator (test helper; needs root, iproute2, /dev/net/tun).

    ns A 10.201.1.1 --veth-- ns R (vRA -> tunF -> linkemu -> tunB -> vRB) --veth-- ns B 10.201.2.2
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

PY = sys.executable


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def _why_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if shutil.which("ip") is None:
        return "the 'ip' tool (iproute2) is not installed"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no TUN support)"
    probe = f"wsprobe{os.getpid()}"
    try:
        _sh("ip", "netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot create a network namespace: {getattr(exc, 'stderr', exc)}"
    _sh("ip", "netns", "del", probe)
    return None


@contextlib.contextmanager
def topology(delay: float = 0.3, loss: float = 0.01) -> Iterator[tuple[dict, list]]:
    why = _why_unavailable()
    if why:
        pytest.skip(f"network-namespace test skipped: {why}")
    tag = str(os.getpid() % 100000)
    ns = {k: f"ws{k}{tag}" for k in ("A", "R", "B")}
    veth = {k: f"{k}{tag}" for k in ("va", "vra", "vb", "vrb")}
    procs: list[subprocess.Popen] = []
    try:
        for n in ns.values():
            _sh("ip", "netns", "add", n)
            _sh("ip", "-n", n, "link", "set", "lo", "up")
        _sh("ip", "link", "add", veth["va"], "type", "veth", "peer", "name", veth["vra"])
        _sh("ip", "link", "add", veth["vb"], "type", "veth", "peer", "name", veth["vrb"])
        for dev, n in (
            (veth["va"], ns["A"]),
            (veth["vra"], ns["R"]),
            (veth["vb"], ns["B"]),
            (veth["vrb"], ns["R"]),
        ):
            _sh("ip", "link", "set", dev, "netns", n)
            _sh("ip", "-n", n, "link", "set", dev, "up")
        _sh("ip", "-n", ns["A"], "addr", "add", "10.201.1.1/24", "dev", veth["va"])
        _sh("ip", "-n", ns["A"], "route", "add", "default", "via", "10.201.1.2")
        _sh("ip", "-n", ns["B"], "addr", "add", "10.201.2.2/24", "dev", veth["vb"])
        _sh("ip", "-n", ns["B"], "route", "add", "default", "via", "10.201.2.1")
        r = ns["R"]
        _sh("ip", "-n", r, "addr", "add", "10.201.1.2/24", "dev", veth["vra"])
        _sh("ip", "-n", r, "addr", "add", "10.201.2.1/24", "dev", veth["vrb"])
        for key in (
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ):
            _sh("ip", "netns", "exec", r, "sysctl", "-q", "-w", key)
        emu = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                r,
                PY,
                "-m",
                "waystation.convergence.linkemu",
                "tun",
                "tunF",
                "tunB",
                "--delay",
                "0.3",
                "--loss",
                "0.01",
                "--seed",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(emu)
        line = emu.stdout.readline()
        assert "ready" in line, f"link emulator did not start: {line} {emu.stderr.read()}"
        for dev, table, iif in (("tunF", "101", veth["vra"]), ("tunB", "102", veth["vrb"])):
            _sh("ip", "-n", r, "link", "set", dev, "up")
            _sh("ip", "netns", "exec", r, "sysctl", "-q", "-w", f"net.ipv4.conf.{dev}.rp_filter=0")
            _sh("ip", "-n", r, "rule", "add", "iif", iif, "lookup", table)
            _sh("ip", "-n", r, "route", "add", "default", "dev", dev, "table", table)
        yield ns, procs
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for n in ns.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)

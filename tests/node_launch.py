"""Start a real ``waystation node`` process and wait until its application socket answers.

Shared by the process-level tests and by the benchmarks (``bench/_nodeproc.py`` re-exports it),
so "the node is up" means the same thing everywhere: the process is alive, its socket exists
and a ``hello`` over it succeeds.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from waystation.client import Client, ClientError

__all__ = ["free_port", "spawn_node", "wait_until_up"]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the OS picked it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_node(
    args: Sequence[str], *, log: Path, env: Mapping[str, str], prefix: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start ``[*prefix] python -m waystation node *args``, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [*prefix, sys.executable, "-m", "waystation", "node", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_until_up(
    proc: subprocess.Popen[bytes],
    sock: Path,
    *,
    log: Path,
    label: str,
    timeout: float = 30.0,
    log_tail: int | None = 3000,
) -> None:
    """Return once a ``hello`` over ``ipc://sock`` succeeds.

    Raises RuntimeError ("<label> exited: ..." or "<label> did not come up: ...", followed by
    the last ``log_tail`` characters of the log, or all of it for None) if the process dies or
    ``timeout`` seconds pass first. The process is left running on a timeout: the caller owns it.
    """

    def tail() -> str:
        text = log.read_text()
        return text if log_tail is None else text[-log_tail:]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{label} exited: {tail()}")
        if sock.exists():
            try:
                with Client(f"ipc://{sock}", timeout=0.5) as c:
                    c.hello()
                return
            except ClientError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"{label} did not come up: {tail()}")

"""Run real ``waystation node`` processes from a generated node.toml (test helper)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from waystation.client import Client, ClientError

PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(
        self,
        tmp: Path,
        name: str,
        pki: Path,
        links: list[dict],
        routes: dict[str, str],
        prefix: tuple[str, ...] = (),
    ):
        self.prefix = prefix  # e.g. ("ip", "netns", "exec", NS) to run inside a namespace
        self.name = name
        self.dir = tmp / name
        self.dir.mkdir()
        self.socket = self.dir / "run" / "node.sock"
        self.log = self.dir / "node.log"
        tls = (
            f'tls = true\nrequire_tls = true\nnode_id_policy = "require"\n'
            f'cert = "{pki / name}.crt"\nkey = "{pki / name}.key"\nca = "{pki}/ca.crt"\n'
        )
        text = [
            f'[node]\nid = "dtn://{name}/"\ndata_dir = "{self.dir / "data"}"\n'
            f'runtime_dir = "{self.dir / "run"}"\n',
            '[logging]\nlevel = "info"\n',
        ]
        for pattern, hop in routes.items():
            text.append(f'[[routes]]\npattern = "{pattern}"\nnext_hop = "{hop}"\n')
        for link in links:
            body = "".join(f'{k} = "{v}"\n' for k, v in link.items())
            text.append(f"[[links]]\n{body}{tls}")
        self.config = self.dir / "node.toml"
        self.config.write_text("\n".join(text))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, WAYSTATION_SOCKET=str(self.socket))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, PY, "-m", "waystation", "node", "--config", str(self.config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            if self.socket.exists():
                try:
                    with self.client(0.5) as c:
                        c.hello()
                    return
                except ClientError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not come up: {self.log.read_text()[-3000:]}")

    def client(self, timeout: float = 30.0) -> Client:
        return Client(f"ipc://{self.socket}", timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.proc = None

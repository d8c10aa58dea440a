"""Run real ``waystation node`` processes from a generated node.toml (test helper)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from waystation.client import Client

from tests.node_launch import free_port, spawn_node, wait_until_up

_free_port = free_port  # the name the tests here import


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
        args = ["--config", str(self.config)]
        self.proc = spawn_node(args, log=self.log, env=env, prefix=self.prefix)
        wait_until_up(self.proc, self.socket, log=self.log, label=self.name)

    def client(self, timeout: float = 30.0) -> Client:
        return Client(f"ipc://{self.socket}", timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.proc = None

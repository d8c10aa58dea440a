"""Zero-config defaults, XDG paths and node.toml parsing (docs/node.md, docs/node.sample.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from waystation.config import ConfigError, default_node_id, load_config

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "node.sample.toml"


def test_no_configuration_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    cfg = load_config()
    assert cfg.node_id == default_node_id()
    assert cfg.node_id.startswith("dtn://") and cfg.node_id.endswith("/")
    assert cfg.data_dir == tmp_path / "data" / "waystation"
    assert cfg.socket_path == tmp_path / "run" / "waystation" / "node.sock"


def test_runtime_dir_falls_back_to_a_private_tmp_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert load_config().runtime_dir == Path(f"/tmp/waystation-{os.getuid()}")


def test_sample_config_loads() -> None:
    cfg = load_config(SAMPLE)
    assert cfg.node_id == "dtn://groundstation/"
    assert cfg.ipn_node == 10
    assert cfg.routes and cfg.routes[0].next_hop
    assert cfg.links and cfg.links[0].kind == "tcpcl"


def test_command_line_wins_over_file(tmp_path: Path) -> None:
    f = tmp_path / "n.toml"
    f.write_text('[node]\nid = "dtn://file/"\n')
    assert load_config(f, node_id="dtn://cli/").node_id == "dtn://cli/"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[nod]\n", "unknown section"),
        ("[node]\nid = 5\n", "node.id must be str"),
        ('[node]\nid = "mars"\n', "must be dtn://NAME/ or ipn:N.0"),
        ('[app]\ntcp = "tcp://0.0.0.0:1"\n', "loopback"),
        ("[bundle]\nlifetime = -1\n", "positive"),
        ('[[routes]]\npattern = "*"\n', "needs 'pattern' and 'next_hop'"),
        ("not toml [", "n.toml"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "n.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(f)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")

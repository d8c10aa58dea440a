"""Node configuration: zero-config defaults, XDG paths, and the optional ``node.toml``.

``waystation node`` runs with no configuration at all (issue 4): the node ID comes from the
host name, the data directory from ``$XDG_DATA_HOME`` (default ``~/.local/share``), the
application socket from ``$XDG_RUNTIME_DIR`` (falling back to a private directory under
``/tmp`` when that is unset, as on many containers). ``--config node.toml`` supplies
everything else; docs/node.sample.toml documents every key.

Errors: :class:`ConfigError` (a ``ValueError``) with the offending key in the message.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "RouteConfig",
    "LinkConfig",
    "NodeConfig",
    "default_node_id",
    "default_data_dir",
    "default_runtime_dir",
    "load_config",
    "local_node_ids",
    "socket_endpoint",
]

DEFAULT_LIFETIME_S = 24 * 3600
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024


class ConfigError(ValueError):
    """A configuration file or option that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One static route: an EID glob pattern and the neighbour node that is its next hop."""

    pattern: str
    next_hop: str


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """One convergence-layer link, handed to the link manager's factory for ``kind``."""

    id: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class NodeConfig:
    """Everything the node service needs; every field has a working default."""

    node_id: str = ""
    ipn_node: int | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    runtime_dir: Path = field(default_factory=lambda: default_runtime_dir())
    app_tcp: str | None = None
    max_payload: int = DEFAULT_MAX_PAYLOAD
    default_lifetime_s: int = DEFAULT_LIFETIME_S
    hop_limit: int | None = None
    store_backend: str = "lmdb"
    store_map_size: int = 8 * 1024**3
    log_level: str = "info"
    log_format: str = "text"
    routes: list[RouteConfig] = field(default_factory=list)
    links: list[LinkConfig] = field(default_factory=list)
    contact_plan: Path | None = None
    watch_plan: bool = False  # reload contact_plan when the file changes
    # Scaled clock (node/simclock.py): DTN time runs ``clock_scale`` times faster than real time
    # from ``clock_start`` (DTN ms), read at the wall-clock instant ``clock_anchor`` (Unix s).
    clock_scale: float | None = None
    clock_start: int | None = None
    clock_anchor: float | None = None
    # The ``[security]`` table as parsed TOML (None: defaults); validated by waystation.security.
    security: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.node_id:
            self.node_id = default_node_id()

    @property
    def socket_path(self) -> Path:
        return self.runtime_dir / "node.sock"


def _host_label() -> str:
    # RFC 9171 §4.2.5.1.1: a dtn node name is a URI reg-name; keep it to the safe subset.
    name = socket.gethostname().split(".")[0].lower() or "localhost"
    name = re.sub(r"[^a-z0-9\-._~]", "-", name)
    return name or "localhost"


def default_node_id() -> str:
    """``dtn://<short host name>/`` — the node ID used when none is configured."""
    return f"dtn://{_host_label()}/"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "waystation"


def default_runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "waystation"
    # No per-user runtime dir (containers, cron): a per-user directory in /tmp, 0700 like XDG's.
    return Path("/tmp") / f"waystation-{os.getuid()}"


def socket_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir / 'node.sock'}"


def _get(table: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    value = table.get(key)
    if value is None:
        return None
    types = typ if isinstance(typ, tuple) else (typ,)
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{where}.{key} must be {names}, got {value!r}")
    return value


def _expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))


def load_config(path: Path | None = None, **overrides: Any) -> NodeConfig:
    """Build a :class:`NodeConfig` from defaults, an optional TOML file, then ``overrides``.

    ``overrides`` are command-line values (``None`` means "not given"); they win over the file.
    """
    cfg = NodeConfig()
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        _apply(cfg, doc, Path(path).parent)
    for key, value in overrides.items():
        if value is None:
            continue
        if not hasattr(cfg, key):
            raise ConfigError(f"unknown setting {key!r}")
        if key in ("data_dir", "runtime_dir", "contact_plan"):
            value = _expand(str(value))
        setattr(cfg, key, value)
    _validate(cfg)
    return cfg


def _apply(cfg: NodeConfig, doc: dict[str, Any], base: Path) -> None:
    known = {"node", "app", "bundle", "store", "logging", "routes", "links", "security"}
    for key in doc:
        if key not in known:
            raise ConfigError(f"unknown section [{key}] (known: {', '.join(sorted(known))})")
    node = doc.get("node", {})
    if not isinstance(node, dict):
        raise ConfigError("[node] must be a table")
    if (v := _get(node, "id", str, "node")) is not None:
        cfg.node_id = v
    if (v := _get(node, "ipn", int, "node")) is not None:
        cfg.ipn_node = v
    if (v := _get(node, "data_dir", str, "node")) is not None:
        cfg.data_dir = base / _expand(v)
    if (v := _get(node, "runtime_dir", str, "node")) is not None:
        cfg.runtime_dir = base / _expand(v)
    if (v := _get(node, "contact_plan", str, "node")) is not None:
        cfg.contact_plan = base / _expand(v)
    if (v := _get(node, "watch_plan", bool, "node")) is not None:
        cfg.watch_plan = v
    if (v := _get(node, "clock_scale", (int, float), "node")) is not None:
        cfg.clock_scale = float(v)
    if (v := _get(node, "clock_start", (str, int), "node")) is not None:
        from waystation.simclock import parse_clock_start

        try:
            cfg.clock_start = parse_clock_start(v)
        except ValueError as exc:
            raise ConfigError(f"node.clock_start: {exc}") from None
    if (v := _get(node, "clock_anchor", (int, float), "node")) is not None:
        cfg.clock_anchor = float(v)
    app = doc.get("app", {})
    if (v := _get(app, "tcp", str, "app")) is not None:
        cfg.app_tcp = v
    if (v := _get(app, "max_payload", int, "app")) is not None:
        cfg.max_payload = v
    bundle = doc.get("bundle", {})
    if (v := _get(bundle, "lifetime", int, "bundle")) is not None:
        cfg.default_lifetime_s = v
    if (v := _get(bundle, "hop_limit", int, "bundle")) is not None:
        cfg.hop_limit = v
    store = doc.get("store", {})
    if (v := _get(store, "backend", str, "store")) is not None:
        cfg.store_backend = v
    if (v := _get(store, "map_size", int, "store")) is not None:
        cfg.store_map_size = v
    log = doc.get("logging", {})
    if (v := _get(log, "level", str, "logging")) is not None:
        cfg.log_level = v
    if (v := _get(log, "format", str, "logging")) is not None:
        cfg.log_format = v
    for i, r in enumerate(doc.get("routes", [])):
        where = f"routes[{i}]"
        if not isinstance(r, dict):
            raise ConfigError(f"{where} must be a table")
        pattern = _get(r, "pattern", str, where)
        hop = _get(r, "next_hop", str, where)
        if not pattern or not hop:
            raise ConfigError(f"{where} needs 'pattern' and 'next_hop'")
        cfg.routes.append(RouteConfig(pattern, hop))
    for i, link in enumerate(doc.get("links", [])):
        where = f"links[{i}]"
        if not isinstance(link, dict):
            raise ConfigError(f"{where} must be a table")
        lid = _get(link, "id", str, where)
        kind = _get(link, "kind", str, where)
        if not lid or not kind:
            raise ConfigError(f"{where} needs 'id' and 'kind'")
        options = {k: v for k, v in link.items() if k not in ("id", "kind")}
        cfg.links.append(LinkConfig(lid, kind, options))
    if "security" in doc:
        if not isinstance(doc["security"], dict):
            raise ConfigError("[security] must be a table")
        cfg.security = doc["security"]


def _validate(cfg: NodeConfig) -> None:
    if not re.fullmatch(r"(dtn://[^/\s]+/.*|ipn:\d+\.0)", cfg.node_id):
        raise ConfigError(f"node id {cfg.node_id!r} must be dtn://NAME/ or ipn:N.0")
    if cfg.ipn_node is not None and not 0 < cfg.ipn_node < 2**64:
        raise ConfigError("node.ipn must be a positive node number")
    if cfg.max_payload <= 0:
        raise ConfigError("app.max_payload must be positive")
    if cfg.clock_scale is not None and not 0 < cfg.clock_scale < 1e9:
        raise ConfigError("node.clock_scale must be a positive factor, e.g. 60")
    if cfg.default_lifetime_s <= 0:
        raise ConfigError("bundle.lifetime must be positive (seconds)")
    if cfg.hop_limit is not None and not 1 <= cfg.hop_limit <= 255:
        raise ConfigError("bundle.hop_limit must be in 1..255")
    if cfg.store_backend not in ("lmdb", "memory"):
        raise ConfigError("store.backend must be 'lmdb' or 'memory'")
    if cfg.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("logging.level must be debug, info, warning or error")
    if cfg.log_format not in ("text", "json"):
        raise ConfigError("logging.format must be 'text' or 'json'")
    if cfg.app_tcp is not None and not re.fullmatch(
        r"tcp://(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+", cfg.app_tcp
    ):
        raise ConfigError("app.tcp must be a loopback endpoint, e.g. tcp://127.0.0.1:4557")
    if cfg.security is not None:
        # Parsed here so a bad policy stops the node at start with the key named (BPSec, issue 7).
        from waystation.bundle.bpsec.errors import BPSecError
        from waystation.security import parse_security_table

        try:
            parse_security_table(local_node_ids(cfg), cfg.security)
        except BPSecError as exc:
            raise ConfigError(str(exc)) from None


def local_node_ids(cfg: NodeConfig) -> list[str]:
    """The node IDs this node answers to: its node ID and, with ``node.ipn``, ``ipn:N.0``."""
    ids = [cfg.node_id]
    if cfg.ipn_node is not None:
        ids.append(f"ipn:{cfg.ipn_node}.0")
    return ids

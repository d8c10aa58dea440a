"""Who this node is: its node ID(s), which endpoints it owns, its well-known services.

A node has a ``dtn`` node ID (``dtn://<name>/``) and optionally an ``ipn`` node number; both
are its administrative endpoints (RFC 9171 §4.2.5.2). An endpoint belongs to the node when it
has the node's dtn node name or its ipn node number (authority 0). Well-known services:

* the echo service (``dtn://<name>/echo``, ``ipn:<N>.2047``), like ION's bpecho;
* the administrative endpoint (the node IDs themselves) receives status reports addressed
  to the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from waystation.bundle.eid import DtnEID, EndpointID, IpnEID, parse_eid
from waystation.bundle.errors import EIDError

__all__ = ["ECHO_DEMUX", "ECHO_SERVICE", "LocalIdentity"]

ECHO_DEMUX = "echo"
ECHO_SERVICE = 2047


@dataclass
class LocalIdentity:
    """The node's identity; ``owns()`` answers "is this EID local?" with a small cache."""

    node_id: str
    ipn_node: int | None = None
    _node_eid: EndpointID = field(init=False, repr=False)
    _dtn_name: str | None = field(init=False, repr=False)
    _cache: dict[str, bool] = field(init=False, repr=False, default_factory=dict)
    _node_cache: dict[str, str | None] = field(init=False, repr=False, default_factory=dict)
    _admin: frozenset[str] = field(init=False, repr=False, default=frozenset())
    _echo: frozenset[str] = field(init=False, repr=False, default=frozenset())
    _admin_list: list[str] = field(init=False, repr=False, default_factory=list)
    _echo_list: list[str] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        eid = parse_eid(self.node_id)
        if not eid.is_node_id:
            raise EIDError(f"{self.node_id!r} is not a node ID (RFC 9171 §4.2.5.2)")
        self._node_eid = eid
        self.node_id = str(eid)
        self._dtn_name = eid.node_name if isinstance(eid, DtnEID) else None
        if isinstance(eid, IpnEID) and self.ipn_node is None:
            self.ipn_node = eid.node
        admin = [self.node_id]
        if self.ipn_node is not None and f"ipn:{self.ipn_node}.0" not in admin:
            admin.append(f"ipn:{self.ipn_node}.0")
        echo = []
        if self._dtn_name is not None:
            echo.append(f"dtn://{self._dtn_name}/{ECHO_DEMUX}")
        if self.ipn_node is not None:
            echo.append(f"ipn:{self.ipn_node}.{ECHO_SERVICE}")
        self._admin = frozenset(admin)
        self._echo = frozenset(echo)
        self._admin_list, self._echo_list = admin, echo

    @property
    def node_eid(self) -> EndpointID:
        return self._node_eid

    @property
    def admin_eids(self) -> list[str]:
        return list(self._admin_list)

    @property
    def echo_eids(self) -> list[str]:
        return list(self._echo_list)

    def is_admin_eid(self, eid: str) -> bool:
        return eid in self._admin

    def is_echo_eid(self, eid: str) -> bool:
        return eid in self._echo

    def owns(self, eid: str) -> bool:
        """True if ``eid`` (text) is an endpoint of this node."""
        hit = self._cache.get(eid)
        if hit is not None:
            return hit
        try:
            parsed = parse_eid(eid)
        except EIDError:
            return False
        if isinstance(parsed, DtnEID):
            result = parsed.node_name == self._dtn_name
        elif isinstance(parsed, IpnEID):
            result = (
                parsed.authority == 0 and self.ipn_node is not None and parsed.node == self.ipn_node
            )
        else:
            result = False
        if len(self._cache) > 4096:  # bounded: EIDs come from the network
            self._cache.clear()
        self._cache[eid] = result
        return result

    def node_of(self, eid: str) -> str | None:
        """The node ID text of an EID (``dtn://a/x`` -> ``dtn://a/``), None if unparsable."""
        hit = self._node_cache.get(eid, "")
        if hit != "":
            return hit
        try:
            node: str | None = str(parse_eid(eid).node_id)
        except (EIDError, NotImplementedError):
            node = None
        if len(self._node_cache) > 4096:
            self._node_cache.clear()
        self._node_cache[eid] = node
        return node

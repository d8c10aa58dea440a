"""UDP convergence layer: one bundle per datagram (draft-sipos-dtn-udpcl where it applies)."""

from .adapter import UdpEndpoint, open_endpoint
from .datagram import (
    DEFAULT_MAX_BUNDLE,
    IPV4_MAX_PAYLOAD,
    IPV6_MAX_PAYLOAD,
    Datagram,
    DatagramKind,
    check_bundle_size,
    classify_datagram,
)

__all__ = [
    "DEFAULT_MAX_BUNDLE",
    "IPV4_MAX_PAYLOAD",
    "IPV6_MAX_PAYLOAD",
    "Datagram",
    "DatagramKind",
    "UdpEndpoint",
    "check_bundle_size",
    "classify_datagram",
    "open_endpoint",
]

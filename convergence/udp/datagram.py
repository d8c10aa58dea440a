"""Sans-I/O datagram rules of the UDP convergence layer.

What we follow from draft-sipos-dtn-udpcl (UDPCL):

- one whole encoded bundle per datagram, never split across datagrams (§3.1);
- the first octet says what a datagram is (§3.2): a BPv7 bundle is a CBOR array (major type 4,
  octets 0x80-0x9F); a zero-length datagram is a keepalive (§3.3) and is ignored;
- anything else (BPv6's version octet 0x06, the draft's CBOR-map extension datagrams, noise) is
  not a bundle: it is counted and dropped with a precise reason, never passed on.

What we do *not* implement from the draft: its DTLS security (§5), its extension map (session
and transfer-segmentation extensions, §3.4), and congestion control beyond a configurable send
rate in the adapter. Bundles larger than the datagram limit are refused with
:class:`~waystation.convergence.errors.TransferTooLarge`; the node fragments them (RFC 9171
§5.8) to ``max_bundle_size`` before handing them over -- a convergence layer never decodes a
bundle, so it cannot fragment one itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import MessageDecodeError, TransferTooLarge

IPV4_MAX_PAYLOAD = 65_507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
IPV6_MAX_PAYLOAD = 65_527  # 65535 - 8 (UDP header); jumbograms not supported
DEFAULT_MAX_BUNDLE = IPV4_MAX_PAYLOAD


class DatagramKind(Enum):
    BUNDLE = "bundle"
    KEEPALIVE = "keepalive"


@dataclass(frozen=True, slots=True)
class Datagram:
    kind: DatagramKind
    data: bytes = b""


def classify_datagram(data: bytes) -> Datagram:
    """Sort a received datagram (UDPCL §3.2). Raises ``MessageDecodeError`` for non-bundles."""
    if not data:
        return Datagram(DatagramKind.KEEPALIVE)
    first = data[0]
    if first >> 5 == 4:
        return Datagram(DatagramKind.BUNDLE, data)
    if first == 0x06:
        reason = "looks like a BPv6 bundle (version 6); only BPv7 is accepted"
    elif first >> 5 == 5:
        reason = "is a UDPCL extension map, which this implementation does not support"
    else:
        reason = f"starts with 0x{first:02x}, not a CBOR array: not a BPv7 bundle"
    raise MessageDecodeError(0, f"datagram of {len(data)} bytes {reason}")


def check_bundle_size(size: int, limit: int) -> None:
    """Refuse a bundle that does not fit one datagram, naming both numbers."""
    if size > limit:
        raise TransferTooLarge(size, limit, "UDP datagram")

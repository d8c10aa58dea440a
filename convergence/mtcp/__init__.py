"""MTCP: each bundle a CBOR byte string on a TCP stream (draft-ietf-dtn-mtcpcl, µD3TN, dtn7)."""

from .adapter import MtcpConnection, connect, start_server
from .framing import MtcpDecoder, encode_frame

__all__ = ["MtcpConnection", "MtcpDecoder", "connect", "encode_frame", "start_server"]

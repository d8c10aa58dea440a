"""BPv7 bundle model, reference codec, BPSec and administrative records (RFC 9171/9172/9173)."""

"""Selects the BPv7 codec implementation: the Cython twin when available, else pure Python.

* ``waystation.ext.fastcodec`` is used if it imports and ``WAYSTATION_PUREPYTHON`` is not ``1``;
* with ``WAYSTATION_REQUIRE_EXT=1`` a missing or broken extension is an :class:`ImportError`
  at import time (CI uses this so a silently failed build cannot pass);
* otherwise :mod:`waystation.bundle.pycodec`, the reference, is used.

``IMPLEMENTATION`` says which one is active ("cython" or "python"). Both expose the same
functions with the same behaviour (see :mod:`waystation.bundle.pycodec`).
"""

from __future__ import annotations

from types import ModuleType

from waystation.ext.twins import select_twin

from . import pycodec as _pycodec

__all__ = [
    "DEFAULT_MAX_BUNDLE_SIZE",
    "IMPLEMENTATION",
    "crc16_x25",
    "crc32c",
    "decode_bundle",
    "encode_bundle",
    "encode_canonical_block",
    "encode_primary_block",
    "implementation_module",
]


def _select() -> tuple[ModuleType, str]:
    return select_twin("fastcodec", _pycodec, "Cython codec")


_impl, IMPLEMENTATION = _select()

DEFAULT_MAX_BUNDLE_SIZE: int = _impl.DEFAULT_MAX_BUNDLE_SIZE
encode_bundle = _impl.encode_bundle
decode_bundle = _impl.decode_bundle
encode_primary_block = _impl.encode_primary_block
encode_canonical_block = _impl.encode_canonical_block
crc16_x25 = _impl.crc16_x25
crc32c = _impl.crc32c


def implementation_module() -> ModuleType:
    """The module that implements the codec in this process."""
    return _impl

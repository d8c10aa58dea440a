"""Interfaces between the bundle-level operations and the security contexts.

A *source* object (configured with keys and parameters) is what a security source uses to add
an operation: ``prepare()`` fixes per-block state (random IV, session key, wrapped key) and
returns the block's parameters plus a per-target function. A *handler* (one per security
context ID) is what a verifier or acceptor uses; it finds keys through a
:class:`~waystation.bundle.bpsec.keys.KeyResolver`.
"""

from __future__ import annotations

from typing import Any, Protocol

from waystation.bundle.bpsec.asb import AbstractSecurityBlock
from waystation.bundle.bpsec.keys import KeyResolver
from waystation.bundle.bpsec.scope import OperationScope

__all__ = [
    "ConfidentialitySource",
    "ContextHandler",
    "IntegritySource",
    "Pair",
    "PreparedConfidentiality",
    "PreparedIntegrity",
]

Pair = tuple[int, Any]


class PreparedIntegrity(Protocol):
    parameters: tuple[Pair, ...]

    def sign(self, scope: OperationScope) -> tuple[Pair, ...]:
        """Security results for one target."""
        ...


class PreparedConfidentiality(Protocol):
    parameters: tuple[Pair, ...]

    def encrypt(self, scope: OperationScope) -> tuple[bytes, tuple[Pair, ...]]:
        """(new target BTSD, security results) for one target."""
        ...


class IntegritySource(Protocol):
    context_id: int

    def prepare(self) -> PreparedIntegrity: ...


class ConfidentialitySource(Protocol):
    context_id: int

    def prepare(self) -> PreparedConfidentiality: ...


class ContextHandler(Protocol):
    context_id: int
    name: str

    def verify(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> None:
        """Raise SecurityCheckFailed / MalformedSecurityBlock unless the result verifies."""
        ...

    def decrypt(
        self,
        scope: OperationScope,
        asb: AbstractSecurityBlock,
        results: tuple[Pair, ...],
        keys: KeyResolver,
    ) -> bytes:
        """The plaintext BTSD of the target, or raise SecurityCheckFailed."""
        ...

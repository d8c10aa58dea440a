"""The node's on-disk key store: identity key, trusted peer keys, named symmetric keys.

Layout under ``<data_dir>/keys`` (directory mode 0700, every secret file mode 0600)::

    identity.pem            the node's private signing key (PKCS#8 PEM; Ed25519 by default)
    trusted.json            peers' public keys: {name: {"public_key": PEM, "node": "ipn:2.0"}}
    symmetric/<name>.key    one shared secret per file, hex

The identity key is created on first use (:meth:`KeyStore.identity`). A secret file that is
readable by group or others is refused, as ssh does, rather than silently used. Files are
written atomically (temporary file, fsync, rename) so a crash never leaves half a key.

Secrets never reach logs: the key objects redact themselves in ``repr``, and this module logs
key *names* and fingerprints only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from waystation.bundle.bpsec.errors import KeyNotFound, LocalSecurityError
from waystation.bundle.bpsec.keys import (
    PublicKey,
    SigningKey,
    StaticKeys,
    SymmetricKey,
    TrustedKey,
    fingerprint,
    raw_public_bytes,
)
from waystation.bundle.eid import EndpointID

__all__ = ["KeyStore", "KeyStoreError", "MemoryKeys", "describe_public", "load_public_key", "public_key_text"]

log = logging.getLogger("waystation.bpsec.keys")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
IDENTITY_FILE = "identity.pem"
TRUST_FILE = "trusted.json"


class KeyStoreError(LocalSecurityError):
    """The key store cannot be read or written (permissions, corruption, bad names)."""


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise KeyStoreError(
            f"bad key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit"
        )
    return name


def _write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_secret(path: Path) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyNotFound(f"no key file {path.name}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(
            f"{path} is accessible by group/others (mode {stat.S_IMODE(st.st_mode):o}); "
            "refusing to use it — chmod 600 it"
        )
    return path.read_bytes()


def public_key_text(public: PublicKey) -> str:
    """SubjectPublicKeyInfo PEM: what ``waystation keys export`` prints and ``trust`` reads."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(text: str | bytes) -> PublicKey:
    """Parse a PEM public key, or a raw Ed25519 key as 64 hex digits."""
    raw = text.encode() if isinstance(text, str) else text
    stripped = raw.strip()
    try:
        if re.fullmatch(rb"[0-9A-Fa-f]{64}", stripped):
            return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(stripped.decode()))
        key = serialization.load_pem_public_key(stripped)
    except ValueError as exc:
        raise KeyStoreError(f"not a usable public key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise KeyStoreError(f"unsupported public key type {type(key).__name__}")
    return key


class KeyStore:
    """Keys of one node, kept in ``root`` (normally ``<data_dir>/keys``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # path -> (file signature, parsed value): the node asks for keys on every bundle, so
        # parsed keys are kept and re-read only when the file changes (e.g. `keys trust` while
        # the node runs). The signature includes the mode so a chmod is noticed too.
        self._cache: dict[Path, tuple[tuple[int, int, int, int], Any]] = {}

    def _cached(self, path: Path, loader: Callable[[], Any]) -> Any:
        try:
            st = path.stat()
        except FileNotFoundError:
            self._cache.pop(path, None)
            return loader()
        sig = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        value = loader()
        self._cache[path] = (sig, value)
        return value

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> KeyStore:
        return cls(Path(data_dir) / "keys")

    def __repr__(self) -> str:
        return f"KeyStore({str(self.root)!r})"

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.root / "symmetric").mkdir(exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    # ---------------------------------------------------------------- identity

    def has_identity(self) -> bool:
        return (self.root / IDENTITY_FILE).exists()

    def generate_identity(self, kind: str = "ed25519", *, overwrite: bool = False) -> SigningKey:
        """Create the node's signing key (``ed25519`` or ``p256``)."""
        if self.has_identity() and not overwrite:
            raise KeyStoreError(f"{self.root / IDENTITY_FILE} exists; pass overwrite to replace it")
        private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
        if kind == "ed25519":
            private = ed25519.Ed25519PrivateKey.generate()
        elif kind == "p256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise KeyStoreError(f"unknown key type {kind!r} (ed25519 or p256)")
        self._ensure_root()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_atomic(self.root / IDENTITY_FILE, pem)
        key = SigningKey(private)
        log.info("created %s identity key, fingerprint %s", kind, fingerprint(key.public))
        return key

    def identity(self) -> SigningKey:
        """The node's signing key, created on first use."""
        path = self.root / IDENTITY_FILE
        if not path.exists():
            self.generate_identity()
        key: SigningKey = self._cached(path, lambda: self._load_identity(path))
        return key

    def _load_identity(self, path: Path) -> SigningKey:
        data = _read_secret(path)
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"{path} is not a usable private key: {exc}") from None
        if not isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyStoreError(f"{path}: unsupported key type {type(private).__name__}")
        return SigningKey(private)

    # ---------------------------------------------------------------- trusted peers

    def _load_trust(self) -> dict[str, dict[str, str | None]]:
        path = self.root / TRUST_FILE
        if not path.exists():
            return {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"{path} is unreadable: {exc}") from None
        if not isinstance(doc, dict):
            raise KeyStoreError(f"{path} must hold a JSON object")
        return doc

    def trust(self, name: str, public: PublicKey | str | bytes, node: str | None) -> TrustedKey:
        """Trust ``public`` for signatures whose security source is ``node`` (a node ID)."""
        _check_name(name)
        if isinstance(public, str | bytes):
            public = load_public_key(public)
        if node is not None:
            node = str(EndpointID.parse(node).node_id)
        doc = self._load_trust()
        doc[name] = {"public_key": public_key_text(public), "node": node}
        self._ensure_root()
        _write_atomic(self.root / TRUST_FILE, json.dumps(doc, indent=2, sort_keys=True).encode(),
                      0o644)
        log.info("trusting key %s (%s) for %s", name, fingerprint(public), node or "any node")
        return TrustedKey(name, public, node)

    def untrust(self, name: str) -> None:
        doc = self._load_trust()
        if name not in doc:
            raise KeyNotFound(f"no trusted key named {name!r}")
        del doc[name]
        _write_atomic(self.root / TRUST_FILE, json.dumps(doc, indent=2, sort_keys=True).encode(),
                      0o644)

    def trusted(self) -> list[TrustedKey]:
        return list(self._cached(self.root / TRUST_FILE, self._load_trusted))

    def _load_trusted(self) -> list[TrustedKey]:
        out = []
        for name, entry in sorted(self._load_trust().items()):
            if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str):
                raise KeyStoreError(f"trusted key {name!r} is malformed")
            node = entry.get("node")
            out.append(TrustedKey(name, load_public_key(str(entry["public_key"])),
                                  node if isinstance(node, str) else None))
        return out

    # ---------------------------------------------------------------- symmetric keys

    def _symmetric_path(self, name: str) -> Path:
        return self.root / "symmetric" / f"{_check_name(name)}.key"

    def add_symmetric(
        self, name: str, material: bytes | None = None, *, bits: int = 256, overwrite: bool = False
    ) -> SymmetricKey:
        """Store a shared secret (random ``bits`` bits unless ``material`` is given)."""
        path = self._symmetric_path(name)
        if path.exists() and not overwrite:
            raise KeyStoreError(f"symmetric key {name!r} exists")
        if material is None:
            if bits % 8 or not 128 <= bits <= 1024:
                raise KeyStoreError("bits must be a multiple of 8 in 128..1024")
            material = os.urandom(bits // 8)
        if not material:
            raise KeyStoreError("an empty key is not a key")
        self._ensure_root()
        _write_atomic(path, material.hex().encode() + b"\n")
        log.info("stored symmetric key %s (%d bits)", name, len(material) * 8)
        return SymmetricKey(name, material)

    def symmetric(self, name: str) -> SymmetricKey:
        path = self._symmetric_path(name)
        key: SymmetricKey = self._cached(path, lambda: self._load_symmetric(name, path))
        return key

    def _load_symmetric(self, name: str, path: Path) -> SymmetricKey:
        data = _read_secret(path)
        try:
            return SymmetricKey(name, bytes.fromhex(data.decode().strip()))
        except (ValueError, UnicodeDecodeError):
            raise KeyStoreError(f"symmetric key {name!r} is not hex") from None

    def symmetric_names(self) -> list[str]:
        folder = self.root / "symmetric"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.key"))

    def remove_symmetric(self, name: str) -> None:
        path = self._symmetric_path(name)
        if not path.exists():
            raise KeyNotFound(f"no symmetric key named {name!r}")
        path.unlink()

    # ---------------------------------------------------------------- resolver

    def resolver(self, symmetric: Sequence[str] = ()) -> StaticKeys:
        """A :class:`KeyResolver` with the trust store and the named symmetric keys."""
        return StaticKeys([self.symmetric(n) for n in symmetric], self.trusted())


def describe_public(public: PublicKey) -> str:
    kind = "ed25519" if isinstance(public, ed25519.Ed25519PublicKey) else f"ecdsa-{public.curve.name}"
    return f"{kind} {raw_public_bytes(public).hex()}"


class MemoryKeys:
    """An in-memory stand-in for :class:`KeyStore` (tests, embedded use): same read methods."""

    def __init__(
        self,
        identity: SigningKey | None = None,
        symmetric: Sequence[SymmetricKey] = (),
        trusted: Sequence[TrustedKey] = (),
    ) -> None:
        self._identity = identity or SigningKey(ed25519.Ed25519PrivateKey.generate())
        self._symmetric = {k.name: k for k in symmetric}
        self._trusted = list(trusted)

    def identity(self) -> SigningKey:
        return self._identity

    def symmetric(self, name: str) -> SymmetricKey:
        try:
            return self._symmetric[name]
        except KeyError:
            raise KeyNotFound(f"no symmetric key named {name!r}") from None

    def trusted(self) -> list[TrustedKey]:
        return list(self._trusted)

    def __repr__(self) -> str:
        return f"MemoryKeys({len(self._symmetric)} symmetric, {len(self._trusted)} trusted)"

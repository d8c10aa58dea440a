"""The on-disk key store: identity key 0600, trust store, symmetric keys, no secrets in logs."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from waystation.bundle.bpsec import KeyNotFound, fingerprint
from waystation.bundle.bpsec.keystore import KeyStore, KeyStoreError, public_key_text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_identity_created_on_first_use_with_mode_0600(tmp_path: Path) -> None:
    store = KeyStore.for_data_dir(tmp_path)
    assert not store.has_identity()
    key = store.identity()
    path = tmp_path / "keys" / "identity.pem"
    assert mode(path) == 0o600
    assert mode(tmp_path / "keys") == 0o700
    again = KeyStore.for_data_dir(tmp_path).identity()
    assert again.kid == key.kid  # same key on the next start


def test_group_readable_secret_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.identity()
    os.chmod(tmp_path / "identity.pem", 0o640)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        store.identity()


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.generate_identity()
    with pytest.raises(KeyStoreError):
        store.generate_identity()
    p256 = store.generate_identity("p256", overwrite=True)
    assert "ecdsa" not in repr(p256) and "redacted" in repr(p256)


def test_trust_list_untrust(tmp_path: Path) -> None:
    a, b = KeyStore(tmp_path / "a"), KeyStore(tmp_path / "b")
    pem = public_key_text(a.identity().public)
    b.trust("node-a", pem, node="ipn:1.5")  # any EID: stored as its node ID
    (entry,) = b.trusted()
    assert entry.node == "ipn:1.0"
    assert fingerprint(entry.public) == fingerprint(a.identity().public)
    raw_hex = a.identity().public.public_bytes_raw().hex()  # type: ignore[union-attr]
    b.trust("node-a-raw", raw_hex, node=None)
    assert [t.name for t in b.trusted()] == ["node-a", "node-a-raw"]
    b.untrust("node-a")
    assert [t.name for t in b.trusted()] == ["node-a-raw"]
    with pytest.raises(KeyNotFound):
        b.untrust("node-a")
    with pytest.raises(KeyStoreError):
        b.trust("x", "not a key", node=None)


def test_symmetric_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    k = store.add_symmetric("link-ab", bits=256)
    assert len(k.material) == 32
    assert mode(tmp_path / "symmetric" / "link-ab.key") == 0o600
    assert store.symmetric("link-ab") == k
    assert store.symmetric_names() == ["link-ab"]
    store.add_symmetric("given", bytes(16))
    with pytest.raises(KeyStoreError):
        store.add_symmetric("given", bytes(16))
    with pytest.raises(KeyStoreError, match="bad key name"):
        store.add_symmetric("../escape")
    store.remove_symmetric("given")
    with pytest.raises(KeyNotFound):
        store.symmetric("given")


def test_secrets_never_in_repr_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = KeyStore(tmp_path)
    ident = store.identity()
    k = store.add_symmetric("s", bytes(range(32)))
    texts = [repr(ident), str(ident), repr(k), str(k), repr(store), caplog.text]
    secret_hex = bytes(range(32)).hex()
    raw_private = ident.private.private_bytes_raw().hex()  # type: ignore[union-attr]
    for text in texts:
        assert secret_hex not in text
        assert raw_private not in text
    assert "s (256 bits)" in caplog.text


def test_running_node_sees_key_changes(tmp_path: Path) -> None:
    node_view, cli_view = KeyStore(tmp_path), KeyStore(tmp_path)
    assert node_view.trusted() == []
    peer = KeyStore(tmp_path / "peer").identity()
    cli_view.trust("peer", public_key_text(peer.public), node="ipn:7.0")
    assert [t.name for t in node_view.trusted()] == ["peer"]  # no restart needed
    first = node_view.identity()
    assert node_view.identity() is first  # parsed once, then cached


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("trusted.json", b"{not json"),
        ("trusted.json", b"[1, 2]"),
        ("trusted.json", b'{"x": {"public_key": "garbage", "node": null}}'),
        ("trusted.json", b'{"x": 5}'),
        ("identity.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        ("symmetric/s.key", b"not hex\n"),
    ],
)
def test_corrupt_key_files_give_precise_errors(tmp_path: Path, filename: str,
                                               content: bytes) -> None:
    store = KeyStore(tmp_path)
    (tmp_path / "symmetric").mkdir(parents=True)
    path = tmp_path / filename
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyStoreError):
        if filename == "trusted.json":
            store.trusted()
        elif filename == "identity.pem":
            store.identity()
        else:
            store.symmetric("s")

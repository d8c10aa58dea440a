"""``waystation keys``: the node's BPSec keys — identity, trusted peers, shared secrets.

Verbs:

* ``generate [--type ed25519|p256] [--force]`` — create the identity (signing) key;
* ``show`` — the identity's public key, fingerprint and COSE key id;
* ``export [-o FILE]`` — the identity public key as PEM, for a peer's ``keys trust``;
* ``trust NAME FILE|- --node NODE-ID`` — trust a peer's public key (PEM, or 64 hex digits of a
  raw Ed25519 key) for signatures whose security source is NODE-ID;
* ``untrust NAME``, ``list [--json]`` — manage and list trusted keys and symmetric key names;
* ``symmetric add NAME [--bits N | --hex HEX | --from-file FILE]``, ``symmetric remove NAME`` —
  shared secrets for BIB-HMAC-SHA2, BCB-AES-GCM and COSE MAC, referenced by name in the
  ``[security]`` policy.

Keys live in ``<data-dir>/keys`` (mode 0700; secrets 0600). Secret key material is never
printed, except the symmetric key value ``symmetric add`` generated — to stderr, once, so it
can be copied to the peer — unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from waystation.bundle.bpsec.errors import BPSecError
from waystation.bundle.bpsec.keys import fingerprint, key_id
from waystation.bundle.bpsec.keystore import KeyStore, describe_public, public_key_text
from waystation.config import ConfigError, load_config

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="manage BPSec keys (identity, trusted peers, symmetric keys)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--data-dir", type=Path, help="the node's data directory (keys are in <data-dir>/keys)"
    )
    parser.add_argument("--config", type=Path, help="node.toml to take the data directory from")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("generate", help="create the node's identity key")
    p.add_argument("--type", choices=["ed25519", "p256"], default="ed25519")
    p.add_argument("--force", action="store_true", help="replace an existing identity key")
    p.set_defaults(func=_generate)

    p = verbs.add_parser("show", help="show the identity public key and fingerprint")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)

    p = verbs.add_parser("export", help="print the identity public key (PEM)")
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.set_defaults(func=_export)

    p = verbs.add_parser("trust", help="trust a peer's public key")
    p.add_argument("name", help="a name for the key (letters, digits, . _ -)")
    p.add_argument("file", help="PEM file, or '-' for stdin")
    p.add_argument(
        "--node",
        required=True,
        help="node ID the key may sign for (e.g. ipn:2.0), or '*' for any node",
    )
    p.set_defaults(func=_trust)

    p = verbs.add_parser("untrust", help="forget a trusted key")
    p.add_argument("name")
    p.set_defaults(func=_untrust)

    p = verbs.add_parser("list", help="list trusted keys and symmetric key names")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    p = verbs.add_parser("symmetric", help="manage named symmetric keys")
    sym = p.add_subparsers(dest="sym_verb", metavar="ACTION", required=True)
    q = sym.add_parser("add", help="store a new shared secret")
    q.add_argument("name")
    source = q.add_mutually_exclusive_group()
    source.add_argument("--bits", type=int, default=256, help="random key size (default 256)")
    source.add_argument("--hex", help="the key value in hex (visible in shell history!)")
    source.add_argument("--from-file", type=Path, help="file holding the key in hex")
    q.add_argument("--force", action="store_true", help="replace an existing key")
    q.add_argument("--quiet", action="store_true", help="do not print a generated key")
    q.set_defaults(func=_sym_add)
    q = sym.add_parser("remove", help="delete a shared secret")
    q.add_argument("name")
    q.set_defaults(func=_sym_remove)


def _store(args: argparse.Namespace) -> KeyStore:
    if args.data_dir is not None:
        return KeyStore.for_data_dir(args.data_dir)
    cfg = load_config(args.config)
    return KeyStore.for_data_dir(cfg.data_dir)


def _run(args: argparse.Namespace, action: Any) -> int:
    try:
        return int(action(_store(args), args) or 0)
    except (BPSecError, ConfigError, OSError) as exc:
        print(f"waystation keys: {exc}", file=sys.stderr)
        return 1


def _identity_info(store: KeyStore) -> dict[str, str]:
    key = store.identity()
    return {
        "public_key": describe_public(key.public),
        "fingerprint": fingerprint(key.public),
        "kid": key_id(key.public).hex(),
        "path": str(store.root / "identity.pem"),
    }


def _generate(args: argparse.Namespace) -> int:
    def action(store: KeyStore, a: argparse.Namespace) -> int:
        key = store.generate_identity(a.type, overwrite=a.force)
        print(f"created {a.type} identity key, fingerprint {fingerprint(key.public)}")
        return 0

    return _run(args, action)


def _show(args: argparse.Namespace) -> int:
    def action(store: KeyStore, a: argparse.Namespace) -> int:
        info = _identity_info(store)
        if a.json:
            print(json.dumps(info, indent=2))
        else:
            for k, v in info.items():
                print(f"{k:<12} {v}")
        return 0

    return _run(args, action)


def _export(args: argparse.Namespace) -> int:
    def action(store: KeyStore, a: argparse.Namespace) -> int:
        pem = public_key_text(store.identity().public)
        if a.output:
            a.output.write_text(pem)
        else:
            sys.stdout.write(pem)
        return 0

    return _run(args, action)


def _trust(args: argparse.Namespace) -> int:
    def action(store: KeyStore, a: argparse.Namespace) -> int:
        text = sys.stdin.read() if a.file == "-" else Path(a.file).read_text()
        node = None if a.node == "*" else a.node
        key = store.trust(a.name, text, node)
        print(f"trusting {a.name} ({fingerprint(key.public)}) for {key.node or 'any node'}")
        return 0

    return _run(args, action)


def _untrust(args: argparse.Namespace) -> int:
    return _run(args, lambda store, a: store.untrust(a.name))


def _list(args: argparse.Namespace) -> int:
    def action(store: KeyStore, a: argparse.Namespace) -> int:
        trusted = [
            {
                "name": t.name,
                "node": t.node or "*",
                "fingerprint": fingerprint(t.public),
                "kid": t.kid.hex(),
            }
            for t in store.trusted()
        ]
        names = store.symmetric_names()
        identity = _identity_info(store) if store.has_identity() else None
        if a.json:
            print(
                json.dumps({"identity": identity, "trusted": trusted, "symmetric": names}, indent=2)
            )
            return 0
        if identity:
            print(f"identity   {identity['fingerprint']}")
        print("trusted")
        for t in trusted:
            print(f"  {t['name']:<20} {t['node']:<20} {t['fingerprint']}")
        if not trusted:
            print("  (none)")
        print("symmetric")
        for n in names:
            print(f"  {n}")
        if not names:
            print("  (none)")
        return 0

    return _run(args, action)


def _sym_add(args: argparse.Namespace) -> int:
    def action(store: KeyStore, a: argparse.Namespace) -> int:
        material: bytes | None = None
        try:
            if a.hex is not None:
                material = bytes.fromhex(a.hex)
            elif a.from_file is not None:
                material = bytes.fromhex(a.from_file.read_text().strip())
        except ValueError:
            print("waystation keys: the key must be given in hex", file=sys.stderr)
            return 1
        key = store.add_symmetric(a.name, material, bits=a.bits, overwrite=a.force)
        print(f"stored symmetric key {a.name} ({len(key.material) * 8} bits)")
        if material is None and not a.quiet:
            # Shown once so it can be installed on the peer; it is never logged.
            print(key.material.hex(), file=sys.stderr)
        return 0

    return _run(args, action)


def _sym_remove(args: argparse.Namespace) -> int:
    return _run(args, lambda store, a: store.remove_symmetric(a.name))

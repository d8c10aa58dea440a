"""``waystation tls``: certificates for TCPCLv4 over TLS (RFC 9174 §4.4).

Verbs:

* ``make-ca DIR [--name CN] [--days N]`` -- a CA (``DIR/ca.crt``, ``DIR/ca.key``) to issue node
  certificates; give ``ca.crt`` to every node that must trust them;
* ``make-cert NODE-ID --ca DIR [--out DIR] [--name STEM] [--dns NAME ...] [--days N]`` -- a node
  certificate whose subjectAltName carries NODE-ID as an id-on-bundleEID otherName (§4.4.1) and
  as a URI (read by pre-RFC peers), plus ``STEM.key`` (mode 0600);
* ``show CERT [--json]`` -- the NODE-IDs, subject, issuer and validity of a certificate.

Keys are ECDSA P-256, signatures SHA-256. Existing files are never overwritten without
``--force``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tls",
        help="make and inspect TLS certificates for TCPCLv4 (RFC 9174 §4.4)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("make-ca", help="create a CA to issue node certificates")
    p.add_argument("dir", type=Path)
    p.add_argument("--name", default="waystation CA", help="CA common name")
    p.add_argument("--days", type=int, default=3650)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_make_ca)

    p = verbs.add_parser("make-cert", help="issue a node certificate naming NODE-ID")
    p.add_argument("node_id", metavar="NODE-ID", help="e.g. ipn:10.0 or dtn://node-a/")
    p.add_argument("--ca", type=Path, required=True, help="directory holding ca.crt and ca.key")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: --ca)")
    p.add_argument("--name", default="node", help="file stem: STEM.crt, STEM.key")
    p.add_argument("--dns", action="append", default=[], help="add a DNS-ID (repeatable)")
    p.add_argument("--days", type=int, default=825)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_make_cert)

    p = verbs.add_parser("show", help="show a certificate's NODE-IDs and validity")
    p.add_argument("cert", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)


def _err(msg: str) -> int:
    print(f"waystation tls: {msg}", file=sys.stderr)
    return 1


def _refuse_overwrite(paths: list[Path], force: bool) -> str | None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        return f"{', '.join(existing)} already exist(s); use --force to replace"
    return None


def _make_ca(args: argparse.Namespace) -> int:
    from waystation.convergence.tls import make_ca

    crt, key = args.dir / "ca.crt", args.dir / "ca.key"
    if (msg := _refuse_overwrite([crt, key], args.force)) is not None:
        return _err(msg)
    try:
        make_ca(args.name, days=args.days).write(args.dir, "ca")
    except OSError as exc:
        return _err(f"cannot write to {args.dir}: {exc}")
    print(f"{crt}\n{key}")
    return 0


def _make_cert(args: argparse.Namespace) -> int:
    from waystation.convergence.tls import Credentials, make_node_certificate

    if ":" not in args.node_id or args.node_id.startswith(":"):
        return _err(f"{args.node_id!r} is not a node ID URI (e.g. ipn:10.0, dtn://node/)")
    try:
        args.node_id.encode("ascii")
    except UnicodeEncodeError:
        return _err("a NODE-ID in a certificate is an IA5String: ASCII only (§4.4.1)")
    try:
        ca = Credentials(
            (args.ca / "ca.crt").read_bytes(),
            (args.ca / "ca.key").read_bytes(),
            (args.ca / "ca.crt").read_bytes(),
        )
    except OSError as exc:
        return _err(f"cannot read the CA from {args.ca}: {exc} (make one with `tls make-ca`)")
    out = args.out or args.ca
    crt, key = out / f"{args.name}.crt", out / f"{args.name}.key"
    if (msg := _refuse_overwrite([crt, key], args.force)) is not None:
        return _err(msg)
    try:
        creds = make_node_certificate(args.node_id, ca, days=args.days, dns_names=tuple(args.dns))
        creds.write(out, args.name)
    except ValueError as exc:
        return _err(f"cannot issue the certificate: {exc}")
    except OSError as exc:
        return _err(f"cannot write to {out}: {exc}")
    print(f"{crt}\n{key}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from cryptography import x509
    from waystation.convergence.tls import node_ids_from_certificate

    try:
        data = args.cert.read_bytes()
    except OSError as exc:
        return _err(f"cannot read {args.cert}: {exc}")
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as exc:
        return _err(f"{args.cert} is not an X.509 certificate: {exc}")
    info = {
        "node_ids": sorted(node_ids_from_certificate(cert)),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "serial": format(cert.serial_number, "x"),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:11} {', '.join(v) if isinstance(v, list) else v}")
    return 0

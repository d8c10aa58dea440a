"""TLS for TCPCLv4 (RFC 9174 §4.4): certificates, SSL contexts, and peer Node ID extraction.

- §4.4.1 certificate profile: an entity certificate names its node in a subjectAltName
  ``otherName`` of type ``id-on-bundleEID`` (OID 1.3.6.1.5.5.7.8.11) whose value is an
  IA5String ``BundleEID`` -- the "NODE-ID". Certificates written to pre-RFC drafts (and by some
  implementations) carry the Node ID as a ``uniformResourceIdentifier`` SAN instead; we read
  both, and write both so either kind of peer can authenticate us.
- §4.4.2/§4.4.3: TLS 1.2 or later; the active entity is the TLS client. Both sides present
  certificates (mutual authentication). Host-name checks (DNS-ID/IPADDR-ID) are off: the
  identity that matters is the NODE-ID, checked against SESS_INIT by the session core under a
  :class:`~waystation.convergence.tcpcl.session.NodeIdPolicy`.

Certificates are made with ``cryptography`` (ECDSA P-256, SHA-256): :func:`make_ca` and
:func:`make_node_certificate`; the ``waystation tls make-cert`` command wraps them.
"""

from __future__ import annotations

import datetime as _dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from .errors import TlsPolicyError

ID_ON_BUNDLE_EID = ObjectIdentifier("1.3.6.1.5.5.7.8.11")
"""§4.4.1 / §8.10: PKIX Other Name form for a bundle endpoint ID."""

ID_KP_BUNDLE_SECURITY = ObjectIdentifier("1.3.6.1.5.5.7.3.35")
"""§4.4.2.1 (RFC 9174 §8.11): extended key usage for bundle security."""

_NODE_SCHEMES = ("dtn:", "ipn:")


def _ia5_der(text: str) -> bytes:
    raw = text.encode("ascii")
    n = len(raw)
    if n < 0x80:
        length = bytes([n])
    else:
        body = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(body)]) + body
    return b"\x16" + length + raw


def _ia5_from_der(der: bytes) -> str | None:
    """Decode a DER IA5String (tag 0x16), tolerating a [0] EXPLICIT wrapper some libraries keep."""
    if len(der) >= 2 and der[0] == 0xA0:
        inner = _strip_tlv(der)
        if inner is None:
            return None
        der = inner
    if len(der) < 2 or der[0] != 0x16:
        return None
    body = _strip_tlv(der)
    if body is None:
        return None
    try:
        return body.decode("ascii")
    except UnicodeDecodeError:
        return None


def _strip_tlv(der: bytes) -> bytes | None:
    first = der[1]
    if first < 0x80:
        start, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            return None
        start, length = 2 + count, int.from_bytes(der[2 : 2 + count], "big")
    if start + length != len(der):
        return None
    return der[start : start + length]


def node_ids_from_certificate(cert: x509.Certificate | bytes) -> frozenset[str]:
    """The NODE-IDs a certificate claims (§4.4.1): BundleEID otherNames and dtn:/ipn: URIs.

    Accepts a parsed certificate or its DER bytes. A certificate without a subjectAltName
    extension has no NODE-ID.
    """
    if isinstance(cert, bytes | bytearray):
        cert = x509.load_der_x509_certificate(bytes(cert))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    ids: set[str] = set()
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == ID_ON_BUNDLE_EID:
            value = _ia5_from_der(other.value)
            if value:
                ids.add(value)
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(_NODE_SCHEMES):
            ids.add(uri)
    return frozenset(ids)


def peer_node_ids(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> frozenset[str]:
    """NODE-IDs of the peer certificate of an established TLS connection (empty if none)."""
    if ssl_object is None:
        return frozenset()
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return frozenset()
    return node_ids_from_certificate(der)


# ------------------------------------------------------------------------------ certificates


@dataclass(frozen=True, slots=True)
class Credentials:
    """PEM-encoded certificate and private key (and the issuing CA certificate)."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` and ``<stem>.key`` (mode 0600) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        crt, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        crt.write_bytes(self.cert_pem)
        key.touch(mode=0o600, exist_ok=True)
        key.chmod(0o600)
        key.write_bytes(self.key_pem)
        return crt, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(common_name: str = "waystation test CA", days: int = 3650) -> Credentials:
    """A self-signed CA (ECDSA P-256) to issue node certificates with."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return Credentials(pem, _key_pem(key), pem)


def make_node_certificate(
    node_id: str,
    ca: Credentials,
    *,
    days: int = 825,
    dns_names: tuple[str, ...] = (),
    uri_san: bool = True,
    bundle_eid_san: bool = True,
) -> Credentials:
    """An end-entity certificate for ``node_id`` per §4.4.1, signed by ``ca``.

    By default it carries both the RFC's id-on-bundleEID otherName and a URI SAN with the same
    Node ID (what pre-RFC implementations read). ``dns_names`` add DNS-ID SANs.
    """
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    if bundle_eid_san:
        sans.append(x509.OtherName(ID_ON_BUNDLE_EID, _ia5_der(node_id)))
    if uri_san:
        sans.append(x509.UniformResourceIdentifier(node_id))
    sans.extend(x509.DNSName(d) for d in dns_names)
    now = _dt.datetime.now(_dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [
                    ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH,
                    ID_KP_BUNDLE_SECURITY,
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return Credentials(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), ca.cert_pem)


# ------------------------------------------------------------------------------ SSL contexts


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Where a node's TLS material lives and how strictly peers are checked.

    ``verify_peer``: require and verify the peer's certificate against ``ca_file``
    (mutual TLS). With it off the session is encrypted but unauthenticated -- only for tests.
    """

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None
    verify_peer: bool = True

    def context(self, server_side: bool) -> ssl.SSLContext:
        return make_ssl_context(self, server_side)


def make_ssl_context(settings: TlsSettings, server_side: bool) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for §4.4: TLS >= 1.2, our certificate, mutual verification."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # §4.4.2: TLS 1.2 or later
    try:
        ctx.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsPolicyError(f"cannot load certificate {settings.cert_file}: {exc}") from exc
    ctx.check_hostname = False  # §4.4.3: NODE-ID authentication happens after SESS_INIT
    if settings.verify_peer:
        if settings.ca_file is None:
            raise TlsPolicyError("verify_peer needs a ca_file to verify the peer against")
        try:
            ctx.load_verify_locations(cafile=str(settings.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsPolicyError(f"cannot load CA file {settings.ca_file}: {exc}") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


__all__ = [
    "ID_KP_BUNDLE_SECURITY",
    "ID_ON_BUNDLE_EID",
    "Credentials",
    "TlsSettings",
    "make_ca",
    "make_node_certificate",
    "make_ssl_context",
    "node_ids_from_certificate",
    "peer_node_ids",
]

"""The twin's certificates: one CA, the API server's serving certificate for 127.0.0.1, an admin
client certificate (system:masters), and the service-account signing key pair."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    sa_public: Path
    sa_private: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(subject: x509.Name, key, ca_key, ca_name: x509.Name, extensions: list) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2)))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(ca_key, hashes.SHA256())


def make(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_name = _key(), _name("twin-ca")
    ca = _issue(ca_name, ca_key, ca_key, ca_name, [(x509.BasicConstraints(ca=True, path_length=None), True)])
    leaf = [(x509.BasicConstraints(ca=False, path_length=None), True)]

    server_key = _key()
    server = _issue(_name("kube-apiserver"), server_key, ca_key, ca_name, leaf + [
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                                      x509.DNSName("kubernetes.default.svc")]), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    admin_key = _key()
    admin = _issue(_name("twin-admin", "system:masters"), admin_key, ca_key, ca_name, leaf + [
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])
    sa_key = _key()
    sa_public = directory / "sa.pub"
    sa_public.write_bytes(sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))
    return Pki(
        ca=_write_cert(directory / "ca.crt", ca),
        server_cert=_write_cert(directory / "apiserver.crt", server),
        server_key=_write_key(directory / "apiserver.key", server_key),
        admin_cert=_write_cert(directory / "admin.crt", admin),
        admin_key=_write_key(directory / "admin.key", admin_key),
        sa_public=sa_public,
        sa_private=_write_key(directory / "sa.key", sa_key),
    )

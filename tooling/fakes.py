"""Plausible provider outputs for up-mode runs under mocks (deterministic per resource name)."""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
from typing import Any


def _digest(name: str, size: int = 12) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:size].upper()


def _zone(name: str, domain: str) -> dict[str, Any]:
    zone_id = "Z" + _digest(name)
    servers = [f"ns-{i}.awsdns-{i:02d}.{tld}" for i, tld in enumerate(("com", "net", "org", "co.uk"))]
    return {"zoneId": zone_id, "name": domain, "nameServers": servers, "arn": f"arn:aws:route53:::hostedzone/{zone_id}"}


@functools.lru_cache(maxsize=None)
def key_and_cert(name: str) -> tuple[str, str]:
    """A real ECDSA key and self-signed CA certificate (so consumers can parse them), derived from
    `name` alone: the same name gives the same bytes in every run."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.derive_private_key(int.from_bytes(hashlib.sha256(name.encode()).digest(), "big") % (2**255), ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


ISSUED = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)  # when fake client certificates are signed


@functools.lru_cache(maxsize=None)
def client_cert(name: str) -> str:
    """A client certificate as `k0s kubeconfig create --certificate-expires-after 8760h` signs one:
    issued at ISSUED, valid a year (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key_pem, ca_pem = key_and_cert(name)
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-bootstrap")])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(x509.load_pem_x509_certificate(ca_pem.encode()).subject)
        .public_key(key.public_key()).serial_number(2).not_valid_before(ISSUED)
        .not_valid_after(ISSUED + datetime.timedelta(hours=8760))
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _fixed_checkint(pem: str) -> str:
    """An unencrypted OpenSSH private key with its two random check words set to zero (still equal,
    so still valid): the same key serialises to the same bytes."""
    lines = pem.strip().splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    offset = len(b"openssh-key-v1\0")
    for _ in range(3):  # cipher name, kdf name, kdf options
        offset += 4 + int.from_bytes(blob[offset:offset + 4], "big")
    offset += 4  # number of keys
    offset += 4 + int.from_bytes(blob[offset:offset + 4], "big")  # the public key
    offset += 4  # the private section's length; its first 8 bytes are checkint1, checkint2
    blob[offset:offset + 8] = bytes(8)
    body = base64.b64encode(bytes(blob)).decode()
    return "\n".join([lines[0], *(body[i:i + 70] for i in range(0, len(body), 70)), lines[-1]]) + "\n"


@functools.lru_cache(maxsize=None)
def ed25519_openssh(name: str) -> tuple[str, str]:
    """A real Ed25519 key pair in OpenSSH encodings (private, public), derived from `name`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ed25519:" + name.encode()).digest())
    private = _fixed_checkint(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                serialization.NoEncryption()).decode())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, public + "\n"


def _command_stdout(name: str, inputs: dict) -> str:
    create = inputs.get("create", "")
    if "k0s-kubeconfig.sh" in create:
        # what `k0s kubeconfig create` prints: the controller's API address (spec.api.address)
        host = (inputs.get("connection") or {}).get("host", "localhost")
        cert = base64.b64encode(client_cert(name).encode()).decode()
        return ("apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n"
                f"    server: https://{host}:6443\n"
                "contexts:\n- name: admin\n  context: {cluster: local, user: admin}\ncurrent-context: admin\n"
                f"users:\n- name: admin\n  user: {{client-certificate-data: {cert}}}\n")
    if "k0s-token.sh" in create:  # "expires=<unix time>", then the token
        return f"expires=1893456000\n{join_token(name)}"
    return ""


def join_token(name: str) -> str:
    """A join token in k0s's encoding (base64 of a gzipped kubeconfig), unique to `name`."""
    import gzip

    secret = hashlib.sha256(name.encode()).hexdigest()
    kubeconfig = (f"apiVersion: v1\nkind: Config\nusers:\n- name: kubelet-bootstrap\n  user:\n"
                  f"    token: {secret[:6]}.{secret[6:22]}\n")
    return base64.b64encode(gzip.compress(kubeconfig.encode(), mtime=0)).decode()


def fake_outputs(type_: str, name: str, inputs: dict) -> dict[str, Any]:
    """Outputs a provider computes on create, keyed by resource type."""
    if type_ == "aws:route53/zone:Zone":
        return _zone(name, inputs.get("name", ""))
    if type_ == "aws:route53/record:Record":
        return {"fqdn": inputs.get("name", "")}
    if type_ == "tls:index/privateKey:PrivateKey" and inputs.get("algorithm") == "ED25519":
        private, public = ed25519_openssh(name)
        return {"privateKeyOpenssh": private, "publicKeyOpenssh": public}
    if type_ == "random:index/randomBytes:RandomBytes":
        raw = hashlib.sha256(name.encode()).digest()[: int(inputs.get("length", 32))]
        return {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}
    if type_ == "random:index/randomPassword:RandomPassword":
        return {"result": "fakePassword" + _digest(name, 20)}
    if type_ == "tls:index/privateKey:PrivateKey":
        key_pem, _ = key_and_cert(name)
        return {"privateKeyPem": key_pem, "privateKeyPemPkcs8": key_pem, "publicKeyOpenssh": "ecdsa-sha2-nistp256 AAAA fake"}
    if type_ == "tls:index/selfSignedCert:SelfSignedCert":
        return {"certPem": key_and_cert(name)[1]}
    if type_ == "aws:s3/bucket:Bucket":  # S3 completes bucketPrefix with a unique suffix
        bucket = inputs.get("bucket") or inputs.get("bucketPrefix", "bucket-") + _digest(name, 12)
        return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}",
                "bucketRegionalDomainName": f"{bucket}.s3.us-east-1.amazonaws.com"}
    if type_ == "aws:iam/user:User":
        return {"arn": f"arn:aws:iam::123456789012:user{inputs.get('path', '/')}{name}-x1", "name": f"{name}-x1"}
    if type_ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::123456789012:role{inputs.get('path', '/')}{name}-x1", "name": f"{name}-x1"}
    if type_ == "aws:iam/accessKey:AccessKey":
        return {"secret": f"fake-secret-access-key-{_digest(name)}"}
    if type_ == "command:remote:Command":
        return {"stdout": _command_stdout(name, inputs), "stderr": ""}
    return {}


def fake_call(token: str, args: dict) -> dict[str, Any]:
    """Results of data-source invokes, keyed by function token."""
    if token == "aws:route53/getZone:getZone":
        key = args.get("zoneId") or args.get("name") or "zone"
        zone = _zone(key, args.get("name") or "existing.example.org")
        if args.get("zoneId"):
            zone["zoneId"] = args["zoneId"]
        return {**zone, "id": zone["zoneId"]}
    return {}

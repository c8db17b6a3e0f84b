"""Stage 0 — InternalCa: the stack's long-lived internal CA (pulumi-tls), trusted by every node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_tls as tls

TYPE = "cluster-bootstrap:pki:InternalCa"
TEN_YEARS_HOURS = 24 * 365 * 10


@dataclass(frozen=True)
class InternalCaArgs:
    common_name: str
    protect: bool = False


class InternalCa(pulumi.ComponentResource):
    """An ECDSA P-256 key and a self-signed CA certificate, kept in state across cluster rebuilds."""

    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: InternalCaArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        key = tls.PrivateKey(
            f"{name}-key",
            algorithm="ECDSA",
            ecdsa_curve="P256",
            # (the SDK registers the private key outputs as secret outputs)
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        cert = tls.SelfSignedCert(
            f"{name}-cert",
            private_key_pem=key.private_key_pem,
            is_ca_certificate=True,
            validity_period_hours=TEN_YEARS_HOURS,
            early_renewal_hours=24 * 365,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            subject=tls.SelfSignedCertSubjectArgs(common_name=args.common_name, organization="cluster-bootstrap"),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.cert_pem = cert.cert_pem
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs({"certPem": self.cert_pem})


@dataclass(frozen=True)
class AcmeAccountArgs:
    protect: bool = False


class AcmeAccount(pulumi.ComponentResource):
    """The Let's Encrypt account key, kept in state so a rebuilt cluster reuses the same account.

    RSA 2048, the key type cert-manager itself generates for ACME accounts. Both issuers
    (staging and production) register this one key with their own directory.
    """

    private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: AcmeAccountArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("cluster-bootstrap:pki:AcmeAccount", name, None, opts)
        key = tls.PrivateKey(
            f"{name}-key",
            algorithm="RSA",
            rsa_bits=2048,
            # (the SDK registers the private key outputs as secret outputs)
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs({})

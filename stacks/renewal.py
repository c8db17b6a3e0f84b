"""When Pulumi's admin client certificate is renewed: only when the one in use nears its expiry.

The decision reads the stack's own last outputs (a StackReference to this stack): the renewal key
in use and the certificate's notAfter, parsed from the kubeconfig k0s issued. While the certificate
has more than MARGIN left, the key stays what it was, so a `pulumi up` on any date changes nothing;
within MARGIN of expiry (or with no record, on a stack's first run) the key becomes the day's date
and the kubeconfig step mints a new certificate. At most two admin certificates are valid at once:
the current one and, for at most MARGIN, the one it replaced (k0s cannot revoke either).
"""

from __future__ import annotations

import base64
import datetime
from typing import Any, Optional

import pulumi
import yaml

LIFETIME_HOURS = 8760  # `k0s kubeconfig create --certificate-expires-after` (a year)
MARGIN = datetime.timedelta(days=60)
OUTPUT = "kubeconfigRenewal"  # {"key": …, "notAfter": RFC 3339}: what the next run decides from
FIRST = "initial"  # the key on a stack with no record yet


def key(previous: Optional[dict[str, Any]], now: datetime.datetime) -> str:
    """The renewal key for this run: the previous one while its certificate has MARGIN left."""
    if not previous or not previous.get("key") or not previous.get("notAfter"):
        return FIRST
    try:
        not_after = datetime.datetime.fromisoformat(str(previous["notAfter"]).replace("Z", "+00:00"))
    except ValueError:
        return now.strftime("%Y-%m-%d")
    if not_after - now > MARGIN:
        return str(previous["key"])
    return now.strftime("%Y-%m-%d")


def not_after(kubeconfig: str) -> Optional[str]:
    """The notAfter (UTC, RFC 3339) of the client certificate in a kubeconfig, if it carries one."""
    from cryptography import x509

    config = yaml.safe_load(kubeconfig) or {}
    for entry in config.get("users") or []:
        data = (entry.get("user") or {}).get("client-certificate-data")
        if data:
            cert = x509.load_pem_x509_certificate(base64.b64decode(data))
            return cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def previous_record() -> pulumi.Output[Optional[dict]]:
    """What this stack's last update recorded (None on its first run)."""
    own = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    return pulumi.StackReference(own).get_output(OUTPUT)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)

"""Plausible provider outputs for up-mode runs under mocks (deterministic per resource name)."""

from __future__ import annotations

import hashlib
from typing import Any


def _digest(name: str, size: int = 12) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:size].upper()


def _zone(name: str, domain: str) -> dict[str, Any]:
    zone_id = "Z" + _digest(name)
    servers = [f"ns-{i}.awsdns-{i:02d}.{tld}" for i, tld in enumerate(("com", "net", "org", "co.uk"))]
    return {"zoneId": zone_id, "name": domain, "nameServers": servers, "arn": f"arn:aws:route53:::hostedzone/{zone_id}"}


def fake_outputs(type_: str, name: str, inputs: dict) -> dict[str, Any]:
    """Outputs a provider computes on create, keyed by resource type."""
    if type_ == "aws:route53/zone:Zone":
        return _zone(name, inputs.get("name", ""))
    if type_ == "aws:route53/record:Record":
        return {"fqdn": inputs.get("name", "")}
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

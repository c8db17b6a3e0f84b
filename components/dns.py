"""Stage 0 — DnsZone: the Route53 zone of the cluster domain and the records layers publish in it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

TYPE = "cluster-bootstrap:dns:DnsZone"
RECORD_TTL = 300


@dataclass(frozen=True)
class DnsZoneArgs:
    domain: str
    create_zone: bool = True
    zone_id: Optional[str] = None  # with create_zone=False; None looks the public zone up by name
    protect: bool = False
    api_targets: Sequence[str] = field(default_factory=tuple)  # addresses behind api.<domain>


def record_sets(targets: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Group targets into Route53 record sets: A for IPv4, AAAA for IPv6, CNAME for one host name."""
    v4, v6, names = [], [], []
    for target in targets:
        try:
            (v4 if ipaddress.ip_address(target).version == 4 else v6).append(target)
        except ValueError:
            names.append(target)
    if names and (len(names) > 1 or v4 or v6):
        raise ValueError(f"a CNAME must stand alone; cannot publish {list(targets)} under one name")
    sets = [("A", sorted(v4)), ("AAAA", sorted(v6)), ("CNAME", names)]
    return [(kind, values) for kind, values in sets if values]


class DnsZone(pulumi.ComponentResource):
    """The zone (created, or an existing one), its name servers, and `api.<domain>`."""

    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list]
    domain: str

    def __init__(self, name: str, args: DnsZoneArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(TYPE, name, None, opts)
        self.domain = args.domain
        if args.create_zone:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=args.domain,
                comment=f"cluster-bootstrap: {args.domain} (managed by Pulumi)",
                # A throwaway stack's destroy also removes records others left (ACME TXT challenges).
                force_destroy=not args.protect,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            self.zone_id, self.name_servers = zone.zone_id, zone.name_servers
        else:
            found = aws.route53.get_zone_output(
                zone_id=args.zone_id,
                name=None if args.zone_id else args.domain,
                private_zone=False,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            self.zone_id, self.name_servers = found.zone_id, found.name_servers
        if args.api_targets:
            self.publish(f"{name}-api", f"api.{args.domain}", args.api_targets, parent=self)
        self.register_outputs({"zoneId": self.zone_id, "nameServers": self.name_servers})

    def publish(
        self, resource_name: str, fqdn: str, targets: Sequence[str], parent: pulumi.Resource
    ) -> list[aws.route53.Record]:
        """Records for `fqdn` in this zone, owned by the calling layer (`parent`)."""
        return publish(resource_name, self.zone_id, self.domain, fqdn, targets, parent)


def publish(resource_name: str, zone_id: pulumi.Input[str], zone_domain: str, fqdn: str,
            targets: Sequence[str], parent: pulumi.Resource) -> list[aws.route53.Record]:
    """Records for `fqdn` in the zone `zone_domain` (id `zone_id`), owned by `parent`'s layer."""
    if fqdn != zone_domain and not fqdn.endswith("." + zone_domain):
        raise ValueError(f"{fqdn} is outside the zone {zone_domain}")
    return [
        aws.route53.Record(
            f"{resource_name}-{kind.lower()}",
            zone_id=zone_id,
            name=fqdn,
            type=kind,
            ttl=RECORD_TTL,
            records=values,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for kind, values in record_sets(targets)
    ]

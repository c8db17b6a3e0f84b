"""The composition: every layer built in stage order, read top-down like k0sctl's phase list."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.dns import DnsZone, DnsZoneArgs
from stacks.config import StackConfig


@dataclass
class Cluster:
    """The built layers of one stack."""

    config: StackConfig
    dns: DnsZone

    def outputs(self) -> dict[str, pulumi.Input]:
        return {
            "zoneId": self.dns.zone_id,
            "nameServers": self.dns.name_servers,
        }


def build(cfg: StackConfig) -> Cluster:
    """Create every layer of the stack from its validated configuration."""
    # Stage 0 — foundation: the zone every later layer publishes names in.
    dns = DnsZone(
        "dns",
        DnsZoneArgs(
            domain=cfg.domain,
            create_zone=cfg.dns.create_zone,
            zone_id=cfg.dns.zone_id,
            protect=cfg.protect,
            api_targets=tuple(cfg.api_targets),
        ),
    )
    return Cluster(config=cfg, dns=dns)

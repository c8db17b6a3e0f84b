"""DnsZone (stage 0): the zone, its protection per stack, existing zones, and api.<domain>."""

from __future__ import annotations

import pytest

from components.dns import record_sets
from pulumi.output import Unknown
from tests.conftest import run_stack, run_with

ZONE = "aws:route53/zone:Zone"
RECORD = "aws:route53/record:Record"


def test_zone_created_for_the_domain(rec):
    (zone,) = rec.of_type(ZONE)
    domain = {"dev": "dev.k8s.example.org", "prod": "k8s.example.org"}[rec.stack]
    assert zone.inputs["name"] == domain
    layer = rec.resources[zone.parent]
    assert layer.type == "cluster-bootstrap:dns:DnsZone"


def test_zone_protected_only_in_prod(rec):
    (zone,) = rec.of_type(ZONE)
    assert zone.protect is (rec.stack == "prod")
    # A throwaway stack's destroy removes what others left in the zone; prod never does.
    assert zone.inputs["forceDestroy"] is (rec.stack == "dev")


def test_api_record_points_at_the_controllers(rec):
    (record,) = [r for r in rec.of_type(RECORD) if r.inputs["name"].startswith("api.")]
    expected = {"dev": ["192.0.2.10"], "prod": ["198.51.100.11", "198.51.100.12", "198.51.100.13"]}
    assert record.inputs["type"] == "A" and record.inputs["records"] == expected[rec.stack]
    (zone,) = rec.of_type(ZONE)
    assert zone.urn in record.property_dependencies["zoneId"]


def test_outputs_are_unknown_in_preview_and_known_after_up():
    preview, up = run_stack("dev", True), run_stack("dev", False)
    assert isinstance(preview.outputs["zoneId"], Unknown)
    assert up.outputs["zoneId"].startswith("Z") and len(up.outputs["nameServers"]) == 4
    assert set(up.outputs) >= {"zoneId", "nameServers"}


def test_existing_zone_by_id_creates_no_zone():
    rec = run_with(preview=False, dns={"createZone": False, "zoneId": "Z0123456789ABC"})
    assert rec.of_type(ZONE) == []
    for record in rec.of_type(RECORD):
        assert record.inputs["zoneId"] == "Z0123456789ABC"
    assert rec.outputs["zoneId"] == "Z0123456789ABC"


def test_existing_zone_looked_up_by_name():
    rec = run_with(preview=False, dns={"createZone": False})
    assert rec.of_type(ZONE) == []
    assert rec.outputs["zoneId"].startswith("Z")


def test_api_address_overrides_controller_addresses():
    rec = run_with(stack="prod", k0s={"apiAddress": "lb.k8s.example.org"})
    (record,) = [r for r in rec.of_type(RECORD) if r.inputs["name"].startswith("api.")]
    assert (record.inputs["type"], record.inputs["records"]) == ("CNAME", ["lb.k8s.example.org"])


@pytest.mark.parametrize("targets,expected", [
    (["192.0.2.2", "192.0.2.1"], [("A", ["192.0.2.1", "192.0.2.2"])]),
    (["192.0.2.1", "2001:db8::1"], [("A", ["192.0.2.1"]), ("AAAA", ["2001:db8::1"])]),
    (["lb.example.org"], [("CNAME", ["lb.example.org"])]),
])
def test_record_sets_group_targets_by_kind(targets, expected):
    assert record_sets(targets) == expected


def test_cname_cannot_share_a_name():
    with pytest.raises(ValueError, match="CNAME must stand alone"):
        record_sets(["lb.example.org", "192.0.2.1"])


def test_records_are_accepted_by_route53(aws):
    """The zone and records the program registers, replayed against a Route53 API on loopback."""
    route53 = aws("route53")
    rec = run_stack("prod", preview=False)
    (zone,) = rec.of_type(ZONE)
    created = route53.create_hosted_zone(Name=zone.inputs["name"], CallerReference="test",
                                         HostedZoneConfig={"Comment": zone.inputs["comment"]})
    zone_id = created["HostedZone"]["Id"]
    changes = [{"Action": "CREATE", "ResourceRecordSet": {
        "Name": r.inputs["name"], "Type": r.inputs["type"], "TTL": int(r.inputs["ttl"]),
        "ResourceRecords": [{"Value": v} for v in r.inputs["records"]]}} for r in rec.of_type(RECORD)]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    listed = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    api = [r for r in listed if r["Name"].rstrip(".") == "api.k8s.example.org"]
    assert [v["Value"] for v in api[0]["ResourceRecords"]] == ["198.51.100.11", "198.51.100.12", "198.51.100.13"]


def test_builds_from_its_args_alone():
    from components.dns import DnsZone, DnsZoneArgs
    from tests import standalone

    rec = standalone.build(lambda: DnsZone("zone", DnsZoneArgs(domain="lab.example.net",
                                                             api_targets=("2001:db8::10", "192.0.2.10"))))
    kinds = {r.inputs["type"]: r.inputs["records"] for r in rec.of_type(RECORD)}
    assert kinds == {"A": ["192.0.2.10"], "AAAA": ["2001:db8::10"]}


def test_a_zone_for_dns01_only_publishes_no_address():
    """dns.publishRecords: false: no A record (api.<domain>, *.<domain>) goes into public DNS; the
    zone stays, and cert-manager's DNS-01 still writes its challenges there."""
    from tests.conftest import run_with

    rec = run_with(stack="prod", preview=False, dns={"publishRecords": False})
    assert rec.of_type("aws:route53/record:Record") == []
    assert rec.of_type("aws:route53/zone:Zone")
    issuer = rec.named("cert-manager-letsencrypt-production").inputs["spec"]["acme"]["solvers"][0]["dns01"]["route53"]
    assert issuer["hostedZoneID"]
    published = run_with(stack="prod", preview=False)
    assert sorted(r.inputs["name"] for r in published.of_type("aws:route53/record:Record")) == [
        "*.k8s.example.org", "api.k8s.example.org"]

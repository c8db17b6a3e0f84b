"""CertManager (stage 4): DNS-01 IAM scope, the release, issuers, account key, wildcard cert, records."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.conftest import first_controller, in_cluster_objects, run_with
from tests.manifests import validate
from tests.pins import VERSIONS

ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
ZONE_ARN_PREFIX = "arn:aws:route53:::hostedzone/"


def ours(rec, type_: str) -> list:
    """This layer's resources of a type (the backup bucket's identity has IAM objects too)."""
    return [r for r in rec.of_type(type_) if r.name.startswith("cert-manager-")]


def test_every_object_is_valid(up):
    objects = in_cluster_objects(up, "cert-manager-")
    assert {o.inputs["kind"] for o in objects} == {"Namespace", "Secret", "ClusterIssuer", "Certificate"}
    for obj in objects:
        validate(obj.inputs)


def test_release_is_pinned_installs_crds_and_follows_cilium(rec):
    release = rec.named("cert-manager-release")
    assert (release.inputs["chart"], release.inputs["version"]) == ("cert-manager", VERSIONS["certManager"])
    assert release.inputs["repositoryOpts"] == {"repo": "https://charts.jetstack.io"}
    assert release.inputs["values"]["crds"] == {"enabled": True, "keep": True}
    assert rec.depends_transitively(release.urn, rec.named("cilium-release").urn)
    assert rec.named("cert-manager-namespace").urn in release.property_dependencies["namespace"]


def test_default_issuer_follows_acme_server(up):
    server = {"dev": "staging", "prod": "production"}[up.stack]
    wildcard = up.named("cert-manager-wildcard")
    assert wildcard.inputs["spec"]["issuerRef"]["name"] == f"letsencrypt-{server}"
    domain = up.named("dns-zone").inputs["name"]
    assert wildcard.inputs["spec"]["dnsNames"] == [f"*.{domain}", domain]
    assert up.depends_transitively(wildcard.urn, up.named(f"cert-manager-letsencrypt-{server}").urn)
    directories = {s: up.named(f"cert-manager-letsencrypt-{s}").inputs["spec"]["acme"]["server"]
                   for s in ("staging", "production")}
    assert directories == {"staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
                           "production": "https://acme-v02.api.letsencrypt.org/directory"}


def test_acme_issuers_solve_dns01_in_this_zone_only(up):
    zone_id = up.outputs["zoneId"]
    for server in ("staging", "production"):
        acme = up.named(f"cert-manager-letsencrypt-{server}").inputs["spec"]["acme"]
        (solver,) = acme["solvers"]
        assert solver["selector"] == {"dnsZones": [up.named("dns-zone").inputs["name"]]}
        route53 = solver["dns01"]["route53"]
        assert (route53["hostedZoneID"], route53["region"]) == (zone_id, "us-east-1")
        assert "role" not in route53


def test_account_key_is_pulumis_and_survives_rebuilds(up):
    (layer,) = [r for r in up.resources.values() if r.type == "cluster-bootstrap:pki:AcmeAccount"]
    (key,) = up.children(layer.urn)
    assert (key.inputs["algorithm"], key.inputs["rsaBits"]) == ("RSA", 2048)
    assert key.protect is (up.stack == "prod")
    assert key.dependencies == []  # stage 0: nothing it waits for, nothing that can replace it
    secret = up.named("cert-manager-account-key")
    assert secret.is_secret("stringData")
    assert secret.inputs["stringData"]["tls.key"].startswith("-----BEGIN")
    assert key.urn in secret.property_dependencies["stringData"]
    for server in ("staging", "production"):
        acme = up.named(f"cert-manager-letsencrypt-{server}").inputs["spec"]["acme"]
        assert acme["privateKeySecretRef"] == {"name": secret.inputs["metadata"]["name"]}
        assert acme["disableAccountKeyGeneration"] is True
        assert up.depends_transitively(up.named(f"cert-manager-letsencrypt-{server}").urn, secret.urn)


def test_dns01_policy_is_scoped_to_challenge_records_of_the_zone(up):
    (policy_reg,) = ours(up, "aws:iam/userPolicy:UserPolicy")
    policy = json.loads(policy_reg.inputs["policy"])
    zone_arn = ZONE_ARN_PREFIX + up.outputs["zoneId"]
    domain = up.named("dns-zone").inputs["name"]
    by_action: dict[str, dict] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action[action] = statement
    assert set(by_action) == {"route53:GetChange", "route53:ChangeResourceRecordSets",
                              "route53:ListResourceRecordSets", "route53:ListHostedZonesByName"}
    assert by_action["route53:GetChange"]["Resource"] == "arn:aws:route53:::change/*"
    for action in ("route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"):
        assert by_action[action]["Resource"] == zone_arn, action
    condition = by_action["route53:ChangeResourceRecordSets"]["Condition"]
    assert condition["ForAllValues:StringEquals"] == {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]}
    assert condition["ForAllValues:StringLike"] == {"route53:ChangeResourceRecordSetsNormalizedRecordNames": [
        f"_acme-challenge.{domain}", f"_acme-challenge.*.{domain}"]}
    wildcard = [a for a, s in by_action.items() if s["Resource"] == "*"]
    assert wildcard == ["route53:ListHostedZonesByName"]  # the one action IAM cannot scope to a zone


def test_access_key_is_secret_from_iam_to_the_cluster(rec):
    (key,) = ours(rec, "aws:iam/accessKey:AccessKey")
    assert "secret" in key.additional_secret_outputs
    secret = rec.named("cert-manager-route53-credentials")
    assert secret.is_secret("stringData")
    assert key.urn in secret.property_dependencies["stringData"]
    if not rec.preview:
        assert set(secret.inputs["stringData"]) == {"access-key-id", "secret-access-key"}
        assert secret.inputs["stringData"]["access-key-id"] == key.name + "-id"


def test_internal_ca_issuer_uses_the_ca_the_hosts_trust(up):
    secret = up.named("cert-manager-internal-ca-key")
    assert secret.inputs["type"] == "kubernetes.io/tls" and secret.is_secret("stringData")
    assert secret.inputs["stringData"]["tls.crt"] == up.outputs["internalCaCert"]
    issuer = up.named("cert-manager-internal-ca")
    assert issuer.type == ISSUER
    assert issuer.inputs["metadata"]["name"] == "internal-ca"
    assert issuer.inputs["spec"] == {"ca": {"secretName": secret.inputs["metadata"]["name"]}}


def test_ingress_names_point_at_the_shared_ingress_address(rec):
    (record,) = [r for r in rec.of_type("aws:route53/record:Record") if r.name.startswith("cert-manager-")]
    domain = rec.named("dns-zone").inputs["name"]
    ip = {"dev": "192.0.2.241", "prod": "198.51.100.200"}[rec.stack]
    assert (record.inputs["name"], record.inputs["type"], record.inputs["records"]) == (f"*.{domain}", "A", [ip])
    ingress = rec.named("cilium-release").inputs["values"]["ingressController"]
    assert ingress["service"] == {"annotations": {"lbipam.cilium.io/ips": ip}}
    assert (ingress["defaultSecretNamespace"], ingress["defaultSecretName"]) == ("kube-system", "wildcard-tls")
    cert = rec.named("cert-manager-wildcard").inputs
    assert (cert["metadata"]["namespace"], cert["spec"]["secretName"]) == ("kube-system", "wildcard-tls")


def test_destroy_leaves_in_cluster_objects_to_the_cluster(rec):
    first = first_controller(rec)
    for obj in in_cluster_objects(rec, "cert-manager-") + [rec.named("cert-manager-release")]:
        assert obj.deleted_with == first.urn, obj.name
    for iam in ours(rec, "aws:iam/user:User") + ours(rec, "aws:iam/accessKey:AccessKey"):
        assert iam.deleted_with == "" and not iam.protect  # the IAM user goes with the stack
    assert ours(rec, "aws:iam/user:User")[0].inputs["forceDestroy"] is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_iam_role_mode_moves_the_rights_to_a_role(stack):
    acme = {"email": "ops@example.org", "server": "staging", "iamRole": True}
    rec = run_with(stack=stack, preview=False, acme=acme)
    (role,) = ours(rec, "aws:iam/role:Role")
    (user,) = ours(rec, "aws:iam/user:User")
    trust = json.loads(ours(rec, "aws:iam/role:Role")[0].inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::123456789012:user/cluster-bootstrap/{user.name}-x1"}
    (user_policy,) = ours(rec, "aws:iam/userPolicy:UserPolicy")
    statements = json.loads(user_policy.inputs["policy"])["Statement"]
    role_arn = f"arn:aws:iam::123456789012:role/cluster-bootstrap/{role.name}-x1"
    assert statements == [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]
    (role_policy,) = ours(rec, "aws:iam/rolePolicy:RolePolicy")
    assert "route53:ChangeResourceRecordSets" in role_policy.inputs["policy"]
    for server in ("staging", "production"):
        route53 = rec.named(f"cert-manager-letsencrypt-{server}").inputs["spec"]["acme"]["solvers"][0]["dns01"]["route53"]
        assert route53["role"] == role_arn
        validate(rec.named(f"cert-manager-letsencrypt-{server}").inputs)


def test_validation_rejects_unknown_fields(up):
    """The validators are strict: a misspelt field in any of these objects fails."""
    issuer = json.loads(json.dumps(up.named("cert-manager-letsencrypt-staging").inputs))
    issuer["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["hostedZoneId"] = "Z1"  # real name: hostedZoneID
    with pytest.raises(jsonschema.ValidationError, match="hostedZoneId"):
        validate(issuer)
    secret = json.loads(json.dumps(up.named("cert-manager-account-key").inputs))
    secret["stringdata"] = secret.pop("stringData")
    with pytest.raises(Exception, match="stringdata"):
        validate(secret)


@pytest.mark.parametrize("iam_role", [False, True])
def test_iam_objects_are_accepted_by_iam(aws, iam_role):
    """The IAM user, policies and key replayed against moto's IAM on loopback (which checks the
    policy grammar: versions, action and ARN formats, condition operators)."""
    acme = {"email": "ops@example.org", "server": "staging", "iamRole": iam_role}
    rec = run_with(preview=False, acme=acme)
    iam = aws("iam")
    (user,) = ours(rec, "aws:iam/user:User")
    iam.create_user(UserName="dns01", Path=user.inputs["path"])
    for role in ours(rec, "aws:iam/role:Role"):
        iam.create_role(RoleName="dns01", Path=role.inputs["path"], AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"])
    for policy in ours(rec, "aws:iam/rolePolicy:RolePolicy"):
        iam.put_role_policy(RoleName="dns01", PolicyName="dns01", PolicyDocument=policy.inputs["policy"])
    for policy in ours(rec, "aws:iam/userPolicy:UserPolicy"):
        iam.put_user_policy(UserName="dns01", PolicyName="dns01", PolicyDocument=policy.inputs["policy"])
    key = iam.create_access_key(UserName="dns01")["AccessKey"]
    assert key["Status"] == "Active"
    assert iam.list_user_policies(UserName="dns01")["PolicyNames"] == ["dns01"]


def test_builds_from_its_args_alone():
    from components.certmanager import CertManager, CertManagerArgs
    from tests import standalone

    def program():
        CertManager("tls", CertManagerArgs(
            version=VERSIONS["certManager"], cluster=standalone.cluster(), domain="lab.example.net",
            zone_id="Z0123456789ABC", acme_email="ops@example.net", acme_server="production", iam_role=False,
            aws_region="eu-west-1", ca_cert_pem="-----BEGIN CERTIFICATE-----\n", ca_key_pem="key",
            account_key_pem="key", ingress_ip="192.0.2.201", wildcard_tls=("ingress", "default-tls"),
            after=[standalone.marker()], admin_host=standalone.host("192.0.2.60")))

    rec = standalone.build(program)
    wildcard = rec.named("tls-wildcard").inputs
    assert wildcard["metadata"]["namespace"] == "ingress" and wildcard["spec"]["secretName"] == "default-tls"
    assert wildcard["spec"]["issuerRef"]["name"] == "letsencrypt-production"
    (record,) = rec.of_type("aws:route53/record:Record")
    assert (record.inputs["name"], record.inputs["records"]) == ("*.lab.example.net", ["192.0.2.201"])

"""Cilium (stage 3): the pinned release on a complete cluster, LB IPAM, L2, ingress."""

from __future__ import annotations

import json
from pathlib import Path

from tests import charts
from tests.conftest import first_controller, run_with
from tests.hostrun import rendered_env
from tests.pins import VERSIONS


def test_release_is_pinned_and_waits_for_every_node(preview):
    release = preview.named("cilium-release")
    assert (release.inputs["chart"], release.inputs["version"]) == ("cilium", VERSIONS["cilium"])
    assert release.inputs["repositoryOpts"] == {"repo": "https://helm.cilium.io/"}
    assert release.inputs["namespace"] == "kube-system"
    joins = [r for r in preview.of_type("command:remote:Command")
             if r.name.startswith("k0s-") and not r.name.endswith(("token", "kubeconfig"))
             and not r.name.startswith("k0s-version-")]
    for join in joins:
        assert join.urn in release.dependencies, join.name


def test_values_replace_kube_proxy_and_match_the_pod_cidr(preview):
    values = preview.named("cilium-release").inputs["values"]
    assert values["kubeProxyReplacement"] is True
    expected = {"dev": ("192.0.2.10", 6443), "prod": ("localhost", 7443)}[preview.stack]  # prod: k0s NLLB
    assert (values["k8sServiceHost"], values["k8sServicePort"]) == expected
    assert values["ipam"]["mode"] == "cluster-pool"
    assert values["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"] == ["10.244.0.0/16"]
    assert values["operator"]["replicas"] == {"dev": 1, "prod": 2}[preview.stack]
    assert values["l2announcements"] == {"enabled": True}
    assert "externalIPs" not in values  # no such value in the 1.18 chart (removed in 1.17.6)
    ingress = values["ingressController"]
    assert {k: ingress[k] for k in ("enabled", "default", "loadbalancerMode")} == {
        "enabled": True, "default": True, "loadbalancerMode": "shared"}


def test_helm_does_not_wait_and_the_programs_waits_are_ordered_around_the_pool(preview):
    """release → agents ready (CRDs established) → pool and L2 policy → ingress holds its address."""
    release = preview.named("cilium-release")
    assert release.inputs["skipAwait"] is True and not release.inputs.get("atomic")
    agents, ingress = preview.named("cilium-agents-ready"), preview.named("cilium-ingress-ready")
    pool, policy = preview.named("cilium-lb-pool"), preview.named("cilium-l2-policy")
    assert release.urn in agents.dependencies
    for obj in (pool, policy):
        assert agents.urn in obj.dependencies
        assert {pool.urn, policy.urn} <= set(ingress.dependencies)
    expected = {"dev": [{"cidr": "192.0.2.240/28"}],
                "prod": [{"start": "198.51.100.200", "stop": "198.51.100.220"}]}[preview.stack]
    assert pool.inputs["spec"]["blocks"] == expected
    assert (pool.inputs["apiVersion"], policy.inputs["apiVersion"]) == ("cilium.io/v2", "cilium.io/v2alpha1")
    assert policy.inputs["spec"] == {"loadBalancerIPs": True}
    # Later stages wait for the last of them.
    for later in ("storage-release", "cert-manager-release", "gitea-release", "flux-operator"):
        assert preview.depends_transitively(preview.named(later).urn, ingress.urn), later


def test_waits_rerun_when_the_release_or_the_nodes_change():
    base = run_with(stack="prod").named("cilium-agents-ready").inputs["create"]
    bumped = run_with(stack="prod", cilium={"loadBalancerPool": "198.51.100.201-198.51.100.220"})
    assert bumped.named("cilium-agents-ready").inputs["create"] != base  # new values, new release id
    assert "NODES='worker-1 worker-2'" in base


def test_in_cluster_objects_are_deleted_with_the_cluster(rec):
    first = first_controller(rec)
    (provider,) = rec.of_type("pulumi:providers:kubernetes")
    for name in ("cilium-release", "cilium-lb-pool", "cilium-l2-policy"):
        obj = rec.named(name)
        assert obj.deleted_with == first.urn
        assert obj.provider.startswith(provider.urn)


def test_external_api_address_is_what_agents_use():
    values = run_with(stack="prod", k0s={"apiAddress": "198.51.100.10"}).named("cilium-release").inputs["values"]
    assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("198.51.100.10", 6443)


def test_ingress_address_is_the_first_usable_pool_address():
    from stacks.facts import ingress_ip
    from stacks.config import validate
    from tests.conftest import raw_config

    for pool, ip in (("192.0.2.240/28", "192.0.2.241"), ("192.0.2.7/32", "192.0.2.7"),
                     ("198.51.100.200-198.51.100.220", "198.51.100.200")):
        cfg = validate({**raw_config("dev"), "cilium": {"loadBalancerPool": pool}}, "dev")
        assert ingress_ip(cfg) == ip


def test_builds_from_its_args_alone():
    from components.cilium import Cilium, CiliumArgs
    from tests import standalone

    def program():
        Cilium("net", CiliumArgs(
            version=VERSIONS["cilium"], cluster=standalone.cluster(), admin_host=standalone.host(),
            api_host="192.0.2.50", api_port=6443, pod_cidr="10.42.0.0/16", pool="192.0.2.200/29",
            ingress_ip="192.0.2.201", default_tls=("ingress", "default-tls"), nodes=["a", "b", "c"],
            after=[standalone.marker()]))

    rec = standalone.build(program)
    values = rec.named("net-release").inputs["values"]
    assert (values["k8sServiceHost"], values["operator"]["replicas"]) == ("192.0.2.50", 2)
    assert values["ingressController"]["defaultSecretName"] == "default-tls"
    assert "NODES='a b c'" in rec.named("net-agents-ready").inputs["create"]
    assert "LB_SERVICE=kube-system/cilium-ingress=192.0.2.201" in rec.named("net-ingress-ready").inputs["create"]


LEASES = json.loads((Path(__file__).parent / "vectors" / "cilium-l2-lease.json").read_text())


def test_the_ingress_wait_looks_for_the_lease_ciliums_code_takes(up):
    """The lease name is Cilium's, recorded from its source at the pinned version (not the
    program's constant): for the LoadBalancer Service the pinned chart renders, in the release's
    namespace (where the agents run), the wait looks for the Lease Cilium's agent would take."""
    assert VERSIONS["cilium"] in LEASES["versions"], "record the lease vectors from the new Cilium's source"
    release = up.named("cilium-release")
    agents = release.inputs["namespace"]
    (service,) = [o for o in charts.render(release) if o["kind"] == "Service"
                  and o["spec"].get("type") == "LoadBalancer"]
    key = [service["metadata"].get("namespace") or agents, service["metadata"]["name"]]
    (case,) = [c for c in LEASES["cases"] if c["service"] == key and c["agentNamespace"] == agents]
    env = rendered_env(up, "cilium-ingress-ready")
    assert env["LEASE"] == "/".join(case["lease"])
    assert env["LB_SERVICE"].split("=")[0] == "/".join(key)


def test_a_cluster_first_installed_with_an_older_cilium_keeps_its_defaults():
    """cilium.upgradeCompatibility reaches the chart, and the pinned chart acts on it (1.20 keeps
    Envoy's xDS mode of a cluster first installed with 1.18 instead of moving it to `ads`)."""
    pool = {"loadBalancerPool": "192.0.2.240-192.0.2.250"}
    plain = run_with(stack="dev", preview=False, cilium=pool)
    kept = run_with(stack="dev", preview=False, cilium={**pool, "upgradeCompatibility": "1.18"})
    release = kept.named("cilium-release")
    assert release.inputs["values"]["upgradeCompatibility"] == "1.18"
    assert "upgradeCompatibility" not in plain.named("cilium-release").inputs["values"]
    config = {o["metadata"]["name"]: o for o in charts.render(release) if o["kind"] == "ConfigMap"}
    before = {o["metadata"]["name"]: o for o in charts.render(plain.named("cilium-release")) if o["kind"] == "ConfigMap"}
    assert config["cilium-config"]["data"] != before["cilium-config"]["data"]

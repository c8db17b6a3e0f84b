"""What must make the twin fail: each test changes one thing the program declares (its config, or
its recorded graph) and applies only what the changed resource needs. Waits are capped short here:
what is waited for never comes."""

from __future__ import annotations

import pytest

from tests.twin.apply import ApplyError, Applier
from tests.twin.recording import record

CAP = 30  # seconds a wait may take in these tests


def apply_for(fresh_twin, rec, name: str) -> str:
    """Apply what `name` needs, and it; the ApplyError's message."""
    applier = Applier(fresh_twin(rec), rec, wait_cap=CAP)
    with pytest.raises(ApplyError) as failed:
        applier.run(only_for=name)
    print(failed.value)
    return str(failed.value)


def test_a_pool_that_does_not_hold_the_ingress_address(fresh_twin):
    rec = record("dev")
    rec.named("cilium-lb-pool").inputs["spec"]["blocks"] = [{"cidr": "192.0.2.0/28"}]
    message = apply_for(fresh_twin, rec, "cilium-ingress-ready")
    assert message.startswith("cilium-ingress-ready: LoadBalancer kube-system/cilium-ingress at 192.0.2.241 "
                              f"not ready after {CAP}s")


def test_gitea_without_a_storage_class(fresh_twin):
    """The stack names a StorageClass the cluster does not have: Gitea's claim is never bound."""
    rec = record("dev", storage={"storageClass": "fast-ssd"})
    message = apply_for(fresh_twin, rec, "gitea-release")
    chart = f"gitea-{rec.named('gitea-release').inputs['version']}.tgz"
    assert message.startswith(f"gitea-release: helm install gitea {chart} failed")
    assert "PersistentVolumeClaim is not bound: gitea/gitea-shared-storage" in message


def test_a_custom_resource_before_its_crd(fresh_twin):
    """The pool without its dependency on the wait for Cilium's operator (which registers the CRD)."""
    rec = record("dev")
    pool = rec.named("cilium-lb-pool")
    pool.dependencies, pool.property_dependencies = [], {}
    message = apply_for(fresh_twin, rec, "cilium-lb-pool")
    assert message.startswith("cilium-lb-pool: CiliumLoadBalancerIPPool cluster-bootstrap refused")
    assert 'no matches for kind "CiliumLoadBalancerIPPool" in version "cilium.io/v2"' in message


def test_a_flux_instance_not_named_flux(fresh_twin):
    """The FluxInstance CRD's CEL rule admits only the name `flux`."""
    rec = record("dev")
    rec.named("flux-instance").inputs["metadata"]["name"] = "fleet"
    message = apply_for(fresh_twin, rec, "flux-instance")
    assert message.startswith("flux-instance: FluxInstance flux-system/fleet refused")
    assert "the only accepted name for a FluxInstance is 'flux'" in message


def test_a_wait_on_a_daemonset_the_chart_does_not_render(fresh_twin):
    rec = record("dev")
    step = rec.named("cilium-agents-ready")
    step.inputs["create"] = step.inputs["create"].replace("daemonset/kube-system/cilium-envoy",
                                                          "daemonset/kube-system/cilium-agent")
    message = apply_for(fresh_twin, rec, "cilium-agents-ready")
    assert message.startswith(f"cilium-agents-ready: daemonset kube-system/cilium-agent not ready after {CAP}s")
    assert 'daemonsets.apps "cilium-agent" not found' in message

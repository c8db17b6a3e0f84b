"""A worker's drain before its restart, against the twin's real API server: the program's
`k8s-node.sh ACTION=drain` step (as it renders it for prod's worker-1) over the real sshd, where
the k0s stand-in's `kubectl` is a real kubectl. A PodDisruptionBudget that forbids the eviction
stops the rollout there (the step fails, the node stays cordoned and is not marked drained); without
one, the pod is evicted and the node is marked drained for its restart."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.hostrun import KUBECTL, rendered
from tests.twin.recording import record

ROLLOUT_KEY, DRAINED_KEY = "cluster-bootstrap/rollout", "cluster-bootstrap/drained-for"


def workload(twin, node: str) -> None:
    """One pod of a Deployment on `node`, Running (kwok plays its kubelet)."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                                                 "containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}}
    twin.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = json.loads(twin.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        if pods and pods[0]["status"].get("phase") == "Running":
            return
        time.sleep(1)
    raise AssertionError("the web pod never ran on the twin")


def drain(fleet, twin, rec, controller):
    script, env = rendered(rec, "k0s-worker-1-drain")
    return fleet.run(script, controller, FAKE_KUBECONFIG=str(twin.kubeconfig), FAKE_KUBECTL=str(KUBECTL),
                     DRAIN_TIMEOUT="15s", **env)


@pytest.mark.parametrize("budget", [True, False], ids=["blocked-by-pdb", "evicted"])
def test_a_drain_a_disruption_budget_blocks_stops_the_rollout(fresh_twin, fleet, budget):
    rec = record("prod")
    twin = fresh_twin(rec)
    twin.kubectl("annotate", "node", "worker-1", f"{ROLLOUT_KEY}=the-running-one")  # what `ready` left
    workload(twin, "worker-1")
    if budget:
        pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}
        twin.kubectl("apply", "-f", "-", input=yaml.safe_dump(pdb))
    controller = fleet.first_controller()
    done = drain(fleet, twin, rec, controller)
    node = twin.get("node", "worker-1")
    assert node["spec"].get("unschedulable") is True  # cordoned either way
    if budget:
        assert done.returncode != 0
        assert "disruption budget" in done.stderr and "its restart is not started" in done.stderr, done.stderr
        assert DRAINED_KEY not in node["metadata"].get("annotations", {})
    else:
        assert done.returncode == 0, done.stderr
        assert node["metadata"]["annotations"][DRAINED_KEY] == rendered(rec, "k0s-worker-1-drain")[1]["ROLLOUT"]
        pods = json.loads(twin.kubectl("get", "pods", "-l", "app=web", "--field-selector",
                                       "spec.nodeName=worker-1", "-o", "json").stdout)["items"]
        assert [p for p in pods if not p["metadata"].get("deletionTimestamp")] == []

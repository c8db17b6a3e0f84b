"""k8s-wait.sh, the readiness wait for releases Helm does not wait on, run over SSH on a joined
stand-in controller with exactly the environment the program renders for Cilium's two waits."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import run_stack
from tests.fleet import Fleet
from tests import hostrun
from tests.hostrun import log_lines, stop_standin_services, unknown_kubectl_flags


def rendered_env(step: str) -> dict[str, str]:
    """The environment the program renders for a wait step of the dev stack."""
    return hostrun.rendered_env(run_stack("dev", preview=False), step)


@pytest.fixture
def cluster(sshd, tmp_path):
    fleet = Fleet(sshd, tmp_path)
    controller = fleet.first_controller()
    yield fleet, controller
    stop_standin_services(controller)


def put(fleet: Fleet, kind: str, namespace: str, name: str, content: str) -> None:
    path = fleet.cluster / "objects" / kind / namespace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content + "\n")


def later(seconds: float, *writes) -> threading.Thread:
    """The cluster catching up while the script waits: objects appear or change after `seconds`."""
    def run():
        time.sleep(seconds)
        for write in writes:
            write()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_agents_wait_covers_rollouts_crds_and_nodes_as_they_come_up(cluster):
    fleet, controller = cluster
    env = rendered_env("cilium-agents-ready")
    rollouts = env["ROLLOUTS"].split()
    assert rollouts == ["daemonset/kube-system/cilium", "daemonset/kube-system/cilium-envoy",
                        "deployment/kube-system/cilium-operator"]
    for item in rollouts:
        kind, ns, name = item.split("/")
        put(fleet, kind, ns, name, "progressing")
    thread = later(
        2,
        *[lambda i=item: put(fleet, *i.split("/"), "ready") for item in rollouts],
        *[lambda c=crd: put(fleet, "crd", "_", c, "Established") for crd in env["CRDS"].split()],
        *[lambda n=node: put(fleet, "node", "_", n, "Ready") for node in env["NODES"].split()],
    )
    _, calls = fleet.twice("k8s-wait.sh", controller, **env)
    thread.join()
    assert "k0s kubectl -n kube-system rollout status daemonset/cilium --timeout=10s" in calls
    assert "k0s kubectl wait --for=condition=Established --timeout=10s crd/ciliumloadbalancerippools.cilium.io" in calls
    assert not [c for c in calls if c.startswith(("k0s kubectl apply", "k0s kubectl delete", "k0s kubectl patch"))]
    assert not unknown_kubectl_flags(log_lines(controller))


def test_ingress_wait_needs_its_own_address_and_an_announcing_node(cluster):
    fleet, controller = cluster
    env = rendered_env("cilium-ingress-ready")
    service, ip = env["LB_SERVICE"].split("=")
    namespace, name = service.split("/")
    assert (namespace, name) == ("kube-system", "cilium-ingress")
    put(fleet, "service", namespace, name, "192.0.2.250")  # some other address: not ours
    thread = later(2, lambda: put(fleet, "service", namespace, name, f"192.0.2.250 {ip}"),
                   lambda: put(fleet, "lease", *env["LEASE"].split("/"), "dev-1"))
    done = fleet.run("k8s-wait.sh", controller, **env)
    thread.join()
    assert done.returncode == 0, done.stderr
    assert f"LoadBalancer kube-system/cilium-ingress at {ip} ready" in done.stderr


def test_times_out_naming_what_is_missing_and_where_to_look(cluster):
    fleet, controller = cluster
    env = {**rendered_env("cilium-ingress-ready"), "WAIT_SECONDS": "3"}
    done = fleet.run("k8s-wait.sh", controller, **env)
    ip = env["LB_SERVICE"].split("=")[1]
    assert done.returncode != 0
    assert (f"LoadBalancer kube-system/cilium-ingress at {ip} not ready after 3s; "
            "look with: k0s kubectl -n kube-system describe service cilium-ingress") in done.stderr


def test_refuses_to_wait_on_a_controller_that_does_not_serve(cluster):
    fleet, controller = cluster
    fleet.k0s(controller, "stop")
    done = fleet.run("k8s-wait.sh", controller, **{**rendered_env("cilium-agents-ready"), "WAIT_SECONDS": "2"})
    assert done.returncode != 0 and "daemonset kube-system/cilium not ready after 2s" in done.stderr


def test_first_sync_wait_succeeds_once_flux_reports_ready(cluster):
    fleet, controller = cluster
    env = rendered_env("flux-synced")
    kind, namespace, name = env["READY"].split("/")
    put(fleet, kind, namespace, name, "False\nmessage: reconciliation in progress")
    thread = later(2, lambda: put(fleet, kind, namespace, name, "Ready\nmessage: Applied revision: main@sha1:0a1b"))
    done = fleet.run("k8s-wait.sh", controller, **env)
    thread.join()
    assert done.returncode == 0, done.stderr
    assert "kustomization flux-system/flux-system ready" in done.stderr
    assert not unknown_kubectl_flags(log_lines(controller))


def test_a_failed_first_sync_fails_with_fluxs_own_message(cluster):
    fleet, controller = cluster
    env = {**rendered_env("flux-synced"), "WAIT_SECONDS": "3"}
    kind, namespace, name = env["READY"].split("/")
    put(fleet, kind, namespace, name, "False\nmessage: kustomize build failed: accumulating resources: "
                                      "'/tmp/clusters/dev/apps' must resolve to a file")
    done = fleet.run("k8s-wait.sh", controller, **env)
    assert done.returncode != 0
    assert ("kustomization flux-system/flux-system not ready after 3s: kustomize build failed: accumulating "
            "resources: '/tmp/clusters/dev/apps' must resolve to a file") in done.stderr
    assert "look with: k0s kubectl -n flux-system describe kustomization flux-system" in done.stderr

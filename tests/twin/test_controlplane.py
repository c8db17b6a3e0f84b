"""The twin's control plane itself: the version k0s bundles, the stack's Nodes as k0s makes them,
pods Running on kwok Nodes with service-account tokens, and no dial out of the API server."""

from __future__ import annotations

import json
import socket

from tests.twin import versions
from tests.twin.nodes import stack_nodes
from tests.twin.recording import record


def test_serves_the_kubernetes_version_the_pinned_k0s_bundles(twin):
    found = json.loads(twin.kubectl("version", "-o", "json").stdout)["serverVersion"]
    kube = versions.versions()["KUBE"]
    assert (found["gitVersion"], found["major"], found["minor"]) == (f"v{kube}", "1", kube.split(".")[1])


def test_nodes_are_the_stacks_with_k0s_roles_and_labels(twin):
    nodes = {n["metadata"]["name"]: n for n in twin.get("nodes")["items"]}
    expected = stack_nodes(record("dev"))
    assert sorted(nodes) == sorted(n.name for n in expected) == ["dev-1"]
    labels = nodes["dev-1"]["metadata"]["labels"]
    assert labels["node.k0sproject.io/role"] == "control-plane"  # a controller+worker
    assert labels["node-role.kubernetes.io/control-plane"] == "true"
    assert not nodes["dev-1"]["spec"].get("taints")  # installed with --no-taints
    ready = [c for c in nodes["dev-1"]["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"


def test_pods_run_with_service_account_tokens_and_the_root_ca(twin):
    k = twin.kubectl
    k("create", "namespace", "twin-smoke")
    k("-n", "twin-smoke", "create", "deployment", "smoke", "--image=example.invalid/smoke:1", "--replicas=2")
    k("-n", "twin-smoke", "rollout", "status", "deployment/smoke", "--timeout=60s")
    assert k("-n", "twin-smoke", "create", "token", "default").stdout.count(".") == 2  # a signed JWT
    k("-n", "twin-smoke", "wait", "--for=create", "configmap/kube-root-ca.crt", "--timeout=30s")
    pods = twin.get("pods", "-n", "twin-smoke")["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {"dev-1"}
    assert all(p["status"]["phase"] == "Running" for p in pods)
    k("delete", "namespace", "twin-smoke", "--wait=false")


def test_the_api_server_dials_nothing(twin):
    """Webhooks are the API server dialling out (to a URL: `controlplane` egress; to a Service:
    `cluster`): the egress selector refuses both, and a listener on loopback sees no connection."""
    k = twin.kubectl
    k("create", "namespace", "twin-egress")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        k("-n", "twin-egress", "create", "service", "clusterip", "refused", f"--tcp={port}:{port}")
        for name, client in (("url", {"url": f"https://127.0.0.1:{port}/refused"}),
                             ("service", {"service": {"namespace": "twin-egress", "name": "refused", "port": port}})):
            hook = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": f"twin-egress-{name}"},
                    "webhooks": [{"name": "egress.twin.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                                  "failurePolicy": "Fail", "timeoutSeconds": 5, "clientConfig": client,
                                  "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "twin-egress"}},
                                  "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                             "resources": ["configmaps"]}]}]}
            k("apply", "-f", "-", input=json.dumps(hook))
            try:
                refused = k("-n", "twin-egress", "create", "configmap", f"probe-{name}", check=False)
            finally:
                k("delete", "validatingwebhookconfiguration", f"twin-egress-{name}")
            assert refused.returncode != 0 and "no-egress.sock" in refused.stderr, refused.stderr
        try:
            listener.accept()
            dialled = True
        except socket.timeout:
            dialled = False
    assert not dialled

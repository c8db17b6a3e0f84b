"""The stack's Nodes as k0s and the program make them, created as kwok (fake) Nodes.

Which nodes run pods, and their labels, are read from the recorded host steps: the K0sCluster's
`k8s-node.sh` ready step of each member names its Node (empty for a pure controller, which k0s
registers no Node for) and the labels it keeps in step; the member's join step gives its role.
k0s labels the Node of a controller+worker `node.k0sproject.io/role=control-plane`, and its
NodeRole component adds `node-role.kubernetes.io/control-plane=true` (k0s v1.36.3+k0s.2
cmd/controller/controller.go startWorker, pkg/component/controller/noderole.go); the program
installs it with --no-taints, so it carries no taint.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.hostrun import command_env


@dataclass(frozen=True)
class StackNode:
    name: str
    role: str
    labels: dict[str, str]


def stack_nodes(rec) -> list[StackNode]:
    steps = {r.name: command_env(r.inputs["create"]) for r in rec.of_type("command:remote:Command")
             if isinstance(r.inputs.get("create"), str) and " env " in f" {r.inputs['create']}"}
    found = []
    for name, env in steps.items():
        if env.get("CB_SCRIPT") == "k8s-node.sh" and env.get("ACTION") == "ready" and env.get("NODE"):
            node = env["NODE"]
            role = steps.get(name[: -len("-ready")], {}).get("ROLE", "worker")
            labels = dict(pair.split("=", 1) for pair in env.get("LABELS", "").split(",") if pair)
            found.append(StackNode(node, role, labels))
    return found


def node_object(node: StackNode, kube_version: str) -> dict:
    labels = {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "type": "kwok", **node.labels}
    if node.role == "controller+worker":
        labels.update({"node.k0sproject.io/role": "control-plane", "node-role.kubernetes.io/control-plane": "true"})
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "labels": labels,
                     "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {},
        "status": {"capacity": resources, "allocatable": resources,
                   "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": f"v{kube_version}"}},
    }


def create(twin, rec) -> list[StackNode]:
    import json

    nodes = stack_nodes(rec)
    for node in nodes:
        twin.kubectl("create", "-f", "-", input=json.dumps(node_object(node, twin.kube_version)))
    for node in nodes:
        twin.kubectl("wait", "--for=condition=Ready", f"node/{node.name}", "--timeout=60s")
    return nodes

"""The parts of controllers that cannot run here (kwok runs no containers), each played in a few
lines and only when the cluster holds what the real controller needs; `played` says what was done.

cilium-operator   registers Cilium's CRDs (github.com/cilium/cilium@<pin>
                  pkg/k8s/apis/cilium.io/client/crds/{v2,v2alpha1}, from the Go module cache) once
                  its Deployment is available, as the operator does at start.
lb-ipam           gives a LoadBalancer Service the address its `lbipam.cilium.io/ips` annotation
                  asks for only if a CiliumLoadBalancerIPPool's block holds it (first/last
                  address of a CIDR excluded unless allowFirstLastIPs: "Yes", as Cilium does).
l2-announcer      takes the lease cilium-l2announce-<ns>-<svc> for a Service with an address
                  only if a CiliumL2AnnouncementPolicy with loadBalancerIPs: true selects it
                  and one of its nodes.
local-path        binds a claim of a StorageClass whose provisioner is the local-path
                  provisioner's, once that provisioner runs and (WaitForFirstConsumer) the
                  scheduler picked a node: a hostPath PV with the node's affinity, as it does.
flux-operator     for a FluxInstance (its CRD admits only `flux`): applies the toolkit CRDs
                  of spec.distribution.version from shared/charts/crds, then Ready=True; Ready
                  False when no offline copy of that distribution exists.
"""

from __future__ import annotations

import ipaddress
import subprocess
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

from tests.charts import charts_dir
from tests.twin.api import Api
from tests.twin.controlplane import go_module_dir

LB_ANNOTATION = "lbipam.cilium.io/ips"
LOCAL_PATH_PROVISIONERS = ("rancher.io/local-path", "cluster.local/local-path-provisioner")


def _available(api: Api, namespace: str, name: str) -> bool:
    found = api.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    return bool(found) and (found.get("status", {}).get("availableReplicas") or 0) >= 1


def _selects(selector: Optional[dict], labels: dict) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels; absent selects everything."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}[operator] is False:
            return False
    return True


def _pool_holds(pool: dict, ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    first_last = pool["spec"].get("allowFirstLastIPs") == "Yes"
    for block in pool["spec"].get("blocks") or []:
        if "cidr" in block:
            net = ipaddress.ip_network(block["cidr"], strict=False)
            edges = set() if first_last or net.num_addresses <= 2 else {net.network_address, net.broadcast_address}
            if address in net and address not in edges:
                return True
        elif ipaddress.ip_address(block["start"]) <= address <= ipaddress.ip_address(block.get("stop", block["start"])):
            return True
    return False


def flux_crds(version: str) -> Optional[Path]:
    found = charts_dir()
    for candidate in (f"crds/flux-{version}-toolkit-crds.yaml", f"crds/flux-{version}/toolkit-crds.yaml"):
        if found and (found / candidate).is_file():
            return found / candidate
    return None


class Roles(threading.Thread):
    def __init__(self, twin, cilium_version: Optional[str]) -> None:
        super().__init__(daemon=True, name="twin-roles")
        self.twin, self.api = twin, Api(twin)
        self.cilium_version = cilium_version
        self.played: list[str] = []
        self.errors: list[str] = []
        self._halt = threading.Event()
        self._done: set[str] = set()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        while not self._halt.is_set():
            for role in (self.cilium_operator, self.lb_ipam, self.l2_announcer, self.local_path, self.flux_operator):
                try:
                    role()
                except Exception:  # reported by the test (twin.roles.errors), never hidden
                    self.errors.append(traceback.format_exc(limit=3))
            self._halt.wait(0.5)

    def _once(self, key: str, message: str) -> bool:
        if key in self._done:
            return False
        self._done.add(key)
        self.played.append(message)
        return True

    def _apply_file(self, path: Path, manager: str) -> None:
        self.twin.kubectl("apply", "--server-side", f"--field-manager={manager}", "-f", str(path))

    def cilium_operator(self) -> None:
        if "cilium-crds" in self._done or not self.cilium_version or not _available(self.api, "kube-system", "cilium-operator"):
            return
        module = go_module_dir("github.com/cilium/cilium", "v" + self.cilium_version)
        files = sorted((module / "pkg/k8s/apis/cilium.io/client/crds").glob("v2*/*.yaml"))
        for path in files:
            self._apply_file(path, "cilium-operator")
        self._once("cilium-crds", f"cilium-operator: registered {len(files)} CRDs of github.com/cilium/cilium@v{self.cilium_version}")

    def lb_ipam(self) -> None:
        pools = [p for p in self.api.items("/apis/cilium.io/v2/ciliumloadbalancerippools") if not p["spec"].get("disabled")]
        for svc in self.api.items("/api/v1/services"):
            meta = svc["metadata"]
            wanted = ((meta.get("annotations") or {}).get(LB_ANNOTATION) or "").replace(" ", "")
            if svc["spec"].get("type") != "LoadBalancer" or svc.get("status", {}).get("loadBalancer", {}).get("ingress") or not wanted:
                continue
            ips = wanted.split(",")
            holders = [next((p["metadata"]["name"] for p in pools if _pool_holds(p, ip)
                             and _selects(p["spec"].get("serviceSelector"), meta.get("labels") or {})), None) for ip in ips]
            if all(holders):
                self.api.merge_status(f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}",
                                      {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]}})
                self.played.append(f"lb-ipam: {meta['namespace']}/{meta['name']} ← {wanted} (pool {', '.join(holders)})")

    def l2_announcer(self) -> None:
        policies = [p for p in self.api.items("/apis/cilium.io/v2alpha1/ciliuml2announcementpolicies")
                    if p["spec"].get("loadBalancerIPs")]
        if not policies:
            return
        nodes = self.api.items("/api/v1/nodes")
        for svc in self.api.items("/api/v1/services"):
            meta = svc["metadata"]
            if not svc.get("status", {}).get("loadBalancer", {}).get("ingress"):
                continue
            lease = f"cilium-l2announce-{meta['namespace']}-{meta['name']}"
            if lease in self._done:
                continue
            for policy in policies:
                if not _selects(policy["spec"].get("serviceSelector"), meta.get("labels") or {}):
                    continue
                holder = next((n["metadata"]["name"] for n in nodes
                               if _selects(policy["spec"].get("nodeSelector"), n["metadata"].get("labels") or {})), None)
                if holder:
                    self.api.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
                        "metadata": {"name": lease, "namespace": "kube-system"},
                        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
                    self._once(lease, f"l2-announcer: lease kube-system/{lease} held by {holder} "
                                      f"(policy {policy['metadata']['name']})")
                    break

    def local_path(self) -> None:
        classes = {c["metadata"]["name"]: c for c in self.api.items("/apis/storage.k8s.io/v1/storageclasses")}
        for pvc in self.api.items("/api/v1/persistentvolumeclaims"):
            meta, spec = pvc["metadata"], pvc["spec"]
            storage_class = classes.get(spec.get("storageClassName") or "")
            if pvc.get("status", {}).get("phase") != "Pending" or spec.get("volumeName") or storage_class is None:
                continue
            if storage_class["provisioner"] not in LOCAL_PATH_PROVISIONERS:
                continue
            if not any(_available(self.api, d["metadata"]["namespace"], d["metadata"]["name"])
                       for d in self.api.items("/apis/apps/v1/deployments")
                       if d["metadata"]["name"].endswith("local-path-provisioner")):
                continue
            node = (meta.get("annotations") or {}).get("volume.kubernetes.io/selected-node")
            if node is None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
                continue
            name = f"pvc-{meta['uid']}"
            self.api.request("POST", "/api/v1/persistentvolumes", {
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": storage_class["provisioner"]}},
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
                    "storageClassName": storage_class["metadata"]["name"],
                    "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                    "hostPath": {"path": f"/opt/local-path-provisioner/{name}_{meta['namespace']}_{meta['name']}",
                                 "type": "DirectoryOrCreate"},
                    **({"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}} if node else {}),
                }})
            self.played.append(f"local-path: {meta['namespace']}/{meta['name']} bound to {name} on {node or 'any node'} "
                               f"(class {storage_class['metadata']['name']})")

    def flux_operator(self) -> None:
        for instance in self.api.items("/apis/fluxcd.controlplane.io/v1/fluxinstances"):
            meta = instance["metadata"]
            key = f"flux:{meta['uid']}:{meta.get('generation')}"
            if key in self._done or not _available(self.api, meta["namespace"], "flux-operator"):
                continue
            version = instance["spec"]["distribution"]["version"]
            crds = flux_crds(version)
            if crds is not None:
                self._apply_file(crds, "flux-operator")
            ready = {"type": "Ready", "status": "True" if crds else "False",
                     "reason": "ReconciliationSucceeded" if crds else "ArtifactFailed",
                     "message": f"Reconciliation finished (the twin applied {crds.name})" if crds else
                     f"no offline copy of the Flux {version} distribution under shared/charts/crds",
                     "observedGeneration": meta.get("generation"),
                     "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            self.api.merge_status(f"/apis/fluxcd.controlplane.io/v1/namespaces/{meta['namespace']}/fluxinstances/{meta['name']}",
                                  {"conditions": [ready], "observedGeneration": meta.get("generation")})
            self._once(key, f"flux-operator: {meta['namespace']}/{meta['name']} Ready={ready['status']} "
                            f"({crds.parent.name + '/' + crds.name if crds else 'no CRDs'})")


def kubectl_error(error: subprocess.CalledProcessError) -> str:
    return (error.stderr or error.stdout or str(error)).strip()

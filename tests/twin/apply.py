"""Apply a recorded `up` graph to the twin, stage by stage, as the engine would.

Order: layers of the dependency graph (a resource's layer is one more than its deepest
dependency; depending on a component means depending on every resource inside it), registration
order within a layer. So each resource goes in as early as its declared dependencies allow: a
dependency the program forgot shows up as a failure here, not as luck.

What each resource becomes:
  helm.sh/v3:Release   `helm install` of the offline chart at the release's version with exactly its
                       values; --wait (and --timeout) unless skipAwait, --create-namespace,
                       --wait-for-jobs, --skip-crds as the inputs say. `atomic` is not passed: a
                       failed wait then leaves the release for the diagnosis (Pulumi would uninstall).
  other kubernetes:*   `kubectl apply --server-side --field-manager=pulumi --validate=strict`, then
                       pulumi-kubernetes' await: Jobs complete, workloads rolled out, and
                       `pulumi.com/waitFor` conditions.
  k8s-wait.sh steps    the host step's wait, mirrored with kubectl from its recorded environment
                       (ROLLOUTS, CRDS, NODES, LB_SERVICE, LEASE, READY).
  anything else        nothing (hosts, DNS, AWS: other tests).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from typing import Callable, Optional

from tests.charts import chart_file
from tests.hostrun import command_env
from tooling.offline import UNKNOWN, Recording, Registration

RELEASE = "kubernetes:helm.sh/v3:Release"
RELEASE_INPUTS = {"name", "chart", "version", "namespace", "values", "skipAwait", "createNamespace", "atomic",
                  "timeout", "repositoryOpts", "compat", "waitForJobs", "skipCrds"}
# Waits that need a controller the twin neither runs nor plays yet: named, never silently passed.
DEFERRED = {
    "GitRepository": "needs Flux's source-controller fetching the seeded repository from the real Gitea "
                     "(the twin's gitops part)",
    "Kustomization": "needs Flux's kustomize-controller applying the first sync (the twin's gitops part)",
}


class ApplyError(Exception):
    """The cluster refused an object, or a wait did not finish (the message says which and why)."""


def expand(rec: Recording, urn: str) -> set[str]:
    """A dependency as the engine reads it: a component stands for every custom resource inside it."""
    reg = rec.resources.get(urn)
    if reg is None:
        return set()
    if reg.custom:
        return {urn}
    return {d.urn for d in rec.descendants(urn) if d.custom}


def dependencies(rec: Recording) -> dict[str, set[str]]:
    """Each custom resource's direct dependencies, components expanded."""
    return {r.urn: {e for d in rec.all_dependencies(r.urn) for e in expand(rec, d)} - {r.urn}
            for r in rec.resources.values() if r.custom}


def closure(rec: Recording, name: str) -> set[str]:
    """The resource named `name` and everything it depends on, transitively."""
    deps, todo, found = dependencies(rec), [rec.named(name).urn], set()
    while todo:
        urn = todo.pop()
        if urn not in found:
            found.add(urn)
            todo.extend(deps.get(urn, ()))
    return found


def layers(rec: Recording) -> list[list[Registration]]:
    customs = [r for r in rec.resources.values() if r.custom]
    deps = dependencies(rec)
    depth: dict[str, int] = {}

    def layer(urn: str, path: tuple = ()) -> int:
        if urn in path:
            raise ApplyError(f"dependency cycle: {' → '.join(rec.resources[u].name for u in path + (urn,))}")
        if urn not in depth:
            depth[urn] = 1 + max((layer(d, path + (urn,)) for d in deps[urn] if d in deps), default=-1)
        return depth[urn]

    found: dict[int, list[Registration]] = {}
    for reg in customs:
        found.setdefault(layer(reg.urn), []).append(reg)
    return [found[i] for i in sorted(found)]


def manifest(reg: Registration) -> dict:
    obj = json.loads(json.dumps(reg.inputs))
    if UNKNOWN in json.dumps(obj):
        raise ApplyError(f"{reg.name}: an input is still unknown in up mode (a fake output is missing)")
    return obj


class Applier:
    def __init__(self, twin, rec: Recording, wait_cap: float = 240) -> None:
        self.twin, self.rec, self.wait_cap = twin, rec, wait_cap
        self.log: list[str] = []  # what was done, in order
        self.deferred: list[str] = []  # waits that need the gitops part

    def run(self, only_for: Optional[str] = None) -> None:
        """Apply everything, or only what the resource named `only_for` needs, and it."""
        needed = closure(self.rec, only_for) if only_for is not None else None
        for layer in layers(self.rec):
            for reg in layer:
                if needed is None or reg.urn in needed:
                    self.step(reg)

    def step(self, reg: Registration) -> None:
        if reg.type == RELEASE:
            self.helm(reg)
        elif reg.type.startswith("kubernetes:"):
            self.apply(reg)
        elif reg.type == "command:remote:Command" and isinstance(reg.inputs.get("create"), str) \
                and "CB_SCRIPT=k8s-wait.sh" in reg.inputs["create"]:
            self.mirror_wait(reg, command_env(reg.inputs["create"]))

    # --- Helm releases -------------------------------------------------------------------------
    def helm(self, reg: Registration) -> None:
        inputs = reg.inputs
        unknown = set(inputs) - RELEASE_INPUTS
        if unknown:
            raise ApplyError(f"{reg.name}: Release inputs the twin does not map to helm flags: {sorted(unknown)}")
        chart = chart_file(inputs["chart"], inputs["version"])
        timeout = int(min(float(inputs.get("timeout") or 300), self.wait_cap))
        with tempfile.NamedTemporaryFile("w", suffix=".json") as values:
            json.dump(manifest(reg).get("values") or {}, values)
            values.flush()
            args = ["install", inputs["name"], str(chart), "--namespace", inputs["namespace"], "--values", values.name]
            if inputs.get("createNamespace"):
                args.append("--create-namespace")
            if inputs.get("skipCrds"):
                args.append("--skip-crds")
            if not inputs.get("skipAwait"):
                args += ["--wait", "--timeout", f"{timeout}s", "--debug"]
                if inputs.get("waitForJobs"):
                    args.append("--wait-for-jobs")
            done = self.twin.helm(*args, check=False, timeout=timeout + 120)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or done.stdout.strip().splitlines()[-1:]
            error = next((line for line in lines if line.startswith("Error: ")), lines[-1] if lines else "")
            waiting = [line.split("[debug] ", 1)[-1] for line in lines
                       if re.search(r"not (ready|bound|available)", line, re.I)]
            raise ApplyError(f"{reg.name}: helm install {inputs['name']} {chart.name} failed: {error.strip()}"
                             + (f" (last wait: {waiting[-1].strip()})" if waiting else ""))
        self.log.append(f"helm install {inputs['name']} {chart.name} -n {inputs['namespace']}"
                        + (" (no wait: skipAwait)" if inputs.get("skipAwait") else " --wait"))
        self.after_release(reg)

    def after_release(self, reg: Registration) -> None:
        """The cert-manager webhook cannot answer here (kwok runs no containers) and every dial from
        the API server is refused: its webhook configurations are removed, and the log says so."""
        for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
            selector = f"app.kubernetes.io/instance={reg.inputs['name']}"
            found = self.twin.get(kind, "-l", selector)["items"]
            for hook in found:
                self.twin.kubectl("delete", kind, hook["metadata"]["name"])
                self.log.append(f"removed {kind[:-1]} {hook['metadata']['name']} (its webhook cannot run in the twin)")

    # --- Other Kubernetes objects --------------------------------------------------------------
    def apply(self, reg: Registration) -> None:
        obj = manifest(reg)
        done = self.twin.kubectl("apply", "--server-side", "--field-manager=pulumi", "--validate=strict", "-f", "-",
                                 input=json.dumps(obj), check=False)
        meta = obj.get("metadata") or {}
        where = f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}".replace(" /", " ")
        if done.returncode != 0:
            raise ApplyError(f"{reg.name}: {where} refused: {done.stderr.strip()}")
        self.log.append(f"applied {where}")
        self.await_object(reg, obj, where)

    def await_object(self, reg: Registration, obj: dict, where: str) -> None:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get("pulumi.com/skipAwait") == "true":
            return
        kind, meta = obj["kind"], obj["metadata"]
        ref = [f"{kind.lower()}/{meta['name']}"] + (["-n", meta["namespace"]] if meta.get("namespace") else [])
        condition = annotations.get("pulumi.com/waitFor")
        if kind == "Job":
            condition = "condition=Complete"
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            self.until(where, lambda: self.twin.kubectl("rollout", "status", *ref, "--timeout=10s", check=False))
            self.log[-1] += " (rolled out)"
        elif condition:
            if kind in DEFERRED:
                self.deferred.append(f"{reg.name}: {where} waitFor {condition} — {DEFERRED[kind]}")
                return
            self.until(f"{where} {condition}",
                       lambda: self.twin.kubectl("wait", f"--for={condition}", *ref, "--timeout=10s", check=False))
            self.log[-1] += f" ({condition})"

    # --- Host waits (k8s-wait.sh), mirrored ----------------------------------------------------
    def mirror_wait(self, reg: Registration, env: dict[str, str]) -> None:
        k = self.twin.kubectl
        for item in env.get("ROLLOUTS", "").split():
            kind, ns, name = item.split("/")
            self.until(f"{reg.name}: {kind} {ns}/{name}",
                       lambda: k("-n", ns, "rollout", "status", f"{kind}/{name}", "--timeout=10s", check=False))
        for crd in env.get("CRDS", "").split():
            self.until(f"{reg.name}: CRD {crd}",
                       lambda: k("wait", "--for=condition=Established", "--timeout=10s", f"crd/{crd}", check=False))
        for node in env.get("NODES", "").split():
            self.until(f"{reg.name}: node {node}",
                       lambda: k("wait", "--for=condition=Ready", "--timeout=10s", f"node/{node}", check=False))
        if env.get("LB_SERVICE"):
            service, ip = env["LB_SERVICE"].split("=")
            ns, name = service.split("/")
            self.until(f"{reg.name}: LoadBalancer {service} at {ip}", lambda: self._has_ip(ns, name, ip))
        if env.get("LEASE"):
            ns, name = env["LEASE"].split("/")
            self.until(f"{reg.name}: lease {env['LEASE']}", lambda: k(
                "-n", ns, "get", "lease", name, "-o", "jsonpath={.spec.holderIdentity}", "--ignore-not-found", check=False),
                accept=lambda done: done.returncode == 0 and bool(done.stdout.strip()))
        for item in env.get("READY", "").split():
            kind, ns, name = item.split("/")
            if kind.capitalize() in DEFERRED or kind in DEFERRED:
                self.deferred.append(f"{reg.name}: READY {item} — {DEFERRED.get(kind.capitalize(), DEFERRED.get(kind))}")
                continue
            self.until(f"{reg.name}: {item} Ready",
                       lambda: k("-n", ns, "wait", "--for=condition=Ready", "--timeout=10s", f"{kind}/{name}", check=False))
        self.log.append(f"waited {reg.name} ({', '.join(k for k in env if k not in ('CB_SCRIPT', 'RELEASE'))})")

    def _has_ip(self, ns: str, name: str, ip: str) -> subprocess.CompletedProcess:
        done = self.twin.kubectl("-n", ns, "get", "service", name, "-o",
                                 "jsonpath={.status.loadBalancer.ingress[*].ip}", check=False)
        done.returncode = 0 if ip in done.stdout.split() else 1
        return done

    def until(self, what: str, probe: Callable[[], subprocess.CompletedProcess],
              accept: Callable[[subprocess.CompletedProcess], bool] = lambda done: done.returncode == 0) -> None:
        deadline = time.monotonic() + self.wait_cap
        while True:
            done = probe()
            if accept(done):
                return
            if time.monotonic() > deadline:
                said = (done.stderr or done.stdout or "").strip().splitlines()
                raise ApplyError(f"{what} not ready after {self.wait_cap:.0f}s"
                                 + (f": {said[-1]}" if said else ""))
            time.sleep(1)

"""Will the first real `pulumi up` converge? Checked on real renders and the recorded graph.

Every Helm release the program declares is rendered with a real `helm template` and its exact
values (helm also enforces each chart's values.schema.json). From the renders and the graph:
- an awaited release (Helm's wait, helm v3 pkg/kube/ready.go) never waits on what it cannot
  enable itself: a LoadBalancer Service needs an address pool, a PVC a StorageClass (and a pod
  that uses it when the class binds on first consumer), both created before the release;
- a release Helm does not wait on is waited on by the program: every workload it renders rolled
  out, every LoadBalancer holding its address, before anything after it;
- every custom resource waits for what provides its CRD, and validates against that CRD;
- every value the program sets is consumed: changing it changes the render (or helm refuses it).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import charts, crds
from tests.conftest import raw_config, run_stack, run_with
from tests.pins import PREVIOUS
from tests.hostrun import command_env

RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(params=[(s, pins) for pins in ("current", "previous") for s in ("dev", "prod")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def up(request):
    """Both stacks' `pulumi up`, at Pulumi.yaml's pins and at the previous release's (the two ends
    of the upgrade path: tests/upgrade_path.yaml), each against its own offline charts and CRDs."""
    return at_pins(*request.param)
WAIT_SCRIPT = "CB_SCRIPT=k8s-wait.sh"
POOL = "kubernetes:cilium.io/v2:CiliumLoadBalancerIPPool"
WORKLOADS = ("DaemonSet", "Deployment", "StatefulSet")
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def awaited(release) -> bool:
    """Helm waits when skipAwait is unset, and always when atomic (helm forces Wait with Atomic)."""
    return bool(release.inputs.get("atomic")) or not release.inputs.get("skipAwait")


def renders(rec) -> list[tuple]:
    return [(release, charts.installed(charts.render(release))) for release in rec.of_type(RELEASE)]


def wait_steps(rec) -> list[tuple]:
    """The program's own waits (k8s-wait.sh on a controller) and the environment each renders."""
    steps = []
    for reg in rec.of_type("command:remote:Command"):
        if WAIT_SCRIPT in reg.inputs["create"]:
            steps.append((reg, command_env(reg.inputs["create"])))
    return steps


def storage_classes(rec, all_renders) -> list[tuple]:
    """(name, default?, binding mode, providing registration) of every class the program creates."""
    found = []
    for release, objects in all_renders:
        for obj in objects:
            if obj["kind"] == "StorageClass":
                default = (obj["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
                found.append((obj["metadata"]["name"], default, obj.get("volumeBindingMode"), release))
    return found


def claims(objects: list[dict]) -> list[tuple[str, dict]]:
    """(claim name, spec) of the PVCs a render creates, StatefulSet claim templates included."""
    found = [(o["metadata"]["name"], o["spec"]) for o in objects if o["kind"] == "PersistentVolumeClaim"]
    for sts in (o for o in objects if o["kind"] == "StatefulSet"):
        found += [(t["metadata"]["name"], t["spec"]) for t in sts["spec"].get("volumeClaimTemplates") or []]
    return found


def mounts(objects: list[dict], claim: str) -> bool:
    """True when a workload of the render mounts `claim` (so a first-consumer class can bind it)."""
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            volumes = obj["spec"]["template"]["spec"].get("volumes") or []
            if any((v.get("persistentVolumeClaim") or {}).get("claimName") == claim for v in volumes):
                return True
            if obj["kind"] == "StatefulSet":
                return True
    return False


def test_every_release_renders_with_the_programs_values(up):
    for release, objects in renders(up):
        assert objects, f"{release.name} renders nothing"


def helm_wait_blockers(rec, own_classes: frozenset = frozenset()) -> list[str]:
    """What awaited releases would wait on forever; `own_classes` are StorageClasses the user has."""
    problems = []
    all_renders = renders(rec)
    classes = storage_classes(rec, all_renders)
    for release, objects in all_renders:
        if not awaited(release):
            continue
        for obj in objects:
            spec = obj.get("spec") or {}
            if obj["kind"] == "Service" and spec.get("type") == "LoadBalancer" and not spec.get("externalIPs"):
                if not any(rec.depends_transitively(release.urn, p.urn) for p in rec.of_type(POOL)):
                    problems.append(f"{release.name}: Helm waits for LoadBalancer {obj['metadata']['name']} to get "
                                    "an address, but no address pool is created before the release")
        for claim, spec in claims(objects):
            wanted = spec.get("storageClassName")
            if wanted in own_classes:
                continue
            matching = [c for c in classes if (c[0] == wanted if wanted else c[1])]
            if not matching:
                problems.append(f"{release.name}: Helm waits for PVC {claim} to be bound, but no "
                                f"{'StorageClass ' + wanted if wanted else 'default StorageClass'} exists")
            for name, _, binding, provider in matching:
                if not rec.depends_transitively(release.urn, provider.urn):
                    problems.append(f"{release.name}: PVC {claim} needs StorageClass {name}, created only by "
                                    f"{provider.name}, which is not before it")
                if binding == "WaitForFirstConsumer" and not mounts(objects, claim):
                    problems.append(f"{release.name}: PVC {claim} is never used, so never bound")
    return problems


def test_awaited_releases_never_wait_on_what_they_cannot_enable(up):
    assert helm_wait_blockers(up) == []


def test_a_users_own_storage_class_installs_nothing_and_is_what_gitea_claims():
    rec = run_with(preview=False, storage={"storageClass": "ceph-rbd"})
    assert not [r for r in rec.resources.values() if r.type.endswith(":LocalPathStorage")]
    assert storage_classes(rec, renders(rec)) == []
    assert helm_wait_blockers(rec, own_classes=frozenset({"ceph-rbd"})) == []
    assert "PVC gitea-shared-storage to be bound, but no StorageClass ceph-rbd exists" in " ".join(
        helm_wait_blockers(rec))


def test_releases_helm_does_not_wait_on_are_waited_on_by_the_program(up):
    steps = wait_steps(up)
    for release, objects in renders(up):
        if awaited(release):
            continue
        waits = [(reg, env) for reg, env in steps  # the layer's own waits for its release
                 if reg.parent == release.parent and up.depends_transitively(reg.urn, release.urn)]
        rollouts = {item for _, env in waits for item in env.get("ROLLOUTS", "").split()}
        for obj in objects:
            if obj["kind"] in WORKLOADS:
                item = f"{obj['kind'].lower()}/{obj['metadata'].get('namespace', release.inputs['namespace'])}/" \
                       f"{obj['metadata']['name']}"
                assert item in rollouts, f"{release.name}: nothing waits for {item} to roll out"
            spec = obj.get("spec") or {}
            if obj["kind"] == "Service" and spec.get("type") == "LoadBalancer":
                service = f"{obj['metadata'].get('namespace', release.inputs['namespace'])}/{obj['metadata']['name']}"
                covering = [reg for reg, env in waits if env.get("LB_SERVICE", "").split("=")[0] == service]
                assert covering, f"{release.name}: nothing waits for LoadBalancer {service} to get its address"
                for reg in covering:
                    assert any(up.depends_transitively(reg.urn, p.urn) for p in up.of_type(POOL)), reg.name
        # Nothing outside the layer goes on before the waits.
        layer = release.parent
        for reg in up.resources.values():
            if up.depends_transitively(reg.urn, release.urn) and reg.parent != layer:
                for wait, _ in waits:
                    assert up.depends_transitively(reg.urn, wait.urn), f"{reg.name} may start before {wait.name}"


def crd_name(api_version: str, kind: str) -> str:
    """The CRD a kind is served by: <lowercase plural>.<group> (Kubernetes' naming rule)."""
    plural = kind.lower()
    plural = plural[:-1] + "ies" if plural.endswith("y") else plural + "s"
    return f"{plural}.{api_version.split('/')[0]}"


def crd_providers(rec) -> dict[str, list]:
    """CRD name → the registrations after which it is established."""
    providers: dict[str, list] = {}
    for release, objects in renders(rec):
        for obj in objects:
            if obj["kind"] == "CustomResourceDefinition" and awaited(release):
                providers.setdefault(obj["metadata"]["name"], []).append(release)
    for reg, env in wait_steps(rec):  # established CRDs an operator registers at run time
        for name in env.get("CRDS", "").split():
            providers.setdefault(name, []).append(reg)
    for reg in rec.of_type("kubernetes:fluxcd.controlplane.io/v1:FluxInstance"):
        # A FluxInstance is Ready once the operator applied the distribution, CRDs included.
        if (reg.inputs["metadata"].get("annotations") or {}).get("pulumi.com/waitFor") == "condition=Ready":
            schemas = crds.registry(crds.pins_of(rec))
            for api, kind in schemas:
                if api.split("/")[0].endswith(".toolkit.fluxcd.io"):
                    providers.setdefault(crd_name(api, kind), []).append(reg)
    return providers


def custom_resources(rec) -> list:
    return [r for r in rec.resources.values() if r.custom and r.type.startswith("kubernetes:")
            and r.type != RELEASE and "." in r.type.split(":")[1].split("/")[0]
            and not r.type.split(":")[1].split("/")[0].endswith("k8s.io")]


def test_every_custom_resource_waits_for_its_crd(up):
    providers = crd_providers(up)
    objects = custom_resources(up)
    assert objects
    for reg in objects:
        name = crd_name(reg.inputs["apiVersion"], reg.inputs["kind"])
        assert name in providers, f"{reg.name}: nothing in the program provides CRD {name}"
        assert any(up.depends_transitively(reg.urn, p.urn) for p in providers[name]), (
            f"{reg.name} can be created before CRD {name} is established (by {[p.name for p in providers[name]]})")


def test_custom_resources_validate_against_their_crds(up):
    for reg in custom_resources(up):
        obj = {k: v for k, v in reg.inputs.items() if k != "__defaults"}
        crds.validate(obj, crds.pins_of(up))


def mutated(value):
    """A different value of the same shape: what a chart that reads the key must react to."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, list):
        return value + [copy.deepcopy(value[-1])] if value else ["changed"]
    if isinstance(value, dict):
        return {"changed": "changed"}
    return None


def set_leaf(values: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(values)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def at_pins(stack: str, pins: str):
    if pins == "current":
        return run_stack(stack, preview=False)
    return run_with(stack=stack, preview=False, versions={**raw_config(stack)["versions"], **PREVIOUS})


@pytest.mark.parametrize("pins", ["current", "previous"])
def test_every_value_is_consumed_by_the_chart(pins):
    """Change each value the program sets; a render that does not change means helm ignores the key.
    (Every key of both stacks, each checked once; at Pulumi.yaml's pins and at the previous ones.)"""
    jobs, seen = [], set()
    for stack in ("dev", "prod"):
        for release in at_pins(stack, pins).of_type(RELEASE):
            values = release.inputs.get("values") or {}
            paths = [(p, v) for p, v in charts.leaves(values) if p and v is not None
                     and (release.inputs["chart"], p) not in seen]
            if not paths:
                continue
            mask = charts.volatile(release)
            baseline = charts.comparable(charts.render(release), mask)
            for path, value in paths:
                seen.add((release.inputs["chart"], path))
                jobs.append((release, path, set_leaf(values, path, mutated(value)), baseline, mask))

    def ignored(job) -> str:
        release, path, changed, baseline, mask = job
        try:
            after = charts.comparable(charts.render_values(release, changed), mask)
        except charts.RenderError:
            return ""  # helm refused the changed value: the chart reads it
        return "" if after != baseline else f"{release.name}: {'.'.join(map(str, path))}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        unused = [found for found in pool.map(ignored, jobs) if found]
    assert jobs and not unused, f"values the charts ignore: {unused}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_renders_a_default_storage_class_for_gitea(stack):
    rec = run_stack(stack, preview=False)
    classes = storage_classes(rec, renders(rec))
    assert [(name, default) for name, default, _, _ in classes] == [("local-path", True)]

"""What the engine acts on, read from the registrations: how each resource would be replaced,
deleted, protected, and through which provider.

pulumi-command v1.2.1: only `triggers` makes a change a replacement; any other change runs
`update` (or `create` when unset); a delete, and so a replacement, runs the delete command kept in
state. On a node that delete is `k0s reset`: no host step may ever be replaced.
pulumi-kubernetes: DiffConfig replaces every object of a provider whose active cluster changes,
unless `clusterIdentifier` is set and unchanged.
"""

from __future__ import annotations

import base64
import shlex

import pytest

from components import remote
from pulumi.output import Unknown
from tests.conftest import first_controller, raw_config, run_stack, run_with
from tests.hostrun import command_env, rendered_env

COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
PROVIDER = "pulumi:providers:kubernetes"


def in_cluster(rec) -> list:
    return [r for r in rec.resources.values() if r.custom and r.type.startswith("kubernetes:")]


def delete_program(step) -> tuple[str, dict[str, str]]:
    """The script a step's delete command runs, and its environment (decoded from the inline line)."""
    program = base64.b64decode(shlex.split(step.inputs["delete"])[1]).decode()
    return program, command_env(step.inputs["delete"])


def test_no_host_step_can_be_replaced(rec):
    steps = rec.of_type(COMMAND) + rec.of_type(COPY)
    assert steps
    for step in steps:
        # The SDK registers the provider's own declaration (replace when `triggers` changes); with
        # `triggers` never set, nothing else may force a replacement.
        assert step.replace_on_changes == ["triggers[*]"], step.name
        assert not step.delete_before_replace and not step.retain_on_delete, step.name
        assert "triggers" not in step.inputs, step.name
    for step in rec.of_type(COMMAND):  # updated in place, with the line it was created with
        create, update = step.inputs["create"], step.inputs["update"]
        if isinstance(create, Unknown):  # preview: both computed from the same outputs
            assert isinstance(update, Unknown), step.name
            assert sorted(step.property_dependencies["update"]) == sorted(step.property_dependencies["create"])
        else:
            assert update == create, step.name


def test_uploads_for_airgapped_hosts_are_never_replaced_either(tmp_path):
    binary, bundle = tmp_path / "k0s", tmp_path / "bundle.tar"
    binary.write_bytes(b"k0s")
    bundle.write_bytes(b"images")
    rec = run_with(k0s={"binaryPath": str(binary), "airgapBundle": str(bundle)})
    copies = rec.of_type(COPY)
    assert len(copies) == 2
    for copy in copies:
        assert copy.replace_on_changes == ["triggers[*]"] and "triggers" not in copy.inputs
        assert not copy.delete_before_replace


def test_deletes_run_exactly_the_scripts_they_name(rec):
    nodes = {n["name"]: n["role"] for n in raw_config(rec.stack)["nodes"]}
    first = next(name for name, role in nodes.items() if role != "worker")
    for step in rec.of_type(COMMAND):
        node = step.name.removeprefix("k0s-").removesuffix("-ready").removesuffix("-reset")
        if step.name.startswith("k0s-") and node in nodes and step.name.endswith("-reset"):
            program, env = delete_program(step)  # the node leaves: k0s reset
            assert program == remote.program("k0s-reset.sh") and env["CB_SCRIPT"] == "k0s-reset.sh", step.name
            assert env["ROLE"] == nodes[node]
        elif step.name.endswith("-ready") and nodes.get(node, "controller") != "controller" and node != first:
            program, env = delete_program(step)  # before that, its Node is drained and deleted
            assert program == remote.program("k8s-node.sh"), step.name
            assert (env["ACTION"], env["NODE"]) == ("remove", node)
        elif step.name.startswith("gitops-backup-etcd-"):  # the controller's backup timer goes
            program, env = delete_program(step)
            assert program == remote.program("etcd-backup-timer.sh") and env["ACTION"] == "remove", step.name
        elif step.name.endswith("-trust-ca"):
            program, env = delete_program(step)
            assert program == remote.program("trust-ca.sh") and env["ACTION"] == "remove", step.name
        else:
            assert not step.inputs.get("delete"), f"{step.name} would run something on delete"


def test_in_cluster_objects_use_the_one_provider_and_go_with_the_cluster(rec):
    (provider,) = rec.of_type(PROVIDER)
    anchor = first_controller(rec).urn
    objects = in_cluster(rec)
    assert len(objects) > 20
    for obj in objects:
        assert obj.provider.startswith(provider.urn + "::"), obj.name
        assert obj.deleted_with == anchor, obj.name
        assert obj.replace_on_changes == [] and not obj.delete_before_replace and not obj.retain_on_delete, obj.name


def test_only_long_lived_things_are_protected(rec):
    protected = {r.name for r in rec.resources.values() if r.protect}
    expected = {"dns-zone", "ca-key", "ca-cert", "acme-key", "sops-identity", "backup-bucket", "backup-versioning",
                "backup-encryption", "backup-lifecycle", "backup-public-access", "backup-tls-only"} \
        if rec.stack == "prod" else set()
    assert protected == expected


def test_no_resource_ignores_changes(rec):
    """Only a stack whose hosts are gone does (below): otherwise every input change is acted on."""
    assert [r.name for r in rec.resources.values() if r.ignore_changes] == []


def test_the_providers_identity_is_the_stack_known_even_in_preview(rec):
    (provider,) = rec.of_type(PROVIDER)
    identity = provider.inputs["clusterIdentifier"]
    assert not isinstance(identity, Unknown)  # a computed identifier would replace every object
    assert identity == f"cluster-bootstrap/{rec.stack}"
    assert provider.is_secret("kubeconfig")


@pytest.mark.parametrize("change", [
    {"k0s": {"apiAddress": "198.51.100.10"}},
    {"k0s": {"apiProxy": "socks5://127.0.0.1:1081"}},
    {"nodes": [{"name": f"cp-{i}", "address": f"198.51.100.{10 + i}", "role": "controller"} for i in range(1, 6)]
     + [{"name": "worker-1", "address": "198.51.100.21", "role": "worker"},
        {"name": "worker-2", "address": "198.51.100.22", "role": "worker"}]},
], ids=["apiAddress", "apiProxy", "five-controllers"])
def test_endpoint_changes_and_new_controllers_replace_no_in_cluster_object(change):
    before = run_stack("prod", preview=False)
    after = run_with(stack="prod", preview=False, **change)
    (old,), (new,) = before.of_type(PROVIDER), after.of_type(PROVIDER)
    assert (old.urn, old.inputs["clusterIdentifier"]) == (new.urn, new.inputs["clusterIdentifier"])
    assert {o.urn for o in in_cluster(before)} <= {o.urn for o in in_cluster(after)}
    assert first_controller(before).urn == first_controller(after).urn


def test_replacing_the_first_controller_replaces_no_in_cluster_object():
    """cp-1 leaves, cp-4 comes: cp-2 (a member) becomes first; it mints cp-4's token and signs the
    kubeconfig, and in-cluster objects now go with it."""
    before = run_stack("prod", preview=False)
    nodes = [n for n in raw_config("prod")["nodes"] if n["name"] != "cp-1"]
    nodes.insert(2, {"name": "cp-4", "address": "198.51.100.14", "role": "controller"})
    after = run_with(stack="prod", preview=False, nodes=nodes)
    (old,), (new,) = before.of_type(PROVIDER), after.of_type(PROVIDER)
    assert (old.urn, old.inputs["clusterIdentifier"]) == (new.urn, new.inputs["clusterIdentifier"])
    assert {o.urn for o in in_cluster(before)} <= {o.urn for o in in_cluster(after)}
    first = after.named("k0s-cp-2")
    assert first.urn == before.named("k0s-cp-2").urn  # updated in place
    assert {o.deleted_with for o in in_cluster(after)} == {first.urn}
    env = rendered_env(after, "k0s-cp-2")
    assert (env["FIRST"], env["PEERS"]) == ("true", "198.51.100.13 198.51.100.14")
    assert not first.is_secret("stdin")  # a member joins with no token
    for step in ("k0s-cp-4-token", "k0s-kubeconfig", "k0s-worker-1-ready"):
        assert after.named(step).inputs["connection"]["host"] == "198.51.100.12", step


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_hosts_gone_makes_every_host_step_forgettable_and_nothing_else(stack):
    """hostsGone: true, then `pulumi up` writes these options to state (the engine reads
    retainOnDelete from state on delete); `pulumi destroy` then dials no host. pulumi v3.259
    DeleteStep.Apply: a retained resource calls no provider Delete; in-cluster objects are skipped
    as deletedWith the first controller's step, itself deleted in the same operation."""
    rec = run_with(stack=stack, preview=False, hostsGone=True)
    host_steps = rec.of_type(COMMAND) + rec.of_type(COPY)
    for step in host_steps:
        assert step.retain_on_delete and step.ignore_changes == ["*"], step.name
    others = [r for r in rec.resources.values() if r.custom and r not in host_steps]
    assert [r.name for r in others if r.retain_on_delete or r.ignore_changes] == []
    (provider,) = rec.of_type(PROVIDER)
    assert (provider.inputs["deleteUnreachable"], provider.inputs["skipUpdateUnreachable"]) == ("true", "true")
    assert [r.name for r in in_cluster(rec) if r.deleted_with != first_controller(rec).urn] == []

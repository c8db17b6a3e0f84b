"""K0sCluster (stage 2): config, join order, secrets, kubeconfig, provider, destroy."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
import yaml

from components.k0s import K0sClusterArgs, Member, batches, point_kubeconfig, rollout_id
from tests.conftest import first_controller, fixture_config, raw_config, run_stack, run_with
from tests.hostrun import rendered_env as env_of
from tests.pins import VERSIONS, next_patch
from tooling import offline

COMMAND = "command:remote:Command"

CONTROLLERS = ["k0s-cp-1", "k0s-cp-2", "k0s-cp-3"]
WORKERS = ["k0s-worker-1", "k0s-worker-2"]


def rendered_config(rec, step: str) -> dict:
    create = rec.named(step).inputs["create"]
    return yaml.safe_load(base64.b64decode(create.split("K0S_CONFIG_B64=")[1].split()[0]))


def test_config_for_cilium_and_identical_on_every_controller(preview):
    first = "k0s-dev-1" if preview.stack == "dev" else "k0s-cp-1"
    cfg = rendered_config(preview, first)
    net = cfg["spec"]["network"]
    assert net["provider"] == "custom" and net["kubeProxy"] == {"disabled": True}
    assert (net["podCIDR"], net["serviceCIDR"]) == ("10.244.0.0/16", "10.96.0.0/12")
    assert cfg["spec"]["telemetry"] == {"enabled": False}
    domain = {"dev": "dev.k8s.example.org", "prod": "k8s.example.org"}[preview.stack]
    assert f"api.{domain}" in cfg["spec"]["api"]["sans"]
    if preview.stack == "prod":
        assert net["nodeLocalLoadBalancing"] == {"enabled": True, "type": "EnvoyProxy"}
        assert {rendered_config(preview, c) == cfg for c in CONTROLLERS} == {True}
        assert set(cfg["spec"]["api"]["sans"]) >= {"198.51.100.11", "198.51.100.12", "198.51.100.13"}
    else:
        assert "nodeLocalLoadBalancing" not in net


def test_external_api_address_replaces_node_local_load_balancing():
    spec = rendered_config(run_with(stack="prod", k0s={"apiAddress": "198.51.100.10"}), "k0s-cp-1")["spec"]
    assert spec["api"]["externalAddress"] == "198.51.100.10"
    assert "nodeLocalLoadBalancing" not in spec["network"]


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up"])
def test_controllers_join_one_at_a_time(preview):
    preview = run_stack("prod", preview)  # three controllers
    steps = {name: preview.named(name) for name in CONTROLLERS + WORKERS}
    assert steps["k0s-cp-1"].urn in steps["k0s-cp-2"].dependencies
    assert steps["k0s-cp-2"].urn in steps["k0s-cp-3"].dependencies
    assert not preview.depends_transitively(steps["k0s-cp-2"].urn, steps["k0s-cp-3"].urn)


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up"])
def test_workers_join_in_parallel_after_the_control_plane(preview):
    preview = run_stack("prod", preview)  # two workers after three controllers
    last = preview.named("k0s-cp-3").urn
    for worker in WORKERS:
        step = preview.named(worker)
        assert last in step.dependencies
        for other in WORKERS:
            if other != worker:
                assert not preview.depends_transitively(step.urn, preview.named(other).urn)


def test_each_node_step_waits_for_its_own_host_phases(preview):
    name = "dev-1" if preview.stack == "dev" else "worker-1"
    step = preview.named(f"k0s-{name}")
    assert preview.named(f"node-{name}-stage-k0s").urn in step.dependencies
    assert preview.named(f"node-{name}-trust-ca").urn in step.dependencies


def test_tokens_and_kubeconfig_are_secret(preview):
    joiners = CONTROLLERS[1:] + WORKERS if preview.stack == "prod" else []
    for name in ["k0s-kubeconfig"] + [f"k0s-{n.removeprefix('k0s-')}-token" for n in joiners]:
        step = preview.named(name)
        assert {"stdout", "stderr"} <= set(step.additional_secret_outputs)
        assert step.inputs["logging"] == "none" and step.inputs["addPreviousOutputInEnv"] is False
    for joiner in joiners:
        assert preview.named(joiner).is_secret("stdin")  # carries JOIN_TOKEN
        assert preview.named(joiner + "-ready").is_secret("stdin")  # invalidates it
    assert not first_controller(preview).is_secret("stdin")


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up"])
def test_each_node_joins_with_a_token_of_its_own(preview):
    """As k0sctl: one token per joining node, minted just for it, invalidated once it is Ready."""
    rec = run_stack("prod", preview)
    tokens = {r.name for r in rec.of_type(COMMAND) if r.name.endswith("-token")}
    assert tokens == {f"{n}-token" for n in CONTROLLERS[1:] + WORKERS}
    for joiner in CONTROLLERS[1:] + WORKERS:
        own = rec.named(f"{joiner}-token").urn
        for step in (joiner, f"{joiner}-ready"):
            assert rec.named(step).property_dependencies["stdin"] == [own], step
        assert env_of(rec, joiner)["TOKEN_URN"] == own  # named if the token expires before a retry
        role = "controller" if joiner in CONTROLLERS else "worker"
        assert f"TOKEN_ROLE={role}" in str(rec.named(f"{joiner}-token").inputs["create"])


def test_kubeconfig_feeds_one_secret_provider_and_the_export(up):
    (provider,) = up.of_type("pulumi:providers:kubernetes")
    assert provider.is_secret("kubeconfig")
    assert up.named("k0s-kubeconfig").urn in provider.property_dependencies["kubeconfig"]
    assert "kubeconfig" in up.secret_outputs
    server = {"dev": "https://192.0.2.10:6443", "prod": "https://198.51.100.11:6443"}[up.stack]
    assert up.outputs["apiEndpoint"] == server
    (cluster,) = yaml.safe_load(provider.inputs["kubeconfig"])["clusters"]
    assert cluster["cluster"]["server"] == server
    # prod reaches the API through the bastion's SOCKS tunnel (config k0s.apiProxy).
    proxy = {"dev": None, "prod": "socks5://127.0.0.1:1080"}[up.stack]
    assert cluster["cluster"].get("proxy-url") == proxy
    assert yaml.safe_load(up.outputs["kubeconfig"]) == yaml.safe_load(provider.inputs["kubeconfig"])
    # Provider settings travel as strings.
    assert provider.inputs["deleteUnreachable"] == ("true" if up.stack == "dev" else "false")


def test_endpoint_and_proxy_changes_rerun_nothing_on_hosts_and_keep_the_cluster_identity():
    """The host step prints k0s's kubeconfig as is; the program aims it. pulumi-kubernetes replaces
    every object when the provider's active cluster changes, unless clusterIdentifier is unchanged."""
    before = run_stack("prod", preview=False)
    after = run_with(stack="prod", preview=False, k0s={"apiAddress": "198.51.100.10"})
    for rec in (before, after):
        assert "API_SERVER" not in rec.named("k0s-kubeconfig").inputs["create"]
    assert before.named("k0s-kubeconfig").inputs == after.named("k0s-kubeconfig").inputs
    ids = {rec.of_type("pulumi:providers:kubernetes")[0].inputs["clusterIdentifier"] for rec in (before, after)}
    assert ids == {"cluster-bootstrap/prod"}
    server = yaml.safe_load(after.of_type("pulumi:providers:kubernetes")[0].inputs["kubeconfig"])
    assert server["clusters"][0]["cluster"]["server"] == "https://198.51.100.10:6443"


def test_point_kubeconfig_sets_server_and_proxy_and_keeps_credentials():
    raw = ("apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://10.0.0.5:6443\n"
           "    certificate-authority-data: Q0E=\n    proxy-url: http://old:3128\nusers:\n- name: admin\n"
           "  user: {client-key-data: S0VZ}\n")
    aimed = yaml.safe_load(point_kubeconfig(raw, "https://[2001:db8::1]:6443", None))
    assert aimed["clusters"][0]["cluster"] == {"server": "https://[2001:db8::1]:6443",
                                               "certificate-authority-data": "Q0E="}
    assert aimed["users"] == [{"name": "admin", "user": {"client-key-data": "S0VZ"}}]
    proxied = yaml.safe_load(point_kubeconfig(raw, "https://api:6443", "socks5://127.0.0.1:1080"))
    assert proxied["clusters"][0]["cluster"]["proxy-url"] == "socks5://127.0.0.1:1080"


def test_a_leaving_node_is_drained_and_deleted_before_its_reset(rec):
    """Pulumi deletes a resource before what it depends on: `ready` (drain, delete the Node) goes
    before the join step, and that before the reset step (etcd leave, k0s reset) it follows; the
    first controller has no remove."""
    for node in raw_config(rec.stack)["nodes"]:
        join, ready = rec.named(f"k0s-{node['name']}"), rec.named(f"k0s-{node['name']}-ready")
        reset = rec.named(f"k0s-{node['name']}-reset")
        assert rec.depends_transitively(ready.urn, join.urn) and reset.urn in join.dependencies
        assert "ROLE=" + node["role"] in reset.inputs["delete"] and "CB_SCRIPT=k0s-reset.sh" in reset.inputs["delete"]
        assert not join.inputs.get("delete"), "a join that fails is not in state: its delete would never run"
        removes = node["role"] != "controller" and join.urn != first_controller(rec).urn
        assert ("ACTION=remove" in (ready.inputs.get("delete") or "")) == removes, ready.name


def test_version_bump_updates_every_node_in_place():
    old = run_stack("prod", preview=True)
    bumped = next_patch(VERSIONS["k0s"])
    new = run_with(stack="prod", versions={**raw_config("prod")["versions"], "k0s": bumped})
    for step in CONTROLLERS + WORKERS + [f"{w}-rollout" for w in WORKERS]:
        assert f"K0S_VERSION={bumped}" in new.named(step).inputs["create"]
        assert old.named(step).urn == new.named(step).urn  # same resource: an update, not a replace
    for worker in WORKERS:  # the restart's identity moves with the version: drained, restarted, uncordoned
        for step in ("drain", "rollout", "ready"):
            assert env_of(old, f"{worker}-{step}")["ROLLOUT"] != env_of(new, f"{worker}-{step}")["ROLLOUT"]


def test_rollout_identity_follows_what_a_running_worker_must_restart_for():
    base = K0sClusterArgs(version="v1.34.2+k0s.0", members=[], api_endpoint="", api_sans=[], pod_cidr="",
                          service_cidr="", cluster_identifier="")
    worker = Member("w", "worker", None, None)
    ident = rollout_id(base, worker)
    assert rollout_id(replace(base, version="v1.34.3+k0s.0"), worker) != ident
    assert rollout_id(replace(base, node_local_load_balancing=True), worker) != ident
    assert rollout_id(base, replace(worker, private_address="10.0.0.5")) != ident
    assert rollout_id(base, replace(worker, labels={"tier": "1"})) == ident  # labels change through the API
    assert rollout_id(replace(base, kubeconfig_renewal="2030-01"), worker) == ident


def test_turning_node_local_load_balancing_off_restarts_workers_not_by_version():
    """An apiAddress replaces NLLB: running workers must restart to stop using it."""
    before = run_stack("prod", preview=False)
    after = run_with(stack="prod", preview=False, k0s={**raw_config("prod")["k0s"], "apiAddress": "198.51.100.10"})
    for worker in WORKERS:
        assert env_of(before, f"{worker}-rollout")["K0S_VERSION"] == env_of(after, f"{worker}-rollout")["K0S_VERSION"]
        assert env_of(before, f"{worker}-rollout")["ROLLOUT"] != env_of(after, f"{worker}-rollout")["ROLLOUT"]


@pytest.mark.parametrize("count,percent,sizes", [
    (5, 10, [1, 1, 1, 1, 1]),  # floor(0.5) → at least one
    (20, 10, [2] * 10),
    (7, 50, [3, 3, 1]),
    (4, 100, [4]),
])
def test_restart_batches_follow_k0sctls_rule(count, percent, sizes):
    workers = [Member(f"w{i}", "worker", None, None) for i in range(count)]
    assert [len(b) for b in batches(workers, percent)] == sizes


def test_restarts_go_batch_by_batch_and_default_to_ten_percent():
    from tooling import bench

    rec = offline.run("dev", preview=True, config=bench.scaled_config(20, base=fixture_config("dev"))[0])
    groups = batches([f"worker-{i + 1}" for i in range(20)], 10)  # the default: 2 at a time
    assert [len(g) for g in groups] == [2] * 10
    for previous, current in zip(groups, groups[1:]):
        for node in current:
            drain = rec.named(f"k0s-{node}-drain")
            assert {rec.named(f"k0s-{p}-ready").urn for p in previous} <= set(drain.dependencies)
            for other in current:  # a batch restarts together
                assert not rec.depends_transitively(drain.urn, rec.named(f"k0s-{other}-ready").urn)
    for node in groups[0]:
        assert rec.depends_transitively(rec.named(f"k0s-{node}-ready").urn, rec.named(f"k0s-{node}-rollout").urn)


def test_a_private_address_carries_etcd_the_api_and_the_kubelet():
    config = raw_config("prod")
    nodes = [{**n, "privateAddress": f"10.0.0.{i + 1}"} for i, n in enumerate(config["nodes"])]
    rec = run_with(stack="prod", preview=False, nodes=nodes)
    for i, name in enumerate(CONTROLLERS):
        spec = rendered_config(rec, name)["spec"]
        assert spec["api"]["address"] == spec["storage"]["etcd"]["peerAddress"] == f"10.0.0.{i + 1}"
        assert f"10.0.0.{i + 1}" in spec["api"]["sans"]
        assert "KUBELET_NODE_IP" not in env_of(rec, name)  # controllers run no kubelet
    for i, name in enumerate(WORKERS, start=len(CONTROLLERS)):
        assert env_of(rec, name)["KUBELET_NODE_IP"] == env_of(rec, f"{name}-rollout")["KUBELET_NODE_IP"] == \
            f"10.0.0.{i + 1}"


def test_builds_from_its_args_alone():
    from components.k0s import K0sCluster, K0sClusterArgs, Member
    from tests import standalone

    def program():
        ready = standalone.marker()
        K0sCluster("cp", K0sClusterArgs(
            version=VERSIONS["k0s"],
            members=[Member("w1", "worker", standalone.host("192.0.2.61"), ready),
                     Member("c1", "controller", standalone.host("192.0.2.60"), ready)],
            api_endpoint="https://192.0.2.60:6443", api_sans=["192.0.2.60"], pod_cidr="10.42.0.0/16",
            service_cidr="10.43.0.0/16", cluster_identifier="elsewhere/one"))

    rec = standalone.build(program)
    # the controller creates the cluster even when listed second; the worker joins after it
    assert rec.depends_transitively(rec.named("cp-w1").urn, rec.named("cp-c1").urn)
    assert "K0S_CONFIG_B64" in rec.named("cp-c1").inputs["create"]
    (provider,) = rec.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == "elsewhere/one"

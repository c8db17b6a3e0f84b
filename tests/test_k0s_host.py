"""k0s's host scripts (install, join, tokens, kubeconfig, reset) run over SSH against the k0s
stand-in, which models k0s's start-up: `start` returns before the service reads its token file,
the service restarts until it has joined, tokens expire, and status/readyz need a joined node."""

from __future__ import annotations

import base64
import gzip
import time
from pathlib import Path

import pytest
import yaml

from tests.fleet import CONFIG, JOURNAL, NEXT, VERSION, Fleet
from tests.hostrun import MUTATING, STANDINS, log_lines, rendered, rendered_env, unknown_kubectl_flags
from tests.pins import BETWEEN, PREVIOUS


def token_of(envelope: str) -> str:
    return envelope.splitlines()[-1]


def decoded(token: str) -> dict:
    """The kubeconfig inside a join token (or the token step's output)."""
    return yaml.safe_load(gzip.decompress(base64.b64decode(token_of(token))))


def test_first_controller_installs_once_and_serves(fleet):
    root = fleet.host("cp-1")
    _, calls = fleet.twice("k0s-node.sh", root, ROLE="controller+worker", K0S_CONFIG_B64=CONFIG, FIRST="true")
    installs = [c for c in calls if c.startswith("k0s install")]
    assert installs == ["k0s install controller --config /etc/k0s/k0s.yaml --enable-worker --no-taints"]
    assert "k0s start" in calls and (root / "etc/k0s/k0s.yaml").exists()
    assert not (root / "etc/k0s/join-token").exists()  # the first controller joins nothing
    assert fleet.node("cp-1")[0] == "NotReady"  # its kubelet registered; Ready comes with Cilium


def test_kubeconfig_is_a_fresh_certificate_for_the_programs_own_identity(fleet):
    root = fleet.first_controller()
    issued = [fleet.run("k0s-kubeconfig.sh", root, ADMIN_USER="cluster-bootstrap", RENEWAL=month)
              for month in ("2026-10", "2026-11")]
    assert [done.returncode for done in issued] == [0, 0], issued[0].stderr
    configs = [yaml.safe_load(done.stdout) for done in issued]
    assert configs[0]["users"][0]["name"] == "cluster-bootstrap"
    assert configs[0]["users"] != configs[1]["users"]  # each run signs a new client certificate
    assert log_lines(root).count(
        "k0s kubeconfig create cluster-bootstrap --groups system:masters --certificate-expires-after 8760h") == 2


def test_worker_joins_and_keeps_only_a_spent_token(fleet):
    controller = fleet.first_controller()
    token = fleet.token(controller, "worker")
    assert decoded(token)["users"][0]["name"] == "kubelet-bootstrap"
    worker = fleet.host("worker-1")
    _, calls = fleet.twice("k0s-node.sh", worker, {"JOIN_TOKEN": token}, ROLE="worker", KUBELET_NODE_IP="10.0.0.21")
    assert [c for c in calls if c.startswith("k0s install")] == [
        "k0s install worker --kubelet-extra-args=--node-ip=10.0.0.21 --token-file /etc/k0s/join-token"]
    assert (worker / "var/lib/k0s/kubelet.conf").exists()
    # The file stays (k0s v1.35.1 parses it on every start) but no longer holds the credential.
    spent = (worker / "etc/k0s/join-token").read_text().strip()
    assert spent != token_of(token) and token_of(token) not in spent
    kubeconfig = decoded(spent)
    assert kubeconfig["users"][0]["name"] == kubeconfig["contexts"][0]["context"]["user"] == "kubelet-bootstrap"
    assert oct((worker / "etc/k0s/join-token").stat().st_mode & 0o777) == "0o600"


def test_controllers_join_with_a_controller_token(fleet):
    controller = fleet.first_controller()
    token = fleet.token(controller, "controller")
    second = fleet.host("cp-2")
    fleet.twice("k0s-node.sh", second, {"JOIN_TOKEN": token}, ROLE="controller", K0S_CONFIG_B64=CONFIG)
    assert (second / "var/lib/k0s/etcd/member/snap/db").exists()
    assert decoded((second / "etc/k0s/join-token").read_text())["users"][0]["name"] == "controller-bootstrap"


def test_a_worker_token_cannot_join_a_controller(fleet):
    controller = fleet.first_controller()
    second = fleet.host("cp-2")
    done = fleet.run("k0s-node.sh", second, {"JOIN_TOKEN": fleet.token(controller, "worker")},
                     ROLE="controller", K0S_CONFIG_B64=CONFIG, WAIT_SECONDS="4")
    assert done.returncode != 0 and "has not joined" in done.stderr
    assert "wrong token type" in (second / JOURNAL).read_text()


def test_standin_fails_a_join_whose_token_file_is_removed_after_start(fleet):
    """What k0s does, and the old script relied on not happening: the file is read after `start`."""
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    binary = worker / "usr/local/bin/k0s"
    binary.parent.mkdir(parents=True)
    binary.write_bytes((STANDINS / "fake-k0s").read_bytes())
    binary.chmod(0o755)
    (worker / "etc/k0s").mkdir(parents=True)
    (worker / "etc/k0s/join-token").write_text(token_of(fleet.token(controller, "worker")))
    assert fleet.k0s(worker, "install", "worker", "--token-file", "/etc/k0s/join-token").returncode == 0
    assert fleet.k0s(worker, "start").returncode == 0  # returns at once
    assert fleet.k0s(worker, "status").returncode != 0
    (worker / "etc/k0s/join-token").unlink()
    time.sleep(3)
    assert fleet.k0s(worker, "status").returncode != 0
    assert "not found" in (worker / JOURNAL).read_text()
    assert not (worker / "var/lib/k0s/kubelet.conf").exists()


def test_an_expired_token_names_the_step_to_replace(fleet):
    """A failed join retried after its token expired: Pulumi kept that token; say how to mint anew."""
    controller = fleet.first_controller()
    stale = fleet.token(controller, "worker", expiry_seconds=1)
    time.sleep(2)
    worker = fleet.host("worker-1")
    urn = "urn:pulumi:prod::cluster-bootstrap::cluster-bootstrap:k0s:K0sCluster$command:remote:Command::k0s-worker-1-token"
    failed = fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": stale}, ROLE="worker", TOKEN_URN=urn)
    assert failed.returncode != 0
    assert "this node's join token expired unused at" in failed.stderr
    assert f"mint a new one with: pulumi up --replace '{urn}'" in failed.stderr
    assert not (worker / "etc/k0s/join-token").exists() and not log_lines(worker)


def test_a_token_k0s_refuses_fails_clearly_and_a_fresh_one_recovers(fleet):
    controller = fleet.first_controller()
    refused = fleet.token(controller, "worker")
    fleet.k0s(controller, "token", "invalidate", decoded(refused)["users"][0]["user"]["token"].split(".")[0])
    worker = fleet.host("worker-1")
    failed = fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": refused}, ROLE="worker", WAIT_SECONDS="4")
    assert failed.returncode != 0
    assert "k0sworker has not joined and served within 4s; see: journalctl -u k0sworker" in failed.stderr
    assert "invalidated token" in (worker / JOURNAL).read_text()
    # A re-run with a fresh token rewrites the file and restarts the unit installed before.
    recovered = fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": fleet.token(controller, "worker")}, ROLE="worker")
    assert recovered.returncode == 0, recovered.stderr
    calls = log_lines(worker)
    assert calls.count("k0s install worker --token-file /etc/k0s/join-token") == 1
    assert (worker / "var/lib/k0s/kubelet.conf").exists()


def test_a_joined_worker_restarts_on_k0s_that_parses_the_token_every_start(fleet):
    """k0s v1.35.1 (k0s #7202): the spent token parses, so the restart works; no file would not."""
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    joined = fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": fleet.token(controller, "worker")}, ROLE="worker")
    assert joined.returncode == 0, joined.stderr
    v1351 = {"FAKE_K0S_PARSE_TOKEN": "always"}
    for args in (("stop",), ("start",)):
        assert fleet.k0s(worker, *args, **v1351).returncode == 0
    time.sleep(2)
    assert fleet.k0s(worker, "status", **v1351).returncode == 0
    fleet.k0s(worker, "stop")
    (worker / "etc/k0s/join-token").unlink()
    fleet.k0s(worker, "start", **v1351)
    time.sleep(2)
    assert fleet.k0s(worker, "status", **v1351).returncode != 0


def test_config_change_restarts_the_controller(fleet):
    root = fleet.first_controller()
    calls = len(log_lines(root))
    changed = base64.b64encode(b"spec: {telemetry: {enabled: false}}\n").decode()
    assert fleet.run("k0s-node.sh", root, ROLE="controller", K0S_CONFIG_B64=changed, FIRST="true").returncode == 0
    assert [c for c in log_lines(root)[calls:] if c.startswith(MUTATING)] == ["k0s stop", "k0s start"]


def test_worker_without_token_fails_clearly(fleet):
    done = fleet.run("k0s-node.sh", fleet.host("worker-1"), ROLE="worker")
    assert done.returncode != 0 and "needs JOIN_TOKEN" in done.stderr


def test_reset_stops_first_and_is_idempotent(fleet):
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    assert fleet.run("k0s-node.sh", worker, {"JOIN_TOKEN": fleet.token(controller, "worker")},
                     ROLE="worker").returncode == 0
    _, calls = fleet.twice("k0s-reset.sh", worker, REBOOT="true")
    assert calls.index("k0s stop") < calls.index("k0s reset")
    assert any(c.startswith("shutdown -r") for c in calls)
    assert not (worker / "usr/local/bin/k0s").exists() and not (worker / "var/lib/k0s").exists()
    assert not list((worker / "etc/systemd/system").glob("k0s*"))


# Day 2: tokens, upgrades, downgrades, labels, removal. The node steps run with the environment
# the program renders for prod's worker-1 (tests.hostrun.rendered_env), before and after a bump.

def prod(version: str = VERSION):
    from tests.conftest import raw_config, run_stack, run_with

    if version == VERSION:
        return run_stack("prod", preview=False)
    return run_with(stack="prod", preview=False, versions={**raw_config("prod")["versions"], "k0s": version})


def worker_day(fleet: Fleet, controller: Path, worker: Path, rec, token: str = "") -> None:
    """One `pulumi up` of worker-1's steps as the program orders them: join, drain, rollout, ready."""
    secret = {"JOIN_TOKEN": token} if token else None
    for step, root in worker_steps(controller, worker):
        script, env = rendered(rec, step)
        done = fleet.run(script, root, secret if script != "k0s-rollout.sh" and "drain" not in step else None, **env)
        assert done.returncode == 0, (step, done.stderr)


def worker_steps(controller: Path, worker: Path) -> list[tuple[str, Path]]:
    """worker-1's steps in the program's order, and the host each runs on."""
    return [("k0s-worker-1", worker), ("k0s-worker-1-drain", controller),
            ("k0s-worker-1-rollout", worker), ("k0s-worker-1-ready", controller)]


def test_a_join_token_is_invalidated_once_its_node_is_ready(fleet):
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    token = fleet.token(controller, "worker")
    token_id = decoded(token)["users"][0]["user"]["token"].split(".")[0]
    worker_day(fleet, controller, worker, prod(), token)
    assert token_id not in fleet.k0s(controller, "token", "list").stdout
    assert "k0s token invalidate " + token_id in log_lines(controller)
    # the same token no longer joins anything
    thief = fleet.host("worker-9")
    stolen = fleet.run("k0s-node.sh", thief, {"JOIN_TOKEN": token}, ROLE="worker", WAIT_SECONDS="3")
    assert stolen.returncode != 0 and "invalidated token" in (thief / JOURNAL).read_text()


def test_labels_follow_the_config_and_leave_others_alone(fleet):
    controller = fleet.first_controller()
    fleet.join(controller, "worker-1")
    ready = {**rendered_env(prod(), "k0s-worker-1-ready"), "LABELS": "node.kubernetes.io/pool=general,tier=1"}
    fleet.twice("k8s-node.sh", controller, **ready)
    node = fleet.node("worker-1")
    assert {"label node.kubernetes.io/pool=general", "label tier=1"} <= set(node)
    fleet.k0s(controller, "kubectl", "label", "node", "worker-1", "team=ops")  # someone else's label
    fleet.twice("k8s-node.sh", controller, **{**ready, "LABELS": "node.kubernetes.io/pool=gpu"})
    node = fleet.node("worker-1")
    assert "label node.kubernetes.io/pool=gpu" in node and "label team=ops" in node
    assert not [line for line in node if line.startswith(("label tier=", "label node.kubernetes.io/pool=general"))]


def test_worker_upgrade_is_drained_restarted_then_uncordoned(fleet):
    before, after = prod(), prod(NEXT)
    controller = fleet.first_controller(versions=(VERSION, NEXT))
    worker = fleet.host("worker-1", (VERSION, NEXT))
    worker_day(fleet, controller, worker, before, fleet.token(controller, "worker"))
    fleet.set_node_ready("worker-1")
    assert f"annotation cluster-bootstrap/rollout={rendered_env(before, 'k0s-worker-1-ready')['ROLLOUT']}" \
        in fleet.node("worker-1")
    mark = len(log_lines(worker)), len(log_lines(controller))

    # the join step updates first (its K0S_VERSION changed) and leaves the running worker alone
    join = fleet.run("k0s-node.sh", worker, **rendered_env(after, "k0s-worker-1"))
    assert join.returncode == 0, join.stderr
    assert fleet.k0s(worker, "version").stdout.strip() == VERSION
    drain = fleet.run("k8s-node.sh", controller, **rendered_env(after, "k0s-worker-1-drain"))
    assert drain.returncode == 0, drain.stderr
    assert {"unschedulable", "drained"} <= set(fleet.node("worker-1"))
    restarted = fleet.run("k0s-rollout.sh", worker, **rendered_env(after, "k0s-worker-1-rollout"))
    assert restarted.returncode == 0, restarted.stderr
    assert fleet.k0s(worker, "version").stdout.strip() == NEXT
    _, _ = fleet.twice("k8s-node.sh", controller, **rendered_env(after, "k0s-worker-1-ready"))
    node = fleet.node("worker-1")
    assert "unschedulable" not in node and not [n for n in node if "drained-for" in n]
    assert f"annotation cluster-bootstrap/rollout={rendered_env(after, 'k0s-worker-1-ready')['ROLLOUT']}" in node

    worker_calls = [c for c in log_lines(worker)[mark[0]:] if c.startswith(MUTATING)]
    controller_calls = [c for c in log_lines(controller)[mark[1]:] if c.startswith(MUTATING)]
    assert worker_calls == ["k0s stop", "k0s start"]  # once, by k0s-rollout.sh
    assert controller_calls[:2] == ["k0s kubectl cordon worker-1", "k0s kubectl drain worker-1 --force "
                                    "--grace-period=120 --timeout=300s --delete-emptydir-data --ignore-daemonsets"]
    assert "k0s kubectl uncordon worker-1" in controller_calls
    assert not unknown_kubectl_flags(log_lines(controller))
    # a second `pulumi up` changes nothing anywhere
    for step, root in worker_steps(controller, worker):
        script, env = rendered(after, step)
        fleet.twice(script, root, **env)


def test_a_drain_a_disruption_budget_blocks_stops_the_rollout(fleet):
    controller = fleet.first_controller(versions=(VERSION, NEXT))
    worker = fleet.host("worker-1", (VERSION, NEXT))
    worker_day(fleet, controller, worker, prod(), fleet.token(controller, "worker"))
    with (fleet.cluster / "objects/node/_/worker-1").open("a") as node:
        node.write("pdb-blocks-drain\n")
    done = fleet.run("k8s-node.sh", controller, **rendered_env(prod(NEXT), "k0s-worker-1-drain"))
    assert done.returncode != 0
    assert "could not drain worker-1; its restart is not started" in done.stderr
    assert "disruption budget" in done.stderr  # kubectl's own reason, passed through


def test_a_restarted_worker_that_never_gets_ready_stays_cordoned(fleet):
    after = prod(NEXT)
    controller = fleet.first_controller(versions=(VERSION, NEXT))
    worker = fleet.host("worker-1", (VERSION, NEXT))
    worker_day(fleet, controller, worker, prod(), fleet.token(controller, "worker"))
    fleet.set_node_ready("worker-1")
    for step, root in (("k0s-worker-1-drain", controller), ("k0s-worker-1-rollout", worker)):
        script = "k8s-node.sh" if root == controller else "k0s-rollout.sh"
        assert fleet.run(script, root, **rendered_env(after, step)).returncode == 0
    fleet.set_node_ready("worker-1", False)
    done = fleet.run("k8s-node.sh", controller, **{**rendered_env(after, "k0s-worker-1-ready"), "WAIT_SECONDS": "3"})
    assert done.returncode != 0
    assert "node worker-1 not Ready within 3s after its restart; it stays cordoned" in done.stderr
    assert "unschedulable" in fleet.node("worker-1")


def test_downgrades_are_refused_on_controllers_and_workers(fleet):
    controller = fleet.first_controller(versions=(VERSION, NEXT))
    assert fleet.run("k0s-node.sh", controller, ROLE="controller", K0S_CONFIG_B64=CONFIG, FIRST="true",
                     K0S_VERSION=NEXT).returncode == 0
    back = fleet.run("k0s-node.sh", controller, ROLE="controller", K0S_CONFIG_B64=CONFIG, FIRST="true")
    assert back.returncode != 0
    assert f"refusing to downgrade k0s from {NEXT} to {VERSION}" in back.stderr
    assert fleet.k0s(controller, "version").stdout.strip() == NEXT
    worker = fleet.join(controller, "worker-1", versions=(VERSION, NEXT), K0S_VERSION=NEXT, ROLLOUT="new")
    back = fleet.run("k0s-rollout.sh", worker, ROLLOUT="old")
    assert back.returncode != 0 and "refusing to downgrade" in back.stderr
    assert fleet.k0s(worker, "version").stdout.strip() == NEXT


def test_the_first_controller_can_leave_and_a_member_takes_over(fleet):
    """k0sctl's leader is any running controller: so is ours. Every joined controller has the CA key."""
    first = fleet.first_controller()
    second, third = (fleet.join(first, name, role="controller") for name in ("cp-2", "cp-3"))
    # cp-1 leaves the list: cp-2 is now first (no token, FIRST=true); nothing restarts on it
    fleet.twice("k0s-node.sh", second, ROLE="controller", K0S_CONFIG_B64=CONFIG, FIRST="true",
                PEERS=fleet.address(third))
    _, calls = fleet.twice("k0s-reset.sh", first, ROLE="controller")
    assert "k0s etcd leave" in calls
    members = fleet.k0s(second, "etcd", "member-list").stdout
    assert "cp-1" not in members and "cp-2" in members and "cp-3" in members
    # the new first controller mints tokens and signs the kubeconfig
    fleet.join(second, "worker-1")
    issued = fleet.run("k0s-kubeconfig.sh", second, ADMIN_USER="cluster-bootstrap", RENEWAL="2026-11")
    assert issued.returncode == 0, issued.stderr


def test_a_fresh_node_put_first_refuses_to_create_a_second_cluster(fleet):
    running = fleet.first_controller()
    fresh = fleet.host("cp-9")
    done = fleet.run("k0s-node.sh", fresh, ROLE="controller", K0S_CONFIG_B64=CONFIG, FIRST="true",
                     PEERS=f"192.0.2.250 {fleet.address(running)}")
    assert done.returncode != 0
    assert f"a cluster already runs on {fleet.address(running)}, and this node is not a member" in done.stderr
    assert not [c for c in log_lines(fresh) if c.startswith("k0s install")]
    # with no listed controller serving, it is a fresh stack: the node creates the cluster
    fleet.k0s(running, "stop")
    created = fleet.run("k0s-node.sh", fresh, ROLE="controller", K0S_CONFIG_B64=CONFIG, FIRST="true",
                        PEERS=fleet.address(running))
    assert created.returncode == 0, created.stderr


def test_a_new_node_ip_reinstalls_the_service_and_restarts(fleet):
    root = fleet.first_controller(role="controller+worker")
    calls = len(log_lines(root))
    done = fleet.run("k0s-node.sh", root, ROLE="controller+worker", K0S_CONFIG_B64=CONFIG, FIRST="true",
                     KUBELET_NODE_IP="10.0.0.11")
    assert done.returncode == 0, done.stderr
    assert [c for c in log_lines(root)[calls:] if c.startswith(MUTATING)] == [
        "k0s install controller --config /etc/k0s/k0s.yaml --enable-worker --no-taints "
        "--kubelet-extra-args=--node-ip=10.0.0.11 --force", "k0s stop", "k0s start"]


@pytest.mark.parametrize("version,config_version,plugin", [
    (PREVIOUS["k0s"], 2, "io.containerd.grpc.v1.cri"),
    (BETWEEN["k0s"][-1], 2, "io.containerd.grpc.v1.cri"),  # 1.35 still ships containerd 1.7
    (VERSION, 3, "io.containerd.cri.v1.images"),  # k0s 1.36 ships containerd 2 (config v3)
])
def test_registry_drop_in_matches_the_containerd_k0s_ships(fleet, version, config_version, plugin):
    import tomllib

    root = fleet.host("cp-1", (version,))
    assert fleet.run("k0s-node.sh", root, ROLE="controller", K0S_CONFIG_B64=CONFIG, FIRST="true",
                     K0S_VERSION=version).returncode == 0
    drop_in = tomllib.loads((root / "etc/k0s/containerd.d/cluster-bootstrap-registries.toml").read_text())
    assert drop_in["version"] == config_version
    assert drop_in["plugins"][plugin]["registry"] == {"config_path": "/etc/k0s/containerd.d/certs.d"}


def test_removing_a_worker_drains_and_deletes_its_node_before_the_reset(fleet):
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    worker_day(fleet, controller, worker, prod(), fleet.token(controller, "worker"))
    script, env = rendered(prod(), "k0s-worker-1-ready", "delete")
    mark = len(log_lines(controller))
    _, calls = fleet.twice(script, controller, **env)
    assert [c for c in calls[mark:] if c.startswith(MUTATING)] == [
        "k0s kubectl drain worker-1 --force --grace-period=120 --timeout=300s --delete-emptydir-data "
        "--ignore-daemonsets", "k0s kubectl delete node worker-1 --ignore-not-found"]
    assert fleet.node("worker-1") == []
    script, env = rendered(prod(), "k0s-worker-1-reset", "delete")
    assert script == "k0s-reset.sh" and fleet.run(script, worker, **env).returncode == 0
    assert not (worker / "var/lib/k0s").exists()


def test_a_leaving_controller_leaves_etcd_before_it_stops(fleet):
    controller = fleet.first_controller()
    second = fleet.join(controller, "cp-2", role="controller")
    members = fleet.k0s(controller, "etcd", "member-list").stdout
    assert "cp-1" in members and "cp-2" in members
    mark = len(log_lines(second))
    _, calls = fleet.twice("k0s-reset.sh", second, ROLE="controller")
    assert [c for c in calls[mark:] if c.startswith(MUTATING)] == ["k0s etcd leave", "k0s stop", "k0s reset"]
    assert "cp-2" not in fleet.k0s(controller, "etcd", "member-list").stdout
    # the last member has no one to leave: it resets without `etcd leave`
    mark = len(log_lines(controller))
    _, calls = fleet.twice("k0s-reset.sh", controller, ROLE="controller")
    assert [c for c in calls[mark:] if c.startswith(MUTATING)] == ["k0s stop", "k0s reset"]


def test_reset_removes_what_cilium_left_on_the_host(fleet):
    controller = fleet.first_controller()
    worker = fleet.join(controller, "worker-1")
    net = worker / "etc/cni/net.d"
    net.mkdir(parents=True)
    (net / "05-cilium.conflist").write_text("{}")
    (net / "10-flannel.conflist.cilium_bak").write_text("{}")
    ip = worker / "run/fake-ip"
    ip.mkdir(parents=True)
    (ip / "links").write_text("lo\neth0\ncilium_net@cilium_host\ncilium_host@cilium_net\nlxc1a2b3@if7\nlxcbr0\n")
    (ip / "netns").write_text("cilium-health\ncni-1234\n")
    for state in ("var/lib/cilium/bpf", "sys/fs/bpf/tc/globals"):
        (worker / state).mkdir(parents=True)
    (worker / "sys/fs/bpf/tc/globals/cilium_calls_hostns").write_text("")
    _, calls = fleet.twice("k0s-reset.sh", worker, ROLE="worker")
    assert sorted(p.name for p in net.iterdir()) == ["10-flannel.conflist"]
    assert (ip / "links").read_text().split() == ["lo", "eth0", "lxcbr0"]
    assert (ip / "netns").read_text().split() == ["cni-1234"]
    assert not (worker / "var/lib/cilium").exists()
    assert not list((worker / "sys/fs/bpf/tc/globals").iterdir())


# The upgrade path from the previous release's pins: one k0s minor at a time, checked on each host
# before anything changes, with the containerd drop-in swapped while k0s is stopped.

def check(fleet: Fleet, root: Path, version: str, name: str = "cp-1"):
    return fleet.run("k0s-version-check.sh", root, K0S_VERSION=version, NODE_NAME=name)


def test_a_host_two_minors_behind_is_refused_naming_the_minor_between(fleet):
    old, step = PREVIOUS["k0s"], BETWEEN["k0s"][-1]
    root = fleet.first_controller("controller+worker", versions=(old,))
    marks = len(log_lines(root))
    refused = check(fleet, root, VERSION)
    assert refused.returncode != 0
    minor = ".".join(step.lstrip("v").split(".")[:2])
    assert f"host cp-1 runs k0s {old}" in refused.stderr and f"upgrade to v{minor}.x first" in refused.stderr
    assert not [c for c in log_lines(root)[marks:] if c.startswith(MUTATING)]  # read-only
    fleet.twice("k0s-version-check.sh", root, K0S_VERSION=step, NODE_NAME="cp-1")
    assert not [c for c in log_lines(root)[marks:] if c.startswith(MUTATING)]
    assert check(fleet, fleet.host("fresh"), VERSION, "fresh").returncode == 0  # nothing installed yet


def test_a_downgrade_is_refused_before_any_host_changes(fleet):
    root = fleet.first_controller("controller+worker")
    refused = check(fleet, root, PREVIOUS["k0s"])
    assert refused.returncode != 0 and "does not support downgrades" in refused.stderr


def test_one_minor_at_a_time_upgrades_with_the_containerd_2_drop_in(fleet):
    """1.34 → 1.35 → 1.36 on a controller+worker (k0s-node.sh) and a worker (k0s-rollout.sh): each
    step passes the check and upgrades; k0s (which restarts its containerd on any change in
    containerd.d) never meets a drop-in its containerd cannot read."""
    old, step = PREVIOUS["k0s"], BETWEEN["k0s"][-1]
    controller = fleet.first_controller("controller+worker", versions=(old, step, VERSION))
    worker = fleet.join(controller, "worker-1", versions=(old, step, VERSION), K0S_VERSION=old,
                        ROLLOUT="r0")
    for version in (step, VERSION):
        for root, name in ((controller, "cp-1"), (worker, "worker-1")):
            assert check(fleet, root, version, name).returncode == 0, version
        done = fleet.run("k0s-node.sh", controller, ROLE="controller+worker", K0S_CONFIG_B64=CONFIG,
                         FIRST="true", K0S_VERSION=version)
        assert done.returncode == 0, done.stderr
        done = fleet.run("k0s-rollout.sh", worker, K0S_VERSION=version, ROLLOUT=f"r-{version}")
        assert done.returncode == 0, done.stderr
        time.sleep(0.6)  # the stand-in's watch of containerd.d polls every 0.2 s
        for root in (controller, worker):
            assert fleet.k0s(root, "version").stdout.strip() == version
            journal = root / JOURNAL
            assert "containerd" not in (journal.read_text() if journal.exists() else ""), journal.read_text()
    import tomllib
    for root in (controller, worker):
        drop_in = tomllib.loads((root / "etc/k0s/containerd.d/cluster-bootstrap-registries.toml").read_text())
        assert drop_in["version"] == 3


def test_standin_restarts_containerd_on_a_drop_in_written_while_it_runs(fleet):
    """The stand-in's side of the test above: a version 3 drop-in written under a running 1.35
    (the old order: write, then restart) is loaded by its containerd 1.7 at once, and fails."""
    root = fleet.first_controller("controller+worker", versions=(BETWEEN["k0s"][-1],))
    (root / "etc/k0s/containerd.d/cluster-bootstrap-registries.toml").write_text(
        'version = 3\n\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/x"\n')
    time.sleep(1)
    assert "containerd restarted on a drop-in change and failed" in (root / JOURNAL).read_text()


def test_staged_binaries_are_pruned_to_the_running_and_the_new(fleet):
    old, step = PREVIOUS["k0s"], BETWEEN["k0s"][-1]
    root = fleet.first_controller("controller+worker", versions=(old, BETWEEN["k0s"][0], step))
    # runs `old`; stage-k0s.sh stages VERSION (its download is the stand-in, checked by sha256)
    env = {"K0S_VERSION": VERSION, "K0S_URL": "https://example.invalid/{version}/k0s-{version}-{arch}"}
    done = fleet.run("stage-k0s.sh", root, **env)
    assert done.returncode == 0, done.stderr
    staged = sorted(p.name for p in (root / "var/lib/cluster-bootstrap/bin").iterdir())
    assert staged == sorted([f"k0s-{old}", f"k0s-{VERSION}", f"k0s-{VERSION}.sha256"])
    done = fleet.run("k0s-reset.sh", root, ROLE="controller+worker")
    assert done.returncode == 0, done.stderr
    assert list((root / "var/lib/cluster-bootstrap/bin").iterdir()) == []


def test_removing_a_node_whose_first_join_failed_still_resets_it(fleet):
    """pulumi-command keeps no state of a failed create (pulumi-go-provider v1.3.0 infer: no
    partial state), so the engine runs, on removal, the deletes of the node's steps that were
    created. The node's steps in the program's order: its reset step, then its join, which fails
    here after `k0s install` and `start` (a token the cluster never issued)."""
    rec = prod()
    controller = fleet.first_controller()
    worker = fleet.host("worker-1")
    node_steps = [r for r in rec.of_type("command:remote:Command")
                  if r.name in ("k0s-worker-1", "k0s-worker-1-reset")]
    node_steps.sort(key=lambda r: sum(rec.depends_transitively(r.urn, o.urn) for o in node_steps))
    in_state = []
    envelope = fleet.token(controller, "worker")
    bad_token = envelope.replace(envelope.splitlines()[-1], decoded_token_of_other_cluster())
    for step in node_steps:
        script, env = rendered(rec, step.name)
        done = fleet.run(script, worker, {"JOIN_TOKEN": bad_token} if script == "k0s-node.sh" else None,
                         **{**env, "WAIT_SECONDS": "3"})
        if done.returncode != 0:
            break
        in_state.append(step)
    assert [s.name for s in in_state] == ["k0s-worker-1-reset"]  # the join failed ...
    assert (worker / "etc/systemd/system/k0sworker.service").exists()  # ... after installing k0s
    for step in reversed(in_state):  # the node leaves the stack
        if step.inputs.get("delete"):
            script, env = rendered(rec, step.name, "delete")
            assert fleet.run(script, worker, **env).returncode == 0
    assert not (worker / "etc/systemd/system/k0sworker.service").exists()
    assert not (worker / "usr/local/bin/k0s").exists() and not (worker / "var/lib/k0s").exists()


def decoded_token_of_other_cluster() -> str:
    """A well-formed worker token the fake cluster never issued."""
    kubeconfig = ("apiVersion: v1\nkind: Config\ncontexts:\n- name: k0s\n  context: {cluster: k0s, user: "
                  "kubelet-bootstrap}\nusers:\n- name: kubelet-bootstrap\n  user: {token: zzzzzz.zzzzzzzzzzzzzzzz}\n")
    return base64.b64encode(gzip.compress(kubeconfig.encode(), mtime=0)).decode()


def test_standin_refuses_k0s_token_beside_a_token_file_and_the_scripts_never_set_it(fleet):
    """k0s 1.35.1+ refuses two token sources at every start (cmd/internal/tokendata.go); the join
    passes the token as a file only, so the unit it installs carries no K0S_TOKEN."""
    controller = fleet.first_controller()
    worker = fleet.join(controller, "worker-1")
    unit = (worker / "etc/systemd/system/k0sworker.service").read_text()
    assert "--token-file" in unit and "K0S_TOKEN" not in unit
    fleet.k0s(worker, "stop")
    done = fleet.k0s(worker, "install", "worker", "--token-file", "/etc/k0s/join-token", "--env", "K0S_TOKEN=x",
                     "--force", "--start")
    assert done.returncode == 0, done.stderr
    time.sleep(1.5)
    assert "only pass one token source" in (worker / JOURNAL).read_text()


def test_a_joining_controller_serves_once_the_leader_promotes_it(fleet):
    """From 1.36.1 a controller joins etcd as a learner; its /readyz, which k0s-node.sh waits on,
    answers only once a 1.36.1+ leader promotes it."""
    controller = fleet.first_controller()
    fleet.join(controller, "cp-2", role="controller")
    assert (fleet.cluster / "etcd" / "cp-2").read_text().strip() == "voter"
    members = fleet.k0s(controller, "etcd", "member-list").stdout
    assert "cp-1" in members and "cp-2" in members


def test_a_controller_joined_under_an_older_leader_stays_a_learner(fleet):
    """Why the README says to add no controllers in the middle of an upgrade: a 1.35 leader does
    not promote learners, so the 1.36 joiner never serves and its join step fails, naming the log."""
    controller = fleet.first_controller(versions=(BETWEEN["k0s"][-1],))
    root = fleet.host("cp-2")
    token = fleet.token(controller, "controller")
    done = fleet.run("k0s-node.sh", root, {"JOIN_TOKEN": token}, ROLE="controller", K0S_CONFIG_B64=CONFIG,
                     WAIT_SECONDS="4")
    assert done.returncode != 0 and "journalctl -u k0scontroller" in done.stderr
    assert (fleet.cluster / "etcd" / "cp-2").read_text().strip() == "learner"

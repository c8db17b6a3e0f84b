"""`make plan`: the offline preview tree, counts, layer graph and graph files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tooling import plan

ROOT = Path(__file__).resolve().parent.parent


def project(tmp_path: Path, stacks=("dev", "prod")) -> Path:
    """A project directory holding Pulumi.yaml and the fixture stacks (the tests' own)."""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    for stack in stacks:
        (tmp_path / "project" / f"Pulumi.{stack}.yaml").write_text((FIXTURES / f"Pulumi.{stack}.yaml").read_text())
    return tmp_path / "project"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_prints_stages_counts_and_graph(stack, tmp_path, capsys):
    assert plan.main(["--stack", stack, "--project-dir", str(project(tmp_path)), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Stage 0 · foundation" in out and "DnsZone dns" in out
    assert "Resources by type" in out and "aws:route53/zone:Zone" in out
    assert "Layer dependencies" in out
    stage3 = out[out.index("Stage 3"):out.index("Stage 4")]
    assert "LocalPathStorage storage" in stage3 and "Cilium cilium" in stage3
    assert ("[protect]" in out) is (stack == "prod")
    dot = (tmp_path / stack / "graph.dot").read_text()
    assert dot.startswith("strict digraph {") and "cluster-bootstrap:dns:DnsZone" in dot
    mermaid = (tmp_path / stack / "layers.mmd").read_text()
    assert mermaid.startswith("flowchart TB") and "stage 0 · foundation" in mermaid
    # the fixtures pin no host keys: the plan says so, once per host, after the graph
    warnings = out[out.index("Warnings:"):]
    assert warnings.count("): no hostKey") == {"dev": 1, "prod": 5}[stack]
    assert ("ssh.bastion: no hostKey" in warnings) is (stack == "prod")


def test_plan_of_a_bad_stack_prints_the_problems_and_fails(tmp_path, capsys):
    bad = (FIXTURES / "Pulumi.dev.yaml").read_text().replace("server: staging", "server: prod")
    proj = project(tmp_path)
    (proj / "Pulumi.broken.yaml").write_text(bad)
    code = plan.main(["--stack", "broken", "--project-dir", str(proj), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "acme.server: 'prod' is not allowed; allowed: 'staging' or 'production'" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_make_plan_runs_as_a_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tooling.plan", "--project-dir", str(project(tmp_path)),
                           "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Offline plan of stack 'dev'" in done.stdout


def test_a_missing_stack_file_is_a_clean_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tooling.plan", "--stack", "staging", "--project-dir",
                           str(project(tmp_path)), "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "no stack file Pulumi.staging.yaml" in done.stderr and "make stack STACK=staging" in done.stderr
    assert "Traceback" not in done.stderr


def test_plan_output_and_graph_files_are_the_same_bytes_in_every_run(tmp_path):
    """Two runs in two processes: identical output and files (ordered by stage and name, not by the
    order registrations happen to arrive in)."""
    proj = project(tmp_path)
    runs = []
    for i in range(2):
        done = subprocess.run([sys.executable, "-m", "tooling.plan", "--stack", "prod", "--project-dir", str(proj),
                               "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        files = {p.name: p.read_bytes() for p in sorted((tmp_path / "out" / "prod").iterdir())}
        runs.append((done.stdout, files))
    assert runs[0] == runs[1]
    assert {"graph.dot", "layers.dot", "layers.mmd"} <= set(runs[0][1])


def test_the_layer_picture_groups_layers_by_stage(tmp_path):
    assert plan.main(["--stack", "prod", "--project-dir", str(project(tmp_path)), "--out", str(tmp_path)]) == 0
    dot = (tmp_path / "prod" / "layers.dot").read_text()
    assert dot.count("subgraph cluster_s") == 6 and 'label="stage 3 · network and storage"' in dot
    assert dot.count("[label=") == 18  # one box per layer: 4 + the version check and 5 nodes + 1 + 2 + 1 + 4


def test_plan_names_the_documentation_placeholders_left_in_a_stack(tmp_path, capsys):
    proj = project(tmp_path)
    assert plan.main(["--stack", "dev", "--project-dir", str(proj), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    note = out[out.index("Documentation placeholders"):]
    assert "domain 'dev.k8s.example.org' is under example.org" in note
    assert "acme.email 'ops@example.org' is at example.org" in note
    own = (FIXTURES / "Pulumi.dev.yaml").read_text().replace("dev.k8s.example.org", "k8s.lab-owner.net")
    (proj / "Pulumi.own.yaml").write_text(own.replace("ops@example.org", "ops@lab-owner.net")
                                          + "  cluster-bootstrap:flux:\n    path: clusters/dev\n")
    assert plan.main(["--stack", "own", "--project-dir", str(proj), "--out", str(tmp_path / "out")]) == 0
    assert "Documentation placeholders" not in capsys.readouterr().out


def test_the_picture_draws_the_transitive_reduction_with_readable_ids_in_config_order(tmp_path):
    from tests.conftest import run_stack
    from tooling import graph

    proj = project(tmp_path)
    text = (proj / "Pulumi.prod.yaml").read_text()
    # the workers listed the other way round: the picture follows the config, not the names
    worker_1 = text[text.index("    - name: worker-1"):text.index("    - name: worker-2")]
    text = text.replace(worker_1, "") .replace("  # The API is reached", worker_1 + "  # The API is reached", 1)
    (proj / "Pulumi.prod.yaml").write_text(text)
    assert plan.main(["--stack", "prod", "--project-dir", str(proj), "--out", str(tmp_path / "out")]) == 0
    mermaid = (tmp_path / "out" / "prod" / "layers.mmd").read_text()
    boxes = [line.split("[")[0].strip() for line in mermaid.splitlines() if '["' in line and "subgraph" not in line]
    assert boxes.index("Node_node_worker_2") < boxes.index("Node_node_worker_1")
    assert boxes.index("Node_node_cp_1") < boxes.index("Node_node_cp_2") < boxes.index("Node_node_cp_3")
    assert "K0sCluster_k0s" in boxes and not any(b[1:].isdigit() for b in boxes)  # no L0…L16
    drawn = {tuple(line.split(" --> ")) for line in (s.strip() for s in mermaid.splitlines()) if " --> " in line}
    assert ("K0sCluster_k0s", "Flux_flux") not in drawn  # implied by K0sCluster → … → Gitea → Flux

    def reach(edges, start):
        seen, todo = set(), [start]
        while todo:
            for a, b in edges:
                if a == todo[-1] and b not in seen:
                    seen.add(b)
                    todo.insert(0, b)
            todo.pop()
        return seen

    # the drawn edges keep every dependency (reachability) and none is implied by the others
    rec = run_stack("prod", preview=True)
    ids = graph._ids(graph.layers(rec))
    full = {(ids[t], ids[s]) for s, t in graph.layer_edges(rec)}
    for a, b in full:
        assert b in reach(drawn, a), (a, b)
    for edge in drawn:
        assert edge[1] not in reach(drawn - {edge}, edge[0]), edge
    dot = (tmp_path / "out" / "prod" / "layers.dot").read_text()
    assert "Node_node_cp_1 -> Node_node_cp_2 -> Node_node_cp_3 -> Node_node_worker_2 -> Node_node_worker_1" in dot


def test_bench_counts_what_plan_counts(tmp_path, capsys):
    from tests.conftest import fixture_config
    from tooling import bench

    assert plan.main(["--stack", "dev", "--project-dir", str(project(tmp_path)), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    planned = int(out.split("Resources by type (")[1].split(" ")[0])
    row = bench.measure("dev", *fixture_config("dev"))
    assert row["resources"] == planned and row["layers"] == 14


def test_the_plan_shows_the_backup_schedules_and_the_restore_steps_of_this_up(tmp_path, capsys):
    """What backs the cluster up and when, and — with k0s.restoreFrom and gitea.restoreFrom —
    the restore steps this `up` runs; none without them."""
    proj = project(tmp_path)
    assert plan.main(["--stack", "prod", "--project-dir", str(proj), "--out", str(tmp_path / "out")]) == 0
    plain = capsys.readouterr().out
    section = plain[plain.index("Backups (each kept 30 days"):].split("\n\n")[0]
    assert "gitops-backup-cronjob" in section and "cron '23 */6 * * *'" in section
    for node in ("cp-1", "cp-2", "cp-3"):
        assert re.search(rf"gitops-backup-etcd-{node} +timer on {node}: etcd, the cluster PKI and all of Gitea, "
                         r"OnCalendar '\*-\*-\* 03:00:00' UTC", section), section
    assert "worker-1" not in section and "restores etcd" not in section and "restores all" not in section
    stack = (FIXTURES / "Pulumi.prod.yaml").read_text()
    with_restores = stack.replace("cluster-bootstrap:k0s:\n", "cluster-bootstrap:k0s:\n    restoreFrom: latest\n")
    assert with_restores != stack
    (proj / "Pulumi.rebuild.yaml").write_text(
        with_restores + "  cluster-bootstrap:gitea:\n    restoreFrom: gitea/20261126T030000Z.tar.gz.age\n"
        "  cluster-bootstrap:backup:\n    etcdSchedule: '*-*-* 04:30:00'\n    retainDays: 14\n"
        "  cluster-bootstrap:sops:\n    ageKey:\n      secure: v1:c3RhbmQtaW4=\n"
        "  cluster-bootstrap:flux:\n    path: clusters/prod\n")
    assert plan.main(["--stack", "rebuild", "--project-dir", str(proj), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    section = out[out.index("Backups (each kept 14 days"):].split("\n\n")[0]
    assert "OnCalendar '*-*-* 04:30:00' UTC" in section
    assert re.search(r"k0s-cp-1-restore +restores etcd and the PKI from 'latest' before k0s-cp-1 installs k0s",
                     section), section
    assert re.search(r"gitea-restore +restores all of Gitea from 'gitea/20261126T030000Z\.tar\.gz\.age' before its "
                     "seed Job", section), section

"""`make plan`: what `pulumi preview` would create for a stack, computed offline under mocks.

Prints the resources grouped by stage and layer, counts by type and the layer dependency graph;
writes the resource graph as DOT (and PNG when Graphviz is installed) and the layers as Mermaid.
No credentials, no network. A configuration error prints its message and exits 2.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import pulumi

from stacks.config import NAMESPACE, BackupConfig, GiteaConfig, K0sConfig, decode_value, placeholders
from tooling import graph, offline, stackfile


def _tree(rec: offline.Recording, urn: str, depth: int) -> list[str]:
    """The resources under `urn` (nested layers aside), each level by name."""
    lines = []
    for reg in sorted(rec.children(urn), key=lambda r: (r.name, r.type)):
        if reg.type.startswith(graph.PROJECT_PREFIX):
            continue  # nested layers print under their own heading
        flags = "".join(
            [" [protect]" if reg.protect else "",
             f" [secret: {', '.join(sorted(reg.additional_secret_outputs))}]" if reg.additional_secret_outputs else ""]
        )
        lines.append(f"  {'  ' * depth}+ {reg.type:<44} {reg.name}{flags}")
        lines += _tree(rec, reg.urn, depth + 1)
    return lines


COMMAND = "command:remote:Command"


def backups(rec: offline.Recording, raw: dict) -> list[str]:
    """What backs the cluster up, when, and what this `up` restores (steps by name, settings from
    the stack's config: a preview does not know the steps' full command lines)."""
    backup = BackupConfig.model_validate(raw.get("backup") or {})
    k0s = K0sConfig.model_validate(raw.get("k0s") or {})
    gitea = GiteaConfig.model_validate(raw.get("gitea") or {})
    lines = []
    steps = sorted(rec.of_type(COMMAND), key=lambda r: r.name)
    for cron in sorted(rec.of_type("kubernetes:batch/v1:CronJob"), key=lambda r: r.name):
        lines.append(f"  {cron.name:<28} the GitOps repository and issued certificates, cron "
                     f"'{cron.inputs['spec']['schedule']}' ({cron.inputs['spec'].get('timeZone', 'UTC')})")
    for step in steps:
        if step.name.startswith("gitops-backup-etcd-"):
            lines.append(f"  {step.name:<28} timer on {step.name.removeprefix('gitops-backup-etcd-')}: etcd, the cluster "
                         f"PKI and all of Gitea, OnCalendar '{backup.etcd_schedule}' UTC (one controller uploads per run)")
    for step in steps:
        if step.name.startswith("k0s-") and step.name.endswith("-restore"):
            lines.append(f"  {step.name:<28} restores etcd and the PKI from '{k0s.restore_from}' before "
                         f"{step.name.removesuffix('-restore')} installs k0s (k0s.restoreFrom)")
        elif step.name == "gitea-restore":
            lines.append(f"  {step.name:<28} restores all of Gitea from '{gitea.restore_from}' before its seed "
                         "Job (gitea.restoreFrom)")
    if not lines:
        return []
    return ["", f"Backups (each kept {backup.retain_days} days: backup.retainDays) and restores on this up:", *lines]


def render(rec: offline.Recording, secret_keys: list[str] = (), order: list[str] = (),
           raw: Optional[dict] = None) -> str:
    out = [f"Offline plan of stack {rec.stack!r} — as a first `pulumi preview`: outputs unknown, "
           "no credentials, no network", ""]
    if secret_keys:
        out += ["Configured secrets (encrypted in the stack file; offline they stand in with placeholders): "
                + ", ".join(secret_keys), ""]
    layers = graph.layers(rec, order)
    current_stage = None
    for layer in layers:
        if layer.stage != current_stage:
            current_stage = layer.stage
            out.append(f"Stage {layer.stage} · {graph.STAGE_NAMES[layer.stage]}")
        out.append(f"  {layer.label}")
        out += _tree(rec, layer.registration.urn, 1)
    custom = [r for r in rec.resources.values() if r.custom]
    out += ["", f"Resources by type ({len(custom)} to create):"]
    for type_, count in sorted(Counter(r.type for r in custom).items()):
        out.append(f"  {count:>4}  {type_}")
    out += backups(rec, raw or {})
    out += ["", "Layer dependencies (layer ← what it waits for):"]
    labels = {layer.registration.urn: layer.label for layer in layers}
    edges = graph.layer_edges(rec)
    for layer in layers:
        deps = sorted(labels[t] for s, t in edges if s == layer.registration.urn)
        out.append(f"  {layer.label:<28} ← {', '.join(deps) if deps else '—'}")
    if rec.warnings:
        out += ["", "Warnings:"] + [f"  ! {w}" for w in rec.warnings]
    out += ["", "Stack outputs: " + ", ".join(
        f"{k} (secret)" if k in rec.secret_outputs else k for k in sorted(rec.outputs))]
    return "\n".join(out)


def write_graphs(rec: offline.Recording, out_dir: Path, order: list[str] = ()) -> list[Path]:
    """graph.dot: every resource (the shape `pulumi stack graph` writes); layers.dot and layers.mmd:
    the layers grouped by stage, hosts in config order, edges reduced: the picture to read
    (layers.png when Graphviz is installed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {out_dir / "graph.dot": graph.to_dot(rec), out_dir / "layers.dot": graph.to_layers_dot(rec, order),
             out_dir / "layers.mmd": graph.to_mermaid(rec, order)}
    for path, text in files.items():
        path.write_text(text)
    written = list(files)
    if shutil.which("dot"):
        png = out_dir / "layers.png"
        subprocess.run(["dot", "-Tpng", str(out_dir / "layers.dot"), "-o", str(png)], check=True)
        written.append(png)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--out", type=Path, default=Path("build"))
    parser.add_argument("--project-dir", type=Path, default=offline.ROOT,
                        help="where Pulumi.yaml and the stack files are (default: this project)")
    args = parser.parse_args(argv)
    try:
        config, secret = stackfile.read(args.stack, args.project_dir)
        rec = offline.run(args.stack, preview=True, config=config, secret_keys=secret)
    except (pulumi.RunError, stackfile.StackFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prefix = NAMESPACE + ":"
    raw = {k[len(prefix):]: decode_value(v) for k, v in config.items() if k.startswith(prefix)}
    print(render(rec, secret, graph.node_order(config), raw))
    todo = placeholders(raw)
    if todo:
        print("\nDocumentation placeholders (fine offline; `pulumi up` needs your own):\n"
              + "\n".join(f"  - {item}" for item in todo))
    written = write_graphs(rec, args.out / args.stack, graph.node_order(config))
    print("\nGraph written: " + ", ".join(str(p) for p in written))
    if not shutil.which("dot"):
        print("(install Graphviz for a PNG rendering)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

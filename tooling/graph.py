"""Views of a Recording: layers with their stages, the layer dependency graph, DOT and Mermaid.

Every view is ordered by stage and name, never by the order registrations happened to arrive in,
so the same program gives the same bytes in every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from tooling.offline import Recording, Registration

PROJECT_PREFIX = "cluster-bootstrap:"

# Stage of each layer Type (docs/design.md, "Layers and stages"). A layer may depend only on layers
# of its own stage or earlier ones; the tests hold the program to this table.
STAGES: dict[str, int] = {
    "DnsZone": 0,
    "InternalCa": 0,
    "AcmeAccount": 0,
    "BackupBucket": 0,
    "K0sVersionCheck": 1,
    "Node": 1,
    "K0sCluster": 2,
    "Cilium": 3,
    "LocalPathStorage": 3,
    "CertManager": 4,
    "SopsAgeSecret": 5,
    "Gitea": 5,
    "Flux": 5,
    "Backup": 5,
}
STAGE_NAMES = {0: "foundation", 1: "hosts", 2: "control plane", 3: "network and storage", 4: "platform", 5: "gitops"}


@dataclass(frozen=True)
class Layer:
    registration: Registration

    @property
    def kind(self) -> str:
        return self.registration.type.split(":")[-1]

    @property
    def stage(self) -> int:
        return STAGES[self.kind]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.registration.name}"


def node_order(config: dict[str, str]) -> list[str]:
    """The layer names of the hosts (`node-<name>`) in the order the stack's `nodes` lists them."""
    import json

    try:
        nodes = json.loads(config.get("cluster-bootstrap:nodes", "[]"))
    except ValueError:
        return []
    return [f"node-{n['name']}" for n in nodes if isinstance(n, dict) and isinstance(n.get("name"), str)]


def _natural(name: str) -> tuple:
    """'node-cp-10' after 'node-cp-9'."""
    import re

    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def layers(rec: Recording, order: tuple[str, ...] | list[str] = ()) -> list[Layer]:
    """Every component of this project, by stage; within a stage a layer comes after those it waits
    for (by its depth in the layer graph), then by Type, then in `order` (the hosts as the config
    lists them), then by name (digits as numbers)."""
    found = [Layer(r) for r in rec.resources.values() if r.type.startswith(PROJECT_PREFIX)]
    waits_for: dict[str, set[str]] = {}
    for source, target in layer_edges(rec):
        waits_for.setdefault(source, set()).add(target)
    depth: dict[str, int] = {}

    def depth_of(urn: str, seen: frozenset = frozenset()) -> int:
        if urn not in depth:  # `seen` stops a cycle, which tests/test_stages.py reports
            depth[urn] = 1 + max((depth_of(t, seen | {urn}) for t in waits_for.get(urn, ()) if t not in seen),
                                 default=-1)
        return depth[urn]

    position = {name: i for i, name in enumerate(order)}
    return sorted(found, key=lambda layer: (layer.stage, depth_of(layer.registration.urn), layer.kind,
                                            position.get(layer.registration.name, len(position)),
                                            _natural(layer.registration.name)))


def layer_of(rec: Recording, urn: str) -> str | None:
    """The URN of the innermost layer that holds `urn` (itself included)."""
    for candidate in [urn] + rec.ancestors(urn):
        if candidate in rec.resources and rec.resources[candidate].type.startswith(PROJECT_PREFIX):
            return candidate
    return None


def layer_edges(rec: Recording) -> set[tuple[str, str]]:
    """(dependent layer URN, dependency layer URN) for every resource edge that crosses layers."""
    edges = set()
    for reg in rec.resources.values():
        source = layer_of(rec, reg.urn)
        for dep in rec.all_dependencies(reg.urn):
            target = layer_of(rec, dep)
            if source and target and source != target and target not in rec.ancestors(source):
                edges.add((source, target))
    return edges


def reduced_edges(rec: Recording) -> set[tuple[str, str]]:
    """The layer edges without those implied by others (the transitive reduction): what a picture
    draws. K0sCluster → Flux goes when Flux already waits for Gitea, which waits for K0sCluster."""
    edges = layer_edges(rec)
    waits_for: dict[str, set[str]] = {}
    for source, target in edges:
        waits_for.setdefault(source, set()).add(target)

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(waits_for.get(start, ()))
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += waits_for.get(current, ())
        return seen

    return {(s, t) for s, t in edges
            if not any(t in reachable(middle) for middle in waits_for[s] if middle != t)}


def _ids(ordered: list[Layer]) -> dict[str, str]:
    """Readable node ids for DOT and Mermaid: the layer's Type and name ('Node_node_cp_1')."""
    import re

    return {layer.registration.urn: re.sub(r"[^A-Za-z0-9_]", "_", f"{layer.kind}_{layer.registration.name}")
            for layer in ordered}


def to_dot(rec: Recording) -> str:
    """The resource graph in the shape `pulumi stack graph` writes: dependency and parent edges."""
    urns = sorted(rec.resources)
    ids = {urn: f"Resource{i}" for i, urn in enumerate(urns)}
    lines = ["strict digraph {"]
    lines += [f'    {ids[urn]} [label="{urn}"];' for urn in urns]
    for urn in urns:
        for dep in sorted(rec.all_dependencies(urn)):
            if dep in ids:
                lines.append(f'    {ids[urn]} -> {ids[dep]} [color = "#246C60"];')
        if rec.resources[urn].parent in ids:
            lines.append(f'    {ids[urn]} -> {ids[rec.resources[urn].parent]} [color = "#AA6639"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _stage_groups(all_layers: list[Layer]) -> list[tuple[int, list[Layer]]]:
    return [(stage, [layer for layer in all_layers if layer.stage == stage])
            for stage in sorted({layer.stage for layer in all_layers})]


def _drawn_edges(rec: Recording, ordered: list[Layer], ids: dict[str, str]) -> list[tuple[str, str]]:
    """(dependency id, dependent id) of the reduced edges, in the layers' order."""
    rank = {layer.registration.urn: i for i, layer in enumerate(ordered)}
    return [(ids[t], ids[s]) for s, t in sorted(reduced_edges(rec), key=lambda e: (rank[e[1]], rank[e[0]]))]


def to_layers_dot(rec: Recording, order: tuple[str, ...] | list[str] = ()) -> str:
    """The layer graph, one box per stage, top to bottom: readable at page width (Graphviz). Edges
    are the transitive reduction; within a stage the layers keep their order (hosts as configured)."""
    ordered = layers(rec, order)
    ids = _ids(ordered)
    lines = ["digraph layers {", "    rankdir=TB;", '    node [shape=box, style="rounded", fontname="Helvetica"];',
             '    graph [fontname="Helvetica", newrank=true];']
    for stage, group in _stage_groups(ordered):
        lines.append(f'    subgraph cluster_s{stage} {{ label="stage {stage} · {STAGE_NAMES[stage]}"; rank=same;')
        lines += [f'        {ids[layer.registration.urn]} [label="{layer.label}"];' for layer in group]
        if len(group) > 1:  # invisible edges keep the stage's boxes in this order, left to right
            lines.append("        " + " -> ".join(ids[layer.registration.urn] for layer in group) + " [style=invis];")
        lines.append("    }")
    lines += [f"    {t} -> {s};" for t, s in _drawn_edges(rec, ordered, ids)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(rec: Recording, order: tuple[str, ...] | list[str] = ()) -> str:
    """The layer graph by stage, top to bottom, for a browser or a Markdown viewer (edges reduced)."""
    ordered = layers(rec, order)
    ids = _ids(ordered)
    lines = ["flowchart TB"]
    for stage, group in _stage_groups(ordered):
        lines.append(f'    subgraph S{stage}["stage {stage} · {STAGE_NAMES[stage]}"]')
        lines.append("        direction LR")
        lines += [f'        {ids[layer.registration.urn]}["{layer.label}"]' for layer in group]
        lines.append("    end")
    lines += [f"    {t} --> {s}" for t, s in _drawn_edges(rec, ordered, ids)]
    return "\n".join(lines) + "\n"


def to_stage_mermaid(rec: Recording) -> str:
    """The stages as the README shows them: one box per layer Type ('Node' stands for every host),
    edges reduced (an edge implied by a longer path is not drawn)."""
    kinds = sorted({layer.kind for layer in layers(rec)}, key=lambda k: (STAGES[k], k))
    kind_of = {layer.registration.urn: layer.kind for layer in layers(rec)}
    lines = ["flowchart TB"]
    for stage in sorted({STAGES[k] for k in kinds}):
        lines.append(f'    subgraph S{stage}["stage {stage} · {STAGE_NAMES[stage]}"]')
        lines.append("        direction LR")
        lines += [f'        {k}["{k}{" (one per host)" if k == "Node" else ""}"]' for k in kinds if STAGES[k] == stage]
        lines.append("    end")
    edges = {(kind_of[t], kind_of[s]) for s, t in reduced_edges(rec) if kind_of[s] != kind_of[t]}
    lines += [f"    {t} --> {s}" for t, s in sorted(edges, key=lambda e: (STAGES[e[0]], e[0], STAGES[e[1]], e[1]))]
    return "\n".join(lines) + "\n"

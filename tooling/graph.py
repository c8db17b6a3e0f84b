"""Views of a Recording: layers with their stages, the layer dependency graph, DOT and Mermaid."""

from __future__ import annotations

from dataclasses import dataclass

from tooling.offline import Recording, Registration

PROJECT_PREFIX = "cluster-bootstrap:"

# Stage of each layer Type (ARCHITECTURE.md). A layer may depend only on layers of its own
# stage or earlier ones; the tests hold the program to this table.
STAGES: dict[str, int] = {
    "DnsZone": 0,
    "InternalCa": 0,
    "AcmeAccount": 0,
    "Node": 1,
    "K0sCluster": 2,
    "Cilium": 3,
    "LocalPathStorage": 3,
    "CertManager": 4,
    "SopsAgeSecret": 5,
    "Gitea": 5,
    "Flux": 5,
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


def layers(rec: Recording) -> list[Layer]:
    """Every component of this project, in stage order (registration order within a stage)."""
    found = [Layer(r) for r in rec.resources.values() if r.type.startswith(PROJECT_PREFIX)]
    return sorted(found, key=lambda layer: layer.stage)


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


def to_dot(rec: Recording) -> str:
    """The resource graph in the shape `pulumi stack graph` writes: dependency and parent edges."""
    ids = {urn: f"Resource{i}" for i, urn in enumerate(rec.resources)}
    lines = ["strict digraph {"]
    for urn, node in ids.items():
        lines.append(f'    {node} [label="{urn}"];')
    for urn, reg in rec.resources.items():
        for dep in sorted(rec.all_dependencies(urn)):
            if dep in ids:
                lines.append(f'    {ids[urn]} -> {ids[dep]} [color = "#246C60"];')
        if reg.parent in ids:
            lines.append(f'    {ids[urn]} -> {ids[reg.parent]} [color = "#AA6639"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(rec: Recording) -> str:
    """The layer graph by stage, for reading in a browser or a Markdown viewer."""
    all_layers = layers(rec)
    ids = {layer.registration.urn: f"L{i}" for i, layer in enumerate(all_layers)}
    lines = ["flowchart LR"]
    for stage in sorted({layer.stage for layer in all_layers}):
        lines.append(f'    subgraph S{stage}["stage {stage} · {STAGE_NAMES[stage]}"]')
        for layer in all_layers:
            if layer.stage == stage:
                lines.append(f'        {ids[layer.registration.urn]}["{layer.label}"]')
        lines.append("    end")
    for source, target in sorted(layer_edges(rec)):
        lines.append(f"    {ids[target]} --> {ids[source]}")
    return "\n".join(lines) + "\n"

"""Stage order on the registered graph: every layer waits only on layers of its stage or earlier."""

from __future__ import annotations

import json

from tooling import graph


def test_every_layer_has_a_known_stage(rec):
    kinds = {layer.kind for layer in graph.layers(rec)}
    assert kinds <= set(graph.STAGES), kinds - set(graph.STAGES)
    assert kinds, "the program registered no layer"


def test_layers_depend_only_on_earlier_or_same_stages(rec):
    stage = {layer.registration.urn: layer.stage for layer in graph.layers(rec)}
    for source, target in graph.layer_edges(rec):
        assert stage[target] <= stage[source], (source, target)


def test_layer_graph_has_no_cycle(rec):
    from tests.test_architecture import find_cycle

    edges: dict[str, set[str]] = {}
    for source, target in graph.layer_edges(rec):
        edges.setdefault(source, set()).add(target)
    assert find_cycle(edges) is None


def test_every_resource_belongs_to_a_layer(rec):
    for reg in rec.resources.values():
        assert graph.layer_of(rec, reg.urn), f"{reg.type} {reg.name} is outside every layer"


def test_children_are_named_after_their_layer(rec):
    """Convention: a layer's children are named f"{layer}-<part>" so URNs stay readable and unique."""
    for layer in graph.layers(rec):
        for child in rec.children(layer.registration.urn):
            assert child.name.startswith(layer.registration.name + "-"), child.name


def test_critical_path_does_not_grow_with_workers():
    """Workers join in parallel: 47 workers make the slow-step chain no longer than 2 do."""
    from tooling import bench, offline

    from tests.conftest import fixture_config

    five = offline.run("dev", preview=True, config=bench.scaled_config(2, base=fixture_config("dev"))[0])
    fifty = offline.run("dev", preview=True, config=bench.scaled_config(47, base=fixture_config("dev"))[0])
    path = bench.critical_path(fifty)
    assert len(path) == len(bench.critical_path(five))
    assert path.count("cilium-release") == 1 and path.count("k0s-cp-2") == 1


def test_secrets_never_appear_in_plain_text(up):
    """Every generated or configured secret value, wherever it flows, travels only in secret inputs."""
    secrets = [
        up.named("gitea-admin").inputs["stringData"]["password"],
        up.named("flux-webhook-token").inputs["stringData"]["token"],
        up.named("sops-secret").inputs["stringData"]["age.agekey"].strip(),
        up.named("cert-manager-route53-credentials").inputs["stringData"]["secret-access-key"],
        up.named("cert-manager-account-key").inputs["stringData"]["tls.key"],
        up.named("cert-manager-internal-ca-key").inputs["stringData"]["tls.key"],
        up.named("flux-gitea-credentials").inputs["stringData"]["identity"],
        up.named("gitea-ssh-host-key").inputs["stringData"]["ssh_host_ed25519_key"],
    ]
    assert all(len(s) >= 20 for s in secrets)
    for reg in up.resources.values():
        for prop, value in reg.inputs.items():
            if reg.is_secret(prop):
                continue
            text = json.dumps(value)
            for secret in secrets:
                assert json.dumps(secret)[1:-1] not in text, f"{reg.name}.{prop} carries a secret in plain text"
    public = json.dumps({k: v for k, v in up.outputs.items() if k not in up.secret_outputs}, default=str)
    assert not any(json.dumps(s)[1:-1] in public for s in secrets)

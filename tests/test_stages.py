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


def test_the_plan_lists_every_layer_after_the_layers_it_waits_for(rec):
    order = [layer.registration.urn for layer in graph.layers(rec)]
    for source, target in graph.layer_edges(rec):
        assert order.index(target) < order.index(source), (source, target)


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


def test_critical_path_grows_with_restart_batches_not_with_workers():
    """Workers join in parallel; only their restarts go in batches (k0s.workerDisruptionPercent),
    each batch adding its drain, restart and ready steps to the slow chain."""
    from tooling import bench, offline

    from tests.conftest import fixture_config

    def path(workers: int, percent: int) -> list[str]:
        config = bench.scaled_config(workers, base=fixture_config("dev"), disruption_percent=percent)[0]
        return bench.critical_path(offline.run("dev", preview=True, config=config))

    all_at_once = path(47, 100)
    assert len(all_at_once) == len(path(2, 100))
    assert all_at_once.count("cilium-release") == 1 and all_at_once.count("k0s-cp-2") == 1
    tenth = path(47, 10)  # batches of 4: 12 of them
    assert len(tenth) == len(all_at_once) + 3 * 11
    assert len([step for step in tenth if step.endswith("-drain")]) == 12


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
        up.named("gitops-backup-s3").inputs["stringData"]["secret-access-key"],
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

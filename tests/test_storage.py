"""LocalPathStorage (stage 3): the default StorageClass after the pod network, Gitea's volume on it,
or the user's own class and nothing installed."""

from __future__ import annotations

from tests.conftest import first_controller, run_with
from tests.manifests import validate
from tests.pins import VERSIONS

LAYER = "cluster-bootstrap:storage:LocalPathStorage"


def test_provisioner_is_pinned_and_the_default_class(rec):
    release = rec.named("storage-release")
    assert release.inputs["chart"] == "oci://ghcr.io/rancher/local-path-provisioner/charts/local-path-provisioner"
    assert release.inputs["version"] == VERSIONS["localPathProvisioner"]
    assert release.inputs["atomic"] is True and not release.inputs.get("skipAwait")
    values = release.inputs["values"]
    assert values["storageClass"] == {"defaultClass": True, "name": "local-path"}
    assert values["nodePathMap"] == [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                                      "paths": ["/var/lib/local-path-provisioner"]}]
    # The chart's helper image is an unpinned busybox:latest; the channel pins it.
    assert values["helperImage"] == {"repository": "docker.io/library/busybox", "tag": VERSIONS["busybox"]}


def test_storage_comes_after_cilium_serves_and_before_gitea(rec):
    release, ingress = rec.named("storage-release"), rec.named("cilium-ingress-ready")
    assert rec.depends_transitively(release.urn, ingress.urn)
    assert rec.depends_transitively(rec.named("storage-namespace").urn, ingress.urn)
    gitea = rec.named("gitea-release")
    assert release.urn in gitea.dependencies
    assert gitea.inputs["values"]["persistence"]["storageClass"] == "local-path"
    (layer,) = rec.of_type(LAYER)
    assert rec.resources[release.parent].type == LAYER and layer.name == "storage"


def test_objects_are_valid_and_go_with_the_cluster(rec):
    for name in ("storage-namespace", "storage-release"):
        obj = rec.named(name)
        assert obj.deleted_with == first_controller(rec).urn
    validate(rec.named("storage-namespace").inputs)


def test_host_path_is_configurable():
    rec = run_with(preview=False, storage={"localPath": "/srv/volumes/"})
    paths = rec.named("storage-release").inputs["values"]["nodePathMap"][0]["paths"]
    assert paths == ["/srv/volumes"]


def test_the_users_own_class_installs_nothing():
    rec = run_with(preview=False, storage={"storageClass": "ceph-rbd"})
    assert rec.of_type(LAYER) == []
    assert not [r for r in rec.resources.values() if r.name.startswith("storage-")]
    gitea = rec.named("gitea-release")
    assert gitea.inputs["values"]["persistence"]["storageClass"] == "ceph-rbd"
    assert rec.depends_transitively(gitea.urn, rec.named("cilium-ingress-ready").urn)


def test_builds_from_its_args_alone():
    from components.storage import LocalPathStorage, LocalPathStorageArgs
    from tests import standalone

    def program():
        before = standalone.marker()
        LocalPathStorage("disks", LocalPathStorageArgs(
            chart_version=VERSIONS["localPathProvisioner"], busybox_version=VERSIONS["busybox"],
            host_path="/data", cluster=standalone.cluster(), after=[before]))

    rec = standalone.build(program)
    release = rec.named("disks-release")
    assert release.inputs["values"]["nodePathMap"][0]["paths"] == ["/data"]
    assert rec.named("test-before").urn in release.dependencies
    assert release.deleted_with == rec.named("test-anchor").urn

"""`make charts`: the pinned charts pulled with a real `helm pull` into the cache, verified against
the digest the repository publishes; fast and clear without a network; never run where the
offline folder exists. The repository here is a chart repository served on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import subprocess
import threading
import time

import pytest
import yaml

from tooling import charts

HELM = charts.HELM


@pytest.fixture
def helm_env(tmp_path, monkeypatch):
    if not HELM.exists():
        pytest.skip(f"{HELM} is missing: run the tests with `make test`")
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "helm" / var.lower()))


@pytest.fixture
def repo(tmp_path, helm_env):
    """A Helm chart repository on 127.0.0.1 holding demo 1.2.3, and its served folder."""
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run([str(HELM), "create", str(tmp_path / "demo")], check=True, capture_output=True)
    chart_yaml = tmp_path / "demo" / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("version: 0.1.0", "version: 1.2.3"))
    subprocess.run([str(HELM), "package", str(tmp_path / "demo"), "-d", str(served)], check=True, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    subprocess.run([str(HELM), "repo", "index", str(served), "--url", url], check=True, capture_output=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield url, served
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once it is closed


def test_a_chart_is_pulled_and_checked_against_the_published_digest(repo, tmp_path):
    url, served = repo
    dest = tmp_path / "cache"
    (got,) = charts.fetch([charts.Chart("demo", "1.2.3", url)], dest)
    assert got == dest / "demo-1.2.3.tgz"
    digest = hashlib.sha256(got.read_bytes()).hexdigest()
    assert digest == hashlib.sha256((served / "demo-1.2.3.tgz").read_bytes()).hexdigest()
    assert (dest / "SHA256SUMS").read_text() == f"{digest}  demo-1.2.3.tgz\n"
    # a chart in the cache is not pulled again (a second run needs no network)
    assert charts.fetch([charts.Chart("demo", "1.2.3", "http://127.0.0.1:1/")], dest) == [got]


def test_a_chart_whose_digest_does_not_match_the_repository_is_not_kept(repo, tmp_path):
    url, served = repo
    index = yaml.safe_load((served / "index.yaml").read_text())
    index["entries"]["demo"][0]["digest"] = "0" * 64
    (served / "index.yaml").write_text(yaml.safe_dump(index))
    with pytest.raises(charts.ChartsError, match="is not the digest 0000"):
        charts.fetch([charts.Chart("demo", "1.2.3", url)], tmp_path / "cache")
    assert not (tmp_path / "cache" / "demo-1.2.3.tgz").exists()


def test_without_a_network_it_fails_fast_and_says_what_to_do(tmp_path, monkeypatch, capsys):
    port = closed_port()
    monkeypatch.setattr(charts, "offline_dir", lambda: None)
    monkeypatch.setattr(charts, "pinned", lambda: [charts.Chart("cilium", "1.20.0", f"https://127.0.0.1:{port}/")])
    start = time.monotonic()
    assert charts.main(["--dest", str(tmp_path / "cache")]) == 2
    assert time.monotonic() - start < 10
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: cannot reach 127.0.0.1:{port}") and "needs the internet" in line
    assert "CHARTS_DIR" in line
    # what `make test` runs: a note, and the tests go on (the chart tests skip)
    assert charts.main(["--if-missing", "--dest", str(tmp_path / "cache")]) == 0
    assert capsys.readouterr().err.startswith("note: no charts for the chart tests")


def test_make_test_never_reaches_out_when_the_offline_folder_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARTS_DIR", str(tmp_path / "offline"))

    def refuse(*args, **kwargs):
        raise AssertionError("network attempted although an offline folder exists")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(charts, "pinned", refuse)
    assert charts.main(["--if-missing", "--dest", str(tmp_path / "cache")]) == 0
    assert not (tmp_path / "cache").exists()


def test_the_chart_tests_use_the_cache_when_there_is_no_offline_folder(tmp_path, monkeypatch):
    from tests.charts import charts_dir

    monkeypatch.setattr(charts, "offline_dir", lambda: None)
    monkeypatch.setenv("CHARTS_CACHE", str(tmp_path))
    assert charts_dir() is None  # an empty cache: the chart tests skip, saying so
    (tmp_path / "cilium-1.20.0.tgz").write_bytes(b"")
    assert charts_dir() == tmp_path
    monkeypatch.delenv("CHARTS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert charts.cache_dir() == tmp_path / "xdg" / "cluster-bootstrap" / "charts"


def test_the_pinned_charts_are_the_programs_releases_from_their_real_repositories():
    from tests.pins import VERSIONS

    found = {c.name: (c.version, c.repo) for c in charts.pinned()}
    assert found == {
        "cilium": (VERSIONS["cilium"], "https://helm.cilium.io/"),
        "cert-manager": (VERSIONS["certManager"], "https://charts.jetstack.io"),
        "gitea": (VERSIONS["gitea"], "https://dl.gitea.com/charts/"),
        "flux-operator": (VERSIONS["fluxOperator"], "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"),
        "local-path-provisioner": (VERSIONS["localPathProvisioner"],
                                   "oci://ghcr.io/rancher/local-path-provisioner/charts/local-path-provisioner"),
    }

"""Start and stop the twin's control plane: etcd, kube-apiserver (TLS, RBAC, service-account keys,
every outbound dial of the API server refused), kube-controller-manager, kube-scheduler and kwok,
all on 127.0.0.1 with free ports and data in one directory. `start` raises Missing (with the
reason) when `make twin` has not built the binaries."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from tests.twin import pki as pki_module
from tests.twin import versions

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/12"  # k0s's default spec.network.serviceCIDR
KWOK_STAGES = ("kustomize/stage/node/fast", "kustomize/stage/node/heartbeat-with-lease", "kustomize/stage/pod/fast")
KUBECTL = Path(__file__).resolve().parents[2] / "venv" / "tools" / "bin" / "kubectl"
HELM = KUBECTL.parent / "helm"


class Missing(Exception):
    """Something the twin needs is not there (the message names it)."""


@dataclass
class Twin:
    """A running control plane: `kubeconfig` is an admin kubeconfig (system:masters)."""

    directory: Path
    kubeconfig: Path
    server: str
    kube_version: str
    pki: pki_module.Pki
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    nodes: list = field(default_factory=list)  # the stack's Nodes (tests.twin.nodes.StackNode)
    roles: object = None  # the role players (tests.twin.roles.Roles), once started

    def env(self) -> dict[str, str]:
        """Environment for kubectl/helm against the twin (no proxies, no user config)."""
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(KUBECONFIG=str(self.kubeconfig), HOME=str(self.directory / "home"),
                   HELM_CACHE_HOME=str(self.directory / "home" / "helm-cache"),
                   HELM_CONFIG_HOME=str(self.directory / "home" / "helm-config"),
                   HELM_DATA_HOME=str(self.directory / "home" / "helm-data"), NO_PROXY="*")
        return env

    def kubectl(self, *args: str, input: Optional[str] = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([str(KUBECTL), *args], input=input, capture_output=True, text=True,
                              env=self.env(), timeout=timeout)
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, ["kubectl", *args], done.stdout, done.stderr)
        return done

    def helm(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        done = subprocess.run([str(HELM), *args], capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, ["helm", *args], done.stdout, done.stderr)
        return done

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def log(self, name: str) -> str:
        path = self.directory / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop what start() started (its data is thrown away: a short grace, then SIGKILL)."""
        for name in reversed(list(self.processes)):
            if self.processes[name].poll() is None:
                self.processes[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def binaries() -> Path:
    """The directory `make twin` built for the pinned k0s; raises Missing naming what is not there."""
    if not KUBECTL.exists() or not HELM.exists():
        raise Missing("kubectl/helm missing from venv/tools/bin: run `make test`")
    try:
        found = versions.bin_dir()
    except versions.UnknownK0s as error:
        raise Missing(str(error))
    absent = [b for b in BINARIES if not (found / b).exists()]
    if absent:
        reason = "go not found" if shutil.which("go") is None else f"not built: {', '.join(absent)} in {found}"
        raise Missing(f"twin binaries unavailable ({reason}): run `make twin`")
    return found


def go_module_dir(module: str, version: str) -> Path:
    """A module's directory in the local Go module cache (never downloaded here: `make twin` did)."""
    if shutil.which("go") is None:
        raise Missing("go not found: cannot read " + module)
    # GOPROXY=off: nothing is fetched here. GOSUMDB=off: a module `go build` fetched is verified
    # against its go.sum, so the cache has no checksum-database tiles for it, and a lookup of them
    # would need the network (what a cold machine's first `make test` showed).
    done = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True,
                          env={**os.environ, "GOPROXY": "off", "GOSUMDB": "off", "GOFLAGS": "-mod=mod"}, cwd="/",
                          timeout=60)
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Dir" not in info:
        raise Missing(f"{module}@{version} is not in the Go module cache: run `make twin` "
                      f"({info.get('Error', done.stderr.strip())})")
    return Path(info["Dir"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kubeconfig(path: Path, server: str, p: pki_module.Pki) -> Path:
    """A self-contained admin kubeconfig (certificates inline: it can be copied anywhere)."""
    def data(f: Path) -> str:
        return base64.b64encode(f.read_bytes()).decode()

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "twin",
        "clusters": [{"name": "twin", "cluster": {"server": server, "certificate-authority-data": data(p.ca)}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": data(p.admin_cert),
                                             "client-key-data": data(p.admin_key)}}],
        "contexts": [{"name": "twin", "context": {"cluster": "twin", "user": "admin"}}],
    }))
    path.chmod(0o600)
    return path


def _egress_config(directory: Path) -> Path:
    """Every dial to the cluster network (webhooks, aggregated APIs, proxies) goes through an
    HTTPConnect proxy on a Unix socket that does not exist: refused, nothing leaves the machine."""
    path = directory / "egress.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "apiserver.k8s.io/v1beta1", "kind": "EgressSelectorConfiguration",
        "egressSelections": [{"name": name, "connection": {
            "proxyProtocol": "HTTPConnect", "transport": {"uds": {"udsName": str(directory / "no-egress.sock")}}}}
            for name in ("cluster", "controlplane")],
    }))
    return path


def _ready(server: str, p: pki_module.Pki, deadline: float, twin: "Twin") -> None:
    context = ssl.create_default_context(cafile=str(p.ca))
    context.load_cert_chain(str(p.admin_cert), str(p.admin_key))
    while True:
        for name, process in twin.processes.items():
            if process.poll() is not None:
                tail = "\n".join(twin.log(name).splitlines()[-5:])
                raise RuntimeError(f"{name} exited with {process.returncode} during start-up:\n{tail}")
        try:
            with urllib.request.urlopen(f"{server}/readyz", context=context, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("kube-apiserver not ready in time")
        time.sleep(0.2)


def start(directory: Path, timeout: float = 120) -> Twin:
    """Start the control plane in `directory` (its data, certificates and logs)."""
    bins = binaries()
    kwok_dir = go_module_dir("sigs.k8s.io/kwok", "v" + versions.KWOK)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    p = pki_module.make(directory / "pki")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{api_port}"
    twin = Twin(directory, _kubeconfig(directory / "admin.kubeconfig", server, p), server, versions.versions()["KUBE"], p)

    def run(name: str, *args: str) -> None:
        log = open(directory / "logs" / f"{name}.log", "wb")
        twin.processes[name] = subprocess.Popen([str(bins / name), *args], stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, cwd=directory, start_new_session=True)

    kubeconfig = str(twin.kubeconfig)
    try:
        run("etcd", "--data-dir", str(directory / "etcd"), "--name", "twin",
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}", "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"twin=http://127.0.0.1:{peer_port}", "--unsafe-no-fsync", "--log-level", "warn")
        run("kube-apiserver", "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
            "--endpoint-reconciler-type", "none",
            "--tls-cert-file", str(p.server_cert), "--tls-private-key-file", str(p.server_key),
            "--client-ca-file", str(p.ca),
            # as k0s v1.36.3+k0s.2 runs it (pkg/component/controller/apiserver.go)
            "--authorization-mode", "Node,RBAC", "--allow-privileged=true", "--anonymous-auth=false",
            "--enable-admission-plugins", "NodeRestriction", "--tls-min-version", "VersionTLS12",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-jwks-uri", "https://kubernetes.default.svc/openid/v1/jwks",
            "--service-account-key-file", str(p.sa_public), "--service-account-signing-key-file", str(p.sa_private),
            "--service-cluster-ip-range", SERVICE_CIDR, "--egress-selector-config-file", str(_egress_config(directory)),
            "--enable-priority-and-fairness=false", "--profiling=false")
        _ready(server, p, time.monotonic() + timeout, twin)
        run("kube-controller-manager", "--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port=0",
            "--service-account-private-key-file", str(p.sa_private), "--root-ca-file", str(p.ca),
            "--controllers", "*", "--profiling=false",
            # kwok's heartbeats are fake: a busy machine must not make the Nodes NotReady (their pods
            # would stay NotReady: kwok does not take them through its stages again)
            "--node-monitor-grace-period=1h")
        run("kube-scheduler", "--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port=0", "--profiling=false")
        stages = [f"--config={f}" for d in KWOK_STAGES for f in sorted((kwok_dir / d).glob("*.yaml"))
                  if f.name != "kustomization.yaml"]
        run("kwok", "--kubeconfig", kubeconfig, "--manage-all-nodes=true", "--cidr=10.244.0.0/16", *stages)
    except BaseException:
        twin.stop()
        raise
    return twin

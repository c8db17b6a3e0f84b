"""A real Gitea for the twin: the binary `make twin` builds from code.gitea.io/gitea (at
versions.giteaApp, the release the program's pods run: the tests name it), run with the
configuration the pinned chart renders for the program's values (its `gitea-inline-config` Secret,
paths moved into a temporary directory), the admin account of the program's `gitea-admin` Secret
and the SSH host key of its `gitea-ssh-host-key` Secret, on a loopback address of its own that the
program's in-cluster names resolve to for the processes that use them (tests/twin/names.py)."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from components.gitea import DATA, DB_PATH
from tests import charts
from tests.pins import VERSIONS
from tests.twin import names
from tests.twin.versions import cache_root

HTTP_HOST = "gitea-http.gitea.svc.cluster.local"
SSH_HOST = "gitea-ssh.gitea.svc.cluster.local"


class Missing(Exception):
    """The Gitea binary was not built (no Go, or the proxy refused the module)."""


def version() -> str:
    """The Gitea release the twin builds and runs: the one the program's pods run (versions.giteaApp)."""
    return VERSIONS["giteaApp"]


def build_dir() -> Path:
    return cache_root() / f"gitea-v{version()}"


def binary() -> tuple[Path, str]:
    """The built Gitea and the version it was built at (Missing also where the in-cluster names
    cannot be made to resolve: no root or no `unshare`)."""
    if not (build_dir() / "gitea").is_file():
        raise Missing(f"no Gitea built at {build_dir()} (run `make twin`; it needs Go and the module proxy)")
    if not names.available():
        raise Missing("resolving the program's in-cluster names needs root and util-linux's `unshare`")
    return build_dir() / "gitea", version()


def secret_data(rec, name: str) -> dict[str, str]:
    """A Secret the program registers, by its Kubernetes name: its stringData."""
    (secret,) = [r for r in rec.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"].get("name") == name]
    return secret.inputs["stringData"]


def chart_config(rec) -> dict[str, dict[str, str]]:
    """app.ini sections as the pinned chart renders them for the program's values."""
    (inline,) = [o for o in charts.render(rec.named("gitea-release"))
                 if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-inline-config")]
    sections: dict[str, dict[str, str]] = {}
    for section, body in inline["stringData"].items():
        sections[section] = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
    return sections


def on_volume(root: Path, path: str) -> str:
    """A path in Gitea's pod (the chart mounts its volume at components.gitea.DATA) moved under `root`."""
    if path == DATA or path.startswith(DATA + "/"):
        return str(root / "data") + path[len(DATA):]
    return path


def app_ini(rec, root: Path, address: str, run_user: str = "root", build: Optional[Path] = None) -> str:
    """The chart's configuration with its paths moved under `root`, listening on `address`."""
    config = chart_config(rec)
    server, repository = config["server"], config["repository"]
    # the volume's paths as the chart sets them, moved (the database is left at Gitea's default)
    server["APP_DATA_PATH"] = on_volume(root, server["APP_DATA_PATH"])
    repository["ROOT"] = on_volume(root, repository["ROOT"])
    server["SSH_SERVER_HOST_KEYS"] = str(root / "ssh" / Path(server["SSH_SERVER_HOST_KEYS"]).name)
    server["HTTP_ADDR"] = server["SSH_LISTEN_HOST"] = address
    server["STATIC_ROOT_PATH"] = str(build or build_dir())  # options/ and templates/ from the module (no bindata)
    # the SSH user clones use: the image's RUN_USER, git (this process runs as root; the built-in
    # server takes its user from RUN_USER unless told: modules/setting/ssh.go)
    server["BUILTIN_SSH_SERVER_USER"] = "git"
    config.setdefault("log", {}).update({"MODE": "file", "ROOT_PATH": str(root / "log"), "LEVEL": "Info"})
    config["security"].update({"SECRET_KEY": "twin-secret-key", "INTERNAL_TOKEN": "twin-internal-token-" + "x" * 80})
    general = config.pop("_generals_", {})
    general.update({"RUN_USER": run_user, "WORK_PATH": str(root)})
    lines = [f"{k} = {v}" for k, v in sorted(general.items())]
    for section, values in sorted(config.items()):
        lines += ["", f"[{section}]", *(f"{k} = {v}" for k, v in sorted(values.items()))]
    return "\n".join(lines) + "\n"


def prepare(rec, root: Path, address: str, build: Optional[Path] = None) -> None:
    """Gitea's files before its pod starts: the SSH host key Secret's files and the chart's app.ini;
    with `build` (a copy of the build the pod's user can reach: pod_build), owned by, and configured
    for, the user the chart runs Gitea as (POD_UID)."""
    pod_user = build is not None
    (root / "ssh").mkdir(parents=True)
    for file, content in secret_data(rec, "gitea-ssh-host-key").items():
        (root / "ssh" / file).write_text(content)
        (root / "ssh" / file).chmod(0o600)
    (root / "app.ini").write_text(app_ini(rec, root, address, pod_user_name() if pod_user else "root", build))
    if pod_user:
        (root / "home").mkdir()
        subprocess.run(["chown", "-R", f"{POD_UID}:{POD_UID}", str(root)], check=True)


def pod_build(into: Path) -> Path:
    """The built Gitea, hard-linked where the pod's user can run it (the build cache is root's)."""
    subprocess.run(["cp", "-al", str(build_dir()), str(into)], check=True)
    return into


def admin_account(rec) -> tuple[str, str, str]:
    """The admin the program declares: user and password (its Secret), email (the chart's values)."""
    admin = secret_data(rec, "gitea-admin")
    return admin["username"], admin["password"], rec.named("gitea-release").inputs["values"]["gitea"]["admin"]["email"]


def cli(binary_path: Path, root: Path, *args: str, pod_user: bool = False) -> subprocess.CompletedProcess:
    """A gitea command with the twin's configuration, as the image's `gitea` wrapper runs it."""
    return subprocess.run([*as_user(pod_user), str(binary_path), "--config", str(root / "app.ini"),
                           "--work-path", str(root), *args],
                          capture_output=True, text=True, env=environment(root if pod_user else None), timeout=300)


def configure(binary_path: Path, root: Path, user: str, password: str, email: str, pod_user: bool = False) -> None:
    """What the chart's configure-gitea init container does (configure_gitea.sh): migrate, then the
    admin account: created when missing, else its password set to the Secret's (passwordMode
    keepUpdated, which the program sets)."""
    for args in (("migrate",),
                 ("admin", "user", "create", "--admin", "--username", user, "--password", password, "--email", email,
                  "--must-change-password=false")):
        done = cli(binary_path, root, *args, pod_user=pod_user)
        if args[0] == "admin" and done.returncode != 0 and "already exists" in done.stdout + done.stderr:
            done = cli(binary_path, root, "admin", "user", "change-password", "--username", user,
                       "--password", password, "--must-change-password=false", pod_user=pod_user)
        assert done.returncode == 0, f"gitea {' '.join(args[:3])}: {done.stdout}{done.stderr}"


def start(binary_path: Path, root: Path, address: str, pod_user: bool = False) -> subprocess.Popen:
    """`gitea web`, healthy on `address` when this returns (`pod_user`: as the chart's user, in a
    session of its own, as the kubelet stand-in runs it)."""
    with open(root / "gitea.out", "a") as out:
        process = subprocess.Popen([*as_user(pod_user), str(binary_path), "web", "--config", str(root / "app.ini"),
                                    "--work-path", str(root)], stdout=out, stderr=subprocess.STDOUT,
                                   env=environment(root if pod_user else None), start_new_session=pod_user)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://{address}:3000/api/healthz", timeout=5)
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"Gitea did not start: {(root / 'gitea.out').read_text()[-3000:]}")
            time.sleep(0.5)


@dataclass
class Gitea:
    root: Path
    version: str
    address: str  # where it listens (HTTP 3000, SSH 2222)
    resolving: list[str]  # runs a command with the in-cluster names resolving to it
    admin: tuple[str, str]
    process: subprocess.Popen

    @property
    def url(self) -> str:
        """Its in-cluster URL, as the seed Job and Flux use it."""
        return f"http://{HTTP_HOST}:3000"

    @property
    def direct(self) -> str:
        """Its URL for the test itself (no name resolution)."""
        return f"http://{self.address}:3000"

    def api(self, path: str, user: Optional[tuple[str, str]] = None):
        """GET /api/v1<path> as the admin (or `user`): the decoded JSON, or None on 404."""
        import base64
        import json
        import urllib.error

        name, password = user or self.admin
        request = urllib.request.Request(f"{self.direct}/api/v1{path}", headers={
            "Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def sql(self, query: str) -> list[tuple]:
        """Gitea's own database (sqlite), read-only: what it stored."""
        import sqlite3

        path = on_volume(self.root, DB_PATH)  # where the program expects Gitea's default to put it
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute(query).fetchall()


# The chart runs Gitea as uid 1000 (the rootless image's user; podSecurityContext fsGroup 1000).
POD_UID = 1000


def pod_user_name() -> str:
    """What Gitea takes for its user's name as POD_UID (modules/user: the passwd entry, else $USER)."""
    import pwd

    try:
        return pwd.getpwuid(POD_UID).pw_name
    except KeyError:
        return "git"


def as_user(pod_user: bool) -> list[str]:
    return ["setpriv", f"--reuid={POD_UID}", f"--regid={POD_UID}", "--clear-groups", "--"] if pod_user else []


def environment(pod_root: Optional[Path] = None) -> dict[str, str]:
    """As root (the twin's own Gitea): Gitea refuses to run as root unless told that is meant
    (modules/setting/setting.go loadRunModeFrom at v1.25.5), and says so on stdout. As the pod's
    user (`pod_root`: its directory), what the image gives it."""
    if pod_root is not None:
        return {"PATH": "/usr/bin:/bin", "HOME": str(pod_root / "home"), "USER": pod_user_name()}
    return {"PATH": "/usr/bin:/bin", "HOME": "/root", "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT": "true"}


@contextlib.contextmanager
def running(rec, root: Path) -> Iterator[Gitea]:
    """Gitea with the program's config, admin and host key; stopped afterwards."""
    binary_path, version = binary()
    address = names.loopback()
    resolving = names.resolving({HTTP_HOST: address, SSH_HOST: address}, root / "names")
    prepare(rec, root, address)
    user, password, email = admin_account(rec)
    configure(binary_path, root, user, password, email)
    process = start(binary_path, root, address)
    try:
        yield Gitea(root, version, address, resolving, (user, password), process)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    if process.poll() is None:
        process.kill()

"""The container runtime the twin lacks, for Gitea's pod. kwok plays the pods' kubelet but runs no
containers, so `kubectl exec` into Gitea's pod (the k0s stand-in hands it here: FAKE_EXEC) runs the
command as Gitea's container would — the real Gitea of the twin, its volume's paths (/data…) moved
to the twin's directory, `gitea` with the image wrapper's configuration — after checking with the
real API server that the pod exists and runs. A pod name not seen before is a pod the kubelet has
just started: the previous one's Gitea is stopped, the pod's init containers run as the chart
orders them (the program's restore init container, from the release's values and its ConfigMap;
then what configure-gitea does), and Gitea is started again.

State, one JSON file (FAKE_EXEC_STATE): root, build (gitea.pod_build), address, admin [user,
password, email], init (the
restore init container: command and env, already moved), pod and pid (the started one).
Usage: kubelet.py [-n NS] exec [-i] POD [-c CONTAINER] -- COMMAND…   (as kubectl's arguments)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.twin import gitea  # noqa: E402


def load() -> tuple[Path, dict]:
    path = Path(os.environ["FAKE_EXEC_STATE"])
    return path, json.loads(path.read_text())


def save(path: Path, state: dict) -> None:
    path.write_text(json.dumps(state))


def stop(state: dict) -> None:
    """The pod's Gitea, stopped (the kubelet killing the old pod's containers)."""
    pid = state.get("pid")
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        state["pid"] = None
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    state["pid"] = None


def start_pod(path: Path, state: dict, pod: str) -> None:
    """A new pod of Gitea: init containers in the chart's order, then Gitea."""
    stop(state)
    root, binary = Path(state["root"]), Path(state["build"]) / "gitea"
    init = state.get("init")
    if init:
        done = subprocess.run([*gitea.as_user(True), *init["command"]], env=init["env"], capture_output=True,
                              text=True, timeout=300)
        with open(root / "restore-init.log", "a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:  # the pod stays in Init:Error; Gitea does not start
            save(path, {**state, "pod": pod})
            return
    user, password, email = state["admin"]
    gitea.configure(binary, root, user, password, email, pod_user=True)
    process = gitea.start(binary, root, state["address"], pod_user=True)
    save(path, {**state, "pod": pod, "pid": process.pid})


def kubectl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.environ["FAKE_KUBECTL"], "--kubeconfig", os.environ["FAKE_KUBECONFIG"], *args],
                          capture_output=True, text=True)


def parse(argv: list[str]) -> tuple[str, str, str, list[str]]:
    """namespace, pod, container, command of `kubectl [-n NS] exec [-i] POD [-c C] -- COMMAND…`."""
    dash = argv.index("--")
    words, command = argv[:dash], argv[dash + 1:]
    namespace, container, rest = "default", "", []
    i = 0
    while i < len(words):
        if words[i] == "-n":
            namespace, i = words[i + 1], i + 2
        elif words[i] == "-c":
            container, i = words[i + 1], i + 2
        elif words[i] in ("-i", "--stdin", "exec"):
            i += 1
        else:
            rest.append(words[i])
            i += 1
    (pod,) = rest
    return namespace, pod, container, command


def main(argv: list[str]) -> int:
    namespace, pod, container, command = parse(argv)
    phase = kubectl("-n", namespace, "get", "pod", pod, "-o", "jsonpath={.status.phase}")
    if phase.returncode != 0:
        sys.stderr.write(phase.stderr)
        return 1
    if phase.stdout != "Running":
        sys.stderr.write(f"error: cannot exec into a container in a completed pod; current phase is {phase.stdout}\n")
        return 1
    path, state = load()
    if container != "gitea":
        sys.stderr.write(f'error: container {container} not found in pod {pod}\n')
        return 1
    if state.get("pod") != pod:
        start_pod(path, state, pod)
        path, state = load()
    root = Path(state["root"])
    moved = [gitea.on_volume(root, word) for word in command]
    if moved[0] == "gitea":  # the image's wrapper: -c $GITEA_APP_INI, work dir $GITEA_WORK_DIR
        moved = [str(Path(state["build"]) / "gitea"), "--config", str(root / "app.ini"), "--work-path", str(root),
                 *moved[1:]]
    env = {**gitea.environment(root), "TMPDIR": str(root / "tmp")}  # the chart's temp volume
    return subprocess.run([*gitea.as_user(True), *moved], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

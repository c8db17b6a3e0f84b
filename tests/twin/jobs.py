"""An in-cluster Job of the program, run as a process: its container's command, with the
environment its spec gives (values, and Secret keys resolved from the Secrets the program
registers) and its ConfigMap volume's files — exactly what the Job's pod would get."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Mapping, Optional


def by_name(rec, kind: str, name: str):
    (found,) = [r for r in rec.resources.values() if r.type == f"kubernetes:core/v1:{kind}"
                and r.inputs.get("metadata", {}).get("name") == name]
    return found


def container(job) -> dict:
    spec = job.inputs["spec"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"] if "jobTemplate" in spec else spec["template"]["spec"]
    (only,) = pod["containers"]
    return only


def volume_files(rec, job, mount: str, into: Path) -> Path:
    """The files of the ConfigMap mounted at `mount`, written into `into`."""
    spec = job.inputs["spec"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"] if "jobTemplate" in spec else spec["template"]["spec"]
    (volume_name,) = [m["name"] for m in container(job)["volumeMounts"] if m["mountPath"] == mount]
    (volume,) = [v for v in pod["volumes"] if v["name"] == volume_name]
    config = by_name(rec, "ConfigMap", volume["configMap"]["name"])
    into.mkdir(parents=True, exist_ok=True)
    for key, text in (config.inputs.get("data") or {}).items():
        (into / key).write_text(text)
    for key, data in (config.inputs.get("binaryData") or {}).items():
        (into / key).write_bytes(base64.b64decode(data))
    return into


def environment(rec, job, overrides: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    env: dict[str, str] = {"PATH": "/usr/bin:/bin"}
    for item in container(job).get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            secret = by_name(rec, "Secret", ref["name"])
            data = secret.inputs.get("stringData") or {
                k: base64.b64decode(v).decode() for k, v in (secret.inputs.get("data") or {}).items()}
            env[item["name"]] = data[ref["key"]]
    env.update(overrides or {})
    return env


def run(rec, job_name: str, work: Path, prefix: list[str], overrides: Optional[Mapping[str, str]] = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the Job's container command (its ConfigMap at its mount point moved under `work`)."""
    job = rec.named(job_name)
    command = list(container(job)["command"])
    env = environment(rec, job)
    for mount in container(job)["volumeMounts"]:
        if mount.get("readOnly"):  # the ConfigMap: its files, and the command's path into it
            moved = volume_files(rec, job, mount["mountPath"], work / mount["mountPath"].strip("/"))
            command = [c.replace(mount["mountPath"], str(moved)) for c in command]
            env = {k: v.replace(mount["mountPath"], str(moved)) if v == mount["mountPath"] else v for k, v in env.items()}
        else:
            (work / mount["mountPath"].strip("/")).mkdir(parents=True, exist_ok=True)
    for key in ("HOME", "TMPDIR"):
        if key in env:
            env[key] = str(work / env[key].strip("/"))
    env.update(overrides or {})
    return subprocess.run([*prefix, *command], env=env, capture_output=True, text=True, timeout=timeout)


def seed(rec, work: Path, resolving: list[str], bucket, **overrides: str) -> subprocess.CompletedProcess:
    """The program's seed Job against the twin's Gitea (`resolving`: the in-cluster names resolve
    to it), its bucket's URL moto's; the rest of its S3 settings, credentials included unless
    overridden, the Job's own."""
    return run(rec, "gitea-seed", work, resolving, {"WAIT_SECONDS": "30", "S3_URL": bucket.env["S3_URL"], **overrides})

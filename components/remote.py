"""Run components/scripts/*.sh on a host over SSH (pulumi-command), the same way tests do.

What runs is lib.sh followed by the script, fed on stdin to `bash -s`. Plain parameters go in
the command line as `env K=V` (sshd rarely accepts SSH environment variables), so `pulumi
preview` shows them; secret ones are exported at the top of stdin, which is then a secret.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import pulumi
import pulumi_command as command

from components import shell

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def program(script: str) -> str:
    """The shell program a script becomes on the host: lib.sh, the helpers it uses, the script."""
    return shell.assemble(SCRIPTS / script, before=(SCRIPTS / "lib.sh",))


def command_line(script: str, env: Mapping[str, str], sudo: bool) -> str:
    pairs = " ".join(f"{key}={shlex.quote(str(value))}" for key, value in sorted({"CB_SCRIPT": script, **env}.items()))
    return f"{'sudo -n ' if sudo else ''}env {pairs} bash -s"


def secret_preamble(secret_env: Mapping[str, str]) -> str:
    return "".join(f"export {key}={shlex.quote(str(value))}\n" for key, value in sorted(secret_env.items()))


def inline(script: str, env: Mapping[str, str], sudo: bool) -> str:
    """A self-contained command line (for delete, which gets no stdin): the program travels base64."""
    encoded = base64.b64encode(program(script).encode()).decode()
    return f"echo {encoded} | base64 -d | {command_line(script, env, sudo)}"


@dataclass(frozen=True)
class Host:
    """How to reach one host: pulumi-command connection settings and whether to use sudo."""

    connection: command.remote.ConnectionArgs
    sudo: bool
    # The host no longer exists: its steps are never dialled again (see `gone_options`).
    gone: bool = False

    def gone_options(self) -> pulumi.ResourceOptions:
        """For a host that is gone: a step keeps the inputs it has in state (ignore_changes "*" resets
        every input to the old one, so `pulumi up` runs nothing on it) and is dropped from state on
        delete instead of dialled (retain_on_delete: the engine calls no provider Delete)."""
        if not self.gone:
            return pulumi.ResourceOptions()
        return pulumi.ResourceOptions(retain_on_delete=True, ignore_changes=["*"])


def run(
    resource_name: str,
    host: Host,
    script: str,
    env: Optional[Mapping[str, pulumi.Input[str]]] = None,
    secret_env: Optional[Mapping[str, pulumi.Input[str]]] = None,
    delete: Optional[tuple[str, Mapping[str, str]]] = None,
    secret_output: bool = False,
    opts: Optional[pulumi.ResourceOptions] = None,
) -> command.remote.Command:
    """A remote.Command running `script`; re-running it on any input change (never a replace)."""
    create: pulumi.Input[str] = command_line(script, {}, host.sudo)
    if env:
        create = pulumi.Output.all(**env).apply(lambda values: command_line(script, values, host.sudo))
    stdin: pulumi.Input[str] = program(script)
    if secret_env:
        stdin = pulumi.Output.secret(
            pulumi.Output.all(**secret_env).apply(lambda values: secret_preamble(values) + program(script))
        )
    extra = pulumi.ResourceOptions.merge(
        pulumi.ResourceOptions(additional_secret_outputs=["stdout", "stderr"] if secret_output else None),
        host.gone_options())
    return command.remote.Command(
        resource_name,
        connection=host.connection,
        create=create,
        # An explicit update keeps input changes in-place: a replace would run `delete` (k0s reset).
        update=create,
        delete=inline(delete[0], delete[1], host.sudo) if delete else None,
        stdin=stdin,
        add_previous_output_in_env=False,
        logging=command.remote.Logging.NONE if secret_output else command.remote.Logging.STDOUT_AND_STDERR,
        opts=pulumi.ResourceOptions.merge(opts, extra),
    )

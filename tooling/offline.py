"""Run the real program offline under Pulumi's mock monitor and record the resource graph.

Used by `make plan`, `make bench` and the tests. Preview mode behaves like a first `pulumi preview`:
ids and every output the provider computes are unknown. Up mode fills them with fakes.
"""

from __future__ import annotations

import asyncio
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from google.protobuf import json_format

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime import config as runtime_config

from stacks.config import NAMESPACE
from tooling import stackfile
from tooling.fakes import fake_call, fake_outputs

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG = rpc._special_secret_sig
UNKNOWN = rpc.UNKNOWN


@dataclass
class Registration:
    """One RegisterResource call as the engine would see it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    additional_secret_outputs: list[str]
    deleted_with: str
    provider: str
    ignore_changes: list[str]
    replace_on_changes: list[str]
    delete_before_replace: bool
    retain_on_delete: bool
    secret_paths: list[str]

    def is_secret(self, prop: str) -> bool:
        """True when input `prop` (or anything inside it) was registered as a secret."""
        return any(p == prop or p.startswith(prop + ".") for p in self.secret_paths)


@dataclass
class Recording:
    """Everything one program run registered."""

    stack: str
    preview: bool
    resources: dict[str, Registration] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)  # what the program logged with pulumi.log.warn

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources.values() if r.type == type_]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.resources.values() if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def children(self, urn: str) -> list[Registration]:
        return [r for r in self.resources.values() if r.parent == urn]

    def descendants(self, urn: str) -> list[Registration]:
        found = []
        for child in self.children(urn):
            found += [child] + self.descendants(child.urn)
        return found

    def ancestors(self, urn: str) -> list[str]:
        chain = []
        parent = self.resources[urn].parent if urn in self.resources else ""
        while parent in self.resources:
            chain.append(parent)
            parent = self.resources[parent].parent
        return chain

    def all_dependencies(self, urn: str) -> set[str]:
        """Direct dependencies of a resource: depends_on and every property dependency."""
        reg = self.resources[urn]
        deps = set(reg.dependencies)
        for urns in reg.property_dependencies.values():
            deps.update(urns)
        if reg.provider:  # "urn::id": the engine creates a resource after its explicit provider
            deps.add(reg.provider.rsplit("::", 1)[0])
        return deps

    def depends_transitively(self, urn: str, on: str) -> bool:
        seen, todo = set(), [urn]
        while todo:
            current = todo.pop()
            for dep in self.all_dependencies(current):
                if dep == on:
                    return True
                if dep not in seen and dep in self.resources:
                    seen.add(dep)
                    todo.append(dep)
        return False


class FakeCloud(pulumi_mocks.Mocks):
    """Provider stand-in: preview leaves computed outputs unknown, up mode fakes them."""

    def __init__(self, preview: bool, previous_outputs: Optional[dict[str, Any]] = None):
        self.preview = preview
        self.previous_outputs = previous_outputs or {}  # the stack's last outputs (a StackReference to itself)

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        if args.typ == "pulumi:pulumi:StackReference":  # read in preview too, as the engine does
            return args.name, {"name": args.name, "outputs": dict(self.previous_outputs), "secretOutputNames": []}
        if self.preview:
            return "", dict(args.inputs)
        return f"{args.name}-id", {**args.inputs, **fake_outputs(args.typ, args.name, args.inputs)}

    def call(self, args: pulumi_mocks.MockCallArgs):
        return fake_call(args.token, args.args)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that keeps every registration and the stack's outputs."""

    def __init__(self, mocks: FakeCloud, recording: Recording):
        super().__init__(mocks)
        self.recording = recording

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw = json_format.MessageToDict(request.object)
        self.recording.resources[response.urn] = Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=request.custom,
            parent=request.parent,
            inputs=_unwrap_secrets(rpc.deserialize_properties(request.object, keep_unknowns=True)),
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            protect=request.protect,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            deleted_with=request.deletedWith,
            provider=request.provider,
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
            delete_before_replace=request.deleteBeforeReplace,
            retain_on_delete=request.retainOnDelete,
            secret_paths=sorted(_secret_paths(raw)),
        )
        return response

    def RegisterResourceOutputs(self, request):
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.outputs)
            self.recording.secret_outputs = {p.split(".")[0] for p in _secret_paths(raw)}
            self.recording.outputs = _unwrap_secrets(rpc.deserialize_properties(request.outputs, keep_unknowns=True))
        return super().RegisterResourceOutputs(request)


def _unwrap_secrets(value: Any) -> Any:
    """Plain values with the secret wrappers removed (which paths were secret is kept apart)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def _secret_paths(value: Any, path: str = "") -> set[str]:
    """Dotted paths of the secret-wrapped values in a serialized property map."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return {path}
        found: set[str] = set()
        for key, item in value.items():
            found |= _secret_paths(item, f"{path}.{key}" if path else key)
        return found
    if isinstance(value, list):
        return {p for i, item in enumerate(value) for p in _secret_paths(item, f"{path}[{i}]")}
    return set()


def run(
    stack: str,
    preview: bool,
    config: Optional[dict[str, str]] = None,
    secret_keys: Optional[list[str]] = None,
    program: Path = ROOT / "__main__.py",
    recording: Optional[Recording] = None,
    previous_outputs: Optional[dict[str, Any]] = None,
) -> Recording:
    """Run the program once under mocks and return what it registered (raises what it raises;
    pass `recording` to see what was registered before the error; `previous_outputs` are what
    the stack's last update exported)."""
    if config is None:
        config, secret_keys = stackfile.read(stack)
    return run_function(lambda: runpy.run_path(str(program), run_name="__main__"), stack, preview,
                        config, secret_keys, recording, previous_outputs)


def run_function(
    function: Callable[[], Any],
    stack: str = "test",
    preview: bool = False,
    config: Optional[dict[str, str]] = None,
    secret_keys: Optional[list[str]] = None,
    recording: Optional[Recording] = None,
    previous_outputs: Optional[dict[str, Any]] = None,
) -> Recording:
    """Run any Pulumi code (a component built from its Args, say) under mocks; what it registered."""
    config = config or {}
    recording = recording or Recording(stack=stack, preview=preview)
    mocks = FakeCloud(preview, previous_outputs)
    monitor = RecordingMonitor(mocks, recording)
    warn = pulumi.log.warn
    pulumi.log.warn = lambda message, *args, **kwargs: recording.warnings.append(message)
    loop = asyncio.new_event_loop()  # a fresh loop per run: no task of an earlier run can leak in
    asyncio.set_event_loop(loop)
    try:
        runtime_config.set_all_config(dict(config), list(secret_keys or []))
        settings.set_root_resource(None)
        pulumi.runtime.set_mocks(mocks, project=NAMESPACE, stack=stack, preview=preview, monitor=monitor)
        settings.set_root_resource(None)  # run_in_stack makes the Stack that carries the exports
        loop.run_until_complete(pulumi.runtime.stack.run_in_stack(function))
    finally:
        pulumi.log.warn = warn
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()
        loop.close()
        asyncio.set_event_loop(None)
    return recording

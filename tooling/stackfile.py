"""Read Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI hands them to the program.

- YAML 1.2, as the CLI's go-yaml v3 reads it: only true/false are booleans (`yes` stays a string).
- A key without a namespace belongs to the project; Pulumi.yaml's `value`s and `default`s come
  first, the stack file overrides them.
- Each key reaches the program as a string: scalars as written, objects and lists as JSON.
- `{secure: v1:…}` may stand for a whole value or sit anywhere inside an object or list
  (`pulumi config set --secret --path`); the whole key is then secret (the CLI's hasSecureValue).
  Offline the ciphertext cannot be decrypted: a deterministic stand-in of the right shape takes its
  place, so the plan shows the configured secret without knowing it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from components.age import identity_from_bytes
from stacks.config import NAMESPACE
from tooling.fakes import ed25519_openssh

ROOT = Path(__file__).resolve().parent.parent
# What an encrypted value becomes offline, by (top-level key, path inside it).
STAND_INS = {
    (f"{NAMESPACE}:ssh", "privateKey"): ed25519_openssh("offline-stand-in")[0],
    (f"{NAMESPACE}:sops", "ageKey"): identity_from_bytes(hashlib.sha256(b"offline-stand-in").digest()),
}
UNKNOWN_SECRET = "secret-unknown-offline"


class StackFileError(Exception):
    """A stack file that cannot be read: missing, or not the shape Pulumi writes."""


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader with YAML 1.2 booleans: yes/no/on/off are plain strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class _Yaml12UniqueLoader(_Yaml12Loader):
    """Refuses a key given twice in one mapping, as go-yaml v3 (the CLI) does."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {seen[key] + 1})", key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_Yaml12UniqueLoader.add_constructor("tag:yaml.org,2002:map", _Yaml12UniqueLoader.construct_yaml_map)


def load_yaml(path: Path) -> Any:
    """The YAML document in `path`; a syntax error is a StackFileError of one line naming the file,
    line and column (`Pulumi.dev.yaml:12:5: …`), as an editor or compiler would."""
    try:
        return yaml.load(path.read_text(), Loader=_Yaml12UniqueLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote or bracket: where it was opened
        where = f"{_shown(path)}:{mark.line + 1}:{mark.column + 1}" if mark else _shown(path)
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise StackFileError(f"{where}: invalid YAML: {' '.join(what.split())}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{_shown(path)}: invalid YAML: {' '.join(str(exc).split())}") from None


def _shown(path: Path) -> str:
    """`path` as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str)


def _stand_in(key: str, value: Any, path: str = "") -> tuple[Any, bool]:
    """`value` with every secure leaf replaced by its stand-in; and whether there was one."""
    if _is_secure(value):
        return STAND_INS.get((key, path), UNKNOWN_SECRET), True
    if isinstance(value, dict):
        pairs = {k: _stand_in(key, v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_stand_in(key, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _encode(value: Any) -> str:
    """How the CLI passes a value: strings as they are, booleans and numbers as YAML wrote them,
    objects and lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def read(stack: str, project_dir: Path = ROOT, stack_dir: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """(config key → value string, secret keys) as the engine would pass them for `stack`."""
    project = load_yaml(project_dir / "Pulumi.yaml")
    name = project["name"]
    values: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(decl, dict) and "value" in decl:
            values[full] = decl["value"]
        elif isinstance(decl, dict) and "default" in decl:
            values[full] = decl["default"]
        elif not isinstance(decl, dict):
            values[full] = decl
    stack_file = (stack_dir or project_dir) / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise StackFileError(f"no stack file {stack_file.name} in {stack_file.parent}: "
                             f"create one with `make stack STACK={stack}` (or `pulumi stack init {stack}`)")
    document = load_yaml(stack_file) or {}
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise StackFileError(f"{stack_file.name}: expected a mapping with a `config:` mapping")
    secret: list[str] = []
    for key, value in (document.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        values[full], is_secret = _stand_in(full, value)
        if is_secret:
            secret.append(full)
    return {k: _encode(v) for k, v in values.items()}, sorted(secret)

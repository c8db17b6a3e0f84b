"""Generated documentation (`make reference`): the configuration reference in
docs/configuration.md, from the config model, and the stage graph in README.md, from the program."""

from __future__ import annotations

import sys
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from stacks.config import StackConfig
from stacks.problems import unwrap_types

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
BEGIN, END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"
GRAPH_BEGIN, GRAPH_END = "<!-- stage-graph:begin -->", "<!-- stage-graph:end -->"


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    kinds = [t for t in unwrap_types(annotation) if t is not type(None)]
    if typing.get_origin(annotation) is list:
        return "list"
    names = []
    for kind in kinds:
        if kind is SecretStr:
            names.append("secret string")
        elif typing.get_origin(kind) is typing.Literal:
            names.append(" \\| ".join(f"`{a}`" for a in typing.get_args(kind)))
        elif typing.get_origin(kind) is dict:
            names.append("map")
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            names.append("object")
        else:
            names.append(getattr(kind, "__name__", str(kind)))
    return " or ".join(names)


def _shown(value) -> str:
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _default(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "—" if field.default_factory in (dict, list) else "see below"
    return "—" if field.default in (None, PydanticUndefined) else _shown(field.default)


def project_defaults() -> dict[str, str]:
    """Defaults Pulumi.yaml declares, by config path (`versions.k0s` for the pinned channel)."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    shown: dict[str, str] = {}
    for key, decl in declared.items():
        if not isinstance(decl, dict):
            continue
        if "default" in decl:
            shown[key] = _shown(decl["default"])
        elif isinstance(decl.get("value"), dict):
            shown[key] = "Pulumi.yaml"
            shown.update({f"{key}.{k}": _shown(v) for k, v in decl["value"].items()})
    return shown


def rows(model: type[BaseModel], prefix: str, defaults: dict[str, str]) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        is_list = typing.get_origin(field.annotation) is list
        shown_key = key + ("[]" if is_list else "")
        out.append(f"| `{shown_key}` | {_type_name(field.annotation)} | {defaults.get(key) or _default(field)} | "
                   f"{field.description or ''} |")
        for sub in unwrap_types(field.annotation):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out += rows(sub, shown_key + ".", defaults)
    return out


def table() -> str:
    header = ["| key (`cluster-bootstrap:`…) | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(header + rows(StackConfig, "", project_defaults()))


def section() -> str:
    return f"{BEGIN}\n{table()}\n{END}"


def stage_graph() -> str:
    """The README's picture of the stages: the program run on the stack `make stack` scaffolds."""
    from tooling import graph, scaffold

    rec = scaffold.example_run()
    return f"{GRAPH_BEGIN}\n```mermaid\n{graph.to_stage_mermaid(rec)}```\n{GRAPH_END}"


def replace(text: str, begin: str, end: str, new: str) -> str:
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + new + text[stop:]


def generated() -> dict[Path, list[tuple[str, str, str]]]:
    """File → (begin marker, end marker, what belongs between them, markers included)."""
    return {CONFIGURATION: [(BEGIN, END, section())], README: [(GRAPH_BEGIN, GRAPH_END, stage_graph())]}


def main() -> int:
    for path, blocks in generated().items():
        text = path.read_text()
        for begin, end, new in blocks:
            text = replace(text, begin, end, new)
        path.write_text(text)
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

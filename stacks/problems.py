"""Configuration problems: one per field path, reported together as a single RunError."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

# Field names whose input must never be echoed back in an error message.
SECRET_NAMES = {"privateKey", "ageKey"}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(pulumi.RunError):
    """Every configuration problem of a stack; Pulumi prints it without a stack trace."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"stack {stack!r}: invalid configuration, {len(problems)} {noun} "
            f"(keys under 'cluster-bootstrap:'):\n{lines}"
        )


def problems_from(exc: ValidationError, prefix: str, annotation: Any) -> list[Problem]:
    """Turn pydantic's errors into Problems with config paths like `nodes[2].role`."""
    problems = []
    for err in exc.errors():
        loc = [part for part in err["loc"] if part != "[key]"]
        path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        problems.append(Problem(path, _message(err, annotation)))
    return problems


def _message(err: dict, annotation: Any) -> str:
    kind, given = err["type"], err.get("input")
    secret = any(p in SECRET_NAMES for p in err["loc"])
    shown = "" if secret else f" (got {given!r})"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(annotation, err["loc"][:-1])
        return f"unknown key; allowed keys: {', '.join(allowed)}"
    if kind == "literal_error":
        return f"{given!r} is not allowed; allowed: {err['ctx']['expected']}"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind == "bool_type":
        return f"must be true or false{shown}"
    if kind == "int_type":
        return f"must be a whole number, not {type(given).__name__}{shown}"
    if kind == "string_type":
        return f"must be a string, not {type(given).__name__}{shown}"
    message = err["msg"]
    return message[0].lower() + message[1:] + shown


def _allowed_keys(annotation: Any, loc: tuple) -> list[str]:
    """The config keys the model at `loc` (inside `annotation`) accepts."""
    model = _model_at(annotation, list(loc))
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(annotation: Any, loc: list) -> type[BaseModel] | None:
    while loc and isinstance(loc[0], int):  # list indexes select the item type
        loc = loc[1:]
    for candidate in unwrap_types(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if not loc:
                return candidate
            for name, field in candidate.model_fields.items():
                if loc[0] in (name, field.alias):
                    return _model_at(field.annotation, loc[1:])
    return None


def unwrap_types(annotation: Any) -> list:
    """The concrete types an annotation may hold: Optional[X] → X, list[X] → X, Annotated[X] → X."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return unwrap_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, list) or isinstance(annotation, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in unwrap_types(arg)]
    return [annotation]

"""YAML files validated by pydantic, with errors that name file, line and field.

``load_model(path, Model)`` reads a YAML mapping, remembers the line of every
key, validates it with ``Model`` and turns a ``ValidationError`` into a
:class:`~agent.errors.ConfigError` whose lines look like::

    /etc/fleet-agent/config.yaml:14: snmp.port: Input should be less than or equal to 65535
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
SECRET_KEYS = frozenset({"community", "auth_key", "priv_key", "password", "passphrase", "key"})
Loc = tuple[str | int, ...]


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines)


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[Loc, int]]:
    """The mapping in ``path`` and the line of every key and item in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", path=str(path)) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}", path=str(path)) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: expected a mapping of settings at the top, got {type(data).__name__}",
            path=str(path),
        )
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc`` or of its nearest ancestor that is in the file."""
    probe = tuple(loc)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return lines.get(())


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def file_places(path: Path, lines: Mapping[Loc, int]) -> Callable[[Loc], str]:
    """``loc -> "file:line"`` for error messages."""

    def where(loc: Loc) -> str:
        line = line_of(lines, loc)
        return f"{path}:{line}" if line is not None else str(path)

    return where


def describe_errors(exc: ValidationError, where: Callable[[Loc], str]) -> list[str]:
    messages = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling; see `fleet-agent config example`)"
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        if error["type"] in ("missing", "extra_forbidden") or SECRET_KEYS & {str(p) for p in loc}:
            shown = ""  # never echo a secret back, not even a wrong one
        field = f"{format_loc(loc)}: " if loc else ""
        messages.append(f"{where(loc)}: {field}{message}{shown}")
    return messages


def validate(model: type[M], data: Any, path: Path, where: Callable[[Loc], str]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_errors(exc, where)), path=str(path)) from exc


def load_model(path: Path, model: type[M]) -> M:
    data, lines = read_yaml(path)
    return validate(model, data, path, file_places(path, lines))

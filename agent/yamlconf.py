"""YAML files validated by pydantic, with errors that name file, line and field.

The one loader behind the agent configuration and the contract policy. Every
problem becomes a line of a :class:`~agent.errors.ConfigError`::

    /etc/fleet-agent/config.yaml:14: snmp.port: must be at most 65535 (got 70000)

A key given twice in one mapping is an error (PyYAML would silently keep the
second), and so is a file that is not UTF-8 or not a mapping at the top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.errors import ConfigError
from agent.validation import describe, dotted

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
#: Keys whose values are never echoed back in an error, not even a wrong one.
SECRET_KEYS = frozenset({"community", "auth_key", "priv_key", "password", "passphrase", "key"})


class YamlDocument:
    """A parsed YAML mapping and the node tree it came from (for line numbers)."""

    def __init__(self, data: dict[str, Any], root: yaml.Node, source: str) -> None:
        self.data = data
        self.root = root
        self.source = source

    def node_for(self, loc: Sequence[str | int]) -> yaml.Node:
        """The deepest node on the path ``loc`` (the key, or the parent, when it is missing)."""
        node = self.root
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                found = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
                if found is None:
                    key = next(
                        (k for k, _ in node.value if getattr(k, "value", None) == part), None
                    )
                    return key if key is not None else node
                node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return node
                node = node.value[part]
            else:
                return node
        return node

    def line_of(self, loc: Sequence[str | int]) -> int:
        return int(self.node_for(loc).start_mark.line) + 1

    def place(self, loc: Sequence[str | int]) -> str:
        """``"file:line"`` of ``loc``."""
        return f"{self.source}:{self.line_of(loc)}"


def _duplicate_keys(node: yaml.Node, source: str) -> list[str]:
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    problems.append(
                        f"{source}:{key.start_mark.line + 1}: {key.value}: appears twice in one "
                        "mapping (the second would silently win)"
                    )
                seen.add(key.value)
            problems.extend(_duplicate_keys(value, source))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems.extend(_duplicate_keys(item, source))
    return problems


def parse_yaml(text: str, *, source: str, what: str = "file") -> YamlDocument:
    """A YAML mapping from ``text``; :class:`ConfigError` names ``source`` and the line."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise ConfigError(f"{source}:1: the {what} is empty", path=source)
            problems = _duplicate_keys(root, source)
            if problems:
                raise ConfigError("\n".join(problems), path=source)
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable YAML"
        if exc.context_mark is not None and "quoted scalar" in (exc.context or ""):
            # An unclosed quote: PyYAML notices it where the file (or the line) ends;
            # the place to fix is where the quote opened.
            mark = exc.context_mark
            problem = f"a quoted string opened here is not closed ({problem})"
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {problem}", path=source) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}", path=source) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}:{root.start_mark.line + 1}: the {what} must be a mapping of fields "
            f"(got {type(data).__name__})",
            path=source,
        )
    return YamlDocument(data, root, source)


def read_yaml(path: Path, *, what: str = "file") -> YamlDocument:
    """Read ``path`` (UTF-8, a BOM allowed) and parse it with :func:`parse_yaml`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read {what}: {exc.strerror or exc}", path=str(path)
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: the {what} is not UTF-8", path=str(path)) from exc
    return parse_yaml(text, source=str(path), what=what)


def describe_errors(exc: ValidationError, where: Callable[[Loc], str]) -> list[str]:
    """One ``place: field: problem`` line per pydantic error."""
    lines = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        # describe() never echoes a mapping: hand it one in place of a secret's value
        shown = {**error, "input": {}} if SECRET_KEYS & {str(p) for p in loc} else error
        field = f"{dotted(loc)}: " if loc else ""
        lines.append(f"{where(loc)}: {field}{describe(shown)}")
    return lines


def validate(model: type[M], data: Any, where: Callable[[Loc], str], *, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_errors(exc, where)), path=source) from exc


def load_model(path: Path, model: type[M], *, what: str = "file") -> M:
    document = read_yaml(path, what=what)
    return validate(model, document.data, document.place, source=document.source)

"""Pydantic validation errors turned into short sentences a provider can act on."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import ErrorDetails

_MAX_SHOWN = 60


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def describe(error: ErrorDetails) -> str:
    """``"must be a positive integer (got -5)"`` for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    # A whole mapping (a model-level check) is not worth repeating back.
    got = "" if isinstance(value, dict) else f" (got {_shown(value)})"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "greater_than" and ctx.get("gt") == 0:
        return f"must be a positive integer{got}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {
            "greater_than": "more than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        limit = next(iter(ctx.values()), "?")
        shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
        return f"must be {bound} {shown}{got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer{got}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number{got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false{got}"
    if kind in ("string_type",):
        return f"must be text{got}"
    if kind == "string_too_short":
        return f"must not be empty{got}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"must list at least {least} item{'s' if least != 1 else ''}{got}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list{got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of fields{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}{got}"
    if kind in ("value_error", "assertion_error"):
        reason = str(ctx.get("error", error["msg"]))
        return f"{reason}{got}"
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}{got}"


def dotted(loc: Sequence[int | str]) -> str:
    """``("models", 2, "vendor")`` to ``"models[2].vendor"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"

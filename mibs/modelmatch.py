"""Matching a device's vendor and model against a contract's model list.

One implementation for the eligibility policy's ``models`` and the billing
block's per-model overrides (``mibs.metering``), so a model a contract names
matches the same devices everywhere, on the agent and in the backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: A non-empty name after stripping whitespace (a blank list entry is a mistake, not a wildcard).
Name = Annotated[str, Field(min_length=1)]


def normalise(text: str) -> str:
    """Case-folded, whitespace collapsed: how names are compared."""
    return " ".join(text.casefold().split())


def model_matches(
    vendor_pattern: str,
    names: Iterable[str],
    patterns: Iterable[str],
    vendor: str,
    model: str,
) -> bool:
    """Whether ``vendor``/``model`` match a rule's vendor pattern and model names or patterns.

    Comparison is case-insensitive with whitespace collapsed; a model reported with the
    vendor in front ("HP LaserJet M130nw") matches a rule naming "LaserJet M130nw".
    """
    vendor_n, model_n = normalise(vendor), normalise(model)
    if not fnmatchcase(vendor_n, normalise(vendor_pattern)):
        return False
    candidates = {model_n}
    for prefix in (vendor_n, normalise(vendor_pattern)):
        if model_n.startswith(prefix + " "):
            candidates.add(model_n[len(prefix) + 1 :])
    if candidates & {normalise(name) for name in names}:
        return True
    return any(
        fnmatchcase(candidate, normalise(pattern))
        for candidate in candidates
        for pattern in patterns
    )


class ModelMatch(BaseModel):
    """Models of one vendor: exact names and/or shell-style patterns (base of model rules)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    vendor: str = Field(min_length=1, description="Vendor name or pattern, case-insensitive.")
    names: tuple[Name, ...] = Field(default=(), description="Exact model names.")
    patterns: tuple[Name, ...] = Field(
        default=(), description="Shell-style patterns (*, ?, [..]), case-insensitive."
    )

    @model_validator(mode="after")
    def _needs_a_model(self) -> Self:
        if not self.names and not self.patterns:
            raise ValueError("give at least one model in names or patterns")
        return self

    def matches(self, vendor: str, model: str) -> bool:
        return model_matches(self.vendor, self.names, self.patterns, vendor, model)

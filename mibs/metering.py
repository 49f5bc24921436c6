"""Contract meter types: what a provider bills, as expressions over a read's device meters.

A contract bills meter types of its own (``mono``, ``colour_level_1_2``,
``large``...). The policy file's ``billing`` block maps each to an expression
over the device meters of the read (the names of :data:`mibs.models.CounterName`)::

    billing:
      meter_types:
        mono: mono
        colour: color
        colour_level_1_2: color_tier_1 + color_tier_2
      models:                       # per-model overrides: the first rule that matches wins
        - vendor: Xerox
          patterns: ["AltaLink C8*"]
          meter_types: {colour: color_tier_1 + color_tier_2 + color_tier_3}

An expression is a sum or difference of terms, each a meter name with an
optional whole-number factor (``2 * large``, ``total - color``). Its value is
``None`` when any meter it names is missing from the read: a contract meter is
never filled with a guess.

Pure: the agent (eligibility reason ``billing_meter_missing``, the jump ceiling
of :mod:`mibs.meter_anomalies`) and the backend (the billing export) import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    field_validator,
    model_serializer,
    model_validator,
)

from mibs.modelmatch import ModelMatch
from mibs.models import CounterName

#: Every device meter an expression may name (the read's counters).
METER_NAMES: tuple[str, ...] = get_args(CounterName)
#: Pages per minute assumed when neither the contract nor a model rule gives one: above
#: the fastest office and light-production engines (about 100-150 ppm), so a plausible
#: read is never flagged; a contract that knows its models should set a tighter value.
DEFAULT_PAGES_PER_MINUTE = 300
#: What the billing export does with devices: ``managed`` bills the devices listed in
#: the policy's ``managed`` list, ``all`` every device that has reads.
ContractScope = Literal["managed", "all"]

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*]))")
_TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class MeterTerm(_Frozen):
    factor: int = Field(description="Whole-number factor; negative for a subtracted term.")
    meter: str = Field(description="Device meter name (counters field).")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise ValueError(f"unexpected {stripped[position:].strip()[:20]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_terms(text: str) -> tuple[MeterTerm, ...]:
    """``"color_tier_1 + 2 * large - scan"`` -> terms; ValueError naming what is wrong."""
    tokens = _tokens(text)
    if not tokens:
        raise ValueError("empty meter expression")
    terms: list[MeterTerm] = []
    sign = 1
    index = 0
    while index < len(tokens):
        if terms:
            kind, value = tokens[index]
            if kind != "op" or value == "*":
                raise ValueError(f"expected + or - before {value!r} in {text!r}")
            sign = 1 if value == "+" else -1
            index += 1
        factor, meter = 1, None
        group = tokens[index : index + 3]
        kinds = [kind for kind, _ in group]
        if kinds[:3] == ["number", "op", "name"] and group[1][1] == "*":
            factor, meter, index = int(group[0][1]), group[2][1], index + 3
        elif kinds[:3] == ["name", "op", "number"] and group[1][1] == "*":
            meter, factor, index = group[0][1], int(group[2][1]), index + 3
        elif kinds[:1] == ["name"]:
            meter, index = group[0][1], index + 1
        else:
            found = group[0][1] if group else "the end"
            raise ValueError(f"expected a meter name at {found!r} in {text!r}")
        if meter not in METER_NAMES:
            raise ValueError(f"unknown meter {meter!r} (device meters: {', '.join(METER_NAMES)})")
        if factor == 0:
            raise ValueError(f"a factor of 0 in {text!r} bills nothing; remove the term")
        terms.append(MeterTerm(factor=sign * factor, meter=meter))
    return tuple(terms)


class MeterExpression(_Frozen):
    """One contract meter type's formula; written in YAML and JSON as its text."""

    text: str
    terms: tuple[MeterTerm, ...]

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return {"text": " ".join(value.split()), "terms": parse_terms(value)}
        if isinstance(value, int | float | bool) or value is None:
            raise ValueError("write a meter expression such as 'color_tier_1 + color_tier_2'")
        return value

    @model_serializer(mode="plain")
    def _as_text(self) -> str:
        return self.text

    @property
    def meters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(term.meter for term in self.terms))

    def missing(self, meters: Mapping[str, int | None]) -> tuple[str, ...]:
        """The meters this expression needs that ``meters`` lacks (None or absent)."""
        return tuple(name for name in self.meters if meters.get(name) is None)

    def value(self, meters: Mapping[str, int | None]) -> int | None:
        """The expression's value for one read's meters; None when a meter is missing."""
        total = 0
        for term in self.terms:
            reading = meters.get(term.meter)
            if reading is None:
                return None
            total += term.factor * reading
        return total


def device_meters(counters: Mapping[str, Any]) -> dict[str, int | None]:
    """The device meters of a read's ``counters`` JSON object (``unit`` and the like dropped)."""
    return {
        name: value
        for name, value in counters.items()
        if name in METER_NAMES and (value is None or type(value) is int)
    }


def _type_names(value: dict[str, MeterExpression]) -> dict[str, MeterExpression]:
    bad = [name for name in value if not _TYPE_NAME.match(name)]
    if bad:
        raise ValueError(
            f"meter type name {bad[0]!r}: use letters, digits, '_', '.' or '-' (at most 64)"
        )
    return value


class BillingModelRule(ModelMatch):
    """Per-model settings: the models are named as in the eligibility ``models`` list."""

    pages_per_minute: PositiveInt | None = Field(
        default=None, description="The engine's rated speed: the jump check's ceiling."
    )
    meter_types: dict[str, MeterExpression] = Field(
        default_factory=dict, description="Overrides of the contract's meter types."
    )


class BillingPolicy(_Frozen):
    """The policy file's ``billing`` block."""

    meter_types: dict[str, MeterExpression] = Field(
        description="Contract meter type -> expression over device meters."
    )
    pages_per_minute: PositiveInt = Field(
        default=DEFAULT_PAGES_PER_MINUTE,
        description="Ceiling of pages per minute for the implausible-jump check.",
    )
    under_contract: ContractScope = Field(
        default="managed", description="managed: the devices listed in `managed`; all: every one."
    )
    models: tuple[BillingModelRule, ...] = ()

    @field_validator("meter_types")
    @classmethod
    def _some_types(cls, value: dict[str, MeterExpression]) -> dict[str, MeterExpression]:
        if not value:
            raise ValueError("map at least one contract meter type")
        return _type_names(value)

    @model_validator(mode="after")
    def _overrides_known(self) -> Self:
        for number, rule in enumerate(self.models):
            unknown = sorted(set(rule.meter_types) - set(self.meter_types))
            if unknown:
                raise ValueError(
                    f"models[{number}].meter_types: {', '.join(unknown)} is not a meter type of "
                    "billing.meter_types (a model rule overrides types, it does not add them)"
                )
        return self

    def rule_for(self, vendor: str | None, model: str | None) -> BillingModelRule | None:
        if not vendor or not model:
            return None
        return next((rule for rule in self.models if rule.matches(vendor, model)), None)

    def meter_types_for(self, vendor: str | None, model: str | None) -> dict[str, MeterExpression]:
        """The contract's meter types with the first matching model rule's overrides."""
        rule = self.rule_for(vendor, model)
        if rule is None or not rule.meter_types:
            return dict(self.meter_types)
        return {**self.meter_types, **rule.meter_types}

    def pages_per_minute_for(self, vendor: str | None, model: str | None) -> int:
        rule = self.rule_for(vendor, model)
        if rule is not None and rule.pages_per_minute is not None:
            return rule.pages_per_minute
        return self.pages_per_minute

    def missing_meters(
        self, vendor: str | None, model: str | None, meters: Mapping[str, int | None]
    ) -> dict[str, tuple[str, ...]]:
        """Meter type -> the device meters it needs that the read lacks (only types lacking)."""
        result = {}
        for name, expression in self.meter_types_for(vendor, model).items():
            missing = expression.missing(meters)
            if missing:
                result[name] = missing
        return result

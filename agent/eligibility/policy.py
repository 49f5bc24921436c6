"""The eligibility policy: one YAML file per contract, validated once.

Every error names the file, the line and the field, e.g.
``policy.yaml:12: max_lifetime_pages: must be a positive integer (got -5)``.
The reference for every field is docs/eligibility.md; docs/examples/policy.yaml
is a commented example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from packaging.version import InvalidVersion, Version
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    field_validator,
    model_validator,
)

from agent.eligibility.contacts import Contact
from agent.yamlconf import load_model, parse_yaml, validate
from mibs.forecast import ForecastSettings
from mibs.metering import BillingPolicy
from mibs.modelmatch import ModelMatch, Name, normalise
from mibs.status import ERROR_BITS
from mibs.supplies import SUPPLY_TYPES

#: hrPrinterDetectedErrorState bit names (RFC 2790, bits 0-14, MSB first) as reads carry them.
ERROR_STATE_NAMES = tuple(ERROR_BITS[bit] for bit in sorted(ERROR_BITS))
#: The same names as a type, so a policy naming an unknown bit fails validation
#: (tests/unit/test_eligibility_policy.py checks it stays equal to mibs.status.ERROR_BITS).
ErrorStateName = Literal[
    "low_paper",
    "no_paper",
    "low_toner",
    "no_toner",
    "door_open",
    "jammed",
    "offline",
    "service_requested",
    "input_tray_missing",
    "output_tray_missing",
    "marker_supply_missing",
    "output_near_full",
    "output_full",
    "input_tray_empty",
    "overdue_prevent_maint",
]
#: PrtAlertSeverityLevelTC (RFC 3805): other(1), critical(3), warning(4),
#: warningBinaryChangeEvent(5).
AlertSeverity = Literal["other", "critical", "warning", "warning_binary_change_event"]


def _version_text(value: object, what: str) -> object:
    if isinstance(value, float):
        # pydantic reports ValueError as a validation error; TypeError would escape.
        raise ValueError(  # noqa: TRY004
            f"write the {what} in quotes (YAML reads {value!r} as a number)"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def known_supply_types(value: tuple[str, ...]) -> tuple[str, ...]:
    """``value`` when every name is an RFC 3805 supply type, else a ValueError naming them."""
    known = set(SUPPLY_TYPES.values())
    unknown = [kind for kind in value if kind not in known]
    if unknown:
        raise ValueError(
            f"unknown supply type {', '.join(unknown)} (RFC 3805 names in snake_case, "
            "e.g. toner, toner_cartridge, ink, ink_cartridge, opc)"
        )
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ModelRule(ModelMatch):
    """Supported models of one vendor: exact names and/or shell-style patterns."""

    max_lifetime_pages: PositiveInt | None = Field(
        default=None, description="Overrides the global maximum for these models."
    )


class HealthPolicy(_Frozen):
    """What a device must not show to pass the health check."""

    disqualifying_errors: tuple[ErrorStateName, ...] = Field(
        default=(), description="hrPrinterDetectedErrorState bits that disqualify."
    )
    disqualifying_alert_severities: tuple[AlertSeverity, ...] = Field(
        default=(), description="Active prtAlertTable severities that disqualify."
    )
    min_supply_percent: float | None = Field(
        default=None, ge=0, le=100, description="Every checked supply must have at least this."
    )
    supply_types: tuple[str, ...] = Field(
        default=(),
        description="Supply types the percent check covers; empty = every consumed supply.",
    )

    @field_validator("supply_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return known_supply_types(value)


# --- replenishment (supplies) -------------------------------------------------------------

#: Supply types ordered automatically unless the policy lists others.
ORDERED_SUPPLY_TYPES = ("toner", "toner_cartridge", "ink", "ink_cartridge")


class ReplenishmentPolicy(ForecastSettings):
    """When to order a cartridge (docs/eligibility.md, "Replenishment").

    The forecast settings (lead time, safety days, minimum history, emergency
    level) plus which supply types are ordered at all.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    supply_types: tuple[str, ...] = Field(
        default=ORDERED_SUPPLY_TYPES, description="Supply types ordered automatically."
    )

    @field_validator("supply_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return known_supply_types(value)

    def settings(self) -> ForecastSettings:
        """The forecast's part of the section."""
        return ForecastSettings.model_validate(
            self.model_dump(include=set(ForecastSettings.model_fields))
        )


class Policy(_Frozen):
    """One contract's eligibility rules. ``version`` is recorded on every verdict."""

    version: str = Field(min_length=1, description="Recorded on every verdict.")
    site: str | None = None
    models: tuple[ModelRule, ...]
    max_lifetime_pages: PositiveInt | None = Field(
        default=None, description="Global maximum of the lifetime page count."
    )
    minimum_agent_version: str | None = None
    require_serial: bool = True
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    contacts: tuple[Contact, ...] = ()
    managed: tuple[Name, ...] = Field(default=(), description="Device ids or serials managed.")
    pending: tuple[Name, ...] = Field(default=(), description="Device ids or serials pending.")
    technician_visit_threshold: PositiveInt = Field(
        default=10, description="More eligible devices than this: technician visit."
    )
    billing: BillingPolicy | None = Field(
        default=None,
        description="Contract meter types and the meter checks of the billing export.",
    )
    replenishment: ReplenishmentPolicy = Field(
        default_factory=ReplenishmentPolicy, description="When cartridges are ordered."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        return _version_text(value, "version")

    @field_validator("models")
    @classmethod
    def _some_models(cls, value: tuple[ModelRule, ...]) -> tuple[ModelRule, ...]:
        # Checked here, not with min_length: that also fires when one item is merely invalid.
        if not value:
            raise ValueError("list at least one supported model")
        return value

    @field_validator("minimum_agent_version", mode="before")
    @classmethod
    def _agent_version(cls, value: object) -> object:
        value = _version_text(value, "minimum_agent_version")
        if isinstance(value, str):
            try:
                Version(value)
            except InvalidVersion as exc:
                raise ValueError("not a version number like '0.4.1'") from exc
        return value

    @model_validator(mode="after")
    def _managed_or_pending(self) -> Self:
        both = {normalise(item) for item in self.managed} & {
            normalise(item) for item in self.pending
        }
        if both:
            raise ValueError(f"listed both as managed and as pending: {', '.join(sorted(both))}")
        return self

    def model_rule_for(self, vendor: str, model: str) -> ModelRule | None:
        return next((rule for rule in self.models if rule.matches(vendor, model)), None)


# --- loading -----------------------------------------------------------------------------


def parse_policy(text: str, *, source: str = "policy.yaml") -> Policy:
    """Validate policy YAML text; raises :class:`ConfigError` naming file, line and field."""
    document = parse_yaml(text, source=source, what="policy file")
    return validate(Policy, document.data, document.place, source=source)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file (see :func:`parse_policy`)."""
    return load_model(path, Policy, what="policy file")

"""What the eligibility engine hands out: verdicts, reasons, and the fleet report.

The verdict's JSON form is part of every read the agent prints or uploads::

    {"eligible": false,
     "reasons": [{"code": "lifetime_count_over_max", "message": "..."}],
     "policy_version": "2026.11"}

A reason for ``failed_health_check`` also carries ``"check"`` (which check
failed, e.g. ``"error_state.no_toner"``); no other reason has that key.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

ReasonCode = Literal[
    "not_a_printer",
    "model_not_supported",
    "lifetime_count_missing",
    "lifetime_count_over_max",
    "serial_missing",
    "serial_duplicate",
    "no_supplies_contact",
    "agent_below_minimum",
    "failed_health_check",
    "already_managed",
    "management_pending",
]

#: Every reason code in the order reasons are listed on a verdict.
REASON_CODES: tuple[ReasonCode, ...] = get_args(ReasonCode)

OnboardingMethod = Literal["technician_visit", "self_entitlement"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(_Frozen):
    """One reason a device is not eligible: a stable code and a human sentence."""

    code: ReasonCode
    message: str = Field(min_length=1)
    check: str | None = Field(
        default=None, description="Which health check failed (failed_health_check only)."
    )

    @model_serializer(mode="wrap")
    def _drop_empty_check(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("check") is None:
            data.pop("check", None)
        return data


class Verdict(_Frozen):
    """The eligibility of one device under one policy version."""

    eligible: bool
    reasons: tuple[Reason, ...] = ()
    policy_version: str

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(reason.code for reason in self.reasons)


class FleetFlag(_Frozen):
    """A fleet-level finding about one device that does not by itself decide eligibility."""

    code: Literal["model_group_incomplete"]
    message: str


class DeviceReport(_Frozen):
    """One row of the fleet report."""

    device_id: str
    address: str
    serial: str | None
    vendor: str | None
    model: str | None
    location: str | None
    start_page_count: int | None = Field(
        description="counters.total of the earliest read of this device."
    )
    verdict: Verdict
    flags: tuple[FleetFlag, ...] = ()


class ModelGroupGap(_Frozen):
    """Devices of one make and model at one location that are not all entitled together."""

    vendor: str | None
    model: str | None
    location: str | None
    entitled: tuple[str, ...] = Field(description="Device ids eligible, managed or pending.")
    left_out: tuple[str, ...] = Field(description="Device ids of the group that are not.")


class SiteSummary(_Frozen):
    site: str | None
    policy_version: str
    devices: int
    eligible: int
    not_eligible: int
    already_managed: int
    management_pending: int
    reason_counts: dict[str, int] = Field(description="Reason code -> devices carrying it.")
    duplicate_serials: dict[str, tuple[str, ...]] = Field(
        description="Serial -> device ids reporting it (only serials seen more than once)."
    )
    model_group_gaps: tuple[ModelGroupGap, ...] = ()
    onboarding_method: OnboardingMethod
    technician_visit_threshold: int = Field(
        description="More eligible devices than this means a technician visit."
    )


class FleetReport(_Frozen):
    devices: tuple[DeviceReport, ...]
    summary: SiteSummary


def verdict_json_schema() -> dict[str, Any]:
    """JSON Schema of a verdict's JSON form (the ``"eligibility"`` object of a read).

    For the read schema's owner to embed; every top-level key is always written.
    """
    schema = Verdict.model_json_schema()
    schema["required"] = ["eligible", "reasons", "policy_version"]
    return schema

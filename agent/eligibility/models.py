"""What the eligibility engine hands out: verdicts, reasons, and the fleet report.

The verdict itself (:class:`Verdict`, :class:`Reason`, the reason codes) is part
of the read's wire form, so it lives in :mod:`mibs.verdict` (the backend parses
it without importing ``agent``) and is re-exported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mibs.verdict import REASON_CODES, Reason, ReasonCode, Verdict, verdict_json_schema

__all__ = [
    "REASON_CODES",
    "DeviceReport",
    "FleetFlag",
    "FleetReport",
    "ModelGroupGap",
    "OnboardingMethod",
    "Reason",
    "ReasonCode",
    "SiteSummary",
    "Verdict",
    "verdict_json_schema",
]

OnboardingMethod = Literal["technician_visit", "self_entitlement"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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

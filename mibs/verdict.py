"""The eligibility verdict as it travels with a read: reason codes, reasons, verdict.

The engine that decides a verdict lives in ``agent.eligibility``; the verdict's
*shape* lives here, beside the read model, because it is part of the read's wire
form (the optional ``"eligibility"`` object of ``docs/schema/read.schema.json``)
and the reference backend (which never imports ``agent``) parses it::

    {"eligible": false,
     "reasons": [{"code": "lifetime_count_over_max", "message": "..."}],
     "policy_version": "2026.11"}

A reason for ``failed_health_check`` also carries ``"check"`` (which check
failed, e.g. ``"error_state.no_toner"``); no other reason has that key.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from mibs.models import Frozen

ReasonCode = Literal[
    "not_a_printer",
    "model_not_supported",
    "lifetime_count_missing",
    "lifetime_count_over_max",
    "billing_meter_missing",
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


class Reason(Frozen):
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


class Verdict(Frozen):
    """The eligibility of one device under one policy version."""

    eligible: bool
    reasons: tuple[Reason, ...] = ()
    policy_version: str

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(reason.code for reason in self.reasons)


def verdict_json_schema() -> dict[str, Any]:
    """JSON Schema of a verdict's JSON form (the ``"eligibility"`` object of a read).

    For the read schema's owner to embed; every top-level key is always written.
    """
    schema = Verdict.model_json_schema()
    schema["required"] = ["eligible", "reasons", "policy_version"]
    return schema

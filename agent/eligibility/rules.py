"""Per-device rules: one read, one policy, one verdict with every reason that applies.

The rules are a table (:data:`RULES`), applied in the order of
:data:`agent.eligibility.models.REASON_CODES`. Each rule looks at a
:class:`DeviceFacts` and returns the reasons it finds; a device is eligible
when no rule finds anything. Missing data is never silently eligible: a rule
that needs a field the device did not report finds a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from packaging.version import InvalidVersion, Version

from agent import __version__
from agent.eligibility.contacts import Contact
from agent.eligibility.models import Reason, ReasonCode, Verdict
from agent.eligibility.policy import Policy
from mibs.modelmatch import normalise
from mibs.models import PrinterRead, Supply


@dataclass(frozen=True)
class DeviceFacts:
    """Everything the rules may look at for one device."""

    read: PrinterRead
    policy: Policy
    device_id: str | None
    contacts: tuple[Contact, ...]
    agent_version: str = __version__
    #: Other devices of the site reporting the same serial (filled by the fleet rules).
    duplicate_of: tuple[str, ...] = ()

    @property
    def vendor(self) -> str | None:
        return _present(self.read.identity.vendor)

    @property
    def model(self) -> str | None:
        return _present(self.read.identity.model)

    @property
    def serial(self) -> str | None:
        return _present(self.read.identity.serial)

    def keys(self) -> set[str]:
        """Names a policy or contact list may use for this device: id, serial, address."""
        candidates = (self.device_id, self.serial, self.read.address)
        return {normalise(key) for key in candidates if key}


def _present(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").casefold()


Rule = Callable[[DeviceFacts], list[Reason]]


def _reason(code: ReasonCode, message: str, check: str | None = None) -> Reason:
    return Reason(code=code, message=message, check=check)


def not_a_printer(facts: DeviceFacts) -> list[Reason]:
    if facts.read.identity.is_printer:
        return []
    return [
        _reason(
            "not_a_printer",
            f"{facts.read.address} answers SNMP but is not a printer "
            "(no hrDevicePrinter row, no Printer-MIB table).",
        )
    ]


def model_not_supported(facts: DeviceFacts) -> list[Reason]:
    vendor, model = facts.vendor, facts.model
    if vendor is None or model is None:
        missing = " and ".join(
            name for name, value in (("vendor", vendor), ("model", model)) if value is None
        )
        return [
            _reason(
                "model_not_supported",
                f"The device did not report its {missing}, so its model cannot be "
                "checked against the supported list.",
            )
        ]
    if facts.policy.model_rule_for(vendor, model) is None:
        return [
            _reason(
                "model_not_supported",
                f"{vendor} {model} is not a supported model under this contract.",
            )
        ]
    return []


def lifetime_count_missing(facts: DeviceFacts) -> list[Reason]:
    if facts.read.counters.total is not None:
        return []
    why = next(
        (
            f" ({problem.reason})"
            for problem in facts.read.problems
            if problem.field == "counters.total" and problem.reason != "missing"
        ),
        "",
    )
    return [
        _reason(
            "lifetime_count_missing",
            f"The device did not report its lifetime page count{why}.",
        )
    ]


def maximum_pages(facts: DeviceFacts) -> tuple[int | None, bool]:
    """(maximum lifetime pages, whether it is the model's own): the matching model rule's
    maximum where it sets one, else the policy's global one."""
    if facts.vendor and facts.model:
        rule = facts.policy.model_rule_for(facts.vendor, facts.model)
        if rule is not None and rule.max_lifetime_pages is not None:
            return rule.max_lifetime_pages, True
    return facts.policy.max_lifetime_pages, False


def lifetime_count_over_max(facts: DeviceFacts) -> list[Reason]:
    total = facts.read.counters.total
    limit, per_model = maximum_pages(facts)
    if total is None or limit is None or total <= limit:
        return []
    whose = (
        f"the maximum of {limit:,} for this model"
        if per_model
        else (f"the contract's maximum of {limit:,}")
    )
    return [_reason("lifetime_count_over_max", f"Lifetime page count {total:,} is over {whose}.")]


def billing_meter_missing(facts: DeviceFacts) -> list[Reason]:
    billing = facts.policy.billing
    if billing is None:
        return []
    meters = facts.read.counters.model_dump(by_alias=True)
    missing = billing.missing_meters(facts.vendor, facts.model, meters)
    return [
        _reason(
            "billing_meter_missing",
            f"The device does not report {', '.join(needs)}, which the contract meter type "
            f"{name} ({billing.meter_types_for(facts.vendor, facts.model)[name].text}) needs.",
        )
        for name, needs in missing.items()
    ]


def serial_missing(facts: DeviceFacts) -> list[Reason]:
    if not facts.policy.require_serial or facts.serial is not None:
        return []
    return [_reason("serial_missing", "The device did not report a serial number.")]


def serial_duplicate(facts: DeviceFacts) -> list[Reason]:
    if not facts.duplicate_of:
        return []
    others = ", ".join(facts.duplicate_of)
    return [
        _reason(
            "serial_duplicate",
            f"Serial {facts.serial} is also reported by {others}; billing needs unique serials.",
        )
    ]


def covers(contact: Contact, facts: DeviceFacts) -> bool:
    if contact.covers_everything:
        return True
    if facts.keys() & {normalise(device) for device in contact.devices}:
        return True
    location = _present(facts.read.identity.location)
    if location is None:
        return False
    return any(
        fnmatchcase(normalise(location), normalise(pattern)) for pattern in contact.locations
    )


def no_supplies_contact(facts: DeviceFacts) -> list[Reason]:
    if any(covers(contact, facts) for contact in facts.contacts):
        return []
    location = _present(facts.read.identity.location)
    where = f"location '{location}'" if location else "this device (it reports no location)"
    return [
        _reason("no_supplies_contact", f"No supplies delivery contact covers {where}."),
    ]


def agent_below_minimum(facts: DeviceFacts) -> list[Reason]:
    minimum = facts.policy.minimum_agent_version
    if minimum is None:
        return []
    try:
        below = Version(facts.agent_version) < Version(minimum)
    except InvalidVersion:
        below = True
    if not below:
        return []
    return [
        _reason(
            "agent_below_minimum",
            f"Agent version {facts.agent_version} is below the contract's minimum {minimum}.",
        )
    ]


def _supply_name(supply: Supply) -> str:
    if supply.description:
        return supply.description
    return " ".join(part for part in (supply.colorant, supply.type) if part)


def _checked_supplies(facts: DeviceFacts) -> list[Supply]:
    wanted = {_snake(kind) for kind in facts.policy.health.supply_types}
    return [
        supply
        for supply in facts.read.supplies
        if supply.supply_class == "consumed" and (not wanted or _snake(supply.type) in wanted)
    ]


def _supply_reasons(facts: DeviceFacts, minimum: float) -> list[Reason]:
    supplies = _checked_supplies(facts)
    if not supplies:
        unreadable = any(p.field.startswith("supplies") for p in facts.read.problems)
        why = "could not be read" if unreadable else "were not reported"
        return [
            _reason(
                "failed_health_check",
                f"Supply levels {why}, so the minimum of {minimum:g}% cannot be checked.",
                "supplies_missing",
            )
        ]
    reasons = []
    for supply in supplies:
        name = _supply_name(supply)
        if supply.percent is not None:
            if supply.percent < minimum:
                reasons.append(
                    _reason(
                        "failed_health_check",
                        f"{name} is at {supply.percent:g}%, below the minimum of {minimum:g}%.",
                        "supply_level",
                    )
                )
        elif supply.state in ("empty", "low"):
            reasons.append(
                _reason(
                    "failed_health_check",
                    f"{name} reports '{supply.state}', below the minimum of {minimum:g}%.",
                    "supply_level",
                )
            )
        elif supply.state == "unknown":
            reasons.append(
                _reason(
                    "failed_health_check",
                    f"{name} does not report its level, so the minimum of {minimum:g}% "
                    "cannot be checked.",
                    "supply_level_unknown",
                )
            )
    return reasons


def failed_health_check(facts: DeviceFacts) -> list[Reason]:
    health = facts.policy.health
    status = facts.read.status
    reasons: list[Reason] = []
    if health.disqualifying_errors or health.disqualifying_alert_severities:
        unreadable = sorted({p.field for p in facts.read.problems if p.field.startswith("status")})
        if unreadable:
            reasons.append(
                _reason(
                    "failed_health_check",
                    f"Printer status could not be read ({', '.join(unreadable)}).",
                    "status_unreadable",
                )
            )
    present = {_snake(error) for error in status.errors}
    for error in health.disqualifying_errors:
        if error in present:
            reasons.append(
                _reason(
                    "failed_health_check",
                    f"The printer reports '{error.replace('_', ' ')}'.",
                    f"error_state.{error}",
                )
            )
    for severity in health.disqualifying_alert_severities:
        alerts = [alert for alert in status.alerts if _snake(alert.severity) == severity]
        if alerts:
            texts = "; ".join(alert.description or alert.code or "no text" for alert in alerts)
            count = f"{len(alerts)} {severity.replace('_', ' ')} alert" + (
                "s" if len(alerts) > 1 else ""
            )
            reasons.append(
                _reason(
                    "failed_health_check",
                    f"The printer has {count} active: {texts}.",
                    f"alert.{severity}",
                )
            )
    if health.min_supply_percent is not None:
        reasons.extend(_supply_reasons(facts, health.min_supply_percent))
    return reasons


def _listed(facts: DeviceFacts, entries: Sequence[str]) -> bool:
    return bool(facts.keys() & {normalise(entry) for entry in entries})


def already_managed(facts: DeviceFacts) -> list[Reason]:
    if not _listed(facts, facts.policy.managed):
        return []
    return [_reason("already_managed", "The device is already under a managed-print contract.")]


def management_pending(facts: DeviceFacts) -> list[Reason]:
    if not _listed(facts, facts.policy.pending):
        return []
    return [_reason("management_pending", "The device's onboarding is already pending.")]


RULES: tuple[tuple[ReasonCode, Rule], ...] = (
    ("not_a_printer", not_a_printer),
    ("model_not_supported", model_not_supported),
    ("lifetime_count_missing", lifetime_count_missing),
    ("lifetime_count_over_max", lifetime_count_over_max),
    ("billing_meter_missing", billing_meter_missing),
    ("serial_missing", serial_missing),
    ("serial_duplicate", serial_duplicate),
    ("no_supplies_contact", no_supplies_contact),
    ("agent_below_minimum", agent_below_minimum),
    ("failed_health_check", failed_health_check),
    ("already_managed", already_managed),
    ("management_pending", management_pending),
)


def evaluate(facts: DeviceFacts) -> Verdict:
    """Apply every rule; eligible when none finds a reason."""
    reasons = [reason for _, rule in RULES for reason in rule(facts)]
    return Verdict(
        eligible=not reasons, reasons=tuple(reasons), policy_version=facts.policy.version
    )


def evaluate_read(
    read: PrinterRead,
    policy: Policy,
    *,
    device_id: str | None = None,
    contacts: tuple[Contact, ...] | None = None,
    agent_version: str = __version__,
) -> Verdict:
    """The verdict for one read on its own (no fleet rules): what ``scan`` and uploads carry.

    ``contacts`` defaults to the policy's own contacts.
    """
    facts = DeviceFacts(
        read=read,
        policy=policy,
        device_id=device_id,
        contacts=policy.contacts if contacts is None else contacts,
        agent_version=agent_version,
    )
    return evaluate(facts)

"""Fleet rules: what only shows across the devices of one site.

* Duplicate serials: every device sharing a serial with another gets
  ``serial_duplicate`` (billing imports key on the serial).
* Model groups: all devices of the same make and model at one location must be
  entitled together. Where some of a group are entitled (eligible, managed or
  pending) and some are not, the ones left out are flagged.
* Onboarding method: more eligible devices than the policy's
  ``technician_visit_threshold`` (10) means a technician visit; otherwise the
  site gets self-entitlement packets.

Reads are grouped into devices by :func:`mibs.identity.stable_device_id`; two
reads with the same id but different MAC addresses are two devices (that is
how a duplicate serial shows; ids follow the inventory's convention,
``<id>~<mac digits>`` for the later ones). The verdict uses a device's latest read; its
start page count is ``counters.total`` of its earliest read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from agent import __version__
from agent.eligibility.contacts import Contact
from agent.eligibility.models import (
    DeviceReport,
    FleetFlag,
    FleetReport,
    ModelGroupGap,
    SiteSummary,
    Verdict,
)
from agent.eligibility.policy import Policy
from agent.eligibility.rules import DeviceFacts, evaluate
from collectors.targets import address_key
from mibs.identity import stable_device_id
from mibs.modelmatch import normalise
from mibs.models import Identity, PrinterRead

DeviceIdFunction = Callable[[Identity], str | None]


@dataclass(frozen=True)
class Device:
    """All reads of one device, oldest first."""

    device_id: str
    reads: tuple[PrinterRead, ...]

    @property
    def latest(self) -> PrinterRead:
        return self.reads[-1]

    @property
    def start_page_count(self) -> int | None:
        return next((r.counters.total for r in self.reads if r.counters.total is not None), None)


def group_devices(
    reads: Iterable[PrinterRead], *, device_id_of: DeviceIdFunction = stable_device_id
) -> list[Device]:
    """Reads grouped into devices, in order of first appearance."""
    by_id: dict[str, list[PrinterRead]] = defaultdict(list)
    for read in reads:
        by_id[device_id_of(read.identity) or f"ip:{read.address}"].append(read)
    devices: list[Device] = []
    for device_id, group in by_id.items():
        macs = {normalise(r.identity.mac) for r in group if r.identity.mac}
        if len(macs) <= 1:
            devices.append(Device(device_id, _oldest_first(group)))
            continue
        # One id, several MACs: different hardware reporting the same serial. As in the
        # inventory, the first seen keeps the id, the others become "<id>~<mac digits>";
        # reads without a MAC cannot be told apart and stay with the first.
        by_mac: dict[str | None, list[PrinterRead]] = defaultdict(list)
        for read in _oldest_first(group):
            mac = normalise(read.identity.mac) if read.identity.mac else None
            by_mac[mac].append(read)
        unknown = by_mac.pop(None, [])
        for number, (mac, part) in enumerate(by_mac.items()):
            if number == 0:
                devices.append(Device(device_id, _oldest_first(part + unknown)))
            else:
                devices.append(Device(f"{device_id}~{(mac or '').replace(':', '')}", tuple(part)))
    return devices


def _oldest_first(reads: Sequence[PrinterRead]) -> tuple[PrinterRead, ...]:
    return tuple(sorted(reads, key=lambda read: read.collected_at))


def duplicate_serials(devices: Sequence[Device]) -> dict[str, tuple[str, ...]]:
    """Serial (as first reported) -> ids of the devices reporting it, when more than one."""
    by_serial: dict[str, list[Device]] = defaultdict(list)
    for device in devices:
        serial = device.latest.identity.serial
        if serial and serial.strip():
            by_serial[normalise(serial)].append(device)
    return {
        (group[0].latest.identity.serial or "").strip(): tuple(d.device_id for d in group)
        for group in by_serial.values()
        if len(group) > 1
    }


def _entitled(verdict: Verdict) -> bool:
    return verdict.eligible or bool({"already_managed", "management_pending"} & set(verdict.codes))


def model_group_gaps(reports: Sequence[DeviceReport]) -> list[ModelGroupGap]:
    groups: dict[tuple[str, str, str], list[DeviceReport]] = defaultdict(list)
    for report in reports:
        if report.vendor and report.model and report.location:
            key = (normalise(report.vendor), normalise(report.model), normalise(report.location))
            groups[key].append(report)
    gaps = []
    for members in groups.values():
        entitled = [m.device_id for m in members if _entitled(m.verdict)]
        left_out = [m.device_id for m in members if not _entitled(m.verdict)]
        if entitled and left_out:
            first = members[0]
            gaps.append(
                ModelGroupGap(
                    vendor=first.vendor,
                    model=first.model,
                    location=first.location,
                    entitled=tuple(entitled),
                    left_out=tuple(left_out),
                )
            )
    return gaps


def _flag(gap: ModelGroupGap) -> FleetFlag:
    total = len(gap.entitled) + len(gap.left_out)
    return FleetFlag(
        code="model_group_incomplete",
        message=(
            f"{len(gap.entitled)} of {total} {gap.vendor} {gap.model} at '{gap.location}' "
            "are entitled; devices of one model at one location must be entitled together, "
            "and this one is left out."
        ),
    )


def evaluate_fleet(
    reads: Iterable[PrinterRead],
    policy: Policy,
    *,
    contacts: tuple[Contact, ...] | None = None,
    agent_version: str = __version__,
    device_id_of: DeviceIdFunction = stable_device_id,
) -> FleetReport:
    """Per-device verdicts with the fleet rules applied, and the site summary.

    Devices come in address order (:func:`collectors.targets.address_key`), the
    order of every device listing.
    """
    devices = group_devices(reads, device_id_of=device_id_of)
    duplicates = duplicate_serials(devices)
    sharing: dict[str, tuple[str, ...]] = {}
    for ids in duplicates.values():
        for device_id in ids:
            sharing[device_id] = tuple(other for other in ids if other != device_id)
    reports = []
    for device in devices:
        read = device.latest
        facts = DeviceFacts(
            read=read,
            policy=policy,
            device_id=device.device_id,
            contacts=policy.contacts if contacts is None else contacts,
            agent_version=agent_version,
            duplicate_of=sharing.get(device.device_id, ()),
        )
        identity = read.identity
        reports.append(
            DeviceReport(
                device_id=device.device_id,
                address=read.address,
                serial=identity.serial,
                vendor=identity.vendor,
                model=identity.model,
                location=identity.location,
                start_page_count=device.start_page_count,
                verdict=evaluate(facts),
            )
        )
    gaps = model_group_gaps(reports)
    flagged = {device_id: gap for gap in gaps for device_id in gap.left_out}
    reports = [
        report.model_copy(update={"flags": (_flag(flagged[report.device_id]),)})
        if report.device_id in flagged
        else report
        for report in reports
    ]
    reports.sort(key=lambda report: (address_key(report.address), report.device_id))
    return FleetReport(devices=tuple(reports), summary=_summary(policy, reports, duplicates, gaps))


def _summary(
    policy: Policy,
    reports: Sequence[DeviceReport],
    duplicates: dict[str, tuple[str, ...]],
    gaps: Sequence[ModelGroupGap],
) -> SiteSummary:
    reason_counts: Counter[str] = Counter()
    for report in reports:
        reason_counts.update(set(report.verdict.codes))
    eligible = sum(report.verdict.eligible for report in reports)
    threshold = policy.technician_visit_threshold
    return SiteSummary(
        site=policy.site,
        policy_version=policy.version,
        devices=len(reports),
        eligible=eligible,
        not_eligible=len(reports) - eligible,
        already_managed=reason_counts["already_managed"],
        management_pending=reason_counts["management_pending"],
        reason_counts=dict(sorted(reason_counts.items())),
        duplicate_serials=duplicates,
        model_group_gaps=tuple(gaps),
        onboarding_method="technician_visit" if eligible > threshold else "self_entitlement",
        technician_visit_threshold=threshold,
    )

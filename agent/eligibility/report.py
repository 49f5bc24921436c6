"""The fleet report as an onboarding specialist hands it to the customer.

``table`` (rich, for people), ``json`` (one document: ``devices`` and
``summary``, the :class:`~agent.eligibility.models.FleetReport` model) and
``csv`` (one header and one row per device, the same columns on every row, so
that it opens as one table; the CLI prints the site summary on stderr, as
:func:`summary_lines`).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Literal, TextIO

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from agent.eligibility.models import DeviceReport, FleetReport, SiteSummary, Verdict
from agent.output import OutputError

ReportFormat = Literal["table", "json", "csv"]

CSV_COLUMNS = (
    "device_id",
    "address",
    "serial",
    "vendor",
    "model",
    "location",
    "start_page_count",
    "eligible",
    "reason_codes",
    "reasons",
    "fleet_flags",
)

_METHOD_TEXT = {
    "technician_visit": "technician visit",
    "self_entitlement": "self-entitlement packets",
}


def verdict_cell(verdict: Verdict) -> str:
    """``"eligible"`` or ``"not eligible: model_not_supported, serial_missing"``."""
    if verdict.eligible:
        return "eligible"
    return "not eligible: " + ", ".join(dict.fromkeys(verdict.codes))


def _model(report: DeviceReport) -> str:
    return " ".join(part for part in (report.vendor, report.model) if part) or "-"


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def summary_rows(summary: SiteSummary) -> list[tuple[str, str]]:
    """The site summary as (label, value) pairs, shared by the table and CSV forms."""
    rows = [
        ("site", _text(summary.site)),
        ("policy version", summary.policy_version),
        ("devices", str(summary.devices)),
        ("eligible", str(summary.eligible)),
        ("not eligible", str(summary.not_eligible)),
        ("already managed", str(summary.already_managed)),
        ("management pending", str(summary.management_pending)),
        (
            "onboarding method",
            f"{_METHOD_TEXT[summary.onboarding_method]} ({summary.eligible} eligible; "
            f"more than {summary.technician_visit_threshold} means a technician visit)",
        ),
    ]
    rows += [(f"reason {code}", str(count)) for code, count in summary.reason_counts.items()]
    rows += [
        (f"duplicate serial {serial}", ", ".join(ids))
        for serial, ids in summary.duplicate_serials.items()
    ]
    rows += [
        (
            f"model group {gap.vendor} {gap.model} at {gap.location}",
            f"entitled: {', '.join(gap.entitled)}; left out: {', '.join(gap.left_out)}",
        )
        for gap in summary.model_group_gaps
    ]
    return rows


def report_table(report: FleetReport) -> Group:
    devices = Table(title="Eligibility", show_lines=True)
    for name, justify in (
        ("Device id", "left"),
        ("Serial", "left"),
        ("Model", "left"),
        ("Location", "left"),
        ("Start pages", "right"),
        ("Verdict", "left"),
        ("Reasons", "left"),
    ):
        devices.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in report.devices:
        verdict = row.verdict
        reasons = [reason.message for reason in verdict.reasons]
        reasons += [flag.message for flag in row.flags]
        # Text(), not str: device strings must not be read as rich markup ("[link=...]").
        devices.add_row(
            Text(row.device_id),
            Text(_text(row.serial)),
            Text(_model(row)),
            Text(_text(row.location)),
            "-" if row.start_page_count is None else f"{row.start_page_count:,}",
            Text("eligible", style="green")
            if verdict.eligible
            else Text("not eligible", style="red"),
            Text("\n".join(reasons) or "-"),
        )
    summary = Table(title="Site summary", show_header=False)
    summary.add_column("", style="bold")
    summary.add_column("")
    for label, value in summary_rows(report.summary):
        summary.add_row(Text(label), Text(value))
    return Group(devices, summary)


def report_json(report: FleetReport) -> str:
    return json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """Text a spreadsheet will not run as a formula (OWASP CSV injection).

    Location, model and serial come from the device: a sysLocation of
    ``=HYPERLINK(...)`` must reach the customer's spreadsheet as text.
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_csv(report: FleetReport) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.devices:
        cells = (
            row.device_id,
            row.address,
            row.serial,
            row.vendor,
            row.model,
            row.location,
            row.start_page_count,
            "yes" if row.verdict.eligible else "no",
            " ".join(dict.fromkeys(row.verdict.codes)),
            " | ".join(reason.message for reason in row.verdict.reasons),
            " | ".join(flag.message for flag in row.flags),
        )
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return buffer.getvalue()


def summary_lines(summary: SiteSummary) -> list[str]:
    """The site summary as ``label: value`` lines (beside a CSV, which has no room for it)."""
    return [f"{label}: {value}" for label, value in summary_rows(summary)]


def write_report(stream: TextIO, report: FleetReport, output: ReportFormat) -> None:
    """Render ``report`` onto ``stream`` in the chosen format."""
    if output == "table":
        width = None if stream.isatty() else 200
        console = Console(file=stream, width=width, soft_wrap=False, highlight=False)
        try:
            console.print(report_table(report))
            stream.flush()
        except OSError as exc:
            raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc
        return
    text = report_json(report) + "\n" if output == "json" else report_csv(report)
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc

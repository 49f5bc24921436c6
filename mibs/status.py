"""Printer status: hrPrinterStatus, hrDeviceStatus, error bits and the alert table.

Enumerations are data, each with its source:

* HOST-RESOURCES-MIB (RFC 2790): ``hrPrinterStatus``, ``hrDeviceStatus`` and
  ``hrPrinterDetectedErrorState`` bits 0-7; RFC 3805 section 2.2.13.4 added
  bits 8-14 to the same OCTET STRING.
* IANA-PRINTER-MIB (first published in RFC 3805, now maintained by IANA):
  ``PrtAlertSeverityLevelTC``, ``PrtAlertTrainingLevelTC``,
  ``PrtAlertGroupTC``, ``PrtAlertCodeTC``.

Enum values we do not know are reported as their decimal text (a vendor's own
alert code is not a device error); values outside a *closed* enumeration
(hrPrinterStatus, hrDeviceStatus) are a ``Problem``.
"""

from __future__ import annotations

from mibs.models import Alert, Problem, Status
from mibs.reasons import Reason
from mibs.text import decode_text
from mibs.values import Oid, Value, Varbinds, column, format_oid

HR_DEVICE_STATUS: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5)
HR_PRINTER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 1)
HR_PRINTER_ERROR_STATE: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 2)

# prtAlertEntry (RFC 3805 section 2.2.13, 1.3.6.1.2.1.43.18.1.1), indexed by
# hrDeviceIndex, prtAlertIndex.
PRT_ALERT_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 43, 18, 1, 1)
PRT_ALERT_SEVERITY: Oid = PRT_ALERT_ENTRY + (2,)
PRT_ALERT_TRAINING: Oid = PRT_ALERT_ENTRY + (3,)
PRT_ALERT_GROUP: Oid = PRT_ALERT_ENTRY + (4,)
PRT_ALERT_GROUP_INDEX: Oid = PRT_ALERT_ENTRY + (5,)
PRT_ALERT_LOCATION: Oid = PRT_ALERT_ENTRY + (6,)
PRT_ALERT_CODE: Oid = PRT_ALERT_ENTRY + (7,)
PRT_ALERT_DESCRIPTION: Oid = PRT_ALERT_ENTRY + (8,)
PRT_ALERT_TIME: Oid = PRT_ALERT_ENTRY + (9,)
ALERT_COLUMNS: tuple[Oid, ...] = tuple(PRT_ALERT_ENTRY + (n,) for n in range(2, 10))

# RFC 2790 hrPrinterStatus
PRINTER_STATUS: dict[int, str] = {1: "other", 2: "unknown", 3: "idle", 4: "printing", 5: "warmup"}
# RFC 2790 hrDeviceStatus
DEVICE_STATUS: dict[int, str] = {1: "unknown", 2: "running", 3: "warning", 4: "testing", 5: "down"}

# hrPrinterDetectedErrorState bit -> name. Bit 0 is the most significant bit
# of the first octet (RFC 2790: "bit 0 ... is the most significant bit of the
# first byte"). Bits 0-7 RFC 2790; 8-14 RFC 3805.
ERROR_BITS: dict[int, str] = {
    0: "low_paper",
    1: "no_paper",
    2: "low_toner",
    3: "no_toner",
    4: "door_open",
    5: "jammed",
    6: "offline",
    7: "service_requested",
    8: "input_tray_missing",
    9: "output_tray_missing",
    10: "marker_supply_missing",
    11: "output_near_full",
    12: "output_full",
    13: "input_tray_empty",
    14: "overdue_prevent_maint",
}

# IANA-PRINTER-MIB PrtAlertSeverityLevelTC (2 is reserved)
ALERT_SEVERITY: dict[int, str] = {
    1: "other",
    3: "critical",
    4: "warning",
    5: "warningBinaryChangeEvent",
}

# IANA-PRINTER-MIB PrtAlertTrainingLevelTC
ALERT_TRAINING: dict[int, str] = {
    1: "other",
    2: "unknown",
    3: "untrained",
    4: "trained",
    5: "fieldService",
    6: "management",
    7: "noInterventionRequired",
}

# IANA-PRINTER-MIB PrtAlertGroupTC (2 is reserved; 30-33 Finisher MIB, RFC 3806)
ALERT_GROUP: dict[int, str] = {
    1: "other",
    3: "hostResourcesMIBStorageTable",
    4: "hostResourcesMIBDeviceTable",
    5: "generalPrinter",
    6: "cover",
    7: "localization",
    8: "input",
    9: "output",
    10: "marker",
    11: "markerSupplies",
    12: "markerColorant",
    13: "mediaPath",
    14: "channel",
    15: "interpreter",
    16: "consoleDisplayBuffer",
    17: "consoleLights",
    18: "alert",
    30: "finDevice",
    31: "finSupply",
    32: "finSupplyMediaInput",
    33: "finAttributeTable",
}

# IANA-PRINTER-MIB PrtAlertCodeTC
ALERT_CODE: dict[int, str] = {
    1: "other",
    2: "unknown",
    # codes common to several groups
    3: "coverOpen",
    4: "coverClosed",
    5: "interlockOpen",
    6: "interlockClosed",
    7: "configurationChange",
    8: "jam",
    9: "subunitMissing",
    10: "subunitLifeAlmostOver",
    11: "subunitLifeOver",
    12: "subunitAlmostEmpty",
    13: "subunitEmpty",
    14: "subunitAlmostFull",
    15: "subunitFull",
    16: "subunitNearLimit",
    17: "subunitAtLimit",
    18: "subunitOpened",
    19: "subunitClosed",
    20: "subunitTurnedOn",
    21: "subunitTurnedOff",
    22: "subunitOffline",
    23: "subunitPowerSaver",
    24: "subunitWarmingUp",
    25: "subunitAdded",
    26: "subunitRemoved",
    27: "subunitResourceAdded",
    28: "subunitResourceRemoved",
    29: "subunitRecoverableFailure",
    30: "subunitUnrecoverableFailure",
    31: "subunitRecoverableStorageError",
    32: "subunitUnrecoverableStorageError",
    33: "subunitMotorFailure",
    34: "subunitMemoryExhausted",
    35: "subunitUnderTemperature",
    36: "subunitOverTemperature",
    37: "subunitTimingFailure",
    38: "subunitThermistorFailure",
    # general printer group
    501: "doorOpen",  # deprecated in RFC 3805 for coverOpen(3)
    502: "doorClosed",  # deprecated in RFC 3805 for coverClosed(4)
    503: "powerUp",
    504: "powerDown",
    505: "printerNMSReset",
    506: "printerManualReset",
    507: "printerReadyToPrint",
    # input group
    801: "inputMediaTrayMissing",
    802: "inputMediaSizeChange",
    803: "inputMediaWeightChange",
    804: "inputMediaTypeChange",
    805: "inputMediaColorChange",
    806: "inputMediaFormPartsChange",
    807: "inputMediaSupplyLow",
    808: "inputMediaSupplyEmpty",
    809: "inputMediaChangeRequest",
    810: "inputManualInputRequest",
    811: "inputTrayPositionFailure",
    812: "inputTrayElevationFailure",
    813: "inputCannotFeedSizeSelected",
    # output group
    901: "outputMediaTrayMissing",
    902: "outputMediaTrayAlmostFull",
    903: "outputMediaTrayFull",
    904: "outputMailboxSelectFailure",
    # marker group
    1001: "markerFuserUnderTemperature",
    1002: "markerFuserOverTemperature",
    1003: "markerFuserTimingFailure",
    1004: "markerFuserThermistorFailure",
    1005: "markerAdjustingPrintQuality",
    # marker supplies group
    1101: "markerTonerEmpty",
    1102: "markerInkEmpty",
    1103: "markerPrintRibbonEmpty",
    1104: "markerTonerAlmostEmpty",
    1105: "markerInkAlmostEmpty",
    1106: "markerPrintRibbonAlmostEmpty",
    1107: "markerWasteTonerReceptacleAlmostFull",
    1108: "markerWasteInkReceptacleAlmostFull",
    1109: "markerWasteTonerReceptacleFull",
    1110: "markerWasteInkReceptacleFull",
    1111: "markerOpcLifeAlmostOver",
    1112: "markerOpcLifeOver",
    1113: "markerDeveloperAlmostEmpty",
    1114: "markerDeveloperEmpty",
    1115: "markerTonerCartridgeMissing",
    # media path group
    1301: "mediaPathMediaTrayMissing",
    1302: "mediaPathMediaTrayAlmostFull",
    1303: "mediaPathMediaTrayFull",
    1304: "mediaPathCannotDuplexMediaSelected",
    # interpreter group
    1501: "interpreterMemoryIncrease",
    1502: "interpreterMemoryDecrease",
    1503: "interpreterCartridgeAdded",
    1504: "interpreterCartridgeDeleted",
    1505: "interpreterResourceAdded",
    1506: "interpreterResourceDeleted",
    1507: "interpreterResourceUnavailable",
    1509: "interpreterComplexPageEncountered",
    # alert group
    1801: "alertRemovalOfBinaryChangeEntry",
}


def _problem(field: str, oid: Oid, reason: Reason, detail: str) -> Problem:
    return Problem(field=field, oid=format_oid(oid), reason=reason, detail=detail)


def decode_error_bits(raw: Value) -> tuple[list[str], list[int]]:
    """Named error bits set in ``hrPrinterDetectedErrorState``, and unknown set bits.

    OCTET STRING, bit 0 = MSB of octet 0 (RFC 2790). The second octet may be
    absent (devices predating RFC 3805). An ``int`` (some agents answer one)
    is read as the octets of its minimal big-endian form, i.e. as if the
    same number had been sent as an OCTET STRING.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0:
            raise ValueError(f"negative error state {raw}")
        data = raw.to_bytes(max(1, (raw.bit_length() + 7) // 8), "big")
    elif isinstance(raw, bytes):
        data = raw
    else:
        raise TypeError(f"expected OCTET STRING, got {raw!r:.80}")
    names: list[str] = []
    unknown: list[int] = []
    data = data[:32]  # no defined bit lies beyond octet 2; cap the work on garbage
    for bit in range(len(data) * 8):
        if data[bit // 8] & (0x80 >> (bit % 8)):
            if bit in ERROR_BITS:
                names.append(ERROR_BITS[bit])
            else:
                unknown.append(bit)
    return names, unknown


def _enum(
    problems: list[Problem], field: str, oid: Oid, raw: Value | None, names: dict[int, str]
) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        problems.append(_problem(field, oid, "wrong_type", f"expected an integer, got {raw!r:.80}"))
        return None
    if raw not in names:
        problems.append(_problem(field, oid, "out_of_range", f"value {raw} is not defined"))
        return None
    return names[raw]


def _open_enum(raw: Value | None, names: dict[int, str]) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        return None
    return names.get(raw, str(raw))


def _int_or_none(raw: Value | None) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def decode_alerts(
    varbinds: Varbinds, hr_device_index: int | None
) -> tuple[list[Alert], list[Problem]]:
    """The rows of prtAlertTable belonging to the printer ``hr_device_index``.

    With no index, the rows of the lowest hrDeviceIndex present are used.
    A row needs at least a severity or a code to be reported.
    """
    columns = {prefix: column(varbinds, prefix) for prefix in ALERT_COLUMNS}
    rows = sorted({s for col in columns.values() for s in col if len(s) == 2})
    if hr_device_index is None and rows:
        hr_device_index = rows[0][0]
    problems: list[Problem] = []
    alerts: list[Alert] = []
    for suffix in rows:
        if suffix[0] != hr_device_index:
            continue

        def cell(prefix: Oid, suffix: Oid = suffix) -> Value | None:
            return columns[prefix].get(suffix)

        severity_raw, code_raw = cell(PRT_ALERT_SEVERITY), cell(PRT_ALERT_CODE)
        if severity_raw is None and code_raw is None:
            continue
        severity = _open_enum(severity_raw, ALERT_SEVERITY)
        if severity_raw is not None and severity is None:
            problems.append(
                _problem(
                    "status.alerts.severity",
                    PRT_ALERT_SEVERITY + suffix,
                    "wrong_type",
                    f"expected an integer, got {severity_raw!r:.80}",
                )
            )
        description_raw = cell(PRT_ALERT_DESCRIPTION)
        description = (
            decode_text(description_raw, max_len=255)
            if isinstance(description_raw, bytes | int)
            else None
        )
        alerts.append(
            Alert(
                index=suffix[1],
                severity=severity or "unknown",
                group=_open_enum(cell(PRT_ALERT_GROUP), ALERT_GROUP),
                group_index=_int_or_none(cell(PRT_ALERT_GROUP_INDEX)),
                location=_int_or_none(cell(PRT_ALERT_LOCATION)),
                code=_open_enum(code_raw, ALERT_CODE),
                description=description,
                training_level=_open_enum(cell(PRT_ALERT_TRAINING), ALERT_TRAINING),
                time_ticks=_int_or_none(cell(PRT_ALERT_TIME)),
            )
        )
    return alerts, problems


def decode_status(varbinds: Varbinds, hr_device_index: int | None) -> tuple[Status, list[Problem]]:
    """hrPrinterStatus, hrDeviceStatus, error bits and alerts of the printer row."""
    problems: list[Problem] = []
    printer_status = device_status = None
    errors: list[str] = []
    if hr_device_index is not None:
        index = (hr_device_index,)
        printer_status = _enum(
            problems,
            "status.printer_status",
            HR_PRINTER_STATUS + index,
            varbinds.get(HR_PRINTER_STATUS + index),
            PRINTER_STATUS,
        )
        device_status = _enum(
            problems,
            "status.device_status",
            HR_DEVICE_STATUS + index,
            varbinds.get(HR_DEVICE_STATUS + index),
            DEVICE_STATUS,
        )
        raw = varbinds.get(HR_PRINTER_ERROR_STATE + index)
        if raw is not None:
            oid = HR_PRINTER_ERROR_STATE + index
            try:
                errors, unknown = decode_error_bits(raw)
            except (TypeError, ValueError) as exc:
                problems.append(_problem("status.errors", oid, "wrong_type", str(exc)))
            else:
                if unknown:
                    detail = f"undefined bits set: {unknown[:16]} in {raw!r:.40}"
                    problems.append(_problem("status.errors", oid, "out_of_range", detail))
    alerts, alert_problems = decode_alerts(varbinds, hr_device_index)
    problems.extend(alert_problems)
    status = Status(
        printer_status=printer_status, device_status=device_status, errors=errors, alerts=alerts
    )
    return status, problems

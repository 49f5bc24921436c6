"""``fleet-agent scan --policy``: every JSON line carries the read's eligibility verdict.

Five real printers (../shared/recordings) each served by its own snmpsim on
127.0.4.x, read by the installed console script, judged by one policy that makes
some eligible and some not. What each recording holds, and so why each verdict:

* HP LaserJet MFP M130nw, serial VNCRC48198, prtMarkerLifeCount 15,232, toner 28%,
  drum 71%, no error bits: matches ``LaserJet*M130*`` and every rule: eligible.
* Brother HL-5370DW series, serial B9J154306, 7,792 pages: over the per-model
  maximum of 5,000 set for it below.
* Konica Minolta bizhub C250i, 33,810 pages: hrPrinterDetectedErrorState has bit 7
  (serviceRequested, RFC 2790) set, which the policy disqualifies.
* Ricoh Aficio MP C3002, serial W492KB03439, 271,871 pages (under 300,000): listed
  as already managed.
* Xerox AltaLink C8045: the trimmed recording has no prtGeneralSerialNumber, no
  prtMarkerLifeCount, and its supplies are class other(1), so no consumed supply
  to check; the model is not on the list and no contact covers it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.eligibility.models import verdict_json_schema
from agent.schema import read_schema
from tests.support.snmpsim import SnmpSimFactory
from tests.support.snmpsim_fleet import common_free_port, run_scan

pytestmark = pytest.mark.integration

RECORDINGS = (
    "librenms__jetdirect_m130nw.snmprec",
    "librenms__brother_hl5370dw.snmprec",
    "librenms__konica_c250i.snmprec",
    "librenms__ricoh_mpc3002.snmprec",
    "librenms__xerox.snmprec",
)
ADDRESSES = tuple(f"127.0.4.{n}" for n in range(1, len(RECORDINGS) + 1))

POLICY = """\
version: "it-2026.11"
models:
  - vendor: HP
    patterns: ["LaserJet*M130*"]
  - vendor: Brother
    names: ["HL-5370DW series"]
    max_lifetime_pages: 5000
  - vendor: "Konica*"
    patterns: ["bizhub C*"]
  - vendor: Ricoh
    patterns: ["Aficio MP C*"]
max_lifetime_pages: 300000
minimum_agent_version: "0.1.0"
require_serial: true
health:
  disqualifying_errors: [service_requested, no_toner, jammed]
  disqualifying_alert_severities: [critical]
  min_supply_percent: 10
contacts:
  - name: Anna Berg
    company: Acme GmbH
    address: Hauptstrasse 5, Berlin
    phone: "+49 30 1234567"
    email: anna@example.com
    country_code: DE
    devices: [VNCRC48198, B9J154306, AA2M021115700, W492KB03439]
managed: [W492KB03439]
"""

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "librenms__jetdirect_m130nw.snmprec": [],
    "librenms__brother_hl5370dw.snmprec": [
        {
            "code": "lifetime_count_over_max",
            "message": "Lifetime page count 7,792 is over the maximum of 5,000 for this model.",
        }
    ],
    "librenms__konica_c250i.snmprec": [
        {
            "code": "failed_health_check",
            "message": "The printer reports 'service requested'.",
            "check": "error_state.service_requested",
        }
    ],
    "librenms__ricoh_mpc3002.snmprec": [
        {
            "code": "already_managed",
            "message": "The device is already under a managed-print contract.",
        }
    ],
    "librenms__xerox.snmprec": [
        {
            "code": "model_not_supported",
            "message": "Xerox AltaLink C8045 is not a supported model under this contract.",
        },
        {
            "code": "lifetime_count_missing",
            "message": "The device did not report its lifetime page count.",
        },
        {"code": "serial_missing", "message": "The device did not report a serial number."},
        {
            "code": "no_supplies_contact",
            "message": "No supplies delivery contact covers location '<private>'.",
        },
        {
            "code": "failed_health_check",
            "message": "Supply levels could not be read, so the minimum of 10% cannot be checked.",
            "check": "supplies_missing",
        },
    ],
}


@pytest.fixture
def fleet(
    shared_recordings: Path, tmp_path: Path, snmpsim_factory: SnmpSimFactory
) -> tuple[int, dict[str, str]]:
    port = common_free_port(ADDRESSES)
    served = {}
    for address, name in zip(ADDRESSES, RECORDINGS, strict=True):
        data_dir = tmp_path / f"data-{address}"
        data_dir.mkdir()
        (data_dir / "public.snmprec").write_bytes((shared_recordings / name).read_bytes())
        snmpsim_factory(data_dir, address=address, port=port)
        served[address] = name
    return port, served


def _scan(port: int, *extra: str) -> Any:
    return run_scan(
        f"{ADDRESSES[0]}-{ADDRESSES[-1]}",
        "--snmp-port",
        str(port),
        "--timeout",
        "2",
        "--retries",
        "1",
        *extra,
    )


def test_scan_with_policy_adds_the_exact_verdict_to_every_read(
    fleet: tuple[int, dict[str, str]], tmp_path: Path
) -> None:
    port, served = fleet
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    run = _scan(port, "--format", "json", "--policy", str(policy))
    assert run.returncode == 0, run.stderr
    reads = {read["address"]: read for read in run.reads()}
    assert set(reads) == set(ADDRESSES)
    for address, name in served.items():
        verdict = reads[address]["eligibility"]
        assert verdict == {
            "eligible": not EXPECTED[name],
            "reasons": EXPECTED[name],
            "policy_version": "it-2026.11",
        }, name
    # The verdict rides along the read: the rest of the line is the plain read.
    plain = _scan(port, "--format", "json")
    without = {read["address"]: read for read in plain.reads()}
    verdict_schema = verdict_json_schema()
    for address, read in reads.items():
        assert "eligibility" not in without[address]
        assert set(read) - set(without[address]) == {"eligibility"}
        jsonschema.validate(read["eligibility"], verdict_schema)
        jsonschema.validate({k: v for k, v in read.items() if k != "eligibility"}, read_schema())

    # The same reads, piped into the fleet report, give the same per-device reasons.
    reads_file = tmp_path / "reads.jsonl"
    reads_file.write_text(run.stdout, encoding="utf-8")
    from tests.integration.test_eligibility_cli import run_cli

    report = run_cli("--policy", str(policy), "--reads", str(reads_file), "--format", "json")
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    by_address = {row["address"]: row for row in document["devices"]}
    for address, name in served.items():
        assert by_address[address]["verdict"]["reasons"] == EXPECTED[name], name
    assert document["summary"]["eligible"] == 1
    assert document["summary"]["onboarding_method"] == "self_entitlement"

    # The table form gets an eligibility column.
    table = _scan(port, "--format", "table", "--policy", str(policy))
    assert table.returncode == 0, table.stderr
    assert "Eligibility" in table.stdout
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if "127.0.4." in line}
    assert "eligible" in rows["127.0.4.1"]
    assert "not eligible" not in rows["127.0.4.1"]
    assert "not eligible: lifetime_count_over_max" in rows["127.0.4.2"]
    assert "not eligible: model_not_supported, lifetime_count_missing" in rows["127.0.4.5"]


def test_scan_with_a_bad_policy_fails_before_scanning(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("max_lifetime_pages: 300000", "max_lifetime_pages: -3"))
    run = run_scan("127.0.4.250", "--policy", str(policy), "--format", "json")
    assert run.returncode == 2
    assert run.stdout == ""
    assert f"{policy}:12: max_lifetime_pages: must be a positive integer (got -3)" in run.stderr
    missing = run_scan("127.0.4.250", "--policy", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "--policy" in missing.stderr
    assert "nope.yaml: file not found" in missing.stderr

"""``fleet-agent eligibility`` as a user runs it: the installed console script."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.test_eligibility_rules import make_read

pytestmark = pytest.mark.integration

FLEET_AGENT = Path(sys.executable).with_name("fleet-agent")
DATA = Path(__file__).resolve().parent.parent / "data" / "eligibility"

POLICY = """\
version: "cli-1"
site: Acme Berlin
models:
  - vendor: HP
    names: [LaserJet M130nw]
max_lifetime_pages: 100000
health:
  disqualifying_errors: [jammed]
contacts:
  - name: Anna Berg
    company: Acme GmbH
    address: Hauptstrasse 5
    phone: "+49 30 1234567"
    email: anna@example.com
    country_code: DE
"""


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, stdin: str | None = None) -> CliRun:
    process = subprocess.run(
        [str(FLEET_AGENT), "eligibility", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return CliRun(process.returncode, process.stdout, process.stderr)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    reads = [
        make_read(address="192.0.2.1", serial="SN1", total=1_000),
        make_read(address="192.0.2.2", serial="SN2", total=200_000),
        make_read(address="192.0.2.3", serial="SN3", errors=["jammed"], location="Lab"),
    ]
    lines = [read.model_dump_json() for read in reads]
    # A line as 'scan --policy' prints it: the old verdict is ignored, not an error.
    record = json.loads(lines[0])
    record["eligibility"] = {"eligible": False, "reasons": [], "policy_version": "old"}
    lines[0] = json.dumps(record)
    path = tmp_path / "reads.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return policy, path


def test_json_report(files: tuple[Path, Path]) -> None:
    policy, reads = files
    run = run_cli("--policy", str(policy), "--reads", str(reads), "--format", "json")
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    verdicts = {row["device_id"]: row["verdict"] for row in document["devices"]}
    assert verdicts["sn:hp:SN1"] == {"eligible": True, "reasons": [], "policy_version": "cli-1"}
    assert [r["code"] for r in verdicts["sn:hp:SN2"]["reasons"]] == ["lifetime_count_over_max"]
    assert verdicts["sn:hp:SN3"]["reasons"] == [
        {
            "code": "failed_health_check",
            "message": "The printer reports 'jammed'.",
            "check": "error_state.jammed",
        }
    ]
    summary = document["summary"]
    assert (summary["site"], summary["devices"], summary["eligible"]) == ("Acme Berlin", 3, 1)
    assert summary["model_group_gaps"][0]["left_out"] == ["sn:hp:SN2"]


def test_reads_from_stdin_and_csv_output(files: tuple[Path, Path]) -> None:
    policy, reads = files
    run = run_cli(
        "--policy", str(policy), "--reads", "-", "--format", "csv", stdin=reads.read_text()
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.reader(io.StringIO(run.stdout)))
    assert rows[0][:8] == [
        "device_id", "address", "serial", "vendor", "model", "location", "start_page_count",
        "eligible",
    ]  # fmt: skip
    assert [row[7] for row in rows[1:4]] == ["yes", "no", "no"]
    assert len(rows) == 4, "one table: a header and one row per device, nothing under it"
    assert {len(row) for row in rows} == {len(rows[0])}
    assert ("fleet-agent eligibility: onboarding method: self-entitlement packets (1 eligible; "
            "more than 10 means a technician visit)") in run.stderr.splitlines()  # fmt: skip


def test_table_is_the_default_format_on_a_pipe_is_json(files: tuple[Path, Path]) -> None:
    policy, reads = files
    run = run_cli("--policy", str(policy), "--reads", str(reads))
    assert json.loads(run.stdout)["summary"]["policy_version"] == "cli-1"
    table = run_cli("--policy", str(policy), "--reads", str(reads), "--format", "table")
    assert "Site summary" in table.stdout
    assert "The printer reports 'jammed'." in table.stdout


def test_contacts_file_replaces_the_policy_contacts(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    policy, reads = files
    paris = tmp_path / "paris.csv"
    paris.write_text(
        "name,company,address,phone,email,country_code,locations\n"
        "Luc,Acme SARL,1 rue de Rivoli,+33 1 23 45 67 89,luc@example.fr,FR,Paris/*\n",
        encoding="utf-8",
    )
    run = run_cli(
        "--policy", str(policy), "--reads", str(reads), "--format", "json",
        "--contacts", str(paris),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    first = json.loads(run.stdout)["devices"][0]["verdict"]
    # The policy's catch-all contact is gone; Luc covers Paris only.
    assert first["reasons"] == [
        {
            "code": "no_supplies_contact",
            "message": "No supplies delivery contact covers location 'Berlin/Floor 2'.",
        }
    ]
    run = run_cli(
        "--policy", str(policy), "--reads", str(reads), "--format", "json",
        "--contacts", str(DATA / "contacts_quoted.csv"),
    )  # fmt: skip
    # contacts_quoted.csv: Zoë covers Berlin/*.
    assert json.loads(run.stdout)["devices"][0]["verdict"]["eligible"] is True


def test_bad_contacts_file_exits_2_naming_the_row(files: tuple[Path, Path]) -> None:
    policy, reads = files
    run = run_cli(
        "--policy", str(policy), "--reads", str(reads),
        "--contacts", str(DATA / "contacts_latin1.csv"),
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stdout == ""
    assert "contacts_latin1.csv: 1 problem, nothing imported" in run.stderr
    assert "row 2: not UTF-8 (byte 0xE7" in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_policy_exits_2_naming_file_line_and_field(files: tuple[Path, Path]) -> None:
    policy, reads = files
    policy.write_text(POLICY.replace("max_lifetime_pages: 100000", "max_lifetime_pages: -5"))
    run = run_cli("--policy", str(policy), "--reads", str(reads))
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"fleet-agent eligibility: {policy}:6: max_lifetime_pages: must be a positive "
        "integer (got -5)"
    )


def test_bad_reads_line_exits_2_naming_file_and_line(files: tuple[Path, Path]) -> None:
    policy, reads = files
    text = reads.read_text().splitlines()
    text.insert(1, "{not json")
    text.append(json.dumps({"address": "192.0.2.9"}))
    reads.write_text("\n".join(text) + "\n")
    run = run_cli("--policy", str(policy), "--reads", str(reads))
    assert run.returncode == 2
    assert f"{reads}:2: not JSON: Expecting property name enclosed in double quotes" in run.stderr
    assert f"{reads}:5: collected_at: is required" in run.stderr
    assert f"{reads}:5: identity: is required" in run.stderr


def test_missing_files_and_arguments(tmp_path: Path, files: tuple[Path, Path]) -> None:
    policy, reads = files
    run = run_cli("--policy", str(tmp_path / "nope.yaml"), "--reads", str(reads))
    assert (run.returncode, run.stderr.strip()) == (
        2,
        f"fleet-agent eligibility: --policy: {tmp_path / 'nope.yaml'}: file not found",
    )
    run = run_cli("--policy", str(policy), "--reads", str(tmp_path / "none.jsonl"))
    assert run.returncode == 2
    assert "--reads" in run.stderr
    run = run_cli("--reads", str(reads))
    assert run.returncode == 2
    assert "--policy" in run.stderr


def test_empty_reads_are_refused(files: tuple[Path, Path], tmp_path: Path) -> None:
    policy, _ = files
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    run = run_cli("--policy", str(policy), "--reads", str(empty))
    assert (run.returncode, run.stderr.strip()) == (
        1,  # nothing to judge yet: 1; 2 is for usage errors only
        f"fleet-agent eligibility: --reads: {empty}: holds no reads",
    )

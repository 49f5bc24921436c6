"""The exit status table: the README's, ``fleet-agent --help``'s and the code's agree.

2 is for usage errors only; "nothing there yet" (no inventory, no reads) is 1, as a
scan or discovery that finds no printer is (those run against real peers in
tests/integration/test_scan_cli.py and test_discovery.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.cli import EPILOG, main

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_table() -> dict[int, str]:
    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", text, re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def test_the_readme_and_the_help_list_the_same_statuses() -> None:
    in_help = {int(code) for code in re.findall(r"^  (\d+) ", EPILOG, re.MULTILINE)}
    assert in_help == set(_readme_table()) == {0, 1, 2, 130, 141}
    assert _readme_table()[2].startswith("usage only")
    assert "nothing found" in _readme_table()[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["inventory"],
        ["eligibility", "--policy", "POLICY"],
        ["supplies"],
    ],
    ids=["inventory", "eligibility", "supplies"],
)
def test_no_inventory_yet_is_1_and_says_what_to_run(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policy.yaml"
    argv = [str(policy) if word == "POLICY" else word for word in argv]
    assert main([*argv, "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "yet" in err
    assert "fleet-agent discover" in err


def test_a_bad_argument_is_still_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eligibility", "--policy", str(tmp_path / "nope.yaml"), "--reads", "-"]) == 2
    assert "--policy" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["inventory", "--no-such-option"])
    assert raised.value.code == 2

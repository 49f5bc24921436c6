"""The CLI registry: lazy start-up, and a table that says what the command modules register."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.cli import COMMANDS, build_parser, main

HEAVY = (
    "agent.commands.",
    "agent.daemon",
    "pysnmp",
    "aiomqtt",
    "paho",
    "rich",
    "pydantic",
    "structlog",
    "prometheus_client",
    "joserfc",
    "apscheduler",
    "yaml",
    "psycopg",
)


def _subparsers(command: str | None) -> dict[str, str | None]:
    """Sub-command name -> its help line, in --help order."""
    parser = build_parser(command)
    action = next(a for a in parser._actions if a.dest == "command")
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_the_table_names_every_command_with_the_help_its_module_registers() -> None:
    registered = _subparsers("*")
    assert registered == {name: entry.help for name, entry in COMMANDS.items()}
    assert list(registered) == list(COMMANDS)  # --help lists them in the table's order


@pytest.mark.parametrize("command", [None, "status", "scan"])
def test_lazy_help_lists_the_same_commands_as_the_full_parser(command: str | None) -> None:
    assert _subparsers(command) == _subparsers("*")


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    probe = (
        "import sys\n"
        "from agent.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "COMMAND" in done.stdout
    assert done.stderr.strip() == "[]"


def test_a_command_imports_its_own_module_only() -> None:
    probe = (
        "import sys\n"
        "from agent.cli import main\n"
        "try:\n"
        "    main(['config', 'example'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('agent.commands.'))\n"
        "print(loaded, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr.strip() == "['agent.commands.config']"


def test_a_module_that_registers_two_commands_serves_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("run", "status"):
        with pytest.raises(SystemExit) as stopped:
            main([command, "--help"])
        assert stopped.value.code == 0
        assert f"usage: fleet-agent {command} " in capsys.readouterr().out


def test_version_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("fleet-agent ")
    with pytest.raises(SystemExit) as stopped:
        main(["bogus"])
    assert stopped.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err

"""Small edges of the command line: a reader that goes away, an unclosed quote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.yamlconf import parse_yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv", [["config", "example"], ["config", "check", "--config", "{config}"], ["--help"]]
)
def test_a_closed_stdout_ends_quietly(argv: list[str], tmp_path: Path) -> None:
    """``fleet-agent config check | head -1``: no BrokenPipeError traceback, exit 141."""
    config = tmp_path / "agent.yaml"
    config.write_text("upload:\n  enabled: false\n")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write fails
    try:
        result = subprocess.run(
            [sys.executable, "-m", "agent.cli", *(a.format(config=config) for a in argv)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
    assert result.returncode == 141


def test_an_unclosed_quote_is_reported_where_it_opens() -> None:
    text = 'upload:\n  enabled: false\nsite: "acme\nlog_level: info\nstate_dir: /tmp/x\n'
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, source="agent.yaml")
    assert str(info.value).startswith("agent.yaml:3: not valid YAML: a quoted string opened")

"""Discovery targets are validated with the configuration: ``config check`` refuses a bad one.

The same checks as ``scan``/``discover`` (syntax, reversed ranges, the size limit),
plus the address-space policy: "this network", multicast, 240/4 and broadcast
are always refused; public space needs ``allow_public``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import structlog

from agent.cli import main
from collectors.targets import TargetError, check_spec, is_host_name, validate_targets

INVALID = {
    "bad-prefix": ("10.0.0.0/33", "not a valid CIDR block"),
    "reversed-range": ("10.0.0.200-10.0.0.10", "below its start"),
    "huge": ("10.0.0.0/8", "more than 262,144"),
    "everything": ("0.0.0.0/0", "0.0.0.0/8"),
    "this-network": ("0.1.2.3", "0.0.0.0/8"),
    "multicast": ("224.0.1.0/24", "224.0.0.0/4"),
    "reserved": ("240.0.0.0/28", "240.0.0.0/4"),
    "broadcast": ("255.255.255.255", "broadcast"),
    "public": ("8.8.8.0/24", "public address space"),
    "public-range": ("192.168.255.250-192.169.0.5", "192.169.0.0 is public"),
    "ipv6-multicast": ("ff02::1", "not a unicast"),
    "ipv6-public": ("2001:4860::8888", "public address space"),
    "garbage": ("10.0.0.x", "not a valid IPv4 address"),
    "name-long-label": ("p" * 64 + ".example", "is 64 characters (at most 63)"),
    "name-underscore": ("print_server.example", "only letters, digits and inner hyphens"),
    "name-hyphen": ("-printer.example", "only letters, digits and inner hyphens"),
    "name-empty-label": ("printer..example", "an empty label"),
    "name-numeric-tld": ("printer.42", "last label is a number"),
    "name-hex-address": ("0x7f.1", "non-standard form"),
    "name-too-long": (".".join(["a" * 60] * 5), "longer than 253"),
}


def _config(
    tmp_path: Path, targets: list[str], exclude: Sequence[str] = (), **discovery: object
) -> Path:
    lines = ["upload:", "  enabled: false", "discovery:"]
    lines += [f"  {key}: {str(value).lower()}" for key, value in discovery.items()]
    lines.append("  targets:")
    lines += [f'    - "{target}"' for target in targets]
    lines += ["  exclude:", *(f'    - "{spec}"' for spec in exclude)] if exclude else []
    path = tmp_path / "agent.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_config_check_refuses_each_invalid_target_kind(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, why = INVALID[kind]
    path = _config(tmp_path, ["10.1.0.0/24", spec])
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    line = 6 if kind != "huge" else 5  # the entry itself; the size limit names the list
    where = "discovery.targets[1]" if kind != "huge" else "discovery.targets"
    assert f"{path}:{line}: {where}: " in err, err
    assert why in err
    if kind in ("huge", "public"):  # the configuration's key is named, and the option
        assert f"set allow_{kind} (--allow-{kind})" in err, err
    assert "Traceback" not in err


def test_valid_local_spaces_pass_and_public_needs_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = [
        "10.1.2.0/24",
        "172.16.5.1-20",
        "192.168.1.7",
        "100.64.0.0/24",  # shared address space (RFC 6598)
        "169.254.10.0/24",
        "127.0.0.1",
        "fd12:3456::1",
        "fe80::10",
        "printer-3.example",  # a name: resolved (and checked) when discovery runs
    ]
    assert main(["config", "check", "--config", str(_config(tmp_path, local))]) == 0
    public = _config(tmp_path, ["8.8.8.0/24"], allow_public=True)
    assert main(["config", "check", "--config", str(public)]) == 0
    everything = _config(tmp_path, ["0.0.0.0/0"], allow_public=True, allow_huge=True)
    assert main(["config", "check", "--config", str(everything)]) == 2  # 0/8 is never swept
    capsys.readouterr()


def test_an_invalid_exclusion_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "upload:\n  enabled: false\ndiscovery:\n  targets: [10.0.0.0/24]\n"
        "  exclude:\n    - 10.0.0.0/40\n"
    )
    assert main(["config", "check", "--config", str(path)]) == 2
    assert f"{path}:6: discovery.exclude[0]: " in capsys.readouterr().err


def test_exclusions_take_the_command_line_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host name with a port and a comma list, as ``--exclude`` takes them."""
    exclude = ["printer.example:1161", "10.0.0.5,[fe80::1]:1161", "10.4.0.0/15,10.6.0.0/15"]
    path = _config(tmp_path, ["10.0.0.0/24", "10.4.0.0/14"], exclude)
    assert main(["config", "check", "--config", str(path)]) == 0
    path = _config(tmp_path, ["10.0.0.0/24"], [*exclude[:2], "10.4.0.0/15,10.6.0.0/40"])
    assert main(["config", "check", "--config", str(path)]) == 2
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "/40" in text)
    err = capsys.readouterr().err
    assert f"{path}:{line}: discovery.exclude[2]: " in err
    assert "10.6.0.0/40" in err


def test_a_comma_list_of_exclusions_counts_toward_the_size_limit(tmp_path: Path) -> None:
    blocks = ["10.0.0.0/14", "10.4.0.0/14", "10.8.0.0/14"]
    path = _config(tmp_path, ["10.0.0.0/12"], [",".join(blocks)])
    assert main(["config", "check", "--config", str(path)]) == 0
    path = _config(tmp_path, ["10.0.0.0/12"], [",".join(blocks[:2])])
    assert main(["config", "check", "--config", str(path)]) == 2  # 8 /16 blocks stay


def test_exclusions_count_toward_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "upload:\n  enabled: false\ndiscovery:\n  targets: [10.0.0.0/13]\n"
        "  exclude: [10.0.0.0/14]\n"
    )
    assert main(["config", "check", "--config", str(path)]) == 0


def test_scan_and_discover_refuse_public_targets_unless_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        assert main(["scan", "8.8.8.8"]) == 2
        err = capsys.readouterr().err
        assert "TARGET: target '8.8.8.8'" in err
        assert "--allow-public" in err
        assert main(["discover", "224.0.0.0/28", "--allow-public"]) == 2  # never, even allowed
        assert "224.0.0.0/4" in capsys.readouterr().err
    finally:
        structlog.reset_defaults()  # the commands logged to pytest's captured stderr


def test_validation_functions() -> None:
    assert is_host_name("printer-3.example")
    assert not is_host_name("10.0.0.1-20")
    assert not is_host_name("10.0.0.0/8")
    check_spec("printer-3.example", allow_public=False)  # not resolved here
    check_spec("printer-3.example.", allow_public=False)  # a fully qualified name
    check_spec("drucker-süd.example", allow_public=False)  # IDNA
    with pytest.raises(TargetError, match="empty label"):
        check_spec("printer-3..example", allow_public=False)
    with pytest.raises(TargetError, match="public"):
        check_spec("1.1.1.1", allow_public=False)
    assert len(validate_targets(["1.1.1.0/30"], allow_public=True)) == 2

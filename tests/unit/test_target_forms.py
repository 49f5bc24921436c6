"""The target forms net-snmp and nmap users bring: lists, octet ranges, HOST:PORT, files."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent.commands._snmp_options import add_target_options, target_specs_from_args
from agent.errors import UsageError
from collectors.targets import TargetError, check_spec, parse_targets, validate_targets


def test_comma_lists_are_several_targets() -> None:
    targets = parse_targets(["10.0.0.9,10.0.0.1", "10.0.0.5-6"])
    assert list(targets) == ["10.0.0.1", "10.0.0.5", "10.0.0.6", "10.0.0.9"]


def test_nmap_octet_ranges() -> None:
    targets = parse_targets(["10.1.2-3.1-3"])
    assert list(targets) == [
        "10.1.2.1",
        "10.1.2.2",
        "10.1.2.3",
        "10.1.3.1",
        "10.1.3.2",
        "10.1.3.3",
    ]
    assert len(parse_targets(["10.1.*.7"])) == 256
    assert len(parse_targets(["10.1-2.0-255.1-254"])) == 2 * 256 * 254


def test_host_port_forms_carry_the_port() -> None:
    targets = parse_targets(
        ["127.0.0.1:1161", "[::1]:1162", "udp:127.0.0.2:161", "udp6:[::1]:1163", "127.0.0.3"]
    )
    assert list(targets) == [
        "127.0.0.3",
        "127.0.0.2:161",
        "127.0.0.1:1161",
        "[::1]:1162",
        "[::1]:1163",
    ]
    assert "127.0.0.1:1161" in targets
    assert "127.0.0.1" not in targets  # not on the default port
    assert list(parse_targets(["[2001:db8::7]"])) == ["2001:db8::7"]
    assert list(parse_targets(["10.0.0.0/30:1161"])) == ["10.0.0.1:1161", "10.0.0.2:1161"]


def test_exclusions_with_and_without_a_port() -> None:
    targets = parse_targets(
        ["10.0.0.1-3:1161", "10.0.0.1-3"], exclude=["10.0.0.1", "10.0.0.2:1161"]
    )
    assert list(targets) == ["10.0.0.2", "10.0.0.3", "10.0.0.3:1161"]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("10.0.0.1:0", "not a UDP port"),
        ("10.0.0.1:70000", "not a UDP port"),
        ("10.0.0.1:snmp", "not a UDP port"),
        ("[::1", "without a closing ']'"),
        ("[::1]x", "expected ':PORT'"),
        ("10.1.300-301.1", "outside 0-255"),
        ("10.1.9-3.1", "ends below its start"),
        ("*.*.*.1", "use a CIDR block"),
        ("10.0.0.1,", "empty target"),
    ],
)
def test_refused_forms_name_themselves(spec: str, fragment: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets([spec])
    assert fragment in str(caught.value)


def test_the_address_checks_apply_to_every_form() -> None:
    with pytest.raises(TargetError, match="public address space"):
        validate_targets(["10.0.0.1,8.8.8.8:161"])
    with pytest.raises(TargetError, match="holds no devices"):
        validate_targets(["224-225.0.0.1"])
    with pytest.raises(TargetError, match="public address space"):
        check_spec("10.0.0.1, 1.1.1.1", allow_public=False)  # a configuration entry
    check_spec("printer-3.example:1161", allow_public=False)  # a name: resolved later
    check_spec("10.1.*.7", allow_public=False)  # an octet range with '*' is no host name
    with pytest.raises(TargetError, match="public address space"):
        check_spec("8.*.8.8", allow_public=False)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_target_options(parser)
    return parser.parse_args(argv)


def test_target_files_with_comments_and_their_errors(tmp_path: Path) -> None:
    listed = tmp_path / "targets.txt"
    listed.write_text(
        "# site A\n10.0.0.1  10.0.0.2\n\n10.0.1.0/30 # printers room\n10.0.2.1,10.0.2.2\n"
    )
    skipped = tmp_path / "skip.txt"
    skipped.write_text("10.0.0.2\n")
    specs = target_specs_from_args(
        _args("10.0.3.1", "-iL", str(listed), "--exclude-file", str(skipped))
    )
    targets = validate_targets(specs.targets, exclude=specs.exclude)
    assert list(targets) == [
        "10.0.0.1",
        "10.0.1.1",
        "10.0.1.2",
        "10.0.2.1",
        "10.0.2.2",
        "10.0.3.1",
    ]
    listed.write_text("10.0.0.1\n# fine\n10.0.0.300\n")
    specs = target_specs_from_args(_args("-iL", str(listed)))
    with pytest.raises(TargetError) as caught:
        validate_targets(specs.targets)
    assert str(specs.usage_error(caught.value)).startswith(f"{listed}:3: target '10.0.0.300'")
    with pytest.raises(UsageError, match=r"--exclude-file .*nope\.txt: cannot read"):
        target_specs_from_args(_args("10.0.0.1", "--exclude-file", str(tmp_path / "nope.txt")))

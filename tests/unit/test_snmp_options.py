"""net-snmp's short options on scan and discover: accepted forms, refused forms, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import build_parser
from agent.commands._snmp_options import credentials_from_args, target_specs_from_args
from agent.errors import UsageError


def parse(*argv: str) -> object:
    return build_parser("scan").parse_args(["scan", *argv])


def test_snmpwalk_style_v2c() -> None:
    args = parse("-v", "2c", "-c", "s3cret", "-t", "1.5", "-r", "3", "10.0.0.7")
    (profile,) = credentials_from_args(args)  # type: ignore[arg-type]
    assert profile.version == "v2c"
    assert profile.community is not None
    assert profile.community.get_secret_value() == "s3cret"
    assert (args.timeout, args.retries, args.verbose) == (1.5, 3, 0)  # type: ignore[attr-defined]


def test_v1_attached_form() -> None:
    (profile,) = credentials_from_args(parse("-v1", "-c", "public", "10.0.0.7"))  # type: ignore[arg-type]
    assert profile.version == "v1"


def test_v3_with_net_snmp_spellings_and_key_files(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.write_text("authpass123\n")
    args = parse(
        "-v3", "-u", "ops", "-l", "authPriv", "-a", "SHA-256", "--v3-auth-key-file", str(auth),
        "-x", "AES-256", "-X", "privpass123", "-n", "ctx", "10.0.0.7",
    )  # fmt: skip
    (profile,) = credentials_from_args(args)  # type: ignore[arg-type]
    authpriv = (profile.auth_key is not None, profile.priv_key is not None)
    assert (profile.version, profile.username, authpriv) == ("v3", "ops", (True, True))
    assert (profile.auth_protocol, profile.priv_protocol) == ("SHA256", "AES256")
    assert profile.context_name == "ctx"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["-v", "3", "10.0.0.7"], "-v 3 needs a user"),
        (["-v", "3", "-u", "ops", "-c", "public", "10.0.0.7"], "not with -v 3"),
        (["-u", "ops", "-l", "authPriv", "-A", "authpass123", "10.0.0.7"], "needs a privacy key"),
        (["-u", "ops", "-l", "authNoPriv", "10.0.0.7"], "needs an authentication key"),
        (["-u", "ops", "-l", "noAuthNoPriv", "-A", "authpass123", "10.0.0.7"], "takes no auth"),
        (["-l", "authNoPriv", "10.0.0.7"], "need --v3-user"),
        (["-u", "ops", "-A", "short", "10.0.0.7"], "at least 8 characters"),
    ],
)
def test_refused_credentials_name_the_option(argv: list[str], fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        credentials_from_args(parse(*argv))  # type: ignore[arg-type]
    assert fragment in str(caught.value)
    assert "authpass123" not in str(caught.value)


@pytest.mark.parametrize(
    "argv",
    [["-a", "SHA-999", "-u", "x", "h"], ["-x", "ROT13", "-u", "x", "h"], ["-l", "authpriv", "h"]],
)
def test_refused_option_values_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(*argv)
    assert stopped.value.code == 2
    assert "usage: fleet-agent scan" in capsys.readouterr().err


def test_bare_v_is_verbosity_and_keeps_a_following_target() -> None:
    args = parse("-v", "10.0.0.7", "10.0.0.8")
    assert args.verbose == 1  # type: ignore[attr-defined]
    assert args.snmp_version == "2c"  # type: ignore[attr-defined]
    assert target_specs_from_args(args).targets == ["10.0.0.8", "10.0.0.7"]  # type: ignore[arg-type]
    assert parse("10.0.0.7", "-vv").verbose == 2  # type: ignore[attr-defined]
    assert parse("10.0.0.7", "-v", "--verbose").verbose == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("word", ["4", "2", "v2c", "3c"])
def test_v_with_a_version_that_does_not_exist_is_a_usage_error(
    word: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse("-v", word, "10.0.0.7")
    assert stopped.value.code == 2
    assert f"-v {word}: not an SNMP version: 1, 2c or 3" in capsys.readouterr().err


def test_communities_from_a_file_after_the_typed_ones(tmp_path: Path) -> None:
    listed = tmp_path / "communities"
    listed.write_text("# site A\nfirst\n\nsecond\n")
    profiles = credentials_from_args(
        parse("-c", "typed", "--community-file", str(listed), "10.0.0.7")  # type: ignore[arg-type]
    )
    names = [p.community.get_secret_value() for p in profiles if p.community is not None]
    assert names == ["typed", "first", "second"]
    listed.write_text("# nothing\n")
    with pytest.raises(UsageError, match="holds no community"):
        credentials_from_args(parse("--community-file", str(listed), "10.0.0.7"))  # type: ignore[arg-type]

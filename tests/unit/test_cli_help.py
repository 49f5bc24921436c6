"""Every sub-command's ``--help``, walked: what an admin reads must be plain and complete.

The walk covers every parser ``build_parser`` registers, so a new sub-command or
option is checked without touching this file: plain text (no reST or Markdown
markup), a description of its own and a one-line help in its parent's list, a
help text for every option, and placeholders that say what to type (``FILE``,
``DIR``, ``ADDRESS``...) rather than the option's internal name, the same one
for the same option everywhere.
"""

from __future__ import annotations

import argparse
import io
import re
from collections.abc import Iterator
from contextlib import redirect_stdout

import pytest

from agent.cli import COMMANDS, build_parser, main
from agent.cli_help import plain

#: What a placeholder may say. A new one is fine when it names what to type.
PLACEHOLDERS = frozenset(
    {
        "ACTION", "ADDRESS", "AGENT_ID", "COMMAND", "DAYS", "DEVICE", "DIR", "DSN", "DURATION",
        "FILE", "FILE.csv", "HOST", "ID", "KEY", "KID", "LEVEL", "METER=VALUE", "N", "NAME",
        "PATH", "PORT", "PPS", "PREFIX", "PROTOCOL", "SECONDS", "SITE", "TARGET", "TEXT", "TIME",
        "TOKEN", "TOKEN_ID", "URL", "USER", "WALK", "X.Y.Z", "YYYY-MM", "1|2c|3",
    }
)  # fmt: skip
#: reST literals and roles, Markdown code: any backquote at all.
MARKUP = re.compile(r"`|:(?:func|mod|class|data|meth|attr|exc|ref):")
#: The commands whose help shows how they are typed (the issue asks for examples there).
WITH_EXAMPLES = ("scan", "discover", "inventory", "eligibility", "agents", "billing", "meter")


def _walk(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """(command words, parser, the one-line help its parent lists) for every parser."""
    yield words, parser, None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                for found in _walk(sub, (*words, name)):
                    yield found if found[0] != (*words, name) else (found[0], found[1], helps[name])


PARSERS = list(_walk(build_parser("*")))
IDS = [" ".join(words) or "fleet-agent" for words, _, _ in PARSERS]


def _placeholder(action: argparse.Action) -> str | None:
    """What ``--help`` shows after the option (None: it takes no value, or lists its choices)."""
    if action.nargs == 0 or (action.choices is not None and action.metavar is None):
        return None
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    return action.metavar or action.dest.upper()


def test_the_walk_reaches_every_command() -> None:
    assert {words[0] for words, _, _ in PARSERS if words} == set(COMMANDS)
    assert ("config", "check") in {words for words, _, _ in PARSERS}


@pytest.mark.parametrize(("words", "parser", "listed"), PARSERS, ids=IDS)
def test_help_is_plain_text(
    words: tuple[str, ...], parser: argparse.ArgumentParser, listed: str | None
) -> None:
    text = parser.format_help()
    assert not MARKUP.search(text), f"markup in `fleet-agent {' '.join(words)} --help`:\n{text}"


@pytest.mark.parametrize(("words", "parser", "listed"), PARSERS, ids=IDS)
def test_every_command_is_described(
    words: tuple[str, ...], parser: argparse.ArgumentParser, listed: str | None
) -> None:
    assert (parser.description or "").strip(), f"fleet-agent {' '.join(words)}: no description"
    if words:
        assert (listed or "").strip(), f"fleet-agent {' '.join(words)}: no line in its parent"
        assert "\n" not in (listed or ""), "the listed help is one line"


@pytest.mark.parametrize(("words", "parser", "listed"), PARSERS, ids=IDS)
def test_every_option_says_what_it_does_and_what_to_type(
    words: tuple[str, ...], parser: argparse.ArgumentParser, listed: str | None
) -> None:
    where = f"fleet-agent {' '.join(words)}"
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            assert action.metavar in ("COMMAND", "ACTION"), f"{where}: {action.metavar}"
            continue
        assert (action.help or "").strip(), f"{where} {name}: no help text"
        placeholder = _placeholder(action)
        assert placeholder is None or placeholder in PLACEHOLDERS, (
            f"{where} {name}: placeholder {placeholder!r} is not one of the usual words"
        )


def test_one_option_has_one_placeholder_everywhere() -> None:
    seen: dict[str, tuple[str | None, str]] = {}
    for words, parser, _ in PARSERS[1:]:  # the top level's --version is a flag of its own
        for action in parser._actions:
            placeholder, where = _placeholder(action), " ".join(words)
            if placeholder is None:  # a flag, or a list of choices: nothing to agree on
                continue
            for option in action.option_strings:
                first = seen.setdefault(option, (placeholder, where))
                assert first[0] == placeholder, (
                    f"{option}: {first[0]} in '{first[1]}' but {placeholder} in '{where}'"
                )


@pytest.mark.parametrize("command", WITH_EXAMPLES)
def test_commands_show_examples(command: str) -> None:
    (parser,) = [parser for words, parser, _ in PARSERS if words == (command,)]
    examples = [
        line for line in (parser.description or "").splitlines()
        if line.startswith(f"    fleet-agent {command} ")
    ]  # fmt: skip
    assert examples, f"fleet-agent {command} --help shows no example"
    assert f"    fleet-agent {command} " in parser.format_help(), "examples keep their lines"


def test_help_through_main_exits_0_with_the_description(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as raised:
        main(["config", "check", "--help"])
    assert raised.value.code == 0
    assert "usage: fleet-agent config check" in out.getvalue()
    assert "Validate" in out.getvalue()


def test_plain_strips_rest_markup_and_the_command_prefix() -> None:
    doc = """``fleet-agent scan``: read printers.

    See :func:`agent.x.y`, :mod:`~collectors.z` and ``--format json``; `code`.
    TaskGroup\\ s too::

        fleet-agent scan 10.0.0.1
    """
    assert plain(doc) == (
        "Read printers.\n\n"
        "See agent.x.y, collectors.z and --format json; code.\n"
        "TaskGroups too:\n\n"
        "    fleet-agent scan 10.0.0.1"
    )

"""Help texts of the sub-commands: their module docstrings, as plain text (``--help``).

A command module's docstring is written once, for both readers: the developer
reading the source (reST: ``literal``, :mod:`roles`) and the admin reading
``fleet-agent COMMAND --help``. :func:`plain` strips the markup for the second,
and :func:`add_command` registers a sub-parser whose description is that text,
laid out as written (examples keep their lines). ``tests/unit/test_cli_help.py``
walks every sub-command's help and refuses markup, missing descriptions and
placeholders that are option names rather than what to type.
"""

from __future__ import annotations

import argparse
import inspect
import re
from typing import NoReturn

#: :func:`x`, :mod:`~a.b`, :data:`x` -> x
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
#: ``x`` -> x
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
#: `x` (reST interpreted text, or Markdown code) -> x
_INTERPRETED = re.compile(r"`([^`\n]+)`")
#: "fleet-agent scan: read ..." as the first line of a docstring: the usage line says it already.
_COMMAND_PREFIX = re.compile(r"\Afleet-agent [a-z|\- ]+: ")


def plain(doc: str | None) -> str:
    """``doc`` without reST markup, dedented; its first line without the command's name."""
    text = inspect.cleandoc(doc or "")
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = text.replace("\\ ", "").replace("::\n", ":\n")
    text = _COMMAND_PREFIX.sub("", text)
    return text[:1].upper() + text[1:]


class Parser(argparse.ArgumentParser):
    """An argument parser whose "ACTION is required" error lists the actions to choose from.

    Usage lines say ``ACTION`` (one placeholder for every command's sub-commands); an admin
    who typed ``fleet-agent keys`` alone is told which words would have worked.
    """

    def error(self, message: str) -> NoReturn:
        for action in self._actions:
            named = isinstance(action, argparse._SubParsersAction) and action.metavar
            if named and message.endswith(f"required: {action.metavar}"):
                message = f"{message} (one of: {', '.join(action.choices or ())})"
        super().error(message)


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    doc: str | None,
) -> argparse.ArgumentParser:
    """A sub-parser described by ``doc`` (a module docstring) as plain text, lines kept."""
    return subparsers.add_parser(
        name,
        help=help,
        description=plain(doc),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

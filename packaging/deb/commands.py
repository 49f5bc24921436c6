"""Write the ``--help`` text of every fleet-agent command, for help2man.

    python packaging/deb/commands.py OUT_DIR     # run with the packaged venv's python

For each command and sub-command of the argparse tree the CLI builds (``fleet-agent``,
``fleet-agent config check``, ...) it writes ``OUT_DIR/<name-with-dashes>.help``, exactly
what ``--help`` prints, and prints ``<name-with-dashes> TAB <one-line summary>``. One
process renders them all, so the manual pages follow the commands without a list kept by
hand and without starting the CLI once per page.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agent.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...], summary: str, out: Path) -> None:
    name = "-".join(path)
    (out / f"{name}.help").write_text(parser.format_help(), encoding="utf-8")
    print(f"{name}\t{summary}")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for sub_name, sub in action.choices.items():
                walk(sub, (*path, sub_name), helps.get(sub_name) or sub.description or "", out)


if __name__ == "__main__":
    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal: the same width everywhere
    root = build_parser()
    walk(root, ("fleet-agent",), root.description or "", Path(sys.argv[1]))
    sys.exit(0)

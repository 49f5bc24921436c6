"""Line count of the read core (issue #9): ``collectors/`` plus the read paths in ``agent/``.

    python bench/line_count.py 6e0120c 6e440c1 HEAD [--per-file] [--with agent/read_events.py]

For each git revision: raw lines (``wc -l``) and code lines (without blank lines,
comments and docstrings) of every ``collectors/*.py`` and of ``agent/collect.py``,
``agent/commands/scan.py``, ``agent/commands/discover.py`` and ``agent/commands/_*.py``
as that revision has them (read with ``git show``; the working tree is not touched).
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import tokenize
from fnmatch import fnmatch

COUNTED = (
    "collectors/*.py",
    "agent/collect.py",
    "agent/commands/scan.py",
    "agent/commands/discover.py",
    "agent/commands/_*.py",
)
_LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def code_lines(source: str) -> int:
    """Lines holding a token that is not a comment, layout or a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in _LAYOUT or token.type == tokenize.ENDMARKER:
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def count(revision: str, extra: list[str]) -> list[tuple[str, int, int]]:
    """(path, raw lines, code lines) of each counted file at ``revision``."""
    paths = _git("ls-tree", "-r", "--name-only", revision, "collectors", "agent").split()
    wanted = [p for p in paths if any(fnmatch(p, g) for g in COUNTED) and "/" in p] + [
        p for p in extra if p in paths
    ]
    rows = []
    for path in wanted:
        if path.startswith("collectors/") and path.count("/") > 1:
            continue  # collectors/*.py only, as the issue counts the package's modules
        source = _git("show", f"{revision}:{path}")
        rows.append((path, source.count("\n"), code_lines(source)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+", metavar="REV")
    parser.add_argument("--per-file", action="store_true", help="one line per file")
    parser.add_argument(
        "--with",
        dest="extra",
        action="append",
        default=[],
        metavar="PATH",
        help="count this file too (repeatable)",
    )
    args = parser.parse_args()
    for revision in args.revisions:
        rows = count(revision, args.extra)
        if args.per_file:
            for path, raw, code in rows:
                print(f"{revision}\t{path}\t{raw}\t{code}")
        raw, code = sum(r[1] for r in rows), sum(r[2] for r in rows)
        print(f"{revision}\ttotal ({len(rows)} files)\t{raw}\t{code}")


if __name__ == "__main__":
    main()

"""Write the package's machine-readable ``copyright`` file (DEP-5) from the bundled venv.

    python3 packaging/deb/copyright.py SITE_PACKAGES INSTALLED_SITE_PACKAGES > copyright

fleet-agent itself is Apache-2.0. Every distribution bundled in the virtual environment
gets a ``Files:`` paragraph for the paths it installed (read from its ``RECORD``), its
licence as declared in its metadata (``License-Expression``, else ``License``, else the
table below) and the text of the licence files it ships. A distribution whose licence
cannot be determined stops the build: nothing is shipped without a known licence.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import Distribution, distributions
from pathlib import Path

OWN = "fleet-agent"
COMMON_LICENSES = {"Apache-2.0", "GPL-2", "GPL-3", "LGPL-2.1", "LGPL-3", "MPL-2.0"}

# Distributions whose metadata gives only a vague classifier or nothing: the licence
# read from the LICENSE file the wheel ships, checked by hand.
DECLARED: dict[str, str] = {
    "aiomqtt": "BSD-3-Clause",  # LICENSE: "BSD 3-Clause License"
    "markdown-it-py": "MIT",  # LICENSE and LICENSE.markdown-it: MIT
    "mdurl": "MIT",  # LICENSE: MIT
    "pysnmp": "BSD-2-Clause",  # LICENSE.rst: two-clause BSD
}

_COPYRIGHT_LINE = re.compile(r"^\s*(?:Copyright|\(c\)|©)\s*(?:\(c\)|©)?\s*(.+)$", re.I)


def _name(dist: Distribution) -> str:
    return re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()


def _license(dist: Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression") or ""
    if not expression:
        declared = (meta.get("License") or "").strip()
        if declared and " " not in declared and len(declared) < 40:
            expression = declared
    expression = expression or DECLARED.get(_name(dist), "")
    if not expression:
        raise SystemExit(f"copyright.py: no licence known for {_name(dist)}: add it to DECLARED")
    return expression.replace(" OR ", " or ").replace(" AND ", " and ")


def _license_files(dist: Distribution) -> list[Path]:
    files = [Path(str(dist.locate_file(f))) for f in dist.files or ()]
    return sorted(
        f
        for f in files
        if ".dist-info/" in f.as_posix()
        and re.match(r"(?i)(licen[cs]e|copying|notice|authors|edl-|epl-)", f.name)
        and f.is_file()
    )


def _holders(texts: list[str], name: str) -> list[str]:
    found: list[str] = []
    for text in texts:
        for line in text.splitlines():
            match = _COPYRIGHT_LINE.match(line)
            if match and len(match.group(1)) > 3 and match.group(1) not in found:
                found.append(match.group(1).strip())
    return found or [f"the {name} authors"]


def _paths(dist: Distribution, installed: str) -> list[str]:
    tops: set[str] = set()
    for entry in dist.files or ():
        parts = entry.parts
        if not parts or parts[0] == ".." or parts[0] == "__pycache__":
            continue
        if len(parts) == 1:
            tops.add(f"{installed}/{parts[0]}")
        else:
            tops.add(f"{installed}/{parts[0]}/*")
    return sorted(tops)


def _field(text: str) -> str:
    """A multi-line field value: each line indented, empty lines as ' .'."""
    lines = text.strip("\n").splitlines()
    return "\n".join(f" {line.rstrip()}" if line.strip() else " ." for line in lines)


def render(site: Path, installed: str) -> str:
    out = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: {OWN}\n"
        "Comment: fleet-agent and the Python distributions it bundles in its virtual\n"
        " environment under /opt/fleet-agent, each with the licence its metadata declares.\n",
        "Files: *\n"
        "Copyright: the fleet-agent developers\n"
        "License: Apache-2.0\n"
        " On Debian systems, the full text of the Apache License, Version 2.0, is in\n"
        " /usr/share/common-licenses/Apache-2.0.\n",
    ]
    for dist in sorted(distributions(path=[str(site)]), key=_name):
        name = _name(dist)
        if name == OWN:
            continue
        expression = _license(dist)
        files = _license_files(dist)
        texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
        holders = _holders(texts, name)
        body = [f"{name} {dist.version}, licence files as shipped in its wheel."]
        for token in re.split(r"\s+(?:or|and)\s+", expression):
            if token in COMMON_LICENSES:
                body.append(
                    f"On Debian systems, the full text of {token} is in "
                    f"/usr/share/common-licenses/{token}."
                )
        for path, text in zip(files, texts, strict=True):
            lowered = text.lower()
            if "apache license" in lowered and "version 2.0" in lowered and len(text) > 3000:
                continue  # the full Apache text: Debian ships it in common-licenses
            body.append(f"--- {path.name} ---\n{text}")
        out.append(
            "Files: "
            + "\n ".join(_paths(dist, installed))
            + "\nCopyright: "
            + "\n ".join(holders)
            + f"\nLicense: {expression}\n"
            + _field("\n\n".join(body))
            + "\n"
        )
    return "\n".join(out)


def main() -> int:
    site, installed = Path(sys.argv[1]), sys.argv[2].strip("/")
    sys.stdout.write(render(site, installed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

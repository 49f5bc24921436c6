"""The verification snippets of docs/schema/envelope.md run, against envelopes the agent made.

Each snippet is a file in docs/schema/snippets/ that the document quotes verbatim; here
they verify tokens signed and chained by the agent's own outbox, refuse a tampered one,
and emit no warning. The Node snippet needs the ``jose`` package, which scripts/test.sh
installs into .cache/node; without it (npm could not install it) that case is skipped.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from uploader.envelope import Signer
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox

REPO = Path(__file__).resolve().parents[2]
SNIPPETS = REPO / "docs" / "schema" / "snippets"
DOCUMENT = REPO / "docs" / "schema" / "envelope.md"
NODE_MODULES = REPO / ".cache" / "node" / "node_modules"


@pytest.fixture(scope="module")
def agent_made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[dict]]:
    """Two chained envelopes from the agent's outbox, and the agent's public JWK file."""
    tmp = tmp_path_factory.mktemp("snippets")
    key = AgentKey.generate()
    with Outbox(tmp / "outbox.db", Signer(key, "snippet-agent")) as outbox:
        outbox.submit(JsonMessage("event", {"event": "device_found", "address": "192.0.2.15"}))
        outbox.submit(JsonMessage("status", {"uptime_s": 12.5}))
        messages = outbox.pending(10)
    jwk = tmp / "agent.jwk"
    jwk.write_text(json.dumps(key.public_jwk()))
    tokens = [m.token for m in messages]
    payloads = [json.loads(_b64d(t.split(".")[1])) for t in tokens]
    return jwk, tokens, payloads


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    return f"{header}.{payload}.{signature[:10]}{flipped}{signature[11:]}"


def _run(
    command: list[str], stdin: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.parametrize("name", ["verify_joserfc.py", "verify_cryptography.py", "verify_jose.mjs"])
def test_the_document_quotes_each_snippet_verbatim(name: str) -> None:
    text = (SNIPPETS / name).read_text()
    assert text.strip() in DOCUMENT.read_text(), f"{name} differs from docs/schema/envelope.md"


@pytest.mark.parametrize("name", ["verify_joserfc.py", "verify_cryptography.py"])
def test_python_snippets_verify_agent_envelopes_without_warnings(
    name: str, agent_made: tuple[Path, list[str], list[dict]]
) -> None:
    jwk, tokens, payloads = agent_made
    command = [sys.executable, "-W", "error", str(SNIPPETS / name), str(jwk)]
    for token, payload in zip(tokens, payloads, strict=True):
        good = _run(command, token)
        assert good.returncode == 0, good.stderr
        assert good.stderr == ""
        assert json.loads(good.stdout) == payload
    bad = _run(command, _tampered(tokens[0]))
    assert bad.returncode == 1
    assert "rejected" in bad.stderr


def test_the_cryptography_snippet_follows_the_chain(
    agent_made: tuple[Path, list[str], list[dict]],
) -> None:
    jwk, tokens, payloads = agent_made
    command = [sys.executable, "-W", "error", str(SNIPPETS / "verify_cryptography.py"), str(jwk)]
    chained = _run(command, "\n".join(tokens))
    assert chained.returncode == 0, chained.stderr
    assert [json.loads(line) for line in chained.stdout.splitlines()] == payloads
    backwards = _run(command, "\n".join(reversed(tokens)))
    assert backwards.returncode == 1
    assert "chain broken" in backwards.stderr


def test_node_jose_snippet_verifies_agent_envelopes(
    agent_made: tuple[Path, list[str], list[dict]], tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "jose" / "package.json").exists():
        pytest.skip("node or the jose package missing (scripts/test.sh installs jose with npm)")
    # ES modules resolve packages from the script's own directory: run it beside node_modules.
    script = NODE_MODULES.parent / "verify_jose.mjs"
    shutil.copyfile(SNIPPETS / "verify_jose.mjs", script)
    jwk, tokens, payloads = agent_made
    for token, payload in zip(tokens, payloads, strict=True):
        good = _run([node, str(script), str(jwk)], token)
        assert good.returncode == 0, good.stderr
        assert json.loads(good.stdout) == payload
    bad = _run([node, str(script), str(jwk)], _tampered(tokens[0]))
    assert bad.returncode == 1
    assert "rejected" in bad.stderr

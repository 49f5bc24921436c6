"""Root conftest: loads every fixture module in tests/support as a plugin."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import agent.logging as agent_logging

_SUPPORT = Path(__file__).parent / "support"
pytest_plugins = [
    f"tests.support.{path.stem}"
    for path in sorted(_SUPPORT.glob("*.py"))
    if not path.stem.startswith("_")
]

REPO = Path(__file__).resolve().parent.parent
SHARED_RECORDINGS = REPO.parent / "shared" / "recordings"
OWN_RECORDINGS = Path(__file__).parent / "data" / "recordings"


@pytest.fixture(scope="session")
def shared_recordings() -> Path:
    """../shared/recordings (real printers); tests that use it skip where it is absent."""
    if not SHARED_RECORDINGS.is_dir():
        pytest.skip("../shared/recordings is absent")
    return SHARED_RECORDINGS


@pytest.fixture(scope="session")
def own_recordings() -> Path:
    return OWN_RECORDINGS


@pytest.fixture(autouse=True)
def _fresh_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from structlog's defaults: a command run in-process by one test
    (writing to that test's captured, later closed, stream) never logs into the next."""
    monkeypatch.setattr(agent_logging, "_configured", True)  # no cached loggers in tests
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "fleet-agent"]:
        root.removeHandler(handler)

"""Root conftest: loads every fixture module in tests/support as a plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

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

"""State databases are private: the outbox, the inventory and their -wal/-shm files are 0600.

Issue #10: they were created with the umask's mode (0644 on most systems), so
any local user could read the queued meter reads and the device inventory.
SQLite gives a database's -wal and -shm files the database file's mode, so
the files are created 0600 before SQLite opens them, and an existing one that
others can read is made 0600 again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.inventory import Inventory
from uploader.envelope import Signer
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox

SIGNER = Signer(AgentKey.generate(), "agent-files")


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)  # the files must be private even when the umask would allow anything
    try:
        yield
    finally:
        os.umask(old)


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in sorted(directory.iterdir())}


@pytest.mark.usefixtures("permissive_umask")
def test_outbox_and_its_wal_are_created_0600(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.db", SIGNER, reserve_bytes=64 * 1024) as box:
        box.submit_many([JsonMessage("read", {"n": n}) for n in range(5)])
        modes = _modes(tmp_path)
    assert {"outbox.db", "outbox.db-wal"} <= modes.keys(), modes
    assert modes == dict.fromkeys(modes, 0o600), modes


@pytest.mark.usefixtures("permissive_umask")
def test_inventory_and_its_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        with inventory.transaction() as db:
            db.execute("PRAGMA user_version")
        modes = _modes(tmp_path)
    assert {"inventory.db", "inventory.db-wal", "inventory.db-shm"} <= modes.keys(), modes
    assert modes == dict.fromkeys(modes, 0o600), modes


@pytest.mark.usefixtures("permissive_umask")
def test_a_readable_existing_database_is_made_private(tmp_path: Path) -> None:
    Inventory(tmp_path / "inventory.db").close()
    Outbox(tmp_path / "outbox.db", SIGNER).close()
    for name in ("inventory.db", "outbox.db"):
        (tmp_path / name).chmod(0o644)
    Inventory(tmp_path / "inventory.db").close()
    Outbox(tmp_path / "outbox.db", SIGNER).close()
    assert stat.S_IMODE((tmp_path / "inventory.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "outbox.db").stat().st_mode) == 0o600

"""The agent's state directory and the files in it, named once.

``agent.key`` (the signing key), ``outbox.db`` (the durable outbox) and
``inventory.db`` (the device inventory) live in ``state_dir``; commands that
run without a config file find it through ``$FLEET_AGENT_STATE_DIR``.
The daemon and the commands both take these names from here (the daemon
imports no command module).
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.config import DEFAULT_STATE_DIR

STATE_DIR_ENV = "FLEET_AGENT_STATE_DIR"
KEY_FILE = "agent.key"
OUTBOX_FILE = "outbox.db"
INVENTORY_FILE = "inventory.db"


def default_state_dir() -> Path:
    """``$FLEET_AGENT_STATE_DIR`` when set and non-empty, else the configured default."""
    value = os.environ.get(STATE_DIR_ENV, "")
    return Path(value) if value else DEFAULT_STATE_DIR


def key_path(state_dir: Path) -> Path:
    return state_dir / KEY_FILE


def outbox_path(state_dir: Path) -> Path:
    return state_dir / OUTBOX_FILE


def inventory_path(state_dir: Path) -> Path:
    return state_dir / INVENTORY_FILE

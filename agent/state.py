"""The agent's state directory and the files in it, named once.

``agent.key`` (the signing key), ``agent.key.next`` (a new key while its
rotation waits for the backend's acknowledgement), ``outbox.db`` (the durable
outbox), ``inventory.db`` (the device inventory), ``backend-key.jwk`` (the
backend's public key, pinned at enrollment) and ``remote-config.json`` (the last
good remote configuration) live in ``state_dir``; commands that run without a
config file find it through ``$FLEET_AGENT_STATE_DIR``.
The daemon and the commands both take these names from here (the daemon
imports no command module).
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from agent.config import DEFAULT_STATE_DIR
from uploader.keys import AgentKey

log = structlog.get_logger("agent.state")

STATE_DIR_ENV = "FLEET_AGENT_STATE_DIR"
KEY_FILE = "agent.key"
NEXT_KEY_FILE = "agent.key.next"
OUTBOX_FILE = "outbox.db"
INVENTORY_FILE = "inventory.db"
#: The backend's public key (JWK), pinned at enrollment: configuration documents verify with it.
BACKEND_KEY_FILE = "backend-key.jwk"
#: The last configuration document from the backend that the daemon ran with.
REMOTE_CONFIG_FILE = "remote-config.json"


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


def next_key_path(state_dir: Path) -> Path:
    return state_dir / NEXT_KEY_FILE


def backend_key_path(state_dir: Path) -> Path:
    return state_dir / BACKEND_KEY_FILE


def remote_config_path(state_dir: Path) -> Path:
    return state_dir / REMOTE_CONFIG_FILE


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600): a reader sees the old or the new file whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_key(state_dir: Path) -> AgentKey:
    path = key_path(state_dir)
    if path.exists():
        return AgentKey.load(path)
    key = AgentKey.generate()
    key.save(path)
    log.info("keys.created", path=str(path), key_id=key.key_id)
    return key

"""Errors of the upload side, in the one tree rooted at :class:`fleet_errors.FleetAgentError`.

* :class:`KeyFileError`: an agent key or public key file is missing, unreadable
  or not an Ed25519 key; names the file.
* :class:`EnvelopeRejected`: a received token failed verification; ``reason``
  is a stable code (see :data:`REJECT_REASONS`).
* :class:`DocumentRejected`: the same for a configuration document from the backend.
* :class:`QueueError`: the durable outbox cannot be used; names the file.
  Its children say why: :class:`QueueCorrupt` (not an outbox, or damaged),
  :class:`QueueFull` (bounded size reached, nothing was written),
  :class:`QueueDiskFull` (the disk ran out of space; nothing was written and the
  outbox works again once space returns), :class:`QueueLocked` (another process
  owns the outbox), :class:`QueueClosed` (used after ``close()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fleet_errors import LocalError, RemoteError

RejectReason = Literal[
    "malformed",  # not a compact JWS, bad base64url, header not a JSON object, too large
    "wrong_algorithm",  # alg is not EdDSA/Ed25519 (including "none")
    "wrong_type",  # typ header is not the fleet-agent envelope type
    "unknown_key",  # kid missing or not among the registered public keys
    "bad_signature",  # signature does not verify with the key named by kid
    "bad_schema",  # signed payload is not a valid envelope (or kid disagrees with key_id)
    "unsupported_version",  # schema_version major is not one this code understands
]
REJECT_REASONS: tuple[RejectReason, ...] = (
    "malformed",
    "wrong_algorithm",
    "wrong_type",
    "unknown_key",
    "bad_signature",
    "bad_schema",
    "unsupported_version",
)


class KeyFileError(LocalError):
    """A key file is missing, unreadable, malformed or would be overwritten."""

    path: Path

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(f"{path}: {message}", path=path)


class EnvelopeRejected(RemoteError):
    """A received token failed verification. ``reason`` is one of :data:`REJECT_REASONS`."""

    reason: RejectReason
    what = "envelope"

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{self.what} rejected ({reason}): {detail}", reason=reason)
        self.detail = detail


class QueueError(LocalError):
    """The durable outbox cannot be used; the message names the file."""

    path: Path

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(f"{path}: {message}", path=path)


class QueueCorrupt(QueueError):
    """The file is not a fleet-agent outbox, or fails SQLite's integrity check."""


class QueueLocked(QueueError):
    """Another process has the outbox open."""


class QueueClosed(QueueError):
    """The outbox was closed; a closed outbox refuses reuse."""


class QueueDiskFull(QueueError):
    """The disk is full: nothing was written; the outbox works again when space returns."""


class QueueFull(QueueError):
    """The outbox reached its bound for this kind of message; nothing was written."""

    def __init__(self, message: str, *, path: Path, depth: int, max_messages: int) -> None:
        super().__init__(message, path=path)
        self.depth = depth
        self.max_messages = max_messages


class DocumentRejected(EnvelopeRejected):
    """A configuration document from the backend failed verification (``reason`` as above)."""

    what = "configuration document"

"""Remote configuration, the agent's side of the wire: pinned key, screening, last good file.

:class:`RemoteConfigReceiver` decides what to do with each document the broker
delivers (the daemon applies it, :mod:`agent.daemon`):

* no ``STATE_DIR/backend-key.jwk`` pinned: remote configuration is ignored, and
  the log says so once (``config.remote_ignored``);
* a signature that does not verify with the pinned key, a document addressed to
  another site or agent, a version not newer than the applied one (a replay):
  refused, with the reason;
* the same document again (the broker re-sends retained messages on every
  reconnect), or one already refused: nothing, quietly.

After the daemon ran a document successfully, :meth:`RemoteConfigReceiver.applied_ok`
writes it (the signed token, re-verified at the next start) to
``STATE_DIR/remote-config.json`` atomically: the agent restarted later runs with
it before it reconnects.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import structlog

from agent.state import backend_key_path, remote_config_path, write_atomically
from uploader.errors import DocumentRejected, KeyFileError
from uploader.keys import PublicKey, load_public_key
from uploader.remote_config import ConfigDocument, ConfigRefusal, ConfigStatus, verify_document

__all__ = ["Received", "RemoteConfigReceiver"]

log = structlog.get_logger("agent.remote_config")


class Received:
    """A verified document addressed to this agent and newer than the one applied."""

    __slots__ = ("document", "token")

    def __init__(self, document: ConfigDocument, token: str) -> None:
        self.document = document
        self.token = token


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class RemoteConfigReceiver:
    def __init__(self, state_dir: Path, *, site: str, agent_id: str) -> None:
        self._state_dir = state_dir
        self._site = site
        self._agent_id = agent_id
        self.applied: ConfigDocument | None = None
        self._handled: set[str] = set()  # digests of payloads applied or refused already
        self._said_no_key = False
        self.last_error: str | None = None

    @property
    def applied_version(self) -> int | None:
        return self.applied.version if self.applied is not None else None

    def pinned_key(self) -> PublicKey | None:
        """The backend's pinned public key; ``None`` (said once) when none is pinned."""
        path = backend_key_path(self._state_dir)
        if not path.exists():
            if not self._said_no_key:
                self._said_no_key = True
                self.last_error = (
                    f"no backend key pinned at {path}: remote configuration is off "
                    "(enroll the agent, or copy the backend's public JWK there)"
                )
                log.warning("config.remote_ignored", reason=self.last_error)
            return None
        return load_public_key(path)

    # -- start-up --------------------------------------------------------------------

    def load_last_good(self) -> Received | None:
        """The last document the daemon ran with, verified again; ``None`` if none is usable."""
        path = remote_config_path(self._state_dir)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            token = record["token"]
            if not isinstance(token, str):
                raise TypeError("token is not a string")  # noqa: TRY301 - one handler below
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._unusable(path, f"unreadable ({exc})")
            return None
        try:
            key = self.pinned_key()
            if key is None:
                return None
            document = verify_document(token, key)
        except (KeyFileError, DocumentRejected) as exc:
            self._unusable(path, str(exc))
            return None
        if not document.addressed_to(site=self._site, agent_id=self._agent_id):
            self._unusable(path, f"addressed to {document.scope}")
            return None
        self._handled.add(_digest(token.encode("ascii")))
        return Received(document, token)

    def _unusable(self, path: Path, why: str) -> None:
        self.last_error = f"{path}: {why}"
        log.error("config.remote_unusable", path=str(path), reason=why)

    # -- documents from the broker ---------------------------------------------------

    def screen(self, payload: bytes) -> Received | ConfigStatus | None:
        """A document to apply, a refusal to report, or ``None`` (nothing to do)."""
        if not payload:
            return None  # a retained document was cleared
        digest = _digest(payload)
        if digest in self._handled:
            log.debug("config.remote_seen", applied_version=self.applied_version)
            return None
        try:
            key = self.pinned_key()
        except KeyFileError as exc:
            return self._refuse(digest, None, "no_pinned_key", str(exc))
        if key is None:
            return None
        try:
            document = verify_document(payload, key)
        except DocumentRejected as exc:
            return self._refuse(digest, None, "rejected", str(exc))
        if not document.addressed_to(site=self._site, agent_id=self._agent_id):
            detail = f"{document.label} is addressed to {document.scope}"
            return self._refuse(digest, document.version, "wrong_scope", detail)
        applied = self.applied_version
        if applied is not None and document.version <= applied:
            detail = f"{document.label} is not newer than the applied version {applied}"
            return self._refuse(digest, document.version, "replay", detail)
        self._handled.add(digest)
        return Received(document, payload.decode("ascii"))

    def _refuse(
        self, digest: str, version: int | None, reason: ConfigRefusal, detail: str
    ) -> ConfigStatus:
        self._handled.add(digest)
        return self.refused(version, reason, detail)

    def refused(
        self, version: int | None, reason: ConfigRefusal, detail: str, *, rolled_back: bool = False
    ) -> ConfigStatus:
        """A report of a document not applied (or rolled back); logged here."""
        self.last_error = detail
        status = ConfigStatus(
            outcome="rolled_back" if rolled_back else "refused",
            version=version,
            applied_version=self.applied_version,
            reason=reason,
            detail=detail[:4000],
        )
        log.error(
            "config.remote_rolled_back" if rolled_back else "config.remote_refused",
            version=version,
            reason=reason,
            detail=detail,
            applied_version=self.applied_version,
        )
        return status

    def applied_ok(self, received: Received) -> ConfigStatus:
        """Record ``received`` as running: in memory and in the last good file."""
        record = {
            "version": received.document.version,
            "applied_at": datetime.now(UTC).isoformat(),
            "token": received.token,
        }
        path = remote_config_path(self._state_dir)
        self.applied = received.document
        self.last_error = None
        try:
            write_atomically(path, json.dumps(record, indent=2).encode("utf-8"))
        except OSError as exc:  # running with it; a restart would fall back to the older one
            self.last_error = f"{path}: cannot save the applied document ({exc.strerror or exc})"
            log.error("config.remote_not_saved", path=str(path), reason=self.last_error)  # noqa: TRY400 - named
        log.info(
            "config.remote_applied",
            version=received.document.version,
            scope=received.document.scope,
        )
        return ConfigStatus(
            outcome="applied",
            version=received.document.version,
            applied_version=received.document.version,
        )

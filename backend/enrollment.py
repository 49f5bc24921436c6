"""The consumer's answers to control requests: enrollment and key rotation.

:class:`ControlDesk` is socket-free: given a verified request envelope (and, for
enrollment, the key it was verified with: the one it enrolls) it applies the
request to the :class:`backend.keyring.KeyRing` inside the consumer's store
transaction and returns the signed reply for ``{prefix}/{site}/{agent_id}/replies``.

* ``enroll``: the token must exist, be unrevoked, unexpired, unused (or used by this
  very agent and key: a retry after a lost reply) and be for the site the agent
  publishes on; the key must not be bound to another agent id. The key is then
  bound to that agent id and the token's site only; the agent's other active keys
  are retired (a reinstalled agent enrolls anew); the token is marked used.
* ``key_rotation`` (signed by the old key, checked by the caller to be active and
  this agent's): the new key's proof must verify; the new key is bound to the
  same agent and site, the old one retired.

A request delivered again (same message id) gets the reply it got the first time.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from pydantic import ValidationError

from backend.keyring import KeyBinding, KeyRing
from uploader.enrollment import (
    ControlReply,
    EnrollRequest,
    KeyRotationRequest,
    Outcome,
    PublicJwk,
    sign_reply,
    token_hash,
    verify_key_proof,
)
from uploader.envelope import Envelope
from uploader.keys import AgentKey

__all__ = ["ControlAnswer", "ControlDesk", "parse_enroll", "parse_rotation"]

log = structlog.get_logger("backend.enrollment")


@dataclass(frozen=True)
class ControlAnswer:
    outcome: Outcome
    reply: str  # the signed reply (compact JWS)
    repeated: bool = False  # the same request again: its first reply


def parse_enroll(envelope: Envelope) -> EnrollRequest:
    """Raises ``ValidationError`` when the body is not an enrollment request."""
    return EnrollRequest.model_validate(envelope.body)


def parse_rotation(envelope: Envelope) -> KeyRotationRequest:
    return KeyRotationRequest.model_validate(envelope.body)


def _payload_of(token: str) -> bytes:
    """The payload of a reply this backend signed and stored (trusted: read back only)."""
    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def body_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"body.{where}: {first['msg']}"


class ControlDesk:
    """Applies enrollment and rotation requests; signs replies with the backend key."""

    def __init__(self, keyring: KeyRing, backend_key: AgentKey, clock: Callable[[], datetime]):
        self._keys = keyring
        self._backend = backend_key
        self._backend_jwk = PublicJwk.model_validate(backend_key.public_jwk())
        self._clock = clock

    def _answer(
        self,
        envelope: Envelope,
        *,
        kind: str,
        key_id: str,
        outcome: Outcome,
        site: str | None,
        detail: str,
    ) -> ControlAnswer:
        reply = ControlReply(
            kind="enroll_reply" if kind == "enroll" else "key_rotation_reply",
            request_id=envelope.message_id,
            agent_id=envelope.agent_id,
            key_id=key_id,
            outcome=outcome,
            site=site,
            detail=detail,
            backend_jwk=self._backend_jwk,
            created_at=self._clock(),
        )
        token = sign_reply(self._backend, reply)
        self._keys.remember(
            message_id=envelope.message_id,
            agent_id=envelope.agent_id,
            kind=kind,
            reply=token,
            now=self._clock(),
        )
        log.info(
            "ingest.control_answered",
            kind=kind,
            agent_id=envelope.agent_id,
            key_id=key_id,
            outcome=outcome,
            detail=detail,
        )
        return ControlAnswer(outcome, token)

    def repeated(self, envelope: Envelope) -> ControlAnswer | None:
        """The first reply to this very request, if it was answered already."""
        token = self._keys.answered(envelope.message_id)
        if token is None:
            return None
        first = ControlReply.model_validate_json(_payload_of(token))
        return ControlAnswer(first.outcome, token, repeated=True)

    def enroll(self, envelope: Envelope, request: EnrollRequest, site: str) -> ControlAnswer:
        """Apply an enrollment request that arrived on ``site``'s topic."""
        now = self._clock()
        jwk = request.public_jwk.as_dict()
        key_id = jwk["kid"]

        def answer(outcome: Outcome, detail: str, bound_site: str | None = None) -> ControlAnswer:
            return self._answer(
                envelope,
                kind="enroll",
                key_id=key_id,
                outcome=outcome,
                site=bound_site,
                detail=detail,
            )

        digest = token_hash(request.token)
        token = self._keys.token(digest)
        if token is None:
            return answer("unknown_token", "no such enrollment token at this backend")
        if token.revoked_at is not None:
            return answer("token_revoked", f"token {token.token_id} was revoked")
        known = self._keys.binding(key_id)
        if known is not None and known.status == "revoked":
            return answer("key_in_use", f"key {key_id} was revoked; make a new key")
        if token.used_at is not None:
            if (token.used_by, token.used_key_id) == (envelope.agent_id, key_id):
                return answer("accepted", "already enrolled with this token", token.site)
            return answer(
                "token_reused",
                f"token {token.token_id} was used at {token.used_at.isoformat()} "
                f"by agent {token.used_by}",
            )
        if token.expires_at <= now:
            return answer(
                "token_expired", f"token {token.token_id} expired at {token.expires_at.isoformat()}"
            )
        if token.site != site:
            return answer(
                "site_mismatch",
                f"token {token.token_id} is for site {token.site!r}, but the agent publishes "
                f"for site {site!r}: set site: {token.site} in its configuration",
            )
        if known is not None and known.agent_id not in (None, envelope.agent_id):
            return answer("key_in_use", f"key {key_id} is bound to agent {known.agent_id}")
        if known is None:
            self._keys.add(
                jwk=jwk, agent_id=envelope.agent_id, site=token.site, source="enrollment", now=now
            )
        else:
            self._keys.set_status(key_id, "active", now)
        self._keys.bind(key_id, envelope.agent_id, token.site, source="enrollment")
        self._keys.retire_active(envelope.agent_id, now, except_key=key_id)
        self._keys.use_token(digest, agent_id=envelope.agent_id, key_id=key_id, now=now)
        return answer("accepted", f"key {key_id} enrolled for site {token.site}", token.site)

    def refuse_rotation(
        self, envelope: Envelope, request: KeyRotationRequest, old: KeyBinding, reason: str
    ) -> ControlAnswer:
        """A rotation signed by a key that may not sign for the agent (``reason``)."""
        return self._answer(
            envelope,
            kind="key_rotation",
            key_id=request.new_jwk.as_dict()["kid"],
            outcome="key_not_active",
            site=old.site,
            detail=f"{reason}: key {old.key_id} may not sign for agent {envelope.agent_id}",
        )

    def rotate(
        self, envelope: Envelope, request: KeyRotationRequest, old: KeyBinding
    ) -> ControlAnswer:
        """Apply a rotation signed by ``old`` (the caller checked it may sign for the agent)."""
        now = self._clock()
        new_jwk = request.new_jwk.as_dict()
        new_id = new_jwk["kid"]

        def answer(outcome: Outcome, detail: str) -> ControlAnswer:
            return self._answer(
                envelope,
                kind="key_rotation",
                key_id=new_id,
                outcome=outcome,
                site=old.site,
                detail=detail,
            )

        if old.status == "retired" and old.replaced_by == new_id:
            return answer("accepted", f"key {old.key_id} was already replaced by {new_id}")
        if old.status != "active":
            return answer("key_not_active", f"key {old.key_id} is {old.status}")
        if not verify_key_proof(request, agent_id=envelope.agent_id, old_key_id=old.key_id):
            return answer("bad_proof", "new_key_proof is not the new key's signature")
        known = self._keys.binding(new_id)
        if known is not None:
            return answer("key_in_use", f"key {new_id} is already registered")
        self._keys.add(
            jwk=new_jwk, agent_id=envelope.agent_id, site=old.site, source="rotation", now=now
        )
        self._keys.set_status(old.key_id, "retired", now, replaced_by=new_id)
        return answer("accepted", f"key {old.key_id} replaced by {new_id}")

"""The reference backend consumer: verify, deduplicate, check the chain, store.

:class:`Ingestor` is the socket-free core: ``handle_batch([(topic, payload), ...])``
verifies each envelope against the registered public keys and classifies it:

* rejected with a reason: one of :data:`uploader.errors.REJECT_REASONS`
  (``malformed``, ``bad_signature``, ``unknown_key``, ...), a key that may not
  sign it (:func:`backend.keyring.key_refusal`: ``key_revoked``, ``key_retired``,
  ``key_not_enrolled_for_agent``, ``key_not_enrolled_for_site``), ``topic_mismatch``
  (the envelope's agent or kind disagrees with its topic), ``replay`` (a
  validly signed envelope re-using a message id or a sequence number the agent
  already used for different content), or ``duplicate`` (the very same
  envelope again: an at-least-once redelivery, or a verbatim replay);
* stored, noting a gap (sequences skipped; remembered until they arrive), a
  chain break (``prev_hash`` is not the hash of the previous envelope) or an
  agent restart (sequence 1 again: the agent lost its outbox).

Keys come from the store (:class:`backend.keyring.KeyRing`): enrolled, rotated,
or registered by hand (``file_keys``, bound to the agent id their file names, or
to the first agent id that signs with them). Control requests (``enroll`` and
``keys`` topics) are answered by :class:`backend.enrollment.ControlDesk`; the
outcome carries the signed reply for the shell to publish after the commit.

A stored ``read`` or ``event`` body is parsed with the agent's own models
(:func:`mibs.messages.parse_body`: the read schema and the event union). A
signed body that does not follow them is still stored (it is signed billing
data: never dropped) but counted as ``off_schema`` and logged as
``ingest.body_off_schema`` naming the field.

:func:`backend.consume.run_ingest` is the MQTT shell around it; it subscribes to
``reads``, ``events``, ``status``, ``presence``, ``enroll`` and ``keys``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from backend import agents
from backend.enrollment import ControlAnswer, ControlDesk, body_error, parse_enroll, parse_rotation
from backend.keyring import KeyBinding, KeyRing, key_refusal
from backend.store import AgentState, SqlStore, StoreBatch, StoredMessage
from mibs.messages import AgentMessage, ReadMessage, parse_body
from uploader.config import (
    KIND_BY_TOPIC_LEVEL,
    PRESENCE_LEVEL,
    PRESENCE_OFFLINE,
    PRESENCE_ONLINE,
    REPLIES_LEVEL,
    TOPIC_LEVEL_BY_KIND,
)
from uploader.enrollment import EnrollRequest, KeyRotationRequest, PublicJwk, jwk_key
from uploader.envelope import Envelope, envelope_hash, verify_envelope
from uploader.errors import EnvelopeRejected
from uploader.keys import AgentKey, PublicKey, RegisteredKey

__all__ = ["IngestSummary", "Ingestor", "Outcome", "subscription_topics"]

log = structlog.get_logger("backend.ingest")

_Request = TypeVar("_Request", EnrollRequest, KeyRotationRequest)

#: At most this many missing sequences are remembered per detected gap.
MAX_MISSING_PER_GAP = 100_000

OutcomeKind = Literal["stored", "duplicate", "rejected", "presence", "answered"]


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reason: str | None = None
    agent_id: str | None = None
    sequence: int | None = None
    reply: tuple[str, bytes] | None = None  # (topic, signed reply) to publish after commit


class IngestSummary(BaseModel):
    """What one ``ingest`` run did; printed at the end."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    received: int
    verified: int
    stored: int
    duplicates: int
    rejected: dict[str, int]
    gaps_detected: int
    gaps_open: int
    chain_breaks: int
    restarts: int
    presence: int
    off_schema: int = 0
    answered: dict[str, int] = {}  # control requests: "enroll accepted", "enroll token_reused"


@dataclass
class _Counters:
    received: int = 0
    verified: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    gaps_detected: int = 0
    chain_breaks: int = 0
    restarts: int = 0
    presence: int = 0
    off_schema: int = 0
    answered: Counter[str] = field(default_factory=Counter)


def parse_message(envelope: Envelope) -> tuple[AgentMessage | None, str | None]:
    """``envelope``'s body as its kind's model, parsed once for everything ingest does with it.

    ``(model, None)``, ``(None, None)`` for a kind without a model, or ``(None, why)``
    when the body does not follow its model.
    """
    try:
        return parse_body(envelope.kind, envelope.body), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return None, f"{envelope.kind} body: {where}: {first['msg']}"


def _claimed_key(payload: bytes) -> PublicKey | None:
    """The public key an (unverified) enrollment request claims; verified with next."""
    try:
        segment = payload.split(b".")[1]
        body = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))["body"]
        return jwk_key(PublicJwk.model_validate(body["public_jwk"]))
    except (IndexError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class _Lookup:
    """A :class:`uploader.envelope.KeyLookup` calling ``find`` (the store's bindings)."""

    find: Callable[[str], PublicKey | None]

    def get(self, kid: str, /) -> PublicKey | None:
        return self.find(kid)


def subscription_topics(topic_prefix: str, group: str | None) -> list[str]:
    """``$share/{group}/{prefix}/+/+/{reads,events,status,presence}`` (plain without a group)."""
    share = f"$share/{group}/" if group else ""
    levels = [*TOPIC_LEVEL_BY_KIND.values(), PRESENCE_LEVEL]
    return [f"{share}{topic_prefix}/+/+/{level}" for level in levels]


class Ingestor:
    """Socket-free consumer core. Not thread-safe; one per store connection.

    ``file_keys`` are registered in the store at once; ``backend_key`` signs the
    replies to enrollment and rotation requests (without it they are refused,
    reason ``no_backend_key``).
    """

    def __init__(
        self,
        store: SqlStore,
        *,
        topic_prefix: str,
        file_keys: Sequence[RegisteredKey] = (),
        backend_key: AgentKey | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._keys = KeyRing(store)
        self._desk = None if backend_key is None else ControlDesk(self._keys, backend_key, clock)
        self._public: dict[str, PublicKey] = {}
        self._bindings: dict[str, KeyBinding | None] = {}
        self._prefix = topic_prefix + "/"
        self._clock = clock
        self._counters = _Counters()
        if file_keys:
            with store.batch():
                for key in file_keys:
                    done = self._keys.register_file_key(
                        jwk=key.jwk, agent_id=key.agent_id, site=key.site, now=clock()
                    )
                    log.info(
                        "ingest.file_key",
                        key_id=key.key_id,
                        agent_id=key.agent_id,
                        site=key.site,
                        path=str(key.path) if key.path else None,
                        result=done,
                    )

    @property
    def processed(self) -> int:
        return self._counters.received

    @property
    def stored(self) -> int:
        return self._counters.stored

    def summary(self) -> IngestSummary:
        c = self._counters
        open_gaps = sum(state.gaps for state in self._store.agent_states())
        return IngestSummary(
            received=c.received,
            verified=c.verified,
            stored=c.stored,
            duplicates=c.duplicates,
            rejected=dict(sorted(c.rejected.items())),
            gaps_detected=c.gaps_detected,
            gaps_open=open_gaps,
            chain_breaks=c.chain_breaks,
            restarts=c.restarts,
            presence=c.presence,
            off_schema=c.off_schema,
            answered=dict(sorted(c.answered.items())),
        )

    def _topic_parts(self, topic: str) -> tuple[str, str, str] | None:
        if not topic.startswith(self._prefix):
            return None
        parts = topic[len(self._prefix) :].split("/")
        if len(parts) != 3 or (parts[2] not in KIND_BY_TOPIC_LEVEL and parts[2] != PRESENCE_LEVEL):
            return None
        return parts[0], parts[1], parts[2]

    def handle(self, topic: str, payload: bytes) -> Outcome:
        return self.handle_batch([(topic, payload)])[0]

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        """Classify and store a batch in one store transaction."""
        agents = []
        for topic, _payload in messages:
            parts = self._topic_parts(topic)
            if parts is not None:
                agents.append(parts[1])
        self._bindings.clear()  # read once per batch: a revocation counts from the next one
        with self._store.batch(agents) as batch:
            return [self._handle_one(batch, topic, payload) for topic, payload in messages]

    def _reject(
        self, batch: StoreBatch, reason: str, detail: str, *, topic: str, agent_id: str | None
    ) -> Outcome:
        self._counters.rejected[reason] += 1
        batch.count_rejection(reason, detail)
        log.warning("ingest.rejected", reason=reason, detail=detail, topic=topic)
        return Outcome("rejected", reason=reason, agent_id=agent_id)

    def _handle_one(self, batch: StoreBatch, topic: str, payload: bytes) -> Outcome:
        self._counters.received += 1
        parts = self._topic_parts(topic)
        if parts is None:
            return self._reject(
                batch, "topic_mismatch", "not a fleet topic", topic=topic, agent_id=None
            )
        site, topic_agent, level = parts
        if level == PRESENCE_LEVEL:  # unsigned liveness hint, never stored as data
            if payload not in (PRESENCE_ONLINE, PRESENCE_OFFLINE):
                detail = f"presence payload {payload[:40]!r} is neither online nor offline"
                return self._reject(batch, "malformed", detail, topic=topic, agent_id=topic_agent)
            self._counters.presence += 1
            log.info("ingest.presence", agent_id=topic_agent, state=payload.decode())
            return Outcome("presence", agent_id=topic_agent)
        if KIND_BY_TOPIC_LEVEL[level] == "enroll":
            return self._enroll(batch, topic, payload, site, topic_agent)
        bound: list[KeyBinding] = []
        try:
            envelope = verify_envelope(payload, _Lookup(lambda kid: self._key_for(kid, bound)))
        except EnvelopeRejected as exc:
            return self._reject(batch, exc.reason, exc.detail, topic=topic, agent_id=topic_agent)
        self._counters.verified += 1
        if envelope.agent_id != topic_agent or KIND_BY_TOPIC_LEVEL[level] != envelope.kind:
            detail = f"envelope of {envelope.agent_id!r} ({envelope.kind}) on topic {topic!r}"
            return self._reject(batch, "topic_mismatch", detail, topic=topic, agent_id=topic_agent)
        refusal = self._refusal(bound[0], envelope, site)
        if envelope.kind == "key_rotation":
            return self._rotate(batch, topic, envelope, bound[0], refusal=refusal, site=site)
        if refusal is not None:
            detail = (
                f"key {bound[0].key_id} may not sign for {envelope.agent_id!r} on site {site!r}"
            )
            return self._reject(batch, refusal, detail, topic=topic, agent_id=topic_agent)
        token = payload.decode("ascii")
        return self._accept(batch, topic, token, envelope)

    # -- keys -------------------------------------------------------------------------

    def _public_key(self, binding: KeyBinding) -> PublicKey:
        key = self._public.get(binding.key_id)
        if key is None:
            key = jwk_key(PublicJwk.model_validate(binding.jwk))
            self._public[binding.key_id] = key
        return key

    def _key_for(self, kid: str, bound: list[KeyBinding]) -> PublicKey | None:
        if kid not in self._bindings:
            self._bindings[kid] = self._keys.binding(kid)
        binding = self._bindings[kid]
        if binding is None:
            return None
        bound.append(binding)
        return self._public_key(binding)

    def _refusal(self, binding: KeyBinding, envelope: Envelope, site: str) -> str | None:
        reason = key_refusal(
            binding, agent_id=envelope.agent_id, site=site, created_at=envelope.created_at
        )
        if reason is None and binding.agent_id is None:
            self._keys.bind_first_use(binding.key_id, envelope.agent_id, self._clock())
            self._bindings[binding.key_id] = binding.model_copy(
                update={"agent_id": envelope.agent_id}
            )
            log.info(
                "ingest.key_bound_on_first_use", key_id=binding.key_id, agent_id=envelope.agent_id
            )
        return reason

    # -- control requests ---------------------------------------------------------------

    def _answered(
        self, batch: StoreBatch, kind: str, envelope: Envelope, site: str, answer: ControlAnswer
    ) -> Outcome:
        self._bindings.clear()  # the request may have bound, retired or added keys
        self._counters.answered[f"{kind} {answer.outcome}"] += 1
        if answer.outcome != "accepted" and not answer.repeated:
            batch.count_rejection(answer.outcome, f"{kind} of {envelope.agent_id}")
        topic = f"{self._prefix}{site}/{envelope.agent_id}/{REPLIES_LEVEL}"
        return Outcome(
            "answered",
            reason=None if answer.outcome == "accepted" else answer.outcome,
            agent_id=envelope.agent_id,
            reply=(topic, answer.reply.encode("ascii")),
        )

    def _no_desk(self, batch: StoreBatch, topic: str, agent: str) -> Outcome:
        detail = "start ingest with --backend-key to answer enrollment and key rotation"
        log.error("ingest.no_backend_key", topic=topic, detail=detail)
        return self._reject(batch, "no_backend_key", detail, topic=topic, agent_id=agent)

    def _enroll(
        self, batch: StoreBatch, topic: str, payload: bytes, site: str, agent: str
    ) -> Outcome:
        """An enrollment request: signed by the key it enrolls, which its body carries."""
        claimed = _claimed_key(payload)
        keys = {} if claimed is None else {claimed.thumbprint(): claimed}
        try:
            envelope = verify_envelope(payload, keys)
        except EnvelopeRejected as exc:
            return self._reject(batch, exc.reason, exc.detail, topic=topic, agent_id=agent)
        self._counters.verified += 1
        if envelope.agent_id != agent or envelope.kind != "enroll":
            detail = f"envelope of {envelope.agent_id!r} ({envelope.kind}) on topic {topic!r}"
            return self._reject(batch, "topic_mismatch", detail, topic=topic, agent_id=agent)
        return self._control(
            batch,
            topic,
            envelope,
            parse_enroll,
            lambda desk, request: desk.enroll(envelope, request, site),
            site=site,
        )

    def _rotate(
        self,
        batch: StoreBatch,
        topic: str,
        envelope: Envelope,
        old: KeyBinding,
        *,
        refusal: str | None,
        site: str,
    ) -> Outcome:
        agent = envelope.agent_id

        def answer(desk: ControlDesk, request: KeyRotationRequest) -> ControlAnswer:
            if refusal is not None and not (
                old.status == "retired" and old.replaced_by == request.new_jwk.as_dict()["kid"]
            ):
                batch.count_rejection(refusal, f"key_rotation signed by {old.key_id} for {agent}")
                return desk.refuse_rotation(envelope, request, old, refusal)
            return desk.rotate(envelope, request, old)

        return self._control(batch, topic, envelope, parse_rotation, answer, site=site)

    def _control(
        self,
        batch: StoreBatch,
        topic: str,
        envelope: Envelope,
        parse: Callable[[Envelope], _Request],
        answer: Callable[[ControlDesk, _Request], ControlAnswer],
        *,
        site: str,
    ) -> Outcome:
        """A verified control request (``enroll``, ``key_rotation``) answered by the desk.

        No desk (no backend key): refused. The same request again: the stored answer
        (an agent that missed the reply asks again). Else its body is parsed (a bad one
        is ``bad_schema``) and ``answer`` decides.
        """
        agent = envelope.agent_id
        if self._desk is None:
            return self._no_desk(batch, topic, agent)
        reply = self._desk.repeated(envelope)
        if reply is None:
            try:
                request = parse(envelope)
            except ValidationError as exc:
                return self._reject(
                    batch, "bad_schema", body_error(exc), topic=topic, agent_id=agent
                )
            reply = answer(self._desk, request)
        return self._answered(batch, envelope.kind, envelope, site, reply)

    def _accept(self, batch: StoreBatch, topic: str, token: str, envelope: Envelope) -> Outcome:
        agent_id, sequence = envelope.agent_id, envelope.sequence
        digest = envelope_hash(token)
        known = batch.message_hash(envelope.message_id)
        if known is not None:
            if known == digest:
                self._counters.duplicates += 1
                batch.count_rejection("duplicate", f"message {envelope.message_id} again")
                log.info("ingest.duplicate", agent_id=agent_id, sequence=sequence)
                return Outcome(
                    "duplicate", reason="duplicate", agent_id=agent_id, sequence=sequence
                )
            return self._reject(
                batch,
                "replay",
                f"message id {envelope.message_id} re-used with different content",
                topic=topic,
                agent_id=agent_id,
            )
        state = batch.agent_state(agent_id)
        new_state = self._advance(batch, state, envelope, digest, topic)
        if new_state is None:
            return self._reject(
                batch,
                "replay",
                f"sequence {sequence} of {agent_id} was already used by another message",
                topic=topic,
                agent_id=agent_id,
            )
        batch.put_agent_state(new_state)
        parsed, off_schema = parse_message(envelope)
        if off_schema is not None:
            self._counters.off_schema += 1
            log.warning(
                "ingest.body_off_schema",
                agent_id=agent_id,
                sequence=sequence,
                kind=envelope.kind,
                detail=off_schema,
            )
        received_at = self._clock()
        batch.insert_message(
            StoredMessage(
                message_id=envelope.message_id,
                agent_id=agent_id,
                sequence=sequence,
                kind=envelope.kind,
                created_at=envelope.created_at,
                received_at=received_at,
                body=json.dumps(envelope.body, separators=(",", ":"), sort_keys=True),
                token=token,
                hash=digest,
                prev_hash=envelope.prev_hash,
            ),
            read=parsed if isinstance(parsed, ReadMessage) else None,
        )
        if parsed is not None:  # heartbeats and device outages: backend/agents.py
            parts = self._topic_parts(topic)
            origin = agents.Origin(
                agent_id=agent_id,
                site=parts[0] if parts else "",
                message_id=envelope.message_id,
                created_at=envelope.created_at,
                received_at=received_at,
            )
            agents.record(batch, origin, parsed)
        self._counters.stored += 1
        return Outcome("stored", agent_id=agent_id, sequence=sequence)

    def _chain_break(self, agent_id: str, sequence: int, why: str) -> None:
        self._counters.chain_breaks += 1
        log.warning("ingest.chain_break", agent_id=agent_id, sequence=sequence, detail=why)

    def _advance(
        self,
        batch: StoreBatch,
        state: AgentState | None,
        envelope: Envelope,
        digest: str,
        topic: str,
    ) -> AgentState | None:
        """The agent's next state with ``envelope`` accepted, or None for a replay."""
        agent_id, sequence = envelope.agent_id, envelope.sequence
        if state is None:
            state = AgentState(agent_id=agent_id, last_sequence=0, last_hash="")
            if sequence > 1:
                log.info("ingest.first_contact", agent_id=agent_id, sequence=sequence)
        if sequence == state.last_sequence + 1:
            if state.last_sequence > 0 and envelope.prev_hash != state.last_hash:
                self._chain_break(agent_id, sequence, "prev_hash is not the previous hash")
                state = state.model_copy(update={"chain_breaks": state.chain_breaks + 1})
            return state.model_copy(update={"last_sequence": sequence, "last_hash": digest})
        if sequence > state.last_sequence:
            # First contact above 1 counts 1..sequence-1 as missing: with several
            # consumers sequence 1 may simply be late. Only the newest are remembered.
            first = max(state.last_sequence + 1, sequence - MAX_MISSING_PER_GAP)
            missing = range(first, sequence)
            added = batch.add_missing(agent_id, missing)
            if added:
                self._counters.gaps_detected += added
                log.warning(
                    "ingest.gap", agent_id=agent_id, missing_from=first, missing_to=sequence - 1
                )
            return state.model_copy(
                update={"last_sequence": sequence, "last_hash": digest, "gaps": state.gaps + added}
            )
        if batch.is_missing(agent_id, sequence):
            batch.remove_missing(agent_id, sequence)
            before = batch.hash_at(agent_id, sequence - 1)
            stored_after, after_links_to = batch.prev_hash_at(agent_id, sequence + 1)
            if (before is not None and before != envelope.prev_hash) or (
                stored_after and after_links_to != digest
            ):
                self._chain_break(
                    agent_id, sequence, "late message does not fit its neighbours in the chain"
                )
                state = state.model_copy(update={"chain_breaks": state.chain_breaks + 1})
            log.info("ingest.gap_filled", agent_id=agent_id, sequence=sequence)
            return state.model_copy(update={"gaps": max(0, state.gaps - 1)})
        if sequence == 1:
            self._counters.restarts += 1
            log.warning(
                "ingest.agent_restart", agent_id=agent_id, last_sequence=state.last_sequence
            )
            batch.clear_missing(agent_id)
            return state.model_copy(
                update={
                    "last_sequence": 1,
                    "last_hash": digest,
                    "gaps": 0,
                    "restarts": state.restarts + 1,
                }
            )
        return None

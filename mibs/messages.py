"""The messages the agent uploads, typed: a read message and the events of :mod:`mibs.events`.

(The agent's heartbeat, :class:`mibs.heartbeat.Heartbeat`, is a ``status`` message.)
A :class:`ReadMessage` is a :class:`~mibs.models.PrinterRead` plus what the
daemon knows about it: the stable ``device_id``, the ``purpose`` of the job
that made it, and the eligibility verdict when a policy is configured. Its JSON
form is the read schema (``docs/schema/read.schema.json``), flat: the read's
fields and these three side by side (``eligibility`` left out when there is no
verdict).

All satisfy the uploader's ``Outgoing`` protocol (``kind`` and ``to_body()``),
so the outbox signs them without looking inside, and :func:`parse_body` turns a
received body back into the same model for the reference backend.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from mibs.events import Event, parse_event
from mibs.heartbeat import Heartbeat, parse_status
from mibs.models import PrinterRead
from mibs.verdict import Verdict

__all__ = ["AgentMessage", "Purpose", "ReadMessage", "parse_body"]

Purpose = Literal["meters", "supplies"]


class ReadMessage(PrinterRead):
    """One uploaded read (envelope kind ``read``)."""

    kind: ClassVar[Literal["read"]] = "read"

    device_id: str = Field(
        description="Stable device id (serial, else MAC, else sysObjectID + IEEE 1284 id)."
    )
    purpose: Purpose = Field(description="Which scheduled job made an uploaded read.")
    eligibility: Verdict | None = None

    @classmethod
    def of(
        cls, read: PrinterRead, *, device_id: str, purpose: Purpose, verdict: Verdict | None
    ) -> ReadMessage:
        """``read`` with what the daemon adds to it."""
        fields = dict(read)  # the read's own fields, models kept as they are (no re-validation)
        return cls.model_construct(
            **fields, device_id=device_id, purpose=purpose, eligibility=verdict
        )

    def to_body(self) -> dict[str, JsonValue]:
        """The JSON object uploaded as the envelope body."""
        body: dict[str, JsonValue] = self.model_dump(
            mode="json", exclude={"eligibility"} if self.eligibility is None else None
        )
        return body


#: Every message the agent uploads that has a model.
AgentMessage = ReadMessage | Event | Heartbeat


def parse_body(kind: str, body: object) -> AgentMessage | None:
    """The model of a received ``read``, ``event`` or heartbeat ``status`` body;
    ``None`` for other kinds and other status reports.

    Raises ``pydantic.ValidationError`` when the body does not follow its schema.
    """
    if kind == "read":
        return ReadMessage.model_validate(body)
    if kind == "event":
        return parse_event(body)
    if kind == "status":
        return parse_status(body)
    return None

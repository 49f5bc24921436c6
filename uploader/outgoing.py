"""What the agent hands the outbox: a typed message that knows its kind and JSON body.

The uploader moves signed bytes and knows nothing about printers, so it does not
name the agent's message models. It asks only for this small protocol, which
the agent's frozen models (``mibs.messages.ReadMessage`` and the event union of
``mibs.events``) satisfy. The body is already valid by construction (a frozen
pydantic model dumped in JSON mode); the outbox signs it without inspecting it.

:class:`JsonMessage` is the generic frozen message for bodies that have no
model of their own (an agent status report, the uploader's own tests and
benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pydantic import JsonValue

from uploader.envelope import MessageKind

__all__ = ["JsonMessage", "Outgoing"]


class Outgoing(Protocol):
    """A message for the outbox: ``kind`` picks the topic and the bound, ``to_body`` the body."""

    @property
    def kind(self) -> MessageKind: ...

    def to_body(self) -> Mapping[str, JsonValue]: ...


@dataclass(frozen=True, slots=True)
class JsonMessage:
    """A message whose body is already a JSON object (no model of its own)."""

    kind: MessageKind
    body: Mapping[str, JsonValue]

    def to_body(self) -> Mapping[str, JsonValue]:
        return self.body

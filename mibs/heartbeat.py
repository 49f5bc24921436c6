"""The agent's own status reports (envelope kind ``status``): the heartbeat.

A ``status`` body names its report in ``"report"``. The agent sends a
:class:`Heartbeat` every ``liveness.heartbeat_interval`` (and once at start):
its version, how long it has run, its upload queue, its last answered read, the
configuration version it applied, and how many of its devices are silent. The
backend keeps the newest per agent (``fleet-agent agents``) and calls an agent
silent when no heartbeat came for a while.

Other reports may share the ``status`` kind (a report name this module does not
know is not an error: :func:`parse_status` returns ``None`` for it). The schema
is ``docs/schema/status.schema.json`` (``python -m agent.schema`` writes it).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from mibs.models import Frozen

__all__ = ["STATUS_SCHEMA_VERSION", "Heartbeat", "parse_status"]

#: Version of the status body format; a new report or optional field bumps the minor.
STATUS_SCHEMA_VERSION = "1.0"


class Heartbeat(Frozen):
    """The agent is alive: what it runs and how its work stands."""

    kind: ClassVar[Literal["status"]] = "status"

    report: Literal["heartbeat"] = "heartbeat"
    agent_version: str = Field(description="The agent's version (PEP 440), e.g. 0.9.0.")
    site: str = Field(description="The site the agent is configured for.")
    started_at: datetime = Field(description="When the running daemon started.")
    uptime_s: float = Field(ge=0, description="Seconds since the daemon started.")
    interval_s: float = Field(gt=0, description="Seconds until the next heartbeat is due.")
    queue_depth: int = Field(ge=0, description="Signed messages waiting for a broker ack.")
    queue_oldest_age_s: float | None = Field(
        description="Age of the oldest queued message in seconds (null: the queue is empty)."
    )
    last_good_read_at: datetime | None = Field(
        description="The newest answered device read (null: none yet)."
    )
    config_version: str | None = Field(
        description="Version of the applied remote configuration (null: local file only)."
    )
    devices_known: int = Field(ge=0, description="Devices in the agent's inventory.")
    devices_silent: int = Field(ge=0, description="Devices currently reported silent.")

    def to_body(self) -> dict[str, JsonValue]:
        """The JSON object uploaded as the envelope body."""
        body: dict[str, JsonValue] = self.model_dump(mode="json")
        return body


def parse_status(body: object) -> Heartbeat | None:
    """The report a received ``status`` body holds (``None`` for a report named otherwise).

    Raises ``pydantic.ValidationError`` when a heartbeat does not follow its schema.
    """
    if isinstance(body, dict) and body.get("report") != "heartbeat":
        return None
    return Heartbeat.model_validate(body)

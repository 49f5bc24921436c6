"""Agent and device liveness on the backend: heartbeats, device_silent / device_back.

Two tables beside the consumer's (``backend/store.py`` creates them, same shape
on SQLite and PostgreSQL):

* ``agent_heartbeats(agent_id PK, site, ...)``: the newest heartbeat of each
  agent (by the agent's ``created_at``; a backlog drained late never replaces a
  newer one) and ``last_heard_at``, when the backend last received one (its own
  clock: an agent is silent when that is older than a threshold);
* ``device_outages(agent_id, device_id, since, event PK, ...)``: every
  ``device_silent`` and ``device_back`` event, once: an event the agent sent
  again (a crash between the outbox commit and its own state) has the same
  outage ``since`` and is stored once.

:func:`record` is called by the ingestor for every stored envelope;
:func:`fleet_liveness` reads both tables into a :class:`FleetLiveness` report
(``fleet-agent agents``, the consumer's metrics). Every stored envelope stays in
``messages`` as well.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict

from mibs.events import DeviceBack, DeviceSilent
from mibs.heartbeat import Heartbeat
from mibs.messages import AgentMessage

if TYPE_CHECKING:
    from backend.store import StoreBatch

__all__ = [
    "POSTGRES_DDL",
    "SQLITE_DDL",
    "AgentLiveness",
    "FleetLiveness",
    "Origin",
    "SilentDevice",
    "fleet_liveness",
    "record",
    "report_json",
]

SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS agent_heartbeats (
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL, message_id TEXT NOT NULL,
    created_at TEXT NOT NULL, last_heard_at TEXT NOT NULL, agent_version TEXT NOT NULL,
    uptime_s REAL NOT NULL, interval_s REAL NOT NULL, queue_depth INTEGER NOT NULL,
    queue_oldest_age_s REAL, last_good_read_at TEXT, config_version TEXT,
    devices_known INTEGER NOT NULL, devices_silent INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS device_outages (
    agent_id TEXT NOT NULL, device_id TEXT NOT NULL, since TEXT NOT NULL, event TEXT NOT NULL,
    site TEXT NOT NULL, address TEXT NOT NULL, at TEXT NOT NULL, missed_reads INTEGER NOT NULL,
    reason TEXT, last_answered_at TEXT, message_id TEXT NOT NULL,
    PRIMARY KEY (agent_id, device_id, since, event));
"""

POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS agent_heartbeats (
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL, message_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, last_heard_at TIMESTAMPTZ NOT NULL,
    agent_version TEXT NOT NULL, uptime_s DOUBLE PRECISION NOT NULL,
    interval_s DOUBLE PRECISION NOT NULL, queue_depth BIGINT NOT NULL,
    queue_oldest_age_s DOUBLE PRECISION, last_good_read_at TIMESTAMPTZ, config_version TEXT,
    devices_known BIGINT NOT NULL, devices_silent BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS device_outages (
    agent_id TEXT NOT NULL, device_id TEXT NOT NULL, since TIMESTAMPTZ NOT NULL,
    event TEXT NOT NULL, site TEXT NOT NULL, address TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
    missed_reads BIGINT NOT NULL, reason TEXT, last_answered_at TIMESTAMPTZ,
    message_id TEXT NOT NULL, PRIMARY KEY (agent_id, device_id, since, event));
"""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Rows(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class _Store(Protocol):
    """What the report needs of :class:`backend.store.SqlStore`."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Rows: ...
    def read_time(self, moment: datetime) -> object: ...


# -- writing (inside the ingestor's batch) -----------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a stored envelope came from: its agent, the site of its topic, its times."""

    agent_id: str
    site: str
    message_id: str
    created_at: datetime  # the agent's clock
    received_at: datetime  # the backend's


def record(batch: StoreBatch, origin: Origin, message: AgentMessage | None) -> None:
    """Keep what a stored envelope says about liveness (nothing for other messages).

    ``message``: the body as the ingestor parsed it (:func:`mibs.messages.parse_body`);
    a body off its schema was counted and logged there and is not liveness data.
    """
    if isinstance(message, Heartbeat):
        _heartbeat(batch, origin, message)
    elif isinstance(message, DeviceSilent | DeviceBack):
        _outage(batch, origin, message)


def _heartbeat(batch: StoreBatch, origin: Origin, beat: Heartbeat) -> None:
    t = batch.store.read_time
    agent_id, created_at = origin.agent_id, origin.created_at
    row = batch.execute(
        "SELECT created_at, last_heard_at FROM agent_heartbeats WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    heard = origin.received_at
    if row is not None:
        heard = max(heard, _time(row[1]))
        if _time(row[0]) > created_at:  # an older heartbeat, drained late: only "heard"
            batch.execute(
                "UPDATE agent_heartbeats SET last_heard_at = ? WHERE agent_id = ?",
                (t(heard), agent_id),
            )
            return
    batch.execute(
        "INSERT INTO agent_heartbeats (agent_id, site, message_id, created_at, last_heard_at, "
        "agent_version, uptime_s, interval_s, queue_depth, queue_oldest_age_s, "
        "last_good_read_at, config_version, devices_known, devices_silent) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET "
        "site = excluded.site, message_id = excluded.message_id, "
        "created_at = excluded.created_at, last_heard_at = excluded.last_heard_at, "
        "agent_version = excluded.agent_version, uptime_s = excluded.uptime_s, "
        "interval_s = excluded.interval_s, queue_depth = excluded.queue_depth, "
        "queue_oldest_age_s = excluded.queue_oldest_age_s, "
        "last_good_read_at = excluded.last_good_read_at, "
        "config_version = excluded.config_version, devices_known = excluded.devices_known, "
        "devices_silent = excluded.devices_silent",
        (
            agent_id,
            origin.site,
            origin.message_id,
            t(created_at),
            t(heard),
            beat.agent_version,
            beat.uptime_s,
            beat.interval_s,
            beat.queue_depth,
            beat.queue_oldest_age_s,
            None if beat.last_good_read_at is None else t(beat.last_good_read_at),
            beat.config_version,
            beat.devices_known,
            beat.devices_silent,
        ),
    )


def _outage(batch: StoreBatch, origin: Origin, event: DeviceSilent | DeviceBack) -> None:
    t = batch.store.read_time
    at = event.back_at if isinstance(event, DeviceBack) else origin.created_at
    reason = event.reason if isinstance(event, DeviceSilent) else None
    batch.execute(
        "INSERT INTO device_outages (agent_id, device_id, since, event, site, address, at, "
        "missed_reads, reason, last_answered_at, message_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            origin.agent_id,
            event.device_id,
            t(event.since),
            event.event,
            origin.site,
            event.address,
            t(at),
            event.missed_reads,
            reason,
            None if event.last_answered_at is None else t(event.last_answered_at),
            origin.message_id,
        ),
    )


# -- reading: the fleet's liveness report --------------------------------------------


class AgentLiveness(_Frozen):
    """One agent as the backend last heard it."""

    agent_id: str
    site: str | None  # None: the agent never sent a heartbeat (only other messages)
    agent_version: str | None
    config_version: str | None
    last_heartbeat_at: datetime | None  # the agent's clock (created_at)
    last_heard_at: datetime | None  # the backend's clock
    age_s: float | None  # since last heard
    uptime_s: float | None
    queue_depth: int | None
    queue_oldest_age_s: float | None
    last_good_read_at: datetime | None
    devices_known: int | None
    devices_silent: int | None
    silent: bool
    below_min_version: bool


class SilentDevice(_Frozen):
    """A device whose agent reported it silent and not back since."""

    site: str
    agent_id: str
    device_id: str
    address: str
    since: datetime
    missed_reads: int
    reason: str | None
    last_answered_at: datetime | None


class FleetLiveness(_Frozen):
    generated_at: datetime
    silent_after_s: float
    min_version: str | None
    agents: list[AgentLiveness]
    silent_devices: list[SilentDevice]

    @property
    def silent_agents(self) -> list[AgentLiveness]:
        return [a for a in self.agents if a.silent]

    @property
    def outdated_agents(self) -> list[AgentLiveness]:
        return [a for a in self.agents if a.below_min_version]

    def silent_devices_by_site(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for device in self.silent_devices:
            counts[device.site] = counts.get(device.site, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def needs_attention(self) -> bool:
        return bool(self.silent_agents or self.outdated_agents or self.silent_devices)


def below(version: str | None, minimum: str | None) -> bool:
    """Whether ``version`` is below ``minimum`` (PEP 440); unknown or unparsable counts as below."""
    if minimum is None:
        return False
    if version is None:
        return True
    try:
        return Version(version) < Version(minimum)
    except InvalidVersion:
        return True


def _time(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _maybe_time(value: object) -> datetime | None:
    return None if value is None else _time(value)


def fleet_liveness(
    store: _Store, *, now: datetime, silent_after: float, min_version: str | None = None
) -> FleetLiveness:
    """Every agent (silent after ``silent_after`` seconds unheard) and every silent device."""
    agents: list[AgentLiveness] = []
    rows = store.execute(
        "SELECT agent_id, site, agent_version, config_version, created_at, last_heard_at, "
        "uptime_s, queue_depth, queue_oldest_age_s, last_good_read_at, devices_known, "
        "devices_silent FROM agent_heartbeats ORDER BY site, agent_id"
    ).fetchall()
    for r in rows:
        heard = _time(r[5])
        age = max(0.0, (now - heard).total_seconds())
        agents.append(
            AgentLiveness(
                agent_id=r[0],
                site=r[1],
                agent_version=r[2],
                config_version=r[3],
                last_heartbeat_at=_time(r[4]),
                last_heard_at=heard,
                age_s=round(age, 3),
                uptime_s=r[6],
                queue_depth=r[7],
                queue_oldest_age_s=r[8],
                last_good_read_at=_maybe_time(r[9]),
                devices_known=r[10],
                devices_silent=r[11],
                silent=age > silent_after,
                below_min_version=below(r[2], min_version),
            )
        )
    # Agents that sent messages but never a heartbeat (older agents): silent by definition.
    for (agent_id,) in store.execute(
        "SELECT agent_id FROM agent_state WHERE agent_id NOT IN "
        "(SELECT agent_id FROM agent_heartbeats) ORDER BY agent_id"
    ).fetchall():
        agents.append(
            AgentLiveness(
                agent_id=agent_id,
                **dict.fromkeys(_UNKNOWN),
                silent=True,
                below_min_version=below(None, min_version),
            )
        )
    return FleetLiveness(
        generated_at=now,
        silent_after_s=silent_after,
        min_version=min_version,
        agents=agents,
        silent_devices=_silent_devices(store),
    )


_UNKNOWN = (
    "site",
    "agent_version",
    "config_version",
    "last_heartbeat_at",
    "last_heard_at",
    "age_s",
    "uptime_s",
    "queue_depth",
    "queue_oldest_age_s",
    "last_good_read_at",
    "devices_known",
    "devices_silent",
)


def _silent_devices(store: _Store) -> list[SilentDevice]:
    """The newest outage of each device, when it has a device_silent and no device_back."""
    rows = store.execute(
        "SELECT s.site, s.agent_id, s.device_id, s.address, s.since, s.missed_reads, s.reason, "
        "s.last_answered_at FROM device_outages s WHERE s.event = 'device_silent' "
        "AND NOT EXISTS (SELECT 1 FROM device_outages o WHERE o.agent_id = s.agent_id "
        "AND o.device_id = s.device_id AND (o.since > s.since OR "
        "(o.since = s.since AND o.event = 'device_back'))) "
        "ORDER BY s.site, s.agent_id, s.device_id"
    ).fetchall()
    return [
        SilentDevice(
            site=r[0],
            agent_id=r[1],
            device_id=r[2],
            address=r[3],
            since=_time(r[4]),
            missed_reads=r[5],
            reason=r[6],
            last_answered_at=_maybe_time(r[7]),
        )
        for r in rows
    ]


def report_json(report: FleetLiveness) -> str:
    """The report as one JSON document (``fleet-agent agents --format json``)."""
    document = report.model_dump(mode="json")
    document["silent_devices_by_site"] = report.silent_devices_by_site()
    document["needs_attention"] = report.needs_attention
    return json.dumps(document, sort_keys=False)

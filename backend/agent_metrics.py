"""The consumer's liveness metrics: what ``fleet-agent agents`` reports, as Prometheus gauges.

Computed from the store at each scrape (:func:`backend.agents.fleet_liveness`):

* ``fleet_agents``: agents the backend heard from;
* ``fleet_agents_silent``: agents unheard for longer than ``--silent-after``;
* ``fleet_agents_below_min_version``: agents below ``--min-version`` (0 without one);
* ``fleet_devices_silent{site}``: devices reported silent and not back, per site;
* ``fleet_agent_last_heartbeat_age_seconds{agent_id}``: seconds since each agent's
  last heartbeat arrived.

Label cardinality stays bounded: sites and agents are what the provider
enrolled (devices are counted, never labelled), and the per-agent series stop
at :data:`MAX_AGENT_SERIES` agents (the oldest heartbeats first, so the silent
ones are kept; ``fleet_agent_series_dropped`` says how many were left out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric

from backend.agents import FleetLiveness, fleet_liveness
from backend.store import SqlStore, StoreError

__all__ = ["MAX_AGENT_SERIES", "LivenessMetrics"]

log = structlog.get_logger("backend.agent_metrics")

#: Per-agent series at most (a scrape of a larger fleet keeps the longest-silent ones).
MAX_AGENT_SERIES = 5_000


class LivenessMetrics:
    """A prometheus_client collector reading the store when scraped."""

    def __init__(
        self,
        store: SqlStore,
        *,
        silent_after: float,
        min_version: str | None,
        max_agent_series: int = MAX_AGENT_SERIES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._silent_after = silent_after
        self._min_version = min_version
        self._max = max_agent_series
        self._clock = clock

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {
            "agents": GaugeMetricFamily("fleet_agents", "Agents the backend heard from."),
            "silent": GaugeMetricFamily(
                "fleet_agents_silent", "Agents unheard for longer than --silent-after."
            ),
            "outdated": GaugeMetricFamily(
                "fleet_agents_below_min_version", "Agents below --min-version (or unknown)."
            ),
            "devices": GaugeMetricFamily(
                "fleet_devices_silent",
                "Devices reported silent (device_silent, no device_back since), by site.",
                labels=["site"],
            ),
            "age": GaugeMetricFamily(
                "fleet_agent_last_heartbeat_age_seconds",
                "Seconds since the agent's last heartbeat arrived.",
                labels=["agent_id"],
            ),
            "dropped": GaugeMetricFamily(
                "fleet_agent_series_dropped",
                "Agents left out of the per-agent series (cardinality bound).",
            ),
        }

    def describe(self) -> Iterator[Metric]:
        """The families without samples (registration does not read the store)."""
        yield from self._families().values()

    def report(self) -> FleetLiveness:
        return fleet_liveness(
            self._store,
            now=self._clock(),
            silent_after=self._silent_after,
            min_version=self._min_version,
        )

    def collect(self) -> Iterator[Metric]:
        try:
            report = self.report()
        except StoreError as exc:
            log.warning("metrics.liveness_unavailable", error=str(exc))
            return
        families = self._families()
        families["agents"].add_metric([], len(report.agents))
        families["silent"].add_metric([], len(report.silent_agents))
        families["outdated"].add_metric([], len(report.outdated_agents))
        for site, count in report.silent_devices_by_site().items():
            families["devices"].add_metric([site], count)
        heard = sorted(
            (a for a in report.agents if a.age_s is not None),
            key=lambda a: (-(a.age_s or 0.0), a.agent_id),
        )
        for agent in heard[: self._max]:
            families["age"].add_metric([agent.agent_id], agent.age_s or 0.0)
        families["dropped"].add_metric([], max(0, len(heard) - self._max))
        yield from families.values()

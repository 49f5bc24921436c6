"""``fleet-agent run``: the composition root of the daemon.

One function builds everything (:func:`run_daemon`), enters every resource
through an ``AsyncExitStack`` and runs the long-lived loops (publisher,
watchdog, signal handling) in one ``TaskGroup``. APScheduler runs the jobs:
discovery (at start and on an interval), meter reads and supply reads, each
with jitter and one instance at a time. A job that raises is logged with its
context and counted; the daemon goes on.

Signals: SIGTERM/SIGINT stop gracefully (running jobs get ``shutdown_deadline``
to finish, then are cancelled; the outbox stays consistent because each
message is one transaction); SIGHUP reloads the configuration (a bad one is
rejected with the reason and the old one keeps running).

Remote configuration (``docs/remote-config.md``): the publisher's connection also
subscribes to the backend's configuration documents for the site and for this
agent; :class:`agent.remote_agent.RemoteConfigReceiver` screens each one
(signature, scope, version) and :meth:`Daemon._apply` runs it through the same
path as SIGHUP: validated exactly like the local file, switched, and rolled back
to the previous configuration if the jobs cannot be scheduled with it. A contract
policy in the document (validated like a policy file) drives eligibility, meter
checks and supply orders unless the local file names one. The outcome
goes to the backend as a signed ``status`` envelope (``config_status``); the last
good document starts the next run before the broker is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent import __version__
from agent.collect import Collector
from agent.config import AgentConfig, LocalSettings, read_local
from agent.eligibility.inputs import EligibilityInputs, load_eligibility
from agent.errors import ConfigError, FleetAgentError
from agent.inventory import Inventory
from agent.logging import configure_logging
from agent.manual_inbox import queue_pending
from agent.metrics import Metrics, MetricsServer
from agent.remote_agent import Received, RemoteConfigReceiver
from agent.remote_config import effective_config, pushed_policy
from agent.sdnotify import SystemdNotifier
from agent.state import inventory_path, key_path, load_or_create_key, outbox_path
from collectors.transport import SnmpTransport
from fleet_errors import describe, known_error
from mibs.heartbeat import Heartbeat
from uploader.envelope import Signer
from uploader.errors import KeyFileError, QueueError
from uploader.keys import AgentKey
from uploader.mqtt import MqttPublisher
from uploader.queue import Outbox
from uploader.remote_config import ConfigDocument, ConfigStatus, config_topic
from uploader.sink import OutboxSink
from uploader.spool import OutboxSpool

log = structlog.get_logger("agent.daemon")

OUTBOX_TIDY_INTERVAL = 3.0  # seconds between outbox housekeeping rounds (see Outbox.maintain)
JOBS = ("discovery", "meters", "supplies", "heartbeat")


class JobState:
    def __init__(self) -> None:
        self.last_started: datetime | None = None
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.runs = 0
        self.failures = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_started": self.last_started,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "runs": self.runs,
            "failures": self.failures,
        }


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of ``path``: an atomic replacement changes it; ``None`` if absent."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


class Daemon:
    def __init__(self, config_path: Path | None, *, once: bool = False) -> None:
        self._config_path = config_path
        self._once = once
        self._local = read_local(config_path)
        self._local_config = effective_config(self._local, None)  # fatal when invalid
        self.remote = RemoteConfigReceiver(
            self._local_config.state_dir,
            site=self._broker_site(self._local_config),
            agent_id=self._local_config.agent_id,
        )
        self._remote_inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._reports: list[ConfigStatus] = []  # for the backend, once the outbox is open
        self.config: AgentConfig
        self._eligibility: EligibilityInputs | None
        self.config, self._eligibility = self._starting_config()
        self.metrics = Metrics()
        self.jobs = {name: JobState() for name in JOBS}
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()
        self._notifier = SystemdNotifier()
        self._scheduler: AsyncIOScheduler | None = None
        self._collector: Collector | None = None
        self._outbox: Outbox | None = None
        self._spool: OutboxSpool | None = None
        self._publisher: MqttPublisher | None = None
        self._inventory: Inventory | None = None
        self._initial_discovery = asyncio.Event()
        self._started_at = time.time()
        self._uploaded_seen = 0
        self._sink: OutboxSink | None = None
        self._key_file = key_path(self.config.state_dir)
        self._key_stamp: tuple[int, int] | None = None

    @staticmethod
    def _broker_site(config: AgentConfig) -> str:
        """The site the backend knows this agent by: its topics' site level."""
        return config.upload.mqtt.site if config.upload.mqtt is not None else config.site

    @property
    def config_version(self) -> int | None:
        """The remote configuration version running (``None``: the local file alone)."""
        return self.remote.applied_version

    @staticmethod
    def _effective(
        local: LocalSettings, document: ConfigDocument | None
    ) -> tuple[AgentConfig, EligibilityInputs | None]:
        """The configuration and the policy to run with, validated; :class:`ConfigError`
        names the place. The policy is the local file's, else the document's inline one."""
        config = effective_config(local, document)
        return config, load_eligibility(config, pushed_policy(local, document))

    def _starting_config(self) -> tuple[AgentConfig, EligibilityInputs | None]:
        """The local configuration merged with the last good remote document, if usable."""
        last = self.remote.load_last_good()
        if last is None:
            return self._local_config, load_eligibility(self._local_config)
        try:
            config, eligibility = self._effective(self._local, last.document)
        except ConfigError as exc:
            self._reports.append(self.remote.refused(last.document.version, "invalid", str(exc)))
            return self._local_config, load_eligibility(self._local_config)
        self.remote.applied = last.document
        log.info(
            "config.remote_loaded",
            version=last.document.version,
            scope=last.document.scope,
            **self._policy_fields(eligibility),
        )
        return config, eligibility

    @staticmethod
    def _policy_fields(eligibility: EligibilityInputs | None) -> dict[str, str | None]:
        """The policy running, for log lines and ``/healthz``: its source and version."""
        if eligibility is None:
            return {"policy_source": None, "policy_version": None}
        return {"policy_source": eligibility.source, "policy_version": eligibility.policy.version}

    # -- health ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        outbox, publisher = self._outbox, self._publisher
        depth = outbox.depth() if outbox is not None else 0
        oldest = outbox.oldest_age() if outbox is not None else None
        self.metrics.queue_depth.set(depth)
        self.metrics.queue_oldest_age.set(oldest or 0.0)
        connected = publisher.connected if publisher is not None else None
        if publisher is not None:
            self.metrics.broker_connected.set(1 if connected else 0)
            # The publisher counts acks itself; carry them over to the counter and gauge.
            self.metrics.uploaded.inc(publisher.published - self._uploaded_seen)
            self._uploaded_seen = publisher.published
            if publisher.last_ack_at is not None:
                self.metrics.last_upload.set(publisher.last_ack_at.timestamp())
        problems = []
        if publisher is not None and not connected:
            problems.append(f"broker not connected: {publisher.last_error or 'connecting'}")
        if outbox is not None and outbox.nearly_full:
            problems.append("upload queue nearly full")
        problems.extend(self._disk_health())
        failing = [name for name, job in self.jobs.items() if job.last_error and job.failures]
        problems.extend(f"last {name} run failed" for name in failing)
        return {
            "status": "ok" if not problems else "degraded",
            "problems": problems,
            "version": __version__,
            "agent_id": self.config.agent_id,
            "site": self.config.site,
            "uptime_s": round(time.time() - self._started_at, 1),
            "devices_known": int(self.metrics.value("fleet_agent_devices_known")),
            "queue": {"depth": depth, "oldest_age_s": oldest, **self._memory_only()},
            "broker": {
                "endpoint": self.config.upload.mqtt.endpoint if self.config.upload.mqtt else None,
                "connected": connected,
                "last_ack_at": publisher.last_ack_at if publisher else None,
                "published": publisher.published if publisher else 0,
                "last_error": publisher.last_error if publisher else None,
            },
            "reads": {
                outcome: int(sum(self._reads(kind, outcome) for kind in ("meters", "supplies")))
                for outcome in ("ok", "partial", "silent", "error")
            },
            "snmp": {
                "requests": int(self.metrics.value("fleet_agent_snmp_requests_total")),
                "timeouts": int(self.metrics.value("fleet_agent_snmp_timeouts_total")),
            },
            "jobs": {name: job.as_dict() for name, job in self.jobs.items()},
            "config": {
                "version": self.config_version,
                "source": "local" if self.config_version is None else "local+remote",
                "remote_error": self.remote.last_error,
                **self._policy_fields(self._eligibility),
            },
        }

    def _memory_only(self) -> dict[str, int]:
        """Reads held in memory while the disk is full: lost if the process dies meanwhile."""
        spool = self._spool
        if spool is None:
            return {"memory_only": 0, "memory_limit": 0, "memory_dropped": 0}
        return {
            "memory_only": spool.held,
            "memory_limit": spool.limit,
            "memory_dropped": spool.dropped,
        }

    def _disk_health(self) -> list[str]:
        """Refresh the outbox disk gauges; the problems a full disk causes, in words."""
        outbox, spool = self._outbox, self._spool
        if outbox is None or spool is None:
            return []
        m = self.metrics
        m.queue_size.set(outbox.size_bytes())
        m.outbox_memory_held.set(spool.held)
        m.outbox_memory_dropped.set(spool.dropped)
        m.outbox_deferred_acks.set(outbox.deferred_acks)
        m.outbox_reserve_released.set(1 if outbox.reserve_released else 0)
        problems = []
        if outbox.disk_full or spool.held:
            problems.append(f"disk full: {spool.held} messages held in memory")
        if spool.dropped:
            problems.append(f"{spool.dropped} messages dropped: the disk was full too long")
        if outbox.reserve_released:
            problems.append("the outbox's disk reserve is in use")
        return problems

    async def _maintain_outbox(self) -> None:
        """Write held messages and remembered acks, vacuum, restore the reserve; never raises."""
        if self._spool is None:
            return
        try:
            await asyncio.to_thread(self._spool.maintain)
        except QueueError as exc:
            log.error("outbox.maintenance_failed", error=str(exc))  # noqa: TRY400 - named, no bug

    def _reads(self, kind: str, outcome: str) -> float:
        return self.metrics.value("fleet_agent_reads_total", {"kind": kind, "outcome": outcome})

    # -- jobs --------------------------------------------------------------------------

    async def _job(self, name: str, body: Callable[[], Awaitable[object]]) -> None:
        """Run one job: tracked for shutdown, logged, counted; never raises."""
        state = self.jobs[name]
        state.last_started = datetime.now(UTC)
        state.runs += 1
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        structlog.contextvars.bind_contextvars(job=name)
        began = time.monotonic()
        try:
            await body()
        except asyncio.CancelledError:
            log.warning("job.cancelled")
            self.metrics.task_runs.labels(task=name, outcome="cancelled").inc()
            raise
        except Exception as exc:  # a crash in a job is logged and survived: the daemon goes on
            state.failures += 1
            # One sentence naming the device or file, exception groups unwrapped.
            state.last_error = describe(exc, types=True)
            self.metrics.task_runs.labels(task=name, outcome="error").inc()
            log.exception("job.failed", error=state.last_error, ours=known_error(exc) is not None)
        else:
            state.last_success = datetime.now(UTC)
            state.last_error = None
            self.metrics.task_runs.labels(task=name, outcome="ok").inc()
            self.metrics.task_last_success.labels(task=name).set(time.time())
        finally:
            self.metrics.task_duration.labels(task=name).observe(time.monotonic() - began)
            structlog.contextvars.unbind_contextvars("job")
            if task is not None:
                self._running.discard(task)

    @property
    def collector(self) -> Collector:
        if self._collector is None:
            raise RuntimeError("the daemon is not running")
        return self._collector

    async def run_discovery(self) -> None:
        try:
            await self._job("discovery", self.collector.discover)
        finally:
            self._initial_discovery.set()

    async def run_meters(self) -> None:
        await self._initial_discovery.wait()  # the first reads need the first sweep's devices
        await self._job("meters", lambda: self.collector.read_all("meters"))

    async def run_supplies(self) -> None:
        await self._initial_discovery.wait()
        # A device read within half a supply interval (by a meter run) is not read again.
        fresh_for = self.config.schedule.supplies / 2
        await self._job(
            "supplies", lambda: self.collector.read_all("supplies", fresh_for=fresh_for)
        )

    async def run_heartbeat(self) -> None:
        await self._job("heartbeat", self.send_heartbeat)

    def heartbeat(self) -> Heartbeat:
        """The agent's heartbeat as of now (:mod:`mibs.heartbeat`)."""
        outbox, collector = self._outbox, self._collector
        return Heartbeat(
            agent_version=__version__,
            site=self.config.site,
            started_at=datetime.fromtimestamp(self._started_at, UTC),
            uptime_s=round(time.time() - self._started_at, 3),
            interval_s=self.config.liveness.heartbeat_interval,
            queue_depth=outbox.depth() if outbox is not None else 0,
            queue_oldest_age_s=outbox.oldest_age() if outbox is not None else None,
            last_good_read_at=collector.events.last_good_read if collector is not None else None,
            config_version=None if self.config_version is None else str(self.config_version),
            devices_known=int(self.metrics.value("fleet_agent_devices_known")),
            devices_silent=len(collector.events.liveness.silent()) if collector is not None else 0,
        )

    async def send_heartbeat(self) -> None:
        """Sign the heartbeat into the outbox (it is uploaded like a read)."""
        if self._sink is None:
            raise RuntimeError("the daemon is not running")
        beat = self.heartbeat()
        await self._sink.submit(beat)
        log.info("heartbeat.sent", queue_depth=beat.queue_depth, uptime_s=beat.uptime_s)

    def _schedule(self, scheduler: AsyncIOScheduler, *, first: bool) -> None:
        schedule = self.config.schedule
        now = datetime.now(UTC)
        discovery_start = now if schedule.discovery_at_start else None
        plan = (
            ("discovery", self.run_discovery, schedule.discovery, discovery_start),
            ("meters", self.run_meters, schedule.meters, now + timedelta(seconds=1)),
            ("supplies", self.run_supplies, schedule.supplies, None),
            ("heartbeat", self.run_heartbeat, self.config.liveness.heartbeat_interval, now),
        )
        for name, func, every, start in plan:
            jitter = schedule.jitter if name != "heartbeat" else 0.0  # on time: it is a beat
            trigger = IntervalTrigger(seconds=every, jitter=jitter or None, timezone=UTC)
            if first:
                kwargs: dict[str, Any] = {"next_run_time": start} if start else {}
                scheduler.add_job(
                    func,
                    trigger,
                    id=name,
                    name=name,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=int(schedule.misfire_grace),
                    **kwargs,
                )
            else:
                scheduler.reschedule_job(name, trigger=trigger)
        if not schedule.discovery_at_start:
            self._initial_discovery.set()

    # -- reload ------------------------------------------------------------------------

    def reload(self) -> bool:
        """Apply a new configuration, or keep the old one and say why."""
        self._notifier.reloading()
        try:
            local = read_local(self._config_path)
            failure = self._apply(*self._effective(local, self.remote.applied))
        except FleetAgentError as exc:
            failure = str(exc)
        if failure is not None:
            log.error("config.reload_rejected", reason=failure)
            self._notifier.status("config reload rejected; old configuration kept")
            self._notifier.ready()
            return False
        self._local = local
        self._notifier.ready("running (configuration reloaded)")
        return True

    def _apply(self, new: AgentConfig, eligibility: EligibilityInputs | None) -> str | None:
        """Run with ``new`` and its policy; ``None``, or why it could not start (the old
        ones run again). The one path of SIGHUP and of remote documents."""
        old, old_eligibility = self.config, self._eligibility
        try:
            self._switch(new, eligibility)
        except Exception as exc:  # cannot start with it: loudly, then back to what ran
            reason = describe(exc, types=True)
            log.exception("config.apply_failed", error=reason)
            self._switch(old, old_eligibility)
            return f"cannot start with the new configuration, previous one restored: {reason}"
        restart_only = [
            part
            for part in ("agent_id", "state_dir", "upload", "http", "log_level")
            if getattr(new, part) != getattr(old, part)
        ]
        if self._scheduler is not None and new.discovery != old.discovery:
            # New targets are swept now, not at the next interval.
            self._scheduler.modify_job("discovery", next_run_time=datetime.now(UTC))
        log.info(
            "config.reloaded",
            needs_restart=restart_only or None,
            **self._policy_fields(eligibility),
        )
        return None

    def _switch(self, config: AgentConfig, eligibility: EligibilityInputs | None) -> None:
        self.config = config
        self._eligibility = eligibility
        if self._collector is not None:
            self._collector.reconfigure(config, eligibility)
        if self._scheduler is not None:
            self._schedule(self._scheduler, first=False)

    # -- remote configuration ----------------------------------------------------------

    def _on_config_message(self, _topic: str, payload: bytes) -> None:
        self._remote_inbox.put_nowait(payload)

    async def _remote_config_loop(self) -> None:
        """Screen and apply the documents the broker delivers, one at a time."""
        while True:
            payload = await self._remote_inbox.get()
            outcome = self.remote.screen(payload)
            if isinstance(outcome, Received):
                outcome = self._apply_document(outcome)
            if outcome is not None:
                await self._report(outcome)

    def _apply_document(self, received: Received) -> ConfigStatus:
        document = received.document
        try:
            failure = self._apply(*self._effective(self._local, document))
        except ConfigError as exc:
            return self.remote.refused(document.version, "invalid", str(exc))
        if failure is not None:
            return self.remote.refused(document.version, "cannot_start", failure, rolled_back=True)
        return self.remote.applied_ok(received)

    async def _report(self, status: ConfigStatus) -> None:
        """Queue a signed ``status`` envelope about a document for the backend."""
        if self._spool is None:
            self._reports.append(status)
            return
        try:
            await asyncio.to_thread(self._spool.submit_many, [status])
        except QueueError as exc:
            log.error("config.report_failed", error=str(exc))  # noqa: TRY400 - named
            return
        if self._publisher is not None:
            self._publisher.notify()

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        if not self._stop.is_set():
            log.info("daemon.stopping")
            self._stop.set()

    async def _watchdog(self) -> None:
        """Ping the systemd watchdog at its own interval, from a task of its own: a slow
        housekeeping round (a vacuum on a busy disk) must not look like a hung loop."""
        interval = self._notifier.watchdog_interval
        if not interval:
            return
        while not self._stop.is_set():
            self._notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)

    async def _housekeeping(self) -> None:
        """Refresh the queue/broker gauges every second (``/metrics`` reads them as they
        are); tidy the outbox every :data:`OUTBOX_TIDY_INTERVAL` seconds."""
        next_tidy = 0.0
        while not self._stop.is_set():
            self.health()
            self.follow_key()
            await self._take_manual_reads()
            if time.monotonic() >= next_tidy:
                await self._maintain_outbox()
                if self._publisher is not None:
                    self._publisher.notify()  # held messages may just have been written
                next_tidy = time.monotonic() + OUTBOX_TIDY_INTERVAL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=1.0)

    def follow_key(self) -> None:
        """Sign with ``agent.key`` anew once ``keys rotate`` replaced it (checked every second).

        The rotation replaces the file only after the backend acknowledged the new key,
        and the backend still takes the old key's envelopes for a few minutes after.
        """
        stamp = _file_stamp(self._key_file)
        if stamp is None or stamp == self._key_stamp or self._outbox is None:
            return
        self._key_stamp = stamp
        try:
            key = AgentKey.load(self._key_file)
        except KeyFileError as exc:
            log.error("keys.reload_failed", error=str(exc))  # noqa: TRY400 - named, no traceback
            return
        self._outbox.use_signer(Signer(key, self.config.agent_id))
        log.info("keys.switched", key_id=key.key_id, path=str(self._key_file))

    async def _take_manual_reads(self) -> None:
        """Queue the manual reads ``fleet-agent meter`` handed over (it cannot open the
        outbox while the daemon holds it: :mod:`agent.manual_inbox`); never raises."""
        if self._sink is None or self._inventory is None:
            return
        try:
            await queue_pending(self.config.state_dir, self._inventory, self._sink.submit)
        except (FleetAgentError, OSError) as exc:
            log.error("manual.queue_failed", error=str(exc))  # noqa: TRY400 - named, retried

    async def _run_once(self) -> None:
        """``--once``: one discovery and one meter read, then drain the queue and stop."""
        await self.run_discovery()
        await self._job("meters", lambda: self.collector.read_all("meters"))
        deadline = time.monotonic() + max(30.0, self.config.shutdown_deadline)
        while self._publisher is not None and self._outbox is not None and self._outbox.depth():
            if time.monotonic() > deadline:
                log.warning("daemon.queue_not_drained", depth=self._outbox.depth())
                break
            await asyncio.sleep(0.1)
        self.stop()

    async def _drain_jobs(self) -> None:
        running = [t for t in self._running if not t.done()]
        if not running:
            return
        log.info("daemon.waiting_for_jobs", jobs=len(running))
        _, pending = await asyncio.wait(running, timeout=self.config.shutdown_deadline)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("daemon.jobs_abandoned", jobs=len(pending))
            await asyncio.wait(pending, timeout=5)

    async def run(self) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        config.state_dir.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            key = load_or_create_key(config.state_dir)
            self._key_file = key_path(config.state_dir)
            self._key_stamp = _file_stamp(self._key_file)
            self._outbox = stack.enter_context(
                Outbox(
                    outbox_path(config.state_dir),
                    Signer(key, config.agent_id),
                    max_messages=config.upload.queue_max_messages,
                    reserve_bytes=config.upload.disk_reserve,
                )
            )
            self._spool = OutboxSpool(self._outbox, limit=config.upload.memory_buffer)
            self._inventory = stack.enter_context(Inventory(inventory_path(config.state_dir)))
            transport = await stack.enter_async_context(
                SnmpTransport(config.snmp.transport_settings())
            )
            if config.upload.enabled and config.upload.mqtt is not None:
                mqtt = config.upload.mqtt
                self._publisher = MqttPublisher(
                    mqtt,
                    agent_id=config.agent_id,
                    outbox=self._outbox,
                    subscriptions=(
                        config_topic(mqtt.topic_prefix, mqtt.site),
                        config_topic(mqtt.topic_prefix, mqtt.site, config.agent_id),
                    ),
                    on_message=self._on_config_message,
                )
            publisher = self._publisher
            sink = self._sink = OutboxSink(
                self._spool, on_submit=publisher.notify if publisher else (lambda: None)
            )
            self._collector = Collector(
                config,
                transport=transport,
                inventory=self._inventory,
                sink=sink,
                metrics=self.metrics,
                eligibility=self._eligibility,
            )
            self.metrics.devices_known.set(len(self._inventory.devices()))
            if config.http.enabled:
                server = MetricsServer(
                    self.metrics, self.health, host=config.http.listen, port=config.http.port
                )
                await server.start()
                stack.push_async_callback(server.close)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            stack.callback(self._remove_signal_handlers, loop)
            publisher_stop = asyncio.Event()
            log.info(
                "daemon.started",
                version=__version__,
                agent_id=config.agent_id,
                site=config.site,
                key_id=key.key_id,
                state_dir=str(config.state_dir),
                config_version=self.config_version,
                **self._policy_fields(self._eligibility),
                broker=config.upload.mqtt.endpoint if publisher and config.upload.mqtt else None,
                once=self._once,
            )
            async with asyncio.TaskGroup() as group:
                if publisher is not None:
                    group.create_task(publisher.run(publisher_stop), name="uploader.publisher")
                    remote = group.create_task(
                        self._remote_config_loop(), name="daemon.remote_config"
                    )
                group.create_task(self._watchdog(), name="systemd.watchdog")
                group.create_task(self._housekeeping(), name="daemon.housekeeping")
                if self._once:
                    group.create_task(self._run_once(), name="daemon.once")
                else:
                    self._scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
                    self._start_scheduler(self._scheduler)
                reports, self._reports = self._reports, []
                for report in reports:
                    await self._report(report)
                self._notifier.ready(f"running; {len(self._inventory.devices())} devices known")
                await self._stop.wait()
                self._notifier.stopping()
                if self._scheduler is not None:
                    self._scheduler.pause()  # no new runs; running ones get the deadline
                await self._drain_jobs()
                if self._scheduler is not None:
                    # Only now: APScheduler's shutdown cancels running coroutine jobs at once.
                    self._scheduler.shutdown(wait=False)
                publisher_stop.set()
                if publisher is not None:
                    remote.cancel()
            self.health()
            log.info(
                "daemon.stopped",
                queue_depth=self._outbox.depth(),
                published=publisher.published if publisher else 0,
            )
        failed = sorted(name for name, job in self.jobs.items() if job.failures)
        if self._once and failed:
            log.error("daemon.once_failed", jobs=failed)  # --once is a check: say it failed
            return 1
        return 0

    def _start_scheduler(self, scheduler: AsyncIOScheduler) -> None:
        """Schedule the jobs; if the remote configuration cannot, start with the local one."""
        try:
            self._schedule(scheduler, first=True)
        except Exception as exc:
            if self.remote.applied is None:
                raise  # the local configuration alone cannot run: a bug, loudly
            version = self.remote.applied.version
            reason = describe(exc, types=True)
            log.exception("config.apply_failed", error=reason)
            scheduler.remove_all_jobs()
            self.remote.applied = None
            self.config = self._local_config
            self._eligibility = load_eligibility(self._local_config)
            self.collector.reconfigure(self.config, self._eligibility)
            self._schedule(scheduler, first=True)
            detail = f"cannot start with it, running the local configuration: {reason}"
            self._reports.append(
                self.remote.refused(version, "cannot_start", detail, rolled_back=True)
            )
        scheduler.start()

    @staticmethod
    def _remove_signal_handlers(loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)


def run_daemon(config_path: Path | None, *, once: bool = False) -> int:
    async def main() -> int:
        # Logging first: the daemon's start-up (the last good remote document) logs.
        configure_logging(effective_config(read_local(config_path), None).log_level, sys.stdout)
        daemon = Daemon(config_path, once=once)
        return await daemon.run()

    return asyncio.run(main())

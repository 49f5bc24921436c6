"""What the soak benchmark observes and concludes: broker counter, log and metrics parsing, summary.

Pure functions over the samples and the daemon's JSON log, except
:class:`BrokerCounter` (an aiomqtt subscriber). Kept apart from
``bench/soak_bench.py`` so the arithmetic is unit-tested without sockets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sqlite3
import statistics
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

CYCLE_TARGET_S = 15 * 60.0
RSS_TARGET_MB = 256.0
RSS_FLAT_RATIO = 0.05  # RSS after the last cycle within 5% of the steady-state baseline
MB = 1024.0  # kB per MB (MiB)

_SAMPLE = re.compile(r'^fleet_agent_reads_total\{kind="(\w+)",outcome="(\w+)"\} ([0-9.e+]+)$')


def parse_metrics(text: str) -> dict[str, dict[str, int]]:
    """``fleet_agent_reads_total`` from a /metrics page: ``{kind: {outcome: n}}``."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            kind, outcome, value = match.groups()
            out.setdefault(kind, {})[outcome] = int(float(value))
    return out


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def parse_daemon_log(path: Path) -> dict[str, Any]:
    """Cycles, discovery, failures and the final queue state from the daemon's JSON lines."""
    cycles: list[dict[str, Any]] = []
    discovery: dict[str, Any] | None = None
    warnings: Counter[str] = Counter()
    failures: list[str] = []
    out: dict[str, Any] = {}
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        name = str(event.get("event"))
        if event.get("level") in ("warning", "error", "critical"):
            warnings[name] += 1
        if name == "reads.completed":
            cycle = {k: event.get(k) for k in ("purpose", "devices", "ok", "partial")}
            cycle |= {k: event.get(k) for k in ("silent", "failed", "elapsed")}
            cycle["ended_at"] = _epoch(event["timestamp"])
            cycles.append(cycle)
        elif name == "discovery.completed":
            discovery = {k: v for k, v in event.items() if k not in ("event", "level", "job")}
            discovery["ended_at"] = _epoch(event["timestamp"])
        elif name == "job.failed":
            failures.append(str(event.get("error")))
        elif name == "daemon.stopped":
            out["published"] = event.get("published")
            out["final_queue_depth"] = event.get("queue_depth")
    out |= {"cycles": cycles, "discovery": discovery, "warnings": dict(warnings)}
    out["job_failures"] = failures
    return out


def outbox_state(path: Path) -> dict[str, int]:
    """How many messages the daemon signed (chain sequence) and how many are still queued."""
    if not path.exists():
        return {"signed": 0, "queued": 0, "queued_reads": 0}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT sequence FROM chain WHERE id = 1").fetchone()
        queued = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        reads = db.execute("SELECT count(*) FROM messages WHERE kind = 'read'").fetchone()[0]
    finally:
        db.close()
    return {"signed": int(row[0]) if row else 0, "queued": int(queued), "queued_reads": int(reads)}


class BrokerCounter:
    """Counts what reaches the broker for one agent (QoS 1 subscription, payloads decoded)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.subscribed = asyncio.Event()
        self.reads = 0
        self.events = 0
        self.status = 0
        self.undecodable = 0
        self.other = 0
        self.duplicates = 0
        self.reads_by_purpose: Counter[str] = Counter()
        self.read_devices: dict[str, set[str]] = {}
        self.event_names: Counter[str] = Counter()
        self._ids: set[str] = set()
        self.last_message = time.monotonic()

    def observe(self, topic: str, payload: bytes) -> None:
        self.last_message = time.monotonic()
        level = topic.rsplit("/", 1)[-1]
        if level == "status":
            self.status += 1
            return
        if level not in ("reads", "events"):
            # presence (a retained, unsigned online/offline) and the backend's own topics
            self.other += 1
            return
        try:
            segment = payload.split(b".")[1]
            envelope = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
            body = envelope["body"]
            message_id = str(envelope["message_id"])
        except (IndexError, ValueError, KeyError, TypeError):
            self.undecodable += 1
            return
        if message_id in self._ids:
            self.duplicates += 1  # at-least-once delivery: a redelivery is not a new read
            return
        self._ids.add(message_id)
        if level == "reads":
            self.reads += 1
            purpose = str(body.get("purpose"))
            self.reads_by_purpose[purpose] += 1
            self.read_devices.setdefault(purpose, set()).add(str(body.get("device_id")))
        else:
            self.events += 1
            self.event_names[str(body.get("event"))] += 1

    async def run(self, host: str, port: int) -> None:
        import aiomqtt

        identifier = f"soak-counter-{os.getpid()}"
        async with aiomqtt.Client(hostname=host, port=port, identifier=identifier) as client:
            await client.subscribe(self.topic, qos=1)
            self.subscribed.set()
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                self.observe(str(message.topic), data)

    async def settle(self, *, expected: int | None, quiet: float, limit: float) -> None:
        """Wait until ``expected`` messages (reads + events) arrived, or ``quiet`` s of silence."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if expected is not None and self.reads + self.events >= expected:
                return
            if expected is None and time.monotonic() - self.last_message > quiet:
                return
            await asyncio.sleep(0.2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reads": self.reads,
            "events": self.events,
            "status": self.status,
            "duplicates": self.duplicates,
            "undecodable": self.undecodable,
            "other": self.other,
            "reads_by_purpose": dict(self.reads_by_purpose),
            "devices_read_by_purpose": {k: len(v) for k, v in self.read_devices.items()},
            "event_names": dict(self.event_names),
        }


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(seconds, value)`` points, per hour."""
    if len(points) < 3:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread * 3600.0


def _first_after(samples: list[dict[str, Any]], wall: float, key: str) -> dict[str, Any] | None:
    for row in samples:
        if row["wall"] >= wall and row.get(key) is not None:
            return row
    return None


def _last_before(samples: list[dict[str, Any]], wall: float, key: str) -> dict[str, Any] | None:
    found = None
    for row in samples:
        if row["wall"] <= wall and row.get(key) is not None:
            found = row
    return found


def _cycle_rows(
    cycles: list[dict[str, Any]], samples: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for number, cycle in enumerate(cycles, start=1):
        started = cycle["ended_at"] - float(cycle["elapsed"] or 0)
        before = _last_before(samples, started, "cpu_s")
        after = _first_after(samples, cycle["ended_at"], "cpu_s")
        read = int(cycle["ok"] or 0) + int(cycle["partial"] or 0)
        row = {"cycle": number, **{k: v for k, v in cycle.items() if k != "ended_at"}}
        row["read"] = read
        if before and after:
            cpu = after["cpu_s"] - before["cpu_s"]
            row["daemon_cpu_s"] = round(cpu, 1)
            row["cpu_ms_per_read"] = round(cpu * 1000 / read, 2) if read else None
        if after:
            row["rss_after_mb"] = round(after["rss_kb"] / MB, 1)
        rows.append(row)
    return rows


def summarise(
    *,
    options: dict[str, Any],
    samples: list[dict[str, Any]],
    log: dict[str, Any],
    counter: BrokerCounter,
    outbox: dict[str, int],
    devices: int,
    responder_counts: dict[str, dict[str, int]],
) -> dict[str, Any]:
    measured = [row for row in samples if row.get("rss_kb") is not None]
    cycles = _cycle_rows(log["cycles"], measured)
    peak_mb = max((row["hwm_kb"] for row in measured), default=0) / MB
    # RSS after each cycle (a cycle that ended as the daemon stopped has no sample after it);
    # the baseline skips the first cycle when there are enough (it includes start-up).
    after = [c["rss_after_mb"] for c in cycles if c.get("rss_after_mb") is not None]
    baseline = after[1] if len(after) >= 3 else (after[0] if after else None)
    last = after[-1] if after else None
    steady_from = log["cycles"][0]["ended_at"] if log["cycles"] else float("inf")
    steady = [(r["wall"], r["rss_kb"] / MB) for r in measured if r["wall"] >= steady_from]
    slope = slope_per_hour(steady)
    final = measured[-1] if measured else {}
    discovery_end = (log["discovery"] or {}).get("ended_at", 0.0)
    discovered_row = _first_after(measured, discovery_end, "rss_kb")
    reads = final.get("reads", {})
    # Message-level accounting: every signed message arrived at the broker or is still queued.
    lost = outbox["signed"] - counter.reads - counter.events - outbox["queued"]
    collected_total = counter.reads + outbox["queued_reads"]
    requests = sum(
        n
        for got in responder_counts.values()
        for kind, n in got.items()
        if kind in ("get", "getnext", "getbulk")
    )
    discovered = (log["discovery"] or {}).get("printers", 0)
    complete = [c for c in cycles if c["devices"] == devices and c["read"] == devices]
    cycle_ok = bool(cycles) and len(complete) == len(cycles)
    cycle_ok = cycle_ok and all(float(c["elapsed"]) <= CYCLE_TARGET_S for c in cycles)
    flat = None
    if baseline is not None and last is not None and len(after) >= 2:
        flat = (last - baseline) <= RSS_FLAT_RATIO * baseline
    depths = [row["queue_depth"] for row in measured if row.get("queue_depth") is not None]
    oldest = [row["queue_oldest_s"] or 0.0 for row in measured if "queue_oldest_s" in row]
    healthz = sorted(row["healthz_s"] for row in measured if row.get("healthz_s") is not None)
    wall = final.get("t") or 0.0
    cpu_total = final.get("cpu_s", 0.0)
    targets = {
        "every_device_read_each_cycle_within_15min": cycle_ok,
        "peak_rss_under_256mb": peak_mb < RSS_TARGET_MB,
        "rss_flat": flat,
        "every_read_arrived_at_broker": lost == 0 and counter.undecodable == 0,
    }
    targets["all_met"] = all(v is not False for v in targets.values()) and flat is not False
    return {
        "options": options,
        "devices": devices,
        "discovery": log["discovery"],
        "discovered": discovered,
        "cycles": cycles,
        "reads_committed": collected_total,
        "reads_by_kind_last_sample": reads,
        "broker": counter.as_dict() | {"lost": lost, "published": log.get("published")},
        "outbox": outbox,
        "queue": {
            "max_depth": max(depths, default=0),
            "mean_depth": round(statistics.fmean(depths), 1) if depths else 0,
            "max_oldest_age_s": round(max(oldest, default=0.0), 1),
        },
        "cpu": {
            "daemon_total_s": round(cpu_total, 1),
            "daemon_avg_cores": round(cpu_total / wall, 3) if wall else None,
            "daemon_ms_per_read": round(cpu_total * 1000 / collected_total, 2)
            if collected_total
            else None,
        },
        "rss": {
            "peak_mb": round(peak_mb, 1),
            "after_discovery_mb": round(discovered_row["rss_kb"] / MB, 1)
            if discovered_row
            else None,
            "end_mb": round(final["rss_kb"] / MB, 1) if measured else None,
            "baseline_after_cycle_mb": baseline,
            "after_last_cycle_mb": last,
            "steady_slope_mb_per_h": round(slope, 2) if slope is not None else None,
        },
        "healthz_latency_s": {
            "median": healthz[len(healthz) // 2] if healthz else None,
            "max": healthz[-1] if healthz else None,
        },
        "snmp_requests_served": requests,
        "requests_per_read": round(requests / (collected_total + discovered), 2)
        if collected_total + discovered
        else None,
        "warnings": log["warnings"],
        "job_failures": log["job_failures"],
        "targets": targets,
        "samples": samples,
    }


def _frame_owner(frame: str) -> str:
    """The package a py-spy frame ``func (path/to/file.py:line)`` belongs to."""
    path = frame.rpartition("(")[2]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/", "/main/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            return rest.split("/", 1)[0].removesuffix(".py").split(":")[0]
    return path.split(":")[0] or frame


def profile_summary(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Where the daemon's samples fall: by package of the innermost frame, top own frames, and
    inclusive shares of the stages a read goes through."""
    own: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    stage_markers = {
        "snmp read (read_session)": "read_session",
        "decode (decode_read)": "decode_read",
        "sign + outbox (submit_many)": "submit_many",
        "inventory record_read": "record_read",
        "mqtt publish": "uploader/mqtt.py",
        "eligibility (evaluate_read)": "evaluate_read",
        "health/metrics endpoint": "agent/metrics.py",
    }
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        worker = frames[0].startswith("Thread._bootstrap")
        threads["worker threads (outbox commits)" if worker else "event loop thread"] += count
        owners[_frame_owner(frames[-1])] += count
        for stage, marker in stage_markers.items():
            if marker in stack:
                stages[stage] += count
    share = {k: round(100 * v / total, 1) for k, v in owners.most_common(12)} if total else {}
    return {
        "samples": total,
        "threads_pct": {k: round(100 * v / total, 1) for k, v in threads.items()} if total else {},
        "by_package_pct": share,
        "stages_inclusive_pct": {k: round(100 * v / total, 1) for k, v in stages.most_common()}
        if total
        else {},
        "top_own_frames_pct": [
            (frame, round(100 * n / total, 1)) for frame, n in own.most_common(top)
        ]
        if total
        else [],
    }


def _yes(value: object) -> str:
    return "n/a" if value is None else ("yes" if value else "**no**")


def markdown(summary: dict[str, Any]) -> str:
    """The results as markdown tables (targets, then one row per cycle)."""
    t, rss, cpu, queue, broker = (
        summary["targets"],
        summary["rss"],
        summary["cpu"],
        summary["queue"],
        summary["broker"],
    )
    longest = max((float(c["elapsed"]) for c in summary["cycles"]), default=0.0)
    lines = [
        "| Measure | Result | Target | Met |",
        "|---|---|---|---|",
        f"| Devices discovered | {summary['discovered']} of {summary['devices']} | all | "
        f"{_yes(summary['discovered'] == summary['devices'])} |",
        f"| Completed read cycles | {len(summary['cycles'])}, longest {longest:.0f} s | every "
        f"device read within 15 min | {_yes(t['every_device_read_each_cycle_within_15min'])} |",
        f"| Peak RSS (VmHWM) | {rss['peak_mb']} MB | < 256 MB | "
        f"{_yes(t['peak_rss_under_256mb'])} |",
        f"| RSS after cycle 2 / last cycle | {rss['baseline_after_cycle_mb']} / "
        f"{rss['after_last_cycle_mb']} MB (slope {rss['steady_slope_mb_per_h']} MB/h) | "
        f"flat (within 5%) | {_yes(t['rss_flat'])} |",
        f"| Signed messages at the broker | {broker['reads']} reads + {broker['events']} events of"
        f" {summary['outbox']['signed']} signed ({summary['outbox']['queued']} still queued, "
        f"{broker['lost']} lost, {broker['duplicates']} duplicates) | all | "
        f"{_yes(t['every_read_arrived_at_broker'])} |",
        f"| Events at the broker | {broker['events']} ({broker['event_names']}) | | |",
        f"| Daemon CPU | {cpu['daemon_total_s']} s, {cpu['daemon_avg_cores']} cores on average, "
        f"{cpu['daemon_ms_per_read']} ms per read | | |",
        f"| Upload queue | max {queue['max_depth']}, mean {queue['mean_depth']}, oldest "
        f"{queue['max_oldest_age_s']} s | | |",
        f"| /healthz latency | median {summary['healthz_latency_s']['median']} s, max "
        f"{summary['healthz_latency_s']['max']} s | | |",
        f"| SNMP requests per read (responder side) | {summary['requests_per_read']} | | |",
        "",
        "| Cycle | Purpose | Devices | Read | Silent | Failed | Elapsed s | Daemon CPU s | "
        "CPU ms/read | RSS after MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in summary["cycles"]:
        lines.append(
            f"| {c['cycle']} | {c['purpose']} | {c['devices']} | {c['read']} | {c['silent']} | "
            f"{c['failed']} | {c['elapsed']} | {c.get('daemon_cpu_s')} | "
            f"{c.get('cpu_ms_per_read')} | {c.get('rss_after_mb')} |"
        )
    return "\n".join(lines) + "\n"

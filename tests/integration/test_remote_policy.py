"""Issue 13, the contract policy pushed inline: the real daemon, Mosquitto, snmpsim, `config push`.

The printer is the demo fleet's low-toner HP (91,870 pages, black toner at 7 %). The local
file names no policy. A first document carries a policy under which it is eligible and its
toner is not ordered yet (emergency level 5 %); the second lowers the lifetime maximum and
raises the emergency level to 10 %: the running daemon's verdict changes (a signed
``eligibility_changed`` naming the new policy) and it orders the toner (``supply_order_due``,
emergency). A third, invalid policy is refused by ``config push`` before publishing, and by
the agent when another backend publishes it anyway: the second policy stays in force. A
restarted daemon runs with the pushed policy from its last good file.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.demo.fleet import DEMO_FLEET
from tests.support.daemon import FLEET_AGENT, DaemonRunner
from tests.support.mosquitto import MosquittoFactory
from tests.support.remote_site import AGENT_ID, Site, push_cli, start_site, wait_report
from tests.support.snmpsim import SnmpSimFactory
from tests.support.udp_counter import UdpCounterFactory
from uploader.envelope import Verifier

pytestmark = pytest.mark.integration

LOW_TONER_HP = DEMO_FLEET[1]
FIRST: dict[str, Any] = {
    "version": "contract-1",
    "models": [{"vendor": "HP", "patterns": ["LaserJet Pro M4*"]}],
    "max_lifetime_pages": 300_000,
    "contacts": [  # covers the whole site; named by the order event
        {
            "name": "Anna Berg",
            "company": "Acme GmbH",
            "address": "Hauptstrasse 5, 10115 Berlin",
            "phone": "+49301234567",
            "email": "anna.berg@acme.example",
            "country_code": "DE",
        }
    ],
}
SECOND: dict[str, Any] = {
    **FIRST,
    "version": "contract-2",
    "max_lifetime_pages": 50_000,
    "replenishment": {"emergency_percent": 10},
}
BAD: dict[str, Any] = {**SECOND, "version": "contract-3", "replenishment": {"lead_time_days": -1}}


def _stored(site: Site) -> list[tuple[str, dict[str, Any]]]:
    """(kind, body) of every envelope the backend stored from the agent, in order."""
    verifier = Verifier({site.agent_key.key_id: site.agent_key.jose_key})
    out = []
    for token in site.consumer.store.tokens(AGENT_ID):
        envelope = verifier.verify(token)
        out.append((envelope.kind, dict(envelope.body)))
    return out


def _reads_under(site: Site, version: str) -> list[dict[str, Any]]:
    """The stored reads whose verdict was made under the policy of ``version``."""
    reads = [body for kind, body in _stored(site) if kind == "read"]
    return [r for r in reads if (r.get("eligibility") or {}).get("policy_version") == version]


def _events(site: Site, name: str) -> list[dict[str, Any]]:
    return [body for kind, body in _stored(site) if kind == "event" and body["event"] == name]


async def _until(what: str, found: Callable[[], list[dict[str, Any]]], at_least: int = 1) -> Any:
    """The items ``found()`` returns once there are ``at_least`` (60 s at most)."""
    deadline = time.monotonic() + 60
    while len(items := found()) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {len(items)} of {at_least} within 60 s")
        await asyncio.sleep(0.5)
    return items


def _codes(read: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in read["eligibility"]["reasons"]]


async def test_a_pushed_policy_drives_verdicts_and_orders_and_survives_a_restart(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Any,
) -> None:
    site = await start_site(
        snmpsim_factory,
        mosquitto_factory,
        udp_counter_factory,
        daemon_runner,
        tmp_path,
        "127.0.95",
        specs=[LOW_TONER_HP],
    )
    daemon = site.daemon
    base: dict[str, Any] = {
        "discovery": {"targets": [site.printer]},
        "schedule": {"meters": "2s"},
    }

    # 1. The first policy: eligible; 7 % toner is above the 5 % emergency level: no order.
    mark = daemon.mark()
    assert await site.push_cli("backend", {**base, "policy": FIRST}) == 1
    applied = await asyncio.to_thread(daemon.wait_for, "config.remote_applied", after=mark)
    assert applied["version"] == 1
    reloaded = daemon.wait_for("config.reloaded", after=mark)
    assert (reloaded["policy_source"], reloaded["policy_version"]) == (
        "remote config v1 (site lab)",
        "contract-1",
    )
    reads = await _until("reads under contract-1", lambda: _reads_under(site, "contract-1"), 2)
    assert reads[0]["identity"]["serial"] == LOW_TONER_HP.serial
    assert reads[0]["eligibility"]["eligible"] is True, reads[0]["eligibility"]
    assert _events(site, "supply_order_due") == []
    assert daemon.named("supply.event", after=mark) == []
    await wait_report(site.consumer, site.agent_key, 1, "applied")

    # 2. The second policy: over the lifetime maximum, and the toner is ordered at once.
    mark = daemon.mark()
    assert await site.push("backend", {**base, "policy": SECOND}) == 2
    await asyncio.to_thread(daemon.wait_for, "config.remote_applied", after=mark)
    changed = await _until("eligibility_changed", lambda: _events(site, "eligibility_changed"))
    assert changed[0]["policy_version"] == "contract-2"
    assert (changed[0]["eligible"], changed[0]["was_eligible"]) == (False, True)
    assert changed[0]["reasons"] == ["lifetime_count_over_max"]
    ordered = await _until("supply_order_due", lambda: _events(site, "supply_order_due"))
    assert len(ordered) == 1, ordered
    assert ordered[0]["emergency"] is True
    assert ordered[0]["type"] == "toner_cartridge"
    assert ordered[0]["level"] == pytest.approx(7, abs=1)
    assert ordered[0]["contact"]["name"] == "Anna Berg"  # from the pushed policy
    event = daemon.wait_for("supply.event", after=mark)
    assert event["kind"] == "supply_order_due"

    # 3. An invalid policy: `config push` refuses it before publishing (nothing retained) ...
    done = await asyncio.to_thread(
        push_cli,
        site.tmp_path,
        site.broker,
        site.prefix,
        site.backend_dir / "backend.key",
        {**base, "policy": BAD},
    )
    assert done.returncode == 2, done.stderr
    assert "policy.replenishment.lead_time_days: must be at least 0 (got -1)" in done.stderr
    assert "Traceback" not in done.stderr
    # ... and the agent refuses it from a backend that publishes it anyway (the version is
    # 3: the refused command published nothing); the second policy stays in force.
    mark = daemon.mark()
    assert await site.push("backend", {**base, "policy": BAD}) == 3
    refused = await asyncio.to_thread(daemon.wait_for, "config.remote_refused", after=mark)
    assert refused["reason"] == "invalid"
    assert refused["detail"].startswith(
        "remote config v3 (site lab): policy.replenishment.lead_time_days: must be at least 0"
    ), refused["detail"]
    report = await wait_report(site.consumer, site.agent_key, 3, "refused")
    assert (report["reason"], report["applied_version"]) == ("invalid", 2)
    before = len(_reads_under(site, "contract-2"))
    reads = await _until(
        "reads under contract-2", lambda: _reads_under(site, "contract-2"), before + 2
    )
    assert _codes(reads[-1]) == ["lifetime_count_over_max"]
    assert _reads_under(site, "contract-3") == []
    assert daemon.named("config.reloaded", after=mark) == []

    # 4. Restarted: the pushed policy (v2) runs from the last good file.
    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0
    restart_at = datetime.now(UTC)
    restarted = daemon_runner(site.config)
    loaded = await asyncio.to_thread(restarted.wait_for, "config.remote_loaded", timeout=120)
    assert (loaded["version"], loaded["policy_version"]) == (2, "contract-2")
    started = restarted.wait_for("daemon.started")
    assert started["policy_source"] == "remote config v2 (site lab)"
    reads = await _until(
        "reads by the restarted daemon",
        lambda: [
            read
            for read in _reads_under(site, "contract-2")
            if datetime.fromisoformat(read["collected_at"]) > restart_at
        ],
    )
    assert _codes(reads[0]) == ["lifetime_count_over_max"]
    assert len(_events(site, "supply_order_due")) == 1  # ordered once, across the restart

    shown = await asyncio.to_thread(
        subprocess.run,
        [str(FLEET_AGENT), "config", "show", "--config", str(site.config), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["policy"] == {
        "from": "remote",
        "source": "remote config v2 (site lab)",
        "remote_version": 2,
        "version": "contract-2",
    }
    restarted.signal(signal.SIGTERM)
    assert await restarted.exited() == 0

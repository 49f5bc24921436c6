"""Issue 13, remote configuration: the real daemon, a real Mosquitto, snmpsim, `config push`.

One printer (snmpsim) at .1 and a silent UDP sink at .2 of a 127.0.9x block that counts
every datagram: the bad documents all point discovery at the sink, so "the previous
configuration still runs" is proven from the peer's side (not one packet reached it)
as well as from the daemon's (it goes on sweeping and reading the printer).
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from agent.state import remote_config_path
from tests.support.daemon import DaemonProcess, DaemonRunner
from tests.support.mosquitto import MosquittoFactory
from tests.support.remote_site import AGENT_ID, Site, start_site, wait_report
from tests.support.snmpsim import SnmpSimFactory
from tests.support.udp_counter import UdpCounterFactory

pytestmark = pytest.mark.integration


async def _still_sweeping_the_printer(daemon: DaemonProcess, mark: int) -> None:
    """After ``mark``: a discovery over the one printer, then a meter read of it."""
    swept = await asyncio.to_thread(daemon.wait_for, "discovery.completed", after=mark, timeout=60)
    assert (swept["addresses"], swept["printers"]) == (1, 1), swept
    later = daemon.mark()
    read = await asyncio.to_thread(
        daemon.wait_for,
        "reads.completed",
        after=later,
        where=lambda e: e.get("purpose") == "meters",
        timeout=60,
    )
    assert (read["devices"], read["ok"]) == (1, 1), read


async def _good_push(site: Site, *, cli: bool) -> None:
    """Version 1 for the whole site: applied at once (discovery sweeps it now), reported."""
    mark = site.daemon.mark()
    good = {
        "discovery": {"targets": [site.printer]},
        "schedule": {"discovery": "3s", "meters": "2s"},
    }
    version = await (site.push_cli("backend", good) if cli else site.push("backend", good))
    assert version == 1
    applied = await asyncio.to_thread(site.daemon.wait_for, "config.remote_applied", after=mark)
    assert applied["version"] == 1
    await _still_sweeping_the_printer(site.daemon, mark)
    report = await wait_report(site.consumer, site.agent_key, 1, "applied")
    assert report["applied_version"] == 1
    assert json.loads(remote_config_path(site.state).read_text())["version"] == 1


async def test_a_good_push_applies_bad_ones_are_refused_or_rolled_back(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    site = await start_site(
        snmpsim_factory, mosquitto_factory, udp_counter_factory, daemon_runner, tmp_path, "127.0.93"
    )
    daemon, consumer, agent_key, sink = site.daemon, site.consumer, site.agent_key, site.sink
    sink_address = "127.0.93.2"
    await _good_push(site, cli=True)

    # 2. Signed by another key (to this agent alone): refused, nothing changes.
    mark = daemon.mark()
    await site.push("forger", {"discovery": {"targets": [sink_address]}}, AGENT_ID)
    refused = await asyncio.to_thread(daemon.wait_for, "config.remote_refused", after=mark)
    assert refused["reason"] == "rejected"
    assert "unknown_key" in refused["detail"]
    report = await wait_report(consumer, agent_key, None, "refused")
    assert report["reason"] == "rejected"
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)

    # 3. An invalid target: refused with the field, exactly as `config check` words it.
    mark = daemon.mark()
    invalid = {"discovery": {"targets": [sink_address, "224.0.1.0/24"]}}
    # above the retained v1; the forgery retained on the agent's topic does not count
    assert await site.push("backend", invalid, AGENT_ID) == 2
    refused = await asyncio.to_thread(daemon.wait_for, "config.remote_refused", after=mark)
    assert refused["reason"] == "invalid"
    assert refused["detail"].startswith(
        f"remote config v2 (agent {AGENT_ID} at site lab): discovery.targets[1]: target "
        "'224.0.1.0/24'"
    ), refused["detail"]
    report = await wait_report(consumer, agent_key, 2, "refused")
    assert report["reason"] == "invalid"
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)

    # 4. Valid, but the jobs cannot be scheduled with it: applied, failed, rolled back.
    mark = daemon.mark()
    unstartable = {"discovery": {"targets": [sink_address]}, "schedule": {"meters": "99999999999d"}}
    assert await site.push("backend", unstartable) == 3
    rolled = await asyncio.to_thread(daemon.wait_for, "config.remote_rolled_back", after=mark)
    assert rolled["reason"] == "cannot_start"
    assert rolled["applied_version"] == 1
    assert "previous one restored" in rolled["detail"]
    report = await wait_report(consumer, agent_key, 3, "rolled_back")
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)
    assert json.loads(remote_config_path(site.state).read_text())["version"] == 1
    assert sink.count() == 0, "a refused configuration reached the network"
    assert daemon.running
    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0


async def test_an_agent_restarted_after_a_push_runs_it_before_reconnecting(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    site = await start_site(
        snmpsim_factory, mosquitto_factory, udp_counter_factory, daemon_runner, tmp_path, "127.0.94"
    )
    await _good_push(site, cli=False)
    site.daemon.signal(signal.SIGTERM)
    assert await site.daemon.exited() == 0
    site.broker.stop()  # restarted with the broker down: only the last good file can say
    await site.consumer.finish()
    restarted = daemon_runner(site.config)
    loaded = await asyncio.to_thread(restarted.wait_for, "config.remote_loaded", timeout=120)
    assert loaded["version"] == 1
    assert restarted.wait_for("daemon.started")["config_version"] == 1
    await _still_sweeping_the_printer(restarted, 0)
    assert restarted.named("upload.connected") == []
    restarted.signal(signal.SIGTERM)
    assert await restarted.exited() == 0

"""Discovery politeness measured at the peers, and SNMPv3 profiles that fail moving on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr

from collectors.credentials import Credential, SnmpSettings
from collectors.discovery import AddressResult, DiscoveryOptions, Sweep
from collectors.targets import parse_targets
from collectors.transport import SnmpTransport
from tests.integration.test_discovery import common_port, printer_snmprec
from tests.support.snmpsim import SnmpSim, V3User, start_snmpsim
from tests.support.udp_counter import UdpCounterFactory

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI runs point structlog at pytest's capture streams, which close after the test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _worst_window(stamps: list[float], window: float) -> int:
    worst, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


async def test_packets_per_second_budget_holds_at_the_peers(
    udp_counter_factory: UdpCounterFactory,
) -> None:
    addresses = [f"127.0.8.{n}" for n in range(1, 61)]
    port = common_port(addresses)
    counter = udp_counter_factory(addresses, port)
    rate, burst = 40.0, 2.0
    sweep = Sweep(
        parse_targets(["127.0.8.1-60"]),
        [Credential(name="public", community=SecretStr("public"))],
        SnmpSettings(port=port, timeout=0.2, retries=1),
        options=DiscoveryOptions(rate=rate, burst=burst, max_in_flight=60),
    )
    results: list[AddressResult] = []
    started = time.monotonic()
    stats = await sweep.run(results.append)
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.2)  # let the sink thread drain its sockets

    stamps = counter.stamps()
    assert stats.silent == 60
    assert len(stamps) == 120  # every address: first try and one retry, nothing more
    assert all(counter.count(address) == 2 for address in addresses)
    # Seen from the peers: no one-second window above the budget plus its burst
    # (one packet of slack for the sink thread's timestamping jitter).
    assert _worst_window(stamps, 1.0) <= rate + burst + 1
    assert elapsed >= (120 - burst) / rate * 0.95
    # How much of the budget a sweep uses is a speed figure: bench/discovery_bench.py.


@pytest.fixture
def v3_printer(tmp_path: Path) -> Iterator[SnmpSim]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "public.snmprec").write_text(
        printer_snmprec(
            serial="V3P0000001", mac="00:11:22:00:03:01", model="LaserJet M507", sys_name="v3"
        )
    )
    port = common_port(["127.0.7.2"])
    sim = start_snmpsim(data, tmp_path, address="127.0.7.2", port=port, v3_user=V3User())
    yield sim
    sim.stop()


def _v3(name: str, **changes: str) -> Credential:
    user = V3User()
    fields = {
        "username": user.user,
        "auth_key": user.auth_key,
        "priv_key": user.priv_key,
        **changes,
    }
    return Credential(
        name=name,
        version="v3",
        username=fields["username"],
        auth_protocol="SHA256",
        auth_key=SecretStr(fields["auth_key"]),
        priv_protocol="AES",
        priv_key=SecretStr(fields["priv_key"]),
        context_name="public",
    )


async def test_failing_v3_profiles_move_on_to_the_next(v3_printer: SnmpSim) -> None:
    profiles = [
        _v3("wrong-auth", auth_key="notthekey1"),
        _v3("unknown-user", username="nobody"),
        _v3("wrong-priv", priv_key="notthekey2"),
        _v3("right"),
    ]
    settings = SnmpSettings(port=v3_printer.port, timeout=0.5, retries=0)
    results: list[AddressResult] = []
    async with SnmpTransport(settings) as transport:
        sweep = Sweep(
            ["127.0.7.2"],
            profiles,
            settings,
            options=DiscoveryOptions(rate=None),
            transport=transport,
        )
        await sweep.run(results.append)
    (result,) = results
    assert result.status == "printer", result
    assert result.credential == "right"
    assert result.device_id == "sn:hp:V3P0000001"
    refused = [line.split(":")[0] for line in result.refusals]
    # Wrong auth and unknown user are reported by USM; a wrong privacy key may be
    # dropped silently by the agent (then it is a timeout, also moved past).
    assert {"wrong-auth", "unknown-user"} <= set(refused)
    assert "right" not in refused


async def test_retries_back_off_as_seen_by_a_silent_peer(
    udp_counter_factory: UdpCounterFactory,
) -> None:
    port = common_port(["127.0.8.100"])
    counter = udp_counter_factory(["127.0.8.100"], port)
    sweep = Sweep(
        ["127.0.8.100"],
        [Credential(name="public", community=SecretStr("public"))],
        SnmpSettings(port=port, timeout=0.2, retries=2),
        options=DiscoveryOptions(rate=None),
    )
    started = time.monotonic()
    stats = await sweep.run(lambda result: None)
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.1)
    first, second, third = counter.stamps()
    assert stats.silent == 1
    # Attempts wait 0.2 s, 0.3 s and 0.45 s for an answer: a busy machine can only
    # lengthen these gaps, and a fixed wait (0.2 s each) fails the second bound.
    assert second - first >= 0.2 - 0.02
    assert third - second >= 0.3 - 0.02
    assert elapsed >= 0.95 - 0.05

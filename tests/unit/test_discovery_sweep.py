"""The sweep over fake sessions: profile order, refusals, classification, streaming, pacing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from collectors.credentials import Credential, SnmpSettings
from collectors.discovery import AddressResult, DiscoveryOptions, Sweep
from collectors.errors import SnmpAuthError, SnmpPortClosed, SnmpTimeout
from collectors.udp import Pace
from collectors.walk import WalkResult
from mibs.values import Oid, Value, is_under, parse_oid

PRINTER_TYPE = parse_oid("1.3.6.1.2.1.25.3.1.5")
PRINTER: dict[Oid, Value] = {
    parse_oid("1.3.6.1.2.1.1.1.0"): b"HP LaserJet M404",
    parse_oid("1.3.6.1.2.1.1.2.0"): parse_oid("1.3.6.1.4.1.11.2.3.9.1"),
    parse_oid("1.3.6.1.2.1.1.5.0"): b"lj-3rd-floor",
    parse_oid("1.3.6.1.2.1.25.3.2.1.2.1"): PRINTER_TYPE,
    parse_oid("1.3.6.1.2.1.25.3.2.1.3.1"): b"HP LaserJet M404",
    parse_oid("1.3.6.1.2.1.43.5.1.1.17.1"): b"PHB1234567",
    parse_oid("1.3.6.1.2.1.2.2.1.3.1"): 6,
    parse_oid("1.3.6.1.2.1.2.2.1.6.1"): bytes.fromhex("001122334455"),
    parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1"): 48213,  # prtMarkerLifeCount
}
ROUTER: dict[Oid, Value] = {
    parse_oid("1.3.6.1.2.1.1.1.0"): b"Linux router 6.1",
    parse_oid("1.3.6.1.2.1.1.2.0"): parse_oid("1.3.6.1.4.1.8072.3.2.10"),
    parse_oid("1.3.6.1.2.1.25.3.2.1.2.1"): parse_oid("1.3.6.1.2.1.25.3.1.3"),  # processor
}

V2C_GOOD = Credential(name="good", community=SecretStr("s3cret"))
V2C_BAD = Credential(name="bad", community=SecretStr("nope"))
V3_WRONG = Credential(
    name="v3-wrong",
    version="v3",
    username="ops",
    auth_protocol="SHA256",
    auth_key=SecretStr("wrongwrong"),
)


@dataclass
class Device:
    varbinds: dict[Oid, Value]
    accepts: set[str]  # profile names that work
    refuses: set[str] = field(default_factory=set)  # profile names refused with an auth error
    closed: bool = False


@dataclass
class Net:
    devices: dict[str, Device]
    tries: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    paced: int = 0

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> _Session:
        self.tries.append((address, credential.name))
        return _Session(self, address, credential, pace)


class _Session:
    def __init__(self, net: Net, address: str, credential: Credential, pace: Pace | None) -> None:
        self.address = address
        self._net, self._credential, self._pace = net, credential, pace

    async def _check(self) -> Device:
        if self._pace is not None:
            await self._pace()
            self._net.paced += 1
        device = self._net.devices.get(self.address)
        self._net.in_flight += 1
        self._net.peak = max(self._net.peak, self._net.in_flight)
        try:
            await asyncio.sleep(0.001)
        finally:
            self._net.in_flight -= 1
        if device is None:
            raise SnmpTimeout("silent", address=self.address)
        if device.closed:
            raise SnmpPortClosed("closed", address=self.address)
        if self._credential.name in device.refuses:
            raise SnmpAuthError("wrong digest", address=self.address)
        if self._credential.name not in device.accepts:
            raise SnmpTimeout("ignored community", address=self.address)
        return device

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        device = await self._check()
        return {oid: device.varbinds[oid] for oid in oids if oid in device.varbinds}

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        device = await self._check()
        return WalkResult(
            rows={
                c: [(o, v) for o, v in sorted(device.varbinds.items()) if is_under(o, c)]
                for c in columns
            }
        )


async def _sweep(
    net: Net,
    targets: Sequence[str],
    credentials: Sequence[Credential],
    *,
    known: dict[str, str] | None = None,
    options: DiscoveryOptions | None = None,
    read_printers: bool = False,
) -> tuple[dict[str, AddressResult], Sweep]:
    results: dict[str, AddressResult] = {}

    def collect(result: AddressResult) -> None:
        assert result.address not in results
        results[result.address] = result

    sweep = Sweep(
        targets,
        credentials,
        SnmpSettings(),
        options=options or DiscoveryOptions(rate=None),
        known_profiles=known,
        transport=net,
        read_printers=read_printers,
    )
    await sweep.run(collect)
    return results, sweep


async def test_printers_others_silent_and_closed_are_told_apart() -> None:
    net = Net(
        {
            "10.0.0.1": Device(PRINTER, {"good"}),
            "10.0.0.2": Device(ROUTER, {"good"}),
            "10.0.0.3": Device({}, set(), closed=True),
        }
    )
    results, sweep = await _sweep(net, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"], [V2C_GOOD])
    assert {a: r.status for a, r in results.items()} == {
        "10.0.0.1": "printer",
        "10.0.0.2": "other",
        "10.0.0.3": "closed",
        "10.0.0.4": "silent",
    }
    printer = results["10.0.0.1"]
    assert printer.device_id == "sn:hp:PHB1234567"
    assert printer.identity is not None
    assert printer.identity.mac == "00:11:22:33:44:55"
    assert printer.credential == "good"
    assert results["10.0.0.2"].device_id is None
    stats = sweep.stats
    assert (stats.done, stats.printers, stats.others, stats.silent) == (4, 1, 1, 2)


async def test_profiles_in_order_and_a_refusal_moves_on() -> None:
    net = Net({"10.0.0.1": Device(PRINTER, {"good"}, refuses={"v3-wrong"})})
    results, _ = await _sweep(net, ["10.0.0.1"], [V3_WRONG, V2C_BAD, V2C_GOOD])
    result = results["10.0.0.1"]
    assert result.status == "printer"
    assert result.credential == "good"
    assert [name for _, name in net.tries] == ["v3-wrong", "bad", "good"]
    assert len(result.refusals) == 1
    assert result.refusals[0].startswith("v3-wrong:")


async def test_every_profile_refused_is_reported_as_refused() -> None:
    net = Net({"10.0.0.1": Device(PRINTER, set(), refuses={"v3-wrong"})})
    results, sweep = await _sweep(net, ["10.0.0.1"], [V3_WRONG, V2C_BAD])
    assert results["10.0.0.1"].status == "refused"
    assert sweep.stats.refused == 1


async def test_closed_port_ends_the_address_without_trying_more_profiles() -> None:
    net = Net({"10.0.0.3": Device({}, set(), closed=True)})
    await _sweep(net, ["10.0.0.3"], [V2C_BAD, V2C_GOOD])
    assert net.tries == [("10.0.0.3", "bad")]


async def test_the_remembered_profile_is_tried_first() -> None:
    net = Net({"10.0.0.1": Device(PRINTER, {"good"})})
    await _sweep(net, ["10.0.0.1"], [V2C_BAD, V2C_GOOD], known={"10.0.0.1": "good"})
    assert [name for _, name in net.tries] == ["good"]


async def test_in_flight_is_capped_and_targets_are_pulled_lazily() -> None:
    pulled: list[str] = []

    def addresses():  # type: ignore[no-untyped-def]
        for number in range(500):
            address = f"10.0.{number // 250}.{number % 250 + 1}"
            pulled.append(address)
            yield address

    net = Net({})
    sweep = Sweep(
        addresses(),
        [V2C_GOOD],
        SnmpSettings(),
        options=DiscoveryOptions(rate=None, max_in_flight=16),
        transport=net,
    )
    seen: list[str] = []

    def collect(result: AddressResult) -> None:
        # Streaming: never more than max_in_flight addresses pulled ahead of the results.
        assert len(pulled) - len(seen) <= 16
        seen.append(result.address)

    stats = await sweep.run(collect)
    assert stats.done == 500
    assert len(set(seen)) == 500
    assert net.peak == 16


async def test_every_request_is_paced_by_the_bucket() -> None:
    net = Net({"10.0.0.1": Device(PRINTER, {"good"})})
    _, sweep = await _sweep(
        net,
        ["10.0.0.1", "10.0.0.2"],
        [V2C_GOOD],
        options=DiscoveryOptions(rate=10_000, burst=1),
    )
    assert sweep.bucket is not None
    assert sweep.bucket.granted == net.paced > 2


def test_a_sweep_without_profiles_is_refused() -> None:
    with pytest.raises(ValueError, match="credential"):
        Sweep(["10.0.0.1"], [], SnmpSettings(), transport=Net({}))


async def test_identification_alone_reads_no_meters_but_read_printers_does() -> None:
    net = Net({"10.0.0.1": Device(PRINTER, {"good"})})
    results, _ = await _sweep(net, ["10.0.0.1"], [V2C_GOOD])
    assert results["10.0.0.1"].read is None
    results, _ = await _sweep(net, ["10.0.0.1"], [V2C_GOOD], read_printers=True)
    read = results["10.0.0.1"].read
    assert read is not None
    assert read.counters.total == 48213
    assert read.identity.serial == "PHB1234567"


async def test_an_error_in_the_result_handler_surfaces_as_itself() -> None:
    net = Net({"10.0.0.1": Device(PRINTER, {"good"})})
    sweep = Sweep(
        ["10.0.0.1", "10.0.0.2"],
        [V2C_GOOD],
        SnmpSettings(),
        options=DiscoveryOptions(rate=None),
        transport=net,
    )

    def broken(result: AddressResult) -> None:
        raise OSError("standard output closed")

    with pytest.raises(OSError, match="standard output closed"):
        await sweep.run(broken)

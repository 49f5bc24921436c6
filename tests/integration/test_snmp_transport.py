"""SnmpTransport over SNMPv1/v2c against snmpsim serving real printer recordings."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpTimeout
from collectors.transport import SnmpTransport
from collectors.udp import RECEIVE_BUFFER, RETRY_BACKOFF, raise_receive_buffer
from mibs.snmprec import load_varbinds
from mibs.values import Oid, Value, is_under, parse_oid
from tests.support.snmpsim import SnmpSimFactory, copy_recordings

pytestmark = pytest.mark.integration

SCALARS = [
    parse_oid(text) for text in ("1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0")
]
COLUMNS = [
    parse_oid(text)
    for text in (
        "1.3.6.1.2.1.25.3.2.1.2",  # hrDeviceType
        "1.3.6.1.2.1.25.3.2.1.3",  # hrDeviceDescr
        "1.3.6.1.2.1.43.5.1.1.17",  # prtGeneralSerialNumber
        "1.3.6.1.2.1.43.10.2.1.4",  # prtMarkerLifeCount
        "1.3.6.1.2.1.43.11.1.1.4",  # prtMarkerSuppliesClass
        "1.3.6.1.2.1.43.11.1.1.5",  # prtMarkerSuppliesType
        "1.3.6.1.2.1.43.11.1.1.6",  # prtMarkerSuppliesDescription
        "1.3.6.1.2.1.43.11.1.1.8",  # prtMarkerSuppliesMaxCapacity
        "1.3.6.1.2.1.43.11.1.1.9",  # prtMarkerSuppliesLevel
        "1.3.6.1.2.1.43.12.1.1.4",  # prtMarkerColorantValue
    )
]
OWN = (
    "1.3.6.1.2.1.1.1.0|4|Synthetic Laser 9000\n"
    "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.11.2.3.9.1\n"
    "1.3.6.1.2.1.1.3.0|67|4242\n"
    "1.3.6.1.2.1.43.10.2.1.4.1.1|65|4294967295\n"
    "1.3.6.1.2.1.43.11.1.1.6.1.1|4x|426c61636b00ff\n"
    "1.3.6.1.2.1.43.11.1.1.6.1.2|4|Cyan\n"
    "1.3.6.1.2.1.43.11.1.1.9.1.1|2|-3\n"
    "1.3.6.1.2.1.43.11.1.1.9.1.2|2|-2\n"
    "1.3.6.1.2.1.43.12.1.1.4.1.1|4|black\n"
    "1.3.6.1.2.1.43.12.1.1.4.1.2|4|cyan\n"
)


def _expected_rows(recording: dict[Oid, Value], column: Oid) -> list[tuple[Oid, Value]]:
    return [(oid, value) for oid, value in recording.items() if is_under(oid, column)]


@pytest.fixture
def own_data(tmp_path: Path) -> Path:
    source = tmp_path / "src" / "synthetic.snmprec"
    source.parent.mkdir()
    source.write_text(OWN)
    copy_recordings([source], tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("version", ["v1", "v2c"])
async def test_get_and_walk_equal_the_synthetic_recording(
    own_data: Path, snmpsim_factory: SnmpSimFactory, version: str
) -> None:
    sim = snmpsim_factory(own_data, address="127.0.2.1")
    recording = load_varbinds(OWN)
    credential = Credential(name="lab", version=version, community="synthetic")
    settings = SnmpSettings(port=sim.port, timeout=2, retries=1)
    missing = parse_oid("1.3.6.1.2.1.43.5.1.1.17.1")
    async with SnmpTransport(settings) as transport:
        session = transport.session("127.0.2.1", credential)
        got = await session.get([*SCALARS, missing])
        result = await session.walk(COLUMNS)
    assert got == {oid: recording[oid] for oid in SCALARS if oid in recording}
    assert result.failed == {}
    assert result.rows == {column: _expected_rows(recording, column) for column in COLUMNS}
    assert got[SCALARS[0]] == b"Synthetic Laser 9000"
    assert result.rows[COLUMNS[3]] == [(COLUMNS[3] + (1, 1), 4294967295)]
    assert result.rows[COLUMNS[6]][0] == (COLUMNS[6] + (1, 1), b"Black\x00\xff")
    assert result.rows[COLUMNS[8]] == [(COLUMNS[8] + (1, 1), -3), (COLUMNS[8] + (1, 2), -2)]


@pytest.fixture
def printer_recordings(shared_recordings: Path) -> list[Path]:
    return sorted(shared_recordings.glob("*.snmprec"))


@pytest.mark.parametrize("version", ["v1", "v2c"])
async def test_real_printers_read_equal_their_recordings(
    printer_recordings: list[Path], tmp_path: Path, snmpsim_factory: SnmpSimFactory, version: str
) -> None:
    sources = printer_recordings
    communities = copy_recordings(sources, tmp_path / "data")
    sim = snmpsim_factory(tmp_path / "data", address="127.0.2.2")
    settings = SnmpSettings(port=sim.port, timeout=2, retries=1)
    async with SnmpTransport(settings) as transport:
        for source, community in zip(sources, communities, strict=True):
            recording = load_varbinds(source.read_text(errors="surrogateescape"))
            credential = Credential(name=community, version=version, community=community)
            session = transport.session("127.0.2.2", credential)
            got = await session.get(SCALARS)
            result = await session.walk(COLUMNS)
            assert got == {oid: recording[oid] for oid in SCALARS if oid in recording}, community
            assert result.failed == {}, community
            expected = {column: _expected_rows(recording, column) for column in COLUMNS}
            assert result.rows == expected, community
    if version == "v2c":
        # a full read (GET of the scalars + one side-by-side walk) stays within budget
        assert transport.requests_sent <= 8 * len(sources)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A bound UDP socket that never answers (a device that drops SNMP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.2.3", 0))
        yield int(sock.getsockname()[1])


async def test_silent_device_raises_timeout_after_timeout_times_tries() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.2.3", 0))
        sink.setblocking(False)
        settings = SnmpSettings(port=int(sink.getsockname()[1]), timeout=0.3, retries=2)
        credential = Credential(name="lab", version="v2c", community="public")
        async with SnmpTransport(settings) as transport:
            session = transport.session("127.0.2.3", credential)
            started = time.monotonic()
            with pytest.raises(SnmpTimeout) as caught:
                await session.get(SCALARS)
            elapsed = time.monotonic() - started
            sent = _drain(sink)
            with pytest.raises(SnmpTimeout):
                await session.walk(COLUMNS)  # never answered at all: raise, not an empty result
    # one retry policy for every v1/v2c request: attempt n waits 0.3 s x 1.5**n; the
    # number of tries is counted at the device, the time only bounded from below (a
    # loaded machine may wake the waiter late, never early)
    assert sent == 3
    waited = 0.3 * (1 + RETRY_BACKOFF + RETRY_BACKOFF**2)
    assert elapsed >= waited - 0.05
    assert caught.value.address == "127.0.2.3"
    assert "127.0.2.3" in str(caught.value)
    assert transport.timeouts == 2
    assert "public" not in str(caught.value)


def _drain(sink: socket.socket) -> int:
    """Datagrams waiting on a non-blocking socket, read and counted."""
    count = 0
    while True:
        try:
            sink.recv(65535)
        except BlockingIOError:
            return count
        count += 1


async def test_deadline_cancellation_keeps_the_transport_usable(
    silent_port: int, own_data: Path, snmpsim_factory: SnmpSimFactory
) -> None:
    sim = snmpsim_factory(own_data, address="127.0.2.4")
    credential = Credential(name="lab", version="v2c", community="synthetic")
    async with SnmpTransport(SnmpSettings(port=silent_port, timeout=5, retries=3)) as transport:
        silent = transport.session("127.0.2.3", credential)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await silent.walk(COLUMNS)
        alive = transport.session("127.0.2.4", credential, settings=SnmpSettings(port=sim.port))
        assert await alive.get(SCALARS[:1]) == {SCALARS[0]: b"Synthetic Laser 9000"}
    with pytest.raises(RuntimeError, match="closed"):
        transport.session("127.0.2.4", credential)


def test_receive_buffer_is_raised_as_far_as_the_kernel_allows() -> None:
    limit = int(Path("/proc/sys/net/core/rmem_max").read_text())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        default = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        granted = raise_receive_buffer(sock)
    assert granted >= min(RECEIVE_BUFFER, limit)
    assert granted > default

"""SnmpTransport over SNMPv3 (pysnmp v3arch engine) against snmpsim with USM users.

snmpsim scopes every option to the engine that precedes it, and the shared
fixture puts the endpoint before any ``--v3-engine-id``: users are therefore
passed through ``extra_args`` *without* an engine id, so they land on the same
(implicit) engine as the endpoint. The v3 context name selects the recording.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from collectors.credentials import AuthProtocol, Credential, PrivProtocol, SnmpSettings
from collectors.errors import SnmpAuthError, SnmpTimeout
from collectors.transport import SnmpTransport
from mibs.snmprec import load_varbinds
from mibs.values import Oid, Value, is_under, parse_oid
from tests.support.snmpsim import SnmpSim, SnmpSimFactory, copy_recordings

pytestmark = pytest.mark.integration

RECORDING = "librenms__ricoh_mpc3002"
SYS_OBJECT_ID = parse_oid("1.3.6.1.2.1.1.2.0")
SERIAL = parse_oid("1.3.6.1.2.1.43.5.1.1.17.1")
SUPPLIES = [parse_oid(f"1.3.6.1.2.1.43.11.1.1.{c}") for c in (5, 6, 8, 9)]

# (user, auth protocol, auth key, priv protocol or None, priv key or None)
USERS: list[tuple[str, AuthProtocol | None, str | None, PrivProtocol | None, str | None]] = [
    ("sha256aes", "SHA256", "authpass-256", "AES", "privpass-aes"),
    ("shades", "SHA", "authpass-sha", "DES", "privpass-des"),
    ("md5aes", "MD5", "authpass-md5", "AES", "privpass-md5"),
    ("sha512aes256", "SHA512", "authpass-512", "AES256", "privpass-256"),
    ("sha224aes192", "SHA224", "authpass-224", "AES192", "privpass-192"),
    ("sha384auth", "SHA384", "authpass-384", None, None),  # authNoPriv
    ("noauth", None, None, None, None),  # noAuthNoPriv
]


def _user_args() -> tuple[str, ...]:
    args: list[str] = []
    for user, auth_proto, auth_key, priv_proto, priv_key in USERS:
        args.append(f"--v3-user={user}")
        if auth_proto is not None:
            args += [f"--v3-auth-key={auth_key}", f"--v3-auth-proto={auth_proto}"]
        if priv_proto is not None:
            args += [f"--v3-priv-key={priv_key}", f"--v3-priv-proto={priv_proto}"]
    return tuple(args)


def _credential(
    user: str,
    auth_proto: AuthProtocol | None,
    auth_key: str | None,
    priv_proto: PrivProtocol | None,
    priv_key: str | None,
    *,
    name: str = "printers-v3",
    context: str = RECORDING,
) -> Credential:
    return Credential.model_validate(
        {
            "name": name,
            "version": "v3",
            "username": user,
            "auth_protocol": auth_proto,
            "auth_key": auth_key,
            "priv_protocol": priv_proto,
            "priv_key": priv_key,
            "context_name": context,
        }
    )


@pytest.fixture
def v3_sim(shared_recordings: Path, tmp_path: Path, snmpsim_factory: SnmpSimFactory) -> SnmpSim:
    copy_recordings([shared_recordings / f"{RECORDING}.snmprec"], tmp_path / "data")
    return snmpsim_factory(tmp_path / "data", address="127.0.2.10", extra_args=_user_args())


@pytest.fixture
def recording(shared_recordings: Path) -> dict[Oid, Value]:
    return load_varbinds((shared_recordings / f"{RECORDING}.snmprec").read_text())


async def test_every_auth_and_priv_protocol_reads_the_recording(
    v3_sim: SnmpSim, recording: dict[Oid, Value]
) -> None:
    settings = SnmpSettings(port=v3_sim.port, timeout=2, retries=1)
    async with SnmpTransport(settings) as transport:
        for user in USERS:
            session = transport.session("127.0.2.10", _credential(*user))
            got = await session.get([SYS_OBJECT_ID, SERIAL])
            result = await session.walk(SUPPLIES)
            assert got == {
                oid: recording[oid] for oid in (SYS_OBJECT_ID, SERIAL) if oid in recording
            }
            assert got[SYS_OBJECT_ID] == (1, 3, 6, 1, 4, 1, 367, 1, 1), user[0]
            assert result.failed == {}, user[0]
            for column in SUPPLIES:
                expected = [
                    (oid, value) for oid, value in recording.items() if is_under(oid, column)
                ]
                assert result.rows[column] == expected, (user[0], column)
            assert len(result.rows[SUPPLIES[1]]) == 5
        # a GET plus one GETBULK over four columns per user: the engine discovery is not a request
        assert transport.requests_sent <= 3 * len(USERS)


@pytest.mark.parametrize(
    ("wrong", "reason"),
    [
        ({"auth_key": "not-the-auth-key"}, "wrongDigest"),
        ({"username": "nobody"}, "unknown"),
        ({"auth_protocol": "MD5"}, "wrongDigest"),
    ],
)
async def test_wrong_credentials_raise_auth_error_naming_target_and_profile(
    v3_sim: SnmpSim, wrong: dict[str, str], reason: str
) -> None:
    good = _credential(*USERS[0]).model_dump()
    good.update(wrong)
    credential = Credential.model_validate(good)
    settings = SnmpSettings(port=v3_sim.port, timeout=1, retries=0)
    async with SnmpTransport(settings) as transport:
        with pytest.raises(SnmpAuthError) as caught:
            await transport.session("127.0.2.10", credential).get([SYS_OBJECT_ID])
    message = str(caught.value)
    assert caught.value.address == "127.0.2.10"
    assert "127.0.2.10" in message
    assert "'printers-v3'" in message
    assert reason in message
    for secret in ("not-the-auth-key", "authpass-256", "privpass-aes"):
        assert secret not in message


async def test_wrong_privacy_key_is_an_auth_error_and_the_right_one_then_works(
    v3_sim: SnmpSim,
) -> None:
    user, auth_proto, auth_key, priv_proto, priv_key = USERS[0]
    credential = _credential(user, auth_proto, auth_key, priv_proto, "wrong-priv-key")
    settings = SnmpSettings(port=v3_sim.port, timeout=0.5, retries=0)
    async with SnmpTransport(settings) as transport:
        with pytest.raises(SnmpAuthError, match="decryptionError") as caught:
            await transport.session("127.0.2.10", credential).get([SYS_OBJECT_ID])
        fixed = _credential(user, auth_proto, auth_key, priv_proto, priv_key)
        got = await transport.session("127.0.2.10", fixed).get([SYS_OBJECT_ID])
    assert "127.0.2.10" in str(caught.value)
    assert "wrong-priv-key" not in str(caught.value)
    assert got == {SYS_OBJECT_ID: (1, 3, 6, 1, 4, 1, 367, 1, 1)}


async def test_unknown_context_is_dropped_silently_and_times_out(v3_sim: SnmpSim) -> None:
    credential = _credential(*USERS[0], context="no-such-recording")
    settings = SnmpSettings(port=v3_sim.port, timeout=0.4, retries=0)
    async with SnmpTransport(settings) as transport:
        with pytest.raises(SnmpTimeout, match=r"127\.0\.2\.10.*'printers-v3'"):
            await transport.session("127.0.2.10", credential).get([SYS_OBJECT_ID])
        assert transport.timeouts == 1


async def test_cancelled_v3_request_leaves_the_engine_usable(v3_sim: SnmpSim) -> None:
    lost = _credential(*USERS[0], context="no-such-recording")
    settings = SnmpSettings(port=v3_sim.port, timeout=5, retries=2)
    async with SnmpTransport(settings) as transport:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await transport.session("127.0.2.10", lost).walk(SUPPLIES)
        session = transport.session("127.0.2.10", _credential(*USERS[0]))
        assert await session.get([SYS_OBJECT_ID]) == {SYS_OBJECT_ID: (1, 3, 6, 1, 4, 1, 367, 1, 1)}


def _ipv6_loopback_port() -> int | None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
            return int(sock.getsockname()[1])
    except OSError:
        return None


async def test_v3_over_ipv6(
    shared_recordings: Path, tmp_path: Path, snmpsim_factory: SnmpSimFactory
) -> None:
    port = _ipv6_loopback_port()
    if port is None:
        pytest.skip("no IPv6 loopback here")
    copy_recordings([shared_recordings / f"{RECORDING}.snmprec"], tmp_path / "data")
    extra = (*_user_args(), f"--agent-udpv6-endpoint=[::1]:{port}")
    snmpsim_factory(tmp_path / "data", address="127.0.2.11", extra_args=extra)
    async with SnmpTransport(SnmpSettings(port=port, timeout=2, retries=1)) as transport:
        session = transport.session("::1", _credential(*USERS[0]))
        got = await session.get([SYS_OBJECT_ID])
    assert got == {SYS_OBJECT_ID: (1, 3, 6, 1, 4, 1, 367, 1, 1)}


async def test_closing_the_transport_fails_v3_requests_in_flight(v3_sim: SnmpSim) -> None:
    lost = _credential(*USERS[0], context="no-such-recording")
    async with SnmpTransport(SnmpSettings(port=v3_sim.port, timeout=5, retries=0)) as transport:
        request = asyncio.create_task(transport.session("127.0.2.10", lost).get([SYS_OBJECT_ID]))
        await asyncio.sleep(0.3)
    with pytest.raises(RuntimeError, match="closed with a request in flight"):
        async with asyncio.timeout(1):
            await request

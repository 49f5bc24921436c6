"""Debian Mosquitto as a real MQTT broker for integration tests.

``mosquitto_factory(tls=False|True)`` writes a config to a private directory,
starts ``/usr/sbin/mosquitto`` on ``127.0.0.1`` with a free port and waits until
it accepts connections. ``broker.stop()`` / ``broker.start()`` restart the same
broker on the same port (outage tests; persistence keeps sessions and queued
messages across a SIGTERM). With ``tls=True`` a test CA, a server certificate
(SAN 127.0.0.1, localhost) and a client certificate are generated with
``cryptography``; ``require_certificate true`` makes it mTLS. ``other_ca`` is a
second CA with its own client certificate, which the broker must refuse.

Mosquitto drops root to the ``mosquitto`` user, so the directory lives outside
pytest's 0700 tmp tree and is handed to that user. Configuration, start, readiness
and stop are the demo launcher's (:mod:`agent.demo.broker`); this fixture adds
the test PKI, passwords, persistence and restarts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.demo import broker as launcher
from agent.demo import process as processes

MOSQUITTO = Path("/usr/sbin/mosquitto")
free_tcp_port = launcher.free_tcp_port


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TestPki:
    ca: CertPair
    server: CertPair
    client: CertPair
    other_ca: CertPair
    other_client: CertPair


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _make_ca(directory: Path, name: str) -> tuple[CertPair, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pair.key)
    return pair, key


def _issue(
    directory: Path,
    name: str,
    ca_pair: CertPair,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    server: bool,
) -> CertPair:
    ca_cert = x509.load_pem_x509_certificate(ca_pair.cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pair.key)
    return pair


def make_test_pki(directory: Path) -> TestPki:
    """A CA with a server and a client certificate, and a second CA with its own client."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _make_ca(directory, "test-ca")
    other_ca, other_key = _make_ca(directory, "other-ca")
    return TestPki(
        ca=ca,
        server=_issue(directory, "broker", ca, ca_key, server=True),
        client=_issue(directory, "agent-client", ca, ca_key, server=False),
        other_ca=other_ca,
        other_client=_issue(directory, "intruder-client", other_ca, other_key, server=False),
    )


@dataclass
class Mosquitto:
    """One broker process; ``stop()``/``start()`` reuse the same port, config and data."""

    port: int
    directory: Path
    config: Path
    pki: TestPki | None
    process: subprocess.Popen[bytes] | None = None

    host = "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, ready_timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("mosquitto is already running")
        self.process = launcher.spawn_mosquitto(MOSQUITTO, self.config, self.log_path)
        if launcher.wait_for_broker(self.process, self.port, ready_timeout):
            return
        if self.process.poll() is not None:
            raise RuntimeError(f"mosquitto exited ({self.process.returncode}):\n{self.log()}")
        self.stop()
        raise RuntimeError(f"mosquitto on port {self.port} not ready:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file), then wait."""
        processes.stop(self.process, grace=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _config_text(
    port: int, directory: Path, pki: TestPki | None, require_cert: bool, passwords: bool
) -> str:
    extra: list[str] = []
    if passwords:
        extra.append(f"password_file {directory / 'passwords'}")
    if pki is not None:
        extra += [
            f"cafile {pki.ca.cert}",
            f"certfile {pki.server.cert}",
            f"keyfile {pki.server.key}",
            f"require_certificate {'true' if require_cert else 'false'}",
        ]
        if require_cert:
            extra.append("use_identity_as_username true")
    return launcher.config_text(
        port, directory, persistence=True, anonymous=not passwords, verbose=True, extra=extra
    )


def create_mosquitto(
    *,
    tls: bool = False,
    require_certificate: bool = True,
    users: dict[str, str] | None = None,
) -> Mosquitto:
    """``users``: username -> password; anonymous clients are then refused."""
    directory = Path(tempfile.mkdtemp(prefix="fleet-mosquitto-"))
    directory.chmod(0o755)
    pki = make_test_pki(directory / "pki") if tls else None
    port = free_tcp_port()
    config = directory / "mosquitto.conf"
    config.write_text(_config_text(port, directory, pki, require_certificate, bool(users)))
    for index, (user, password) in enumerate((users or {}).items()):
        subprocess.run(
            [
                "mosquitto_passwd",
                "-b",
                *(["-c"] if index == 0 else []),
                "passwords",
                user,
                password,
            ],
            cwd=directory,
            check=True,
            capture_output=True,
        )
    launcher.hand_to_mosquitto_user(directory)
    broker = Mosquitto(port=port, directory=directory, config=config, pki=pki)
    broker.start()
    return broker


class MosquittoFactory(Protocol):
    def __call__(
        self,
        *,
        tls: bool = False,
        require_certificate: bool = True,
        users: dict[str, str] | None = None,
    ) -> Mosquitto: ...


@pytest.fixture
def mosquitto_factory() -> Iterator[MosquittoFactory]:
    """Start Mosquitto brokers for one test; all are stopped and removed afterwards."""
    if not MOSQUITTO.exists():
        pytest.fail(f"{MOSQUITTO} is missing: apt-get install mosquitto")
    started: list[Mosquitto] = []

    def factory(
        *,
        tls: bool = False,
        require_certificate: bool = True,
        users: dict[str, str] | None = None,
    ) -> Mosquitto:
        broker = create_mosquitto(tls=tls, require_certificate=require_certificate, users=users)
        started.append(broker)
        return broker

    yield factory
    for broker in started:
        broker.stop()
        shutil.rmtree(broker.directory, ignore_errors=True)


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """A plain-TCP broker on 127.0.0.1 (anonymous, high queue limits, persistence on)."""
    return mosquitto_factory()

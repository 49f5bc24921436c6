"""A throw-away local PostgreSQL for the consumer's PostgreSQL store tests.

Session-scoped: ``initdb`` into a private directory, ``pg_ctl start`` on
127.0.0.1 with a free port (as user ``postgres`` when run as root, since
PostgreSQL refuses root). Each test gets its own database from
``postgres_dsn``. Skips when PostgreSQL or psycopg is not installed (Debian:
``apt-get install postgresql``; Python: ``pip install '.[postgres]'``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import free_tcp_port


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PostgresUnavailable(RuntimeError):
    """PostgreSQL (or psycopg) is not installed here."""


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A throw-away server on 127.0.0.1: DSN of its ``postgres`` database (superuser, trust
    auth on loopback), stopped and deleted on exit. The benchmarks use it too."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    directory = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
    data = directory / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(directory, user.pw_uid, user.pw_gid)
    port = free_tcp_port()
    log = directory / "postgres.log"
    try:
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
                + ["--no-sync", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log)]
                + ["-w", "-t", "60", "start"]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        message = exc.stderr.decode(errors="replace")
        raise RuntimeError(f"cannot start PostgreSQL: {message}") from exc
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """DSN of the server's ``postgres`` database (superuser, trust auth on loopback)."""
    pytest.importorskip("psycopg")
    try:
        with local_postgres() as dsn:
            yield dsn
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def postgres_dsn(postgres_server: str) -> str:
    """A fresh, empty database for one test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"

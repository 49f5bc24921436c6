"""Unit tests make no DNS queries: a host name other than ``localhost`` does not resolve.

Tests of "unknown host" errors use names under ``.invalid``; without this guard
the system resolver would send each one to the site's DNS server, and unit
tests must not talk to anything beyond this machine.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from hypothesis import settings

# No wall-clock deadline per example: on a loaded shared machine the first example
# (imports, regex compilation) can take several hundred milliseconds, and a test
# must not depend on the machine's speed.
settings.register_profile("fleet-agent", deadline=None)
settings.load_profile("fleet-agent")

_real_getaddrinfo = socket.getaddrinfo


def _offline_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or name == "localhost":
        return _real_getaddrinfo("127.0.0.1" if name else host, *args, **kwargs)
    try:
        ipaddress.ip_address(str(name).strip("[]").split("%")[0])
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: not resolved in unit tests") from None
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _offline_getaddrinfo)

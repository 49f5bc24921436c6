"""The ``hostile_factory`` fixture: fake agents that misbehave on command, closed after the test.

``responder = await hostile_factory(varbinds, community="public", **knobs)`` starts a
:class:`collectors.fake_agent.FakeAgent` (the agent shipped with the collector; see
its module for the values it can send and the knobs) on a free port of ``address``
in the test's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import pytest

from collectors.fake_agent import FakeAgent, FakeValue, Typed, start_fake_agent
from collectors.snmp_message import Special

__all__ = [
    "COUNTER32",
    "COUNTER64",
    "GAUGE32",
    "TIMETICKS",
    "HostileFactory",
    "HostileResponder",
    "HostileValue",
    "Special",
    "Typed",
    "hostile_factory",
]

Oid = tuple[int, ...]
HostileResponder = FakeAgent
HostileValue = FakeValue
COUNTER32, GAUGE32, TIMETICKS, COUNTER64 = 0x41, 0x42, 0x43, 0x46


class HostileFactory(Protocol):
    async def __call__(
        self,
        varbinds: Mapping[Oid, HostileValue],
        *,
        address: str = "127.0.0.1",
        community: str = "public",
        **knobs: Any,
    ) -> HostileResponder: ...


@pytest.fixture
async def hostile_factory() -> AsyncIterator[HostileFactory]:
    """Start fake agents on free UDP ports in the test's loop; closed afterwards."""
    started: list[FakeAgent] = []

    async def factory(
        varbinds: Mapping[Oid, HostileValue],
        *,
        address: str = "127.0.0.1",
        community: str = "public",
        **knobs: Any,
    ) -> FakeAgent:
        agent = await start_fake_agent(varbinds, address=address, community=community, **knobs)
        started.append(agent)
        return agent

    yield factory
    for agent in started:
        agent.close()

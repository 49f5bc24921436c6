"""The one device reader (docs/reading.md): credentials in order, a plan, a deadline, one outcome.

Scan, discovery (with the identity plan) and the daemon all read through :func:`read_device`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpAuthError, SnmpError, SnmpPortClosed, SnmpTimeout
from collectors.udp import Pace
from collectors.walk import RecordedSession, Session
from mibs.decode import decode_identity_read, decode_read
from mibs.models import PrinterRead, Problem
from mibs.plan import PlanItem, ReadPlan
from mibs.reasons import Reason
from mibs.values import Oid, Value, format_oid, is_under

if TYPE_CHECKING:
    from collectors.transport import SnmpTransport

Clock = Callable[[], datetime]

_log = structlog.get_logger(__name__)
utc_now: Clock = partial(datetime.now, UTC)


class ReadOutcome(BaseModel):
    """What reading one device came to: the four kinds and their reasons are in docs/reading.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    kind: Literal["read", "silent", "refused", "failed"]
    read: PrinterRead | None = None
    profile: str | None = None  # the credential profile that worked
    reason: Reason | None = None  # why there is no read
    detail: str = ""
    refusals: tuple[str, ...] = ()  # 'profile: why' for each profile the device refused


async def read_device(
    address: str,
    credentials: Sequence[Credential],
    plan: ReadPlan,
    deadline: float,
    *,
    sessions: SnmpTransport,
    remembered: str | None = None,
    settings: SnmpSettings | None = None,
    pace: Pace | None = None,
    clock: Clock = utc_now,
) -> ReadOutcome:
    """Read ``address`` with the first profile that gets an answer (never raises for the device).

    ``settings`` override the transport's; with ``pace`` every packet awaits it first.
    """
    refusals: tuple[str, ...] = ()
    failure: SnmpError | None = None
    outcome = partial(ReadOutcome, address=address)
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline
    # the profiles in configured order, the remembered one first (sorted() is stable)
    for credential in sorted(credentials, key=lambda c: c.name != remembered):
        left = ends - loop.time()
        if left <= 0:
            break
        session = sessions.session(address, credential, settings=settings, pace=pace)
        try:
            read = await read_session(session, plan, deadline=left, clock=clock)
        except SnmpPortClosed as exc:
            _log.debug("read.port_closed", address=address)
            return outcome(kind="silent", reason="port_closed", detail=str(exc))
        except SnmpAuthError as exc:
            refusals += (f"{credential.name}: {exc}",)
            _log.debug("read.refused", address=address, profile=credential.name)
        except SnmpTimeout:
            pass  # silent, or a v1/v2c community the device ignores
        except SnmpError as exc:
            failure = exc  # an answer, but unusable: another profile may do better
        else:
            return outcome(kind="read", read=read, profile=credential.name, refusals=refusals)
    if refusals:
        detail = "; ".join(refusals)
        return outcome(kind="refused", reason="auth_failed", detail=detail, refusals=refusals)
    if failure is not None:
        return outcome(kind="failed", reason=failure.reason, detail=str(failure))
    return outcome(kind="silent", reason="timeout")


@dataclass
class _Read:
    """One read over one session: what it collected, and what the request under way still owes."""

    session: Session | RecordedSession
    varbinds: dict[Oid, Value] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    owed: list[PlanItem] = field(default_factory=list)  # due if the device falls silent now
    answered: bool = False

    def fail(self, items: Sequence[PlanItem], reason: Reason, detail: str | None = None) -> None:
        for item in items:
            self.problems.append(
                Problem(field=item.name, oid=format_oid(item.oid), reason=reason, detail=detail)
            )

    async def run(self, plan: ReadPlan) -> None:
        for stage in plan.stages:
            step = stage(self.varbinds)
            self.owed = list(dict.fromkeys(step.scalars + step.columns))
            if step.scalars:
                await self._get(step.scalars)
            self.owed = list(dict.fromkeys(step.columns))
            if step.columns:
                await self._walk(step.columns)

    async def _get(self, items: Sequence[PlanItem]) -> None:
        try:
            answer = await self.session.get([item.oid for item in items])
        except SnmpError as exc:
            if isinstance(exc, SnmpTimeout | SnmpAuthError) or not self.answered:
                raise  # silent/refused: read_session decides; failed first request: next profile
            self.fail(items, exc.reason, str(exc))
            return
        self.answered = True
        wanted = {item.oid for item in items}
        self.varbinds.update((oid, value) for oid, value in answer.items() if oid in wanted)

    async def _walk(self, items: Sequence[PlanItem]) -> None:
        by_prefix = {item.oid: item for item in items}
        try:
            result = await self.session.walk(list(by_prefix))
        except SnmpTimeout:
            raise  # read_session marks everything still owed
        except SnmpError as exc:
            self.fail(items, exc.reason, str(exc))
            return
        self.answered = True
        for prefix, rows in result.rows.items():
            self.varbinds.update((oid, value) for oid, value in rows if is_under(oid, prefix))
        for prefix, reason in result.failed.items():
            if prefix in by_prefix:
                self.fail([by_prefix[prefix]], reason)


async def read_session(
    session: Session | RecordedSession, plan: ReadPlan, *, deadline: float, clock: Clock = utc_now
) -> PrinterRead:
    """Execute ``plan`` over one session and decode what the device answered.

    Raises :class:`SnmpTimeout` (never answered, within ``deadline`` s or at all),
    :class:`SnmpAuthError` (refused), or another :class:`SnmpError` (the very first
    request failed); a device that answered keeps its read, with problems for the rest.
    """
    collected_at = clock()
    state = _Read(session)
    try:
        async with asyncio.timeout(deadline):
            await state.run(plan)
    except TimeoutError:
        if not state.answered:
            message = f"no answer within the read deadline of {deadline:g} s"
            raise SnmpTimeout(message, address=session.address) from None
        state.fail(state.owed, "deadline", f"read deadline of {deadline:g} s reached")
    except (SnmpTimeout, SnmpAuthError) as exc:
        if not state.answered:
            raise  # never answered: the caller counts it silent or tries another credential
        state.fail(state.owed, exc.reason, str(exc))
    decode = decode_read if plan.kind == "full" else decode_identity_read
    read = decode(
        session.address, collected_at, state.varbinds, transport_problems=tuple(state.problems)
    )
    _log.debug(
        "poll.completed",
        address=session.address,
        varbinds=len(state.varbinds),
        problems=len(read.problems),
    )
    return read

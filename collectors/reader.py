"""The one device reader: credentials in order, a read plan, a deadline, one typed outcome.

    outcome = await read_device(address, credentials, full_read_plan(), deadline, sessions=t)

Scan, discovery (with :func:`mibs.plan.identity_read_plan`) and the daemon all
read a device through :func:`read_device`, so the credential order, the plan
and the words for what went wrong exist once:

* **Credentials**: every configured profile is tried in order, the one that
  worked last time (``remembered``) first. A profile that gets no answer
  (silent, or a v1/v2c community the device ignores) or is refused (an SNMPv3
  user, key or privacy the device rejects) moves on to the next; ICMP
  port-unreachable ends the device at once (no agent listens, no profile helps).
* **Plan**: the stages of a :class:`mibs.plan.ReadPlan`, each a GET of its
  scalars and one side-by-side walk of its columns, the next stage chosen from
  what the earlier ones answered (the maker's private OIDs by sysObjectID).
* **Deadline**: a budget in seconds for the whole device, every profile
  included. A device that answered and then fell silent, or ran into the
  deadline, still yields a read, with a :class:`~mibs.models.Problem`
  (``timeout`` / ``deadline``) on every field still owed.
* **Outcome**: :class:`ReadOutcome`, one of ``read``, ``silent``, ``refused``
  or ``failed``, with a :data:`mibs.reasons.Reason` for the last three.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field

from collectors.base import SnmpSession
from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpAuthError, SnmpError, SnmpPortClosed, SnmpTimeout
from collectors.udp import Pace
from mibs.decode import decode_identity_read, decode_read
from mibs.models import PrinterRead, Problem
from mibs.plan import PlanItem, ReadPlan
from mibs.reasons import Reason
from mibs.values import Oid, Value, format_oid, is_under

Clock = Callable[[], datetime]
OutcomeKind = Literal["read", "silent", "refused", "failed"]

_log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SessionSource(Protocol):
    """Opens a session to (address, credential): :class:`collectors.transport.SnmpTransport`."""

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> SnmpSession: ...


class ReadOutcome(BaseModel):
    """What reading one device came to.

    ``read``: the device answered with ``profile`` (``read`` holds the read, whose
    ``problems`` name what it could not give). ``silent``: no profile got an answer
    (``timeout``) or no agent listens (``port_closed``). ``refused``: the device
    rejected every profile that reached it (``auth_failed``). ``failed``: it
    answered, but nothing usable (``protocol_error``, ``unresolvable``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    kind: OutcomeKind
    read: PrinterRead | None = None
    profile: str | None = Field(default=None, description="The credential profile that worked.")
    reason: Reason | None = Field(default=None, description="Why there is no read.")
    detail: str = ""
    refusals: tuple[str, ...] = Field(
        default=(), description="'profile: why' for each profile the device refused."
    )


def ordered(credentials: Sequence[Credential], remembered: str | None) -> list[Credential]:
    """The profiles in configured order, the remembered one first."""
    first = [c for c in credentials if c.name == remembered]
    return first + [c for c in credentials if c.name != remembered]


async def read_device(
    address: str,
    credentials: Sequence[Credential],
    plan: ReadPlan,
    deadline: float,
    *,
    sessions: SessionSource,
    remembered: str | None = None,
    settings: SnmpSettings | None = None,
    pace: Pace | None = None,
    clock: Clock = utc_now,
) -> ReadOutcome:
    """Read ``address`` with the first profile that gets an answer (never raises for the device).

    ``settings`` override the transport's for this read; with ``pace`` every packet
    awaits it first (the discovery sweep's budget).
    """
    refusals: list[str] = []
    failure: SnmpError | None = None
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline
    for credential in ordered(credentials, remembered):
        left = ends - loop.time()
        if left <= 0:
            break
        session = sessions.session(address, credential, settings=settings, pace=pace)
        try:
            read = await read_session(session, plan, deadline=left, clock=clock)
        except SnmpPortClosed as exc:
            _log.debug("read.port_closed", address=address)
            return ReadOutcome(
                address=address, kind="silent", reason="port_closed", detail=str(exc)
            )
        except SnmpAuthError as exc:
            refusals.append(f"{credential.name}: {exc}")
            _log.debug("read.refused", address=address, profile=credential.name)
            continue
        except SnmpTimeout:
            continue  # silent, or a v1/v2c community the device ignores
        except SnmpError as exc:
            failure = exc  # an answer, but unusable: another profile may do better
            continue
        return ReadOutcome(
            address=address,
            kind="read",
            read=read,
            profile=credential.name,
            refusals=tuple(refusals),
        )
    if refusals:
        detail = "; ".join(refusals)
        return ReadOutcome(
            address=address,
            kind="refused",
            reason="auth_failed",
            detail=detail,
            refusals=tuple(refusals),
        )
    if failure is not None:
        return ReadOutcome(
            address=address, kind="failed", reason=failure.reason, detail=str(failure)
        )
    return ReadOutcome(address=address, kind="silent", reason="timeout")


@dataclass
class _ReadState:
    """What one read has collected so far, and which plan items are still owed."""

    varbinds: dict[Oid, Value] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    pending: dict[PlanItem, None] = field(default_factory=dict)  # ordered set
    answered: bool = False

    def owe(self, items: Sequence[PlanItem]) -> None:
        self.pending.update(dict.fromkeys(items))

    def settle(self, items: Sequence[PlanItem]) -> None:
        for item in items:
            self.pending.pop(item, None)

    def fail(self, items: Sequence[PlanItem], reason: Reason, detail: str | None = None) -> None:
        for item in items:
            self.problems.append(
                Problem(field=item.name, oid=format_oid(item.oid), reason=reason, detail=detail)
            )
        self.settle(items)


async def _get(session: SnmpSession, items: Sequence[PlanItem], state: _ReadState) -> None:
    if not items:
        return
    try:
        answer = await session.get([item.oid for item in items])
    except (SnmpTimeout, SnmpAuthError):
        raise  # read_session decides: never answered, or fell silent midway
    except SnmpError as exc:
        if not state.answered:
            raise  # the very first request failed: read_device may try another profile
        state.fail(items, exc.reason, str(exc))
        return
    state.answered = True
    wanted = {item.oid for item in items}
    state.varbinds.update((oid, value) for oid, value in answer.items() if oid in wanted)
    state.settle(items)


async def _walk(session: SnmpSession, items: Sequence[PlanItem], state: _ReadState) -> None:
    if not items:
        return
    by_prefix = {item.oid: item for item in items}
    try:
        result = await session.walk(list(by_prefix))
    except SnmpTimeout:
        raise  # read_session marks everything still owed
    except SnmpError as exc:
        state.fail(items, exc.reason, str(exc))
        return
    state.answered = True
    for prefix, rows in result.rows.items():
        state.varbinds.update((oid, value) for oid, value in rows if is_under(oid, prefix))
    for prefix, reason in result.failed.items():
        failed = by_prefix.get(prefix)
        if failed is not None:
            state.fail([failed], reason)
    state.settle(items)


async def _run(session: SnmpSession, plan: ReadPlan, state: _ReadState) -> None:
    for stage in plan.stages:
        step = stage(state.varbinds)
        if step.empty:
            continue
        state.owe(step.scalars + step.columns)
        await _get(session, step.scalars, state)
        await _walk(session, step.columns, state)


async def read_session(
    session: SnmpSession, plan: ReadPlan, *, deadline: float, clock: Clock = utc_now
) -> PrinterRead:
    """Execute ``plan`` over one session and decode what the device answered.

    Raises :class:`SnmpTimeout` when the device never answered (within
    ``deadline`` seconds or at all), :class:`SnmpAuthError` when the credential
    was refused, and any other :class:`SnmpError` when the very first request
    failed; a device that answered keeps its read, with problems for the rest.
    """
    collected_at = clock()
    state = _ReadState()
    try:
        async with asyncio.timeout(deadline):
            await _run(session, plan, state)
    except TimeoutError:
        if not state.answered:
            raise SnmpTimeout(
                f"no answer within the read deadline of {deadline:g} s",
                address=session.address,
            ) from None
        state.fail(list(state.pending), "deadline", f"read deadline of {deadline:g} s reached")
    except (SnmpTimeout, SnmpAuthError) as exc:
        if not state.answered:
            raise  # never answered: the caller counts it silent or tries another credential
        state.fail(list(state.pending), exc.reason, str(exc))
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

"""Read one printer: execute the poll plan over an :class:`SnmpSession`, decode the varbinds.

The sequence is fixed and cheap in requests: one GET of the identity scalars
(which doubles as the "is anybody there" probe), one side-by-side walk of the
base plan's columns, then, chosen by sysObjectID, the vendor plan's scalars and
columns. Everything the device answered is handed to
:func:`mibs.decode.decode_read`; what the transport could not get becomes a
:class:`mibs.models.Problem` on the field it would have fed.

Only a device that never answered at all is an exception
(:class:`collectors.errors.SnmpTimeout`, or :class:`SnmpAuthError`), so callers
can count it as silent or try the next credential. A device that falls silent
halfway, or a read that runs into its deadline, still yields a read with
problems for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from collectors.base import SnmpSession
from collectors.errors import SnmpAuthError, SnmpError, SnmpTimeout
from mibs.decode import decode_read
from mibs.models import PrinterRead, Problem
from mibs.plan import PlanItem, PollPlan, base_plan, vendor_plan
from mibs.reasons import Reason
from mibs.values import Oid, Value, format_oid, is_under

Clock = Callable[[], datetime]

SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)

_log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _reason(exc: SnmpError) -> Reason:
    if isinstance(exc, SnmpTimeout):
        return "timeout"
    if isinstance(exc, SnmpAuthError):
        return "auth_failed"
    return "protocol_error"


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
        raise  # read_printer decides: never answered, or fell silent midway
    except SnmpError as exc:
        state.answered = True  # an error-status is an answer
        state.fail(items, _reason(exc), str(exc))
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
        raise  # read_printer marks everything still owed
    except SnmpError as exc:
        state.fail(items, _reason(exc), str(exc))
        return
    for prefix, rows in result.rows.items():
        state.varbinds.update((oid, value) for oid, value in rows if is_under(oid, prefix))
    for prefix, reason in result.failed.items():
        failed = by_prefix.get(prefix)
        if failed is not None:
            state.fail([failed], reason)
    state.settle(items)


async def _run(session: SnmpSession, state: _ReadState) -> None:
    base = base_plan()
    state.owe(base.scalars + base.columns)
    await _get(session, base.scalars, state)
    await _walk(session, base.columns, state)
    sys_object_id = state.varbinds.get(SYS_OBJECT_ID)
    if not isinstance(sys_object_id, tuple):
        return
    extra: PollPlan = vendor_plan(sys_object_id)
    state.owe(extra.scalars + extra.columns)
    await _get(session, extra.scalars, state)
    await _walk(session, extra.columns, state)


async def read_printer(
    session: SnmpSession, *, deadline: float, clock: Clock = utc_now
) -> PrinterRead:
    """Read identity, counters, supplies and status of the device behind ``session``.

    ``deadline`` is the budget in seconds for the whole read. When it runs
    out, or the device falls silent midway, the read keeps what was answered
    and carries a ``Problem`` (reason ``deadline`` or ``timeout``) for every
    plan item still owed. Raises :class:`SnmpTimeout` when the device never
    answered, :class:`SnmpAuthError` when the credential was refused.
    """
    collected_at = clock()
    state = _ReadState()
    try:
        async with asyncio.timeout(deadline):
            await _run(session, state)
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
        state.fail(list(state.pending), _reason(exc), str(exc))
    read = decode_read(
        session.address, collected_at, state.varbinds, transport_problems=tuple(state.problems)
    )
    _log.debug(
        "poll.completed",
        address=session.address,
        varbinds=len(state.varbinds),
        problems=len(read.problems),
    )
    return read

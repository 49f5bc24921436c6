"""Assemble one :class:`~mibs.models.PrinterRead` from everything a poll collected.

Each part (identity, counters, supplies, status) has its own pure decoder.
A device that answers strangely costs a field: decoders record ``Problem``s
and carry on. Should a decoder itself fail on some input (our bug, not the
device's), only that part is lost, but loudly: the exception is logged with
its traceback as ``decode.decoder_error`` (logger ``mibs.decode``, with the
``part``), the read records a Problem with reason ``decoder_error`` naming the
part and the exception, and the rest of the read survives. The daemon counts
those problems in ``fleet_agent_decoder_errors_total``.

This package imports only the standard library and pydantic, so the log line
goes through the standard ``logging`` module; the agent's logging set-up
(``agent.logging``) renders it through structlog like every other event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from mibs.cartridges import with_model_toner
from mibs.counters import CounterResult, decode_counters
from mibs.enterprises import enterprise_of
from mibs.identity import SYS_OBJECT_ID, classify_device, decode_identity, printer_index
from mibs.models import Counters, Identity, PrinterRead, Problem, Status, Supply
from mibs.status import decode_status
from mibs.supplies import decode_supplies
from mibs.values import IndexedVarbinds, Varbinds

T = TypeVar("T")

_log = logging.getLogger("mibs.decode")


def _guarded(part: str, problems: list[Problem], fallback: T, run: Callable[[], T]) -> T:
    try:
        return run()
    except Exception as exc:  # our bug: loud in the log, but it must not cost the whole read
        _log.error("decode.decoder_error", exc_info=True, extra={"part": part})
        problems.append(
            Problem(
                field=part,
                oid=None,
                reason="decoder_error",
                detail=f"{type(exc).__name__}: {exc}"[:500],
            )
        )
        return fallback


def decode_read(
    address: str,
    collected_at: datetime,
    varbinds: Varbinds,
    *,
    transport_problems: Sequence[Problem] = (),
) -> PrinterRead:
    """The typed read of the printer at ``address`` from the varbinds it answered.

    ``transport_problems`` (timeouts, failed columns) come first in
    ``problems``; then identity, counters, supplies and status, in that order.
    """
    problems: list[Problem] = list(transport_problems)
    varbinds = IndexedVarbinds(varbinds)

    no_identity: tuple[Identity, list[Problem]] = (Identity(), [])
    identity, found = _guarded("identity", problems, no_identity, lambda: decode_identity(varbinds))
    problems.extend(found)
    enterprise, index = identity.enterprise, identity.hr_device_index
    if identity == no_identity[0]:
        # identity failed (or the device said nothing): the other parts still
        # need the printer row and the maker to find their rows and quirks.
        index = _guarded(
            "identity.hr_device_index", problems, None, lambda: printer_index(varbinds)
        )
        sys_object_id = varbinds.get(SYS_OBJECT_ID)
        enterprise = enterprise_of(sys_object_id) if isinstance(sys_object_id, tuple) else None

    empty_counters = CounterResult(counters=Counters(), sources={}, problems=[])
    counters = _guarded(
        "counters",
        problems,
        empty_counters,
        lambda: decode_counters(varbinds, enterprise=enterprise, hr_device_index=index),
    )
    problems.extend(counters.problems)

    no_supplies: tuple[list[Supply], list[Problem]] = ([], [])
    supplies, found = _guarded(
        "supplies",
        problems,
        no_supplies,
        lambda: decode_supplies(varbinds, enterprise=enterprise, hr_device_index=index),
    )
    problems.extend(found)
    supplies = with_model_toner(supplies, identity.vendor, identity.model)

    no_status: tuple[Status, list[Problem]] = (Status(), [])
    status, found = _guarded("status", problems, no_status, lambda: decode_status(varbinds, index))
    problems.extend(found)

    return PrinterRead(
        address=address,
        collected_at=collected_at,
        identity=identity,
        counters=counters.counters,
        counter_sources=dict(counters.sources),
        supplies=supplies,
        status=status,
        problems=problems,
    )


def decode_identity_read(
    address: str,
    collected_at: datetime,
    varbinds: Varbinds,
    *,
    transport_problems: Sequence[Problem] = (),
) -> PrinterRead:
    """A read that carries only the identity (discovery's plan): no counters, no supplies.

    ``identity.is_printer`` is :func:`mibs.identity.classify_device`'s verdict,
    which also counts a printer maker's sysObjectID.
    """
    problems: list[Problem] = list(transport_problems)
    varbinds = IndexedVarbinds(varbinds)
    no_identity: tuple[Identity, list[Problem]] = (Identity(), [])
    identity, found = _guarded("identity", problems, no_identity, lambda: decode_identity(varbinds))
    problems.extend(found)
    if classify_device(varbinds) == "printer" and not identity.is_printer:
        identity = identity.model_copy(update={"is_printer": True})
    return PrinterRead(
        address=address,
        collected_at=collected_at,
        identity=identity,
        counters=Counters(),
        problems=problems,
    )

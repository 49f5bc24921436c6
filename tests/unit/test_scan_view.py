"""scan's live output: results released in target order as soon as possible; one header."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from agent.commands.scan import InOrder, ScanOutput, scan_progress
from collectors.errors import SnmpPortClosed, SnmpTimeout
from collectors.snmp_message import PduKind, Response
from collectors.transport import Exchange, TracedRequester, describe_exchange
from mibs.models import Counters, Identity, PrinterRead
from mibs.values import Oid, parse_oid


def test_results_are_released_in_order_as_soon_as_their_turn_comes() -> None:
    released: list[str] = []
    in_order: InOrder[str] = InOrder(released.append)
    in_order.done(2, "c")
    assert released == []  # 0 and 1 still running
    in_order.done(0, "a")
    assert released == ["a"]
    in_order.done(1, None)  # silent: nothing to show, but it no longer holds "c" back
    assert released == ["a", "c"]


def _read(address: str) -> PrinterRead:
    return PrinterRead(
        address=address,
        collected_at=datetime(2026, 11, 30, tzinfo=UTC),
        identity=Identity(vendor="HP", model="LaserJet M130nw", serial="VNCRC48198"),
        counters=Counters(total=15232),
    )


def test_rows_print_one_by_one_under_one_header() -> None:
    stream = io.StringIO()
    rows = ScanOutput(stream)
    rows.row(_read("10.0.0.2"))
    first = stream.getvalue()
    assert "Address" in first
    assert "10.0.0.2" in first
    rows.row(_read("10.0.0.10"))
    rows.finish()
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["Address", "10.0.0.2", "10.0.0.10"]
    assert lines[1].index("15,232") == lines[2].index("15,232")  # columns line up


def test_an_empty_scan_still_prints_the_header() -> None:
    stream = io.StringIO()
    ScanOutput(stream).finish()
    assert stream.getvalue().split()[:2] == ["Address", "Vendor"]


def test_no_progress_display_off_a_terminal() -> None:
    stream = io.StringIO()
    with scan_progress(10, stream) as progress:
        progress.update(5, 1)
        assert progress.console is None
    assert stream.getvalue() == ""


def test_an_exchange_in_one_line() -> None:
    sys_descr, sys_object_id = parse_oid("1.3.6.1.2.1.1.1.0"), parse_oid("1.3.6.1.2.1.1.2.0")
    answered = Exchange(
        address="127.0.0.1:1161",
        version="v2c",
        kind=PduKind.BULK,
        oids=(sys_descr, sys_object_id),
        max_repetitions=10,
        elapsed=0.0031,
        response=Response(varbinds=[(sys_descr, b"HP")] * 20),
    )
    assert describe_exchange(answered) == (
        "127.0.0.1:1161 v2c GETBULK max-repetitions 10 [1.3.6.1.2.1.1.1.0, 1.3.6.1.2.1.1.2.0]"
        " -> 20 varbinds, 3.1 ms"
    )
    silent = Exchange(
        address="10.0.0.7",
        version="v3",
        kind=PduKind.GET,
        oids=(sys_descr,),
        max_repetitions=0,
        elapsed=2.0,
        failure="timeout",
    )
    assert describe_exchange(silent) == (
        "10.0.0.7 v3 GET [1.3.6.1.2.1.1.1.0] -> no answer (timeout), 2000.0 ms"
    )


class _Inner:
    """The requester seam, answering or failing as told."""

    def __init__(self, outcome: Response | BaseException) -> None:
        self.outcome = outcome

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize(
    ("outcome", "failure"),
    [
        (Response(varbinds=[]), None),
        (
            SnmpTimeout(
                "printer.example:1161: no answer to get after 2 attempts",
                address="printer.example:1161",
            ),
            "timeout: no answer to get after 2 attempts",
        ),
        (
            SnmpPortClosed("ICMP port unreachable: no SNMP agent", address="192.0.2.7"),
            "port closed: ICMP port unreachable: no SNMP agent",
        ),
        (asyncio.CancelledError(), "cut short by the read deadline"),
    ],
)
async def test_a_traced_request_reports_its_answer_or_why_there_was_none(
    outcome: Response | BaseException, failure: str | None
) -> None:
    seen: list[Exchange] = []
    traced = TracedRequester(
        _Inner(outcome), address="printer.example:1161", version="v2c", trace=seen.append
    )
    oids = [parse_oid("1.3.6.1.2.1.1.1.0")]
    if isinstance(outcome, BaseException):
        with pytest.raises(type(outcome)):
            await traced.request(PduKind.BULK, oids, 10)
    else:
        assert await traced.request(PduKind.BULK, oids, 10) is outcome
    (exchange,) = seen
    assert (exchange.address, exchange.kind, exchange.oids, exchange.max_repetitions) == (
        "printer.example:1161",
        PduKind.BULK,
        tuple(oids),
        10,
    )
    assert (exchange.response, exchange.failure) == (
        (outcome, None) if failure is None else (None, failure)
    )

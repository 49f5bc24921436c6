"""What ``scan`` shows while it runs: reads in target order as they come, a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TextIO, TypeVar

from rich.console import Console, JustifyMethod, OverflowMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agent.eligibility.policy import Policy
from agent.eligibility.report import verdict_cell
from agent.eligibility.rules import evaluate_read
from agent.eligibility.scanning import with_eligibility
from agent.output import OutputError, json_line, printer_cells, write_line
from mibs.identity import stable_device_id
from mibs.models import PrinterRead

T = TypeVar("T")


@dataclass
class InOrder(Generic[T]):
    """Hands results to ``release`` in sequence (target) order, each as soon as its turn comes."""

    release: Callable[[T], None]
    _next: int = 0
    _held: dict[int, T | None] = field(default_factory=dict)

    def done(self, sequence: int, item: T | None) -> None:
        """Result number ``sequence`` is in (``None``: nothing to show for it)."""
        self._held[sequence] = item
        while self._next in self._held:
            ready = self._held.pop(self._next)
            self._next += 1
            if ready is not None:
                self.release(ready)


#: The columns after the address: (header, width or None for "as wide as needed", justify).
_COLUMNS: list[tuple[str, int | None, JustifyMethod]] = [
    ("Vendor", 12, "left"),
    ("Model", 26, "left"),
    ("Serial", 16, "left"),
    ("Lifetime pages", 14, "right"),
    ("Lowest supply", None, "left"),
]


class ScanOutput:
    """Prints reads one by one: JSON lines, or table rows under one header, columns fixed.

    In a table, ``console`` (the progress bar's, on a terminal) prints the rows above the
    bar, and notes (why an address shows nothing) go to stderr; JSON lines get no notes.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        table: bool = True,
        policy: Policy | None = None,
        address_width: int = 15,
        console: Console | None = None,
    ) -> None:
        width = None if stream.isatty() else 250  # piped: do not squeeze into 80 columns
        shared = console if stream.isatty() else None
        self._console = shared or Console(
            file=stream, width=width, soft_wrap=False, highlight=False
        )
        self._stream, self._table, self._policy = stream, table, policy
        self._columns = [("Address", address_width, "left"), *_COLUMNS]
        if policy is not None:
            self._columns[-1:] = [("Lowest supply", 24, "left"), ("Eligibility", None, "left")]
        self._printed = 0

    def _grid(self, *, header: bool) -> Table:
        grid = Table(box=None, show_header=header, header_style="bold", pad_edge=False)
        for name, width, justify in self._columns:
            overflow: OverflowMethod = "ellipsis" if width else "fold"
            grid.add_column(name, width=width, no_wrap=True, overflow=overflow, justify=justify)
        return grid

    def row(self, read: PrinterRead) -> None:
        if not self._table:
            record = read.model_dump(mode="json")  # the read schema, a policy's verdict too
            if self._policy is not None:
                record = with_eligibility(record, read, self._policy)
            write_line(self._stream, json_line(record))
            return
        cells = printer_cells(read)
        if self._policy is not None:
            verdict = evaluate_read(read, self._policy, device_id=stable_device_id(read.identity))
            cells.append(Text(verdict_cell(verdict)))
        grid = self._grid(header=self._printed == 0)
        grid.add_row(*cells)
        self._print(grid)
        self._printed += 1

    def note(self, message: str) -> None:
        if self._table:
            print(f"fleet-agent scan: {message}", file=sys.stderr)

    def finish(self) -> None:
        """A header even when nothing answered, so that an empty table says so."""
        if self._table and self._printed == 0:
            self._print(self._grid(header=True))

    def _print(self, grid: Table) -> None:
        try:
            self._console.print(grid)
            self._stream.flush()
        except OSError as exc:
            raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


@dataclass
class ScanProgress:
    update: Callable[[int, int], None]  # (addresses done, printers found)
    console: Console | None  # the live display's console (prints above the bar), if any


@contextmanager
def scan_progress(total: int, stream: TextIO) -> Iterator[ScanProgress]:
    """A progress bar on ``stream`` when it is a terminal; otherwise nothing is shown."""
    shown = stream.isatty()
    with Progress(
        TextColumn("[bold]scan"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[printers]} printers"),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=True,
        disable=not shown,
    ) as progress:
        task = progress.add_task("scan", total=total, printers=0)
        yield ScanProgress(
            update=lambda done, printers: progress.update(task, completed=done, printers=printers),
            console=progress.console if shown else None,
        )

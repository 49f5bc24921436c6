"""What ``scan`` shows while it runs: reads in address order as they come, a progress bar.

* :class:`InOrder` releases results in target order as soon as every earlier
  target is done, so rows stream while the scan runs and still come out in
  one order (by address, numerically: the order targets are iterated in) in
  the table and in JSON lines alike.
* :class:`RowPrinter` prints table rows one at a time with fixed columns: a
  header before the first row, each row as soon as it is released.
* :func:`scan_progress`: a rich progress bar on stderr when stderr is a
  terminal, nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TextIO, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agent.eligibility.policy import Policy
from agent.eligibility.report import verdict_cell
from agent.eligibility.rules import evaluate_read
from agent.output import OutputError, printer_cells
from mibs.identity import stable_device_id
from mibs.models import PrinterRead

T = TypeVar("T")


@dataclass
class InOrder(Generic[T]):
    """Hands results to ``release`` in sequence order, each as soon as its turn comes."""

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


#: (header, width or None for "as wide as needed", right-aligned)
_COLUMNS = (
    ("Address", 15, False),
    ("Vendor", 12, False),
    ("Model", 26, False),
    ("Serial", 16, False),
    ("Lifetime pages", 14, True),
    ("Lowest supply", None, False),
)


class RowPrinter:
    """Prints printer rows one by one under one header, columns fixed so that they line up."""

    def __init__(
        self,
        stream: TextIO,
        *,
        policy: Policy | None = None,
        address_width: int = 15,
        console: Console | None = None,
    ) -> None:
        width = None if stream.isatty() else 250  # piped: do not squeeze into 80 columns
        self._console = console or Console(
            file=stream, width=width, soft_wrap=False, highlight=False
        )
        self._stream = stream
        self._policy = policy
        self._columns = [
            (name, address_width if name == "Address" else width_, right)
            for name, width_, right in _COLUMNS
        ]
        if policy is not None:
            self._columns[-1] = ("Lowest supply", 24, False)
            self._columns.append(("Eligibility", None, False))
        self._printed = 0

    def _table(self, *, header: bool) -> Table:
        table = Table(box=None, show_header=header, header_style="bold", pad_edge=False)
        for name, width, right in self._columns:
            table.add_column(
                name,
                width=width,
                no_wrap=True,
                overflow="ellipsis" if width else "fold",
                justify="right" if right else "left",
            )
        return table

    def row(self, read: PrinterRead) -> None:
        cells = printer_cells(read)
        if self._policy is not None:
            verdict = evaluate_read(read, self._policy, device_id=stable_device_id(read.identity))
            cells.append(Text(verdict_cell(verdict)))
        table = self._table(header=self._printed == 0)
        table.add_row(*cells)
        self._print(table)
        self._printed += 1

    def finish(self) -> None:
        """A header even when nothing answered, so that an empty table says so."""
        if self._printed == 0:
            self._print(self._table(header=True))

    def _print(self, table: Table) -> None:
        try:
            self._console.print(table)
            self._stream.flush()
        except OSError as exc:
            raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


@dataclass
class ScanProgress:
    """What the progress bar shows; ``advance`` after each address."""

    update: Callable[[int, int], None]  # (addresses done, printers found)
    console: Console | None  # the live display's console (prints above the bar), if any


@contextmanager
def scan_progress(total: int, stream: TextIO) -> Iterator[ScanProgress]:
    """A progress bar on ``stream`` when it is a terminal; otherwise nothing is shown."""
    if not stream.isatty():
        yield ScanProgress(update=lambda _done, _printers: None, console=None)
        return
    progress = Progress(
        TextColumn("[bold]scan"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[printers]} printers"),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=True,
    )
    task = progress.add_task("scan", total=total, printers=0)

    def update(done: int, printers: int) -> None:
        progress.update(task, completed=done, printers=printers)

    with progress:
        yield ScanProgress(update=update, console=progress.console)

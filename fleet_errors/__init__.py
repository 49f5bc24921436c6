"""The one error tree of fleet-agent, documented at its root.

Every error the code raises *on purpose* is a :class:`FleetAgentError`, and says
whose fault it is, as h11 keeps ``LocalProtocolError`` apart from
``RemoteProtocolError``::

    FleetAgentError                         raised on purpose; carries context attributes
    +-- LocalError                          fix it on this side: arguments, config, our files
    |   +-- agent.errors.UsageError         a command-line argument (exit status 2)
    |   +-- agent.errors.ConfigError        a config, policy or contacts file: file:line:field (2)
    |   +-- agent.errors.NothingYet         nothing to report yet: no inventory, no reads (1)
    |   +-- agent.errors.OutputError        the output stream closed or failed
    |   +-- agent.inventory.InventoryError  the inventory database
    |   +-- agent.demo.sim.DemoError        the demo could not start its simulated peers
    |   +-- collectors.targets.TargetError  a target range or exclusion is malformed or too big
    |   +-- mibs.snmprec.SnmprecError       a .snmprec recording is malformed (path, line)
    |   +-- uploader.errors.KeyFileError    a key file is missing, unreadable or not Ed25519
    |   +-- uploader.errors.MqttConfigError an MQTT setting (TLS files, endpoint) is unusable
    |   +-- uploader.errors.QueueError      the durable outbox (full, disk full, locked, corrupt,
    |   |                                   closed)
    |   +-- backend.store.StoreError        the reference backend's database
    +-- RemoteError                         the peer did it: a device, the broker, a message
        +-- collectors.errors.SnmpError     a device did not answer usably (address, oid, reason):
        |                                   SnmpTimeout, SnmpAuthError, SnmpProtocolError, ...
        +-- uploader.errors.BrokerUnavailable  the MQTT broker refused or is unreachable
        +-- uploader.errors.EnvelopeRejected   a received envelope failed verification (reason)

A device that answers garbage for one field is *not* an exception: decoders
record a ``Problem`` on the read and the rest survives. Anything that escapes
and is not a ``FleetAgentError`` is a bug in our code: it is never caught to be
reworded, it crashes the task loudly with its traceback.

Errors carry their context as attributes (``address``, ``oid``, ``path``,
``line``, ``field``, ``reason``; ``None`` when not known) as well as in the
message, which always names the place. Third-party errors (pysnmp, aiomqtt,
sqlite3, psycopg, joserfc, OSError) are translated where they enter our code
and chained with ``from`` (:func:`translate` does it for a block).

Tasks run in ``asyncio.TaskGroup``\\ s, so failures arrive wrapped in
``ExceptionGroup``\\ s. :func:`leaves`, :func:`known_error` and :func:`describe`
are the one way to unwrap them: the CLI, ``run --once``, the daemon's jobs,
``status`` and the logs all say "192.0.2.7: no answer within 2 s", never
"unhandled errors in a TaskGroup (1 sub-exception)".

This module imports nothing but the standard library, so every package
(``mibs`` and ``uploader`` included) can use it without changing the
direction of imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "FleetAgentError",
    "LocalError",
    "RemoteError",
    "describe",
    "exit_code",
    "known_error",
    "leaves",
    "translate",
]


class FleetAgentError(Exception):
    """Root of every error raised on purpose. The message names the place.

    ``exit_code`` is the CLI's exit status for it (2 for usage and configuration
    errors, 1 otherwise).
    """

    exit_code: int = 1
    address: str | None = None
    oid: str | None = None
    path: str | Path | None = None  # as the caller named it
    line: int | None = None
    field: str | None = None
    reason: str | None = None

    def __init__(
        self,
        message: str,
        *,
        address: str | None = None,
        oid: str | None = None,
        path: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        # Only what is given: a subclass may declare a default (e.g. a reason word).
        if address is not None:
            self.address = address
        if oid is not None:
            self.oid = oid
        if path is not None:
            self.path = path
        if line is not None:
            self.line = line
        if field is not None:
            self.field = field
        if reason is not None:
            self.reason = reason


class LocalError(FleetAgentError):
    """The fault is on this side: an argument, the configuration, one of our files, this host."""


class RemoteError(FleetAgentError):
    """The fault is the peer's: a device, the broker, or a message we received."""


# -- exception groups: the one way to unwrap them ---------------------------------------


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside ``error`` (itself if it is not a group), depth first, in order."""
    if not isinstance(error, BaseExceptionGroup):
        return [error]
    found: list[BaseException] = []
    for inner in error.exceptions:
        found.extend(leaves(inner))
    return found


def known_error(error: BaseException) -> FleetAgentError | None:
    """The first of our errors in ``error`` when *every* leaf is ours, else ``None``.

    ``None`` means a bug (or a cancellation) is among the leaves: let it propagate.
    """
    found = leaves(error)
    if all(isinstance(leaf, FleetAgentError) for leaf in found):
        first = found[0]
        assert isinstance(first, FleetAgentError)
        return first
    return None


def exit_code(error: BaseException) -> int:
    """The CLI exit status for ``error``: the highest of its leaves' (1 for a bug)."""
    return max(leaf.exit_code if isinstance(leaf, FleetAgentError) else 1 for leaf in leaves(error))


def describe(error: BaseException, *, most: int = 3, types: bool = False) -> str:
    """One sentence for any failure, groups unwrapped.

    Our errors by their message (it names the device or file), prefixed by their
    class name when ``types``; anything else by its type and message (it is a
    bug: its traceback is in the log).
    """
    sentences: list[str] = []
    for leaf in leaves(error):
        ours = isinstance(leaf, FleetAgentError) and not types
        text = str(leaf) if ours else _typed(leaf)
        if text not in sentences:
            sentences.append(text)
    if len(sentences) > most:
        rest = len(sentences) - most
        sentences = [*sentences[:most], f"and {rest} more"]
    return "; ".join(sentences)


def _typed(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- third-party errors, translated at the edge -----------------------------------------

Translation = Callable[[BaseException], FleetAgentError]


@contextmanager
def translate(mapping: Mapping[type[BaseException], Translation]) -> Iterator[None]:
    """Re-raise a third-party error inside the block as ours, chained with ``from``.

    ``mapping`` goes from a third-party exception type to a function building our
    error from it; the first matching type (in order) wins. Anything else passes.
    """
    try:
        yield
    except FleetAgentError:
        raise
    except Exception as exc:
        for kind, build in mapping.items():
            if isinstance(exc, kind):
                raise build(exc) from exc
        raise

"""The agent's own errors, in the one tree rooted at :class:`fleet_errors.FleetAgentError`.

The tree, and why it lives in its own dependency-free module, is documented in
:mod:`fleet_errors`. ``FleetAgentError``, ``LocalError`` and ``RemoteError`` are
re-exported here for the agent's modules.
"""

from __future__ import annotations

from pathlib import Path

from fleet_errors import FleetAgentError, LocalError, RemoteError

__all__ = [
    "ConfigError",
    "FleetAgentError",
    "LocalError",
    "NothingYet",
    "RemoteError",
    "UsageError",
]


class UsageError(LocalError):
    """A command-line argument is wrong; the message names it."""

    exit_code = 2


class ConfigError(LocalError):
    """A configuration or policy file is wrong; the message names file, line and field."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, path=path, line=line, field=field)


class NothingYet(LocalError):
    """The command is right but there is nothing to report yet: no inventory, no reads.

    Exit status 1, as for a scan that found no printer: 2 is for usage errors only.
    The message says what to run first.
    """

    exit_code = 1

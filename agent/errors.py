"""The error tree, documented at its root.

``FleetAgentError`` is the root of what the agent raises on purpose. Each
package keeps its own base so that it does not import ``agent``:

* ``mibs``: decoders do not raise for device garbage; they record a
  ``mibs.models.Problem`` and the read survives.
* ``collectors.errors.SnmpError``: a request failed (timeout, auth, protocol).
* ``uploader.errors.UploadError``: queue, signing or broker trouble.
* ``agent.errors.FleetAgentError``: configuration and usage errors, below.

The CLI turns any of these into one line on stderr and a non-zero exit;
anything else is a bug and crashes loudly with a traceback.
"""

from __future__ import annotations


class FleetAgentError(Exception):
    """Root of the agent's own errors."""

    exit_code = 1


class UsageError(FleetAgentError):
    """A command-line argument is wrong; the message names it."""

    exit_code = 2


class ConfigError(FleetAgentError):
    """A configuration or policy file is wrong; the message names file, line and field."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

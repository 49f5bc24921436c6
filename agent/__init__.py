"""fleet-agent: the composition root (CLI, config, daemon, scheduling, eligibility)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fleet-agent")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

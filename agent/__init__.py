"""fleet-agent: the composition root (CLI, config, daemon, scheduling, eligibility).

``__version__`` is looked up on first use (``importlib.metadata`` costs start-up
time that ``fleet-agent --help`` should not pay).
"""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fleet-agent")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0+source"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

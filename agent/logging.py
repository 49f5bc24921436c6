"""structlog, configured once per process.

JSON lines when the stream is not a terminal, the console renderer when it is.
Per-device context travels in contextvars (``bind_contextvars(address=...)``).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

_configured = False


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    global _configured  # noqa: PLW0603 - configured exactly once per process
    out = stream if stream is not None else sys.stderr
    renderer: structlog.types.Processor
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=not _configured,
    )
    _configured = True

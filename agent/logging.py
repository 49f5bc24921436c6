"""structlog, configured once per process.

JSON lines when the stream is not a terminal, the console renderer when it is.
Per-device context travels in contextvars (``bind_contextvars(address=...)``).

Records of the standard ``logging`` module (``mibs`` logs a decoder bug that
way, since it depends on nothing but the standard library and pydantic; third
parties log warnings that way) are rendered by the same processors into the
same stream: one format, one place. Their ``extra`` fields become event fields.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

_configured = False
_HANDLER_NAME = "fleet-agent"


def _bridge_standard_logging(renderer: structlog.types.Processor, out: TextIO, level: int) -> None:
    """Route standard-library log records through structlog's renderer into ``out``."""
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Third-party libraries chatter at INFO; their warnings and our errors get through.
    root.setLevel(max(logging.WARNING, level))


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    global _configured  # noqa: PLW0603 - configured exactly once per process
    out = stream if stream is not None else sys.stderr
    renderer: structlog.types.Processor
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=not _configured,
    )
    _bridge_standard_logging(renderer, out, numeric_level)
    _configured = True

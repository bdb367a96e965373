"""structlog configuration, nothing else: JSON lines in production, readable on a tty.

Every line carries the call id (bound once per call lane) and, where one is involved, the rule.
"""

from __future__ import annotations

import logging
import sys

import structlog
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["client_faults_as_warnings", "configure_logging"]


class _ClientFault(logging.Filter):
    """aiohttp logs a request its parser refused (bad HTTP from a client or a scanner) at error
    level with a traceback: the client's fault, not the app's, so one warning line without it
    (an error line is what an admin is paged for)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if isinstance(fault, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "malformed HTTP request refused: %s %s", (
                fault.code, fault.message)
            record.exc_info = record.exc_text = None
        return True


def client_faults_as_warnings() -> None:
    """aiohttp's server logs a malformed request as a warning (idempotent; the app calls it
    wherever it serves HTTP, whoever configured the logging)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ClientFault) for f in server.filters):
        server.addFilter(_ClientFault())


def configure_logging(level: str = "INFO", fmt: str = "auto", *, cache: bool = False) -> None:
    """`cache`: each module's logger is built once (the running app); off where tests
    capture logs (structlog's testing advice)."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer = (structlog.dev.ConsoleRenderer() if fmt == "console"
                else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared, processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # stdlib loggers' (aiohttp's, asyncio's) exc_info: the traceback as text, not
            # "<traceback object>"
            structlog.processors.format_exc_info, renderer]))
    client_faults_as_warnings()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

"""JSON logs carry tracebacks as text, from structlog and from stdlib loggers (aiohttp's)."""

import json
import logging
from contextlib import contextmanager

import structlog

from ari_app.log import configure_logging


@contextmanager
def json_logs():
    """The app's JSON logging (on the stderr of the moment), the test run's own put back
    after; entered in the test's body, where capsys captures."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    configure_logging("INFO", "json")
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


def test_given_json_logs_when_stdlib_logger_logs_exception_then_traceback_is_text(capsys):
    with json_logs():
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            logging.getLogger("aiohttp.server").exception("Error handling request")
            structlog.get_logger().exception("call handler failed", item="Tick")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["Error handling request", "call handler failed"]
    for line in lines:
        assert "exc_info" not in line, line
        assert line["exception"].startswith("Traceback (most recent call last)"), line
        assert "ZeroDivisionError: boom" in line["exception"]


def test_given_malformed_request_when_aiohttp_logs_it_then_one_warning_without_traceback(capsys):
    """A client's bad HTTP (a scanner, a fuzzer's NULL byte in a header) is not the app's error."""
    from aiohttp.http_exceptions import BadHttpMessage

    with json_logs():
        try:
            raise BadHttpMessage("Invalid header value char")
        except BadHttpMessage:
            logging.getLogger("aiohttp.server").exception("Error handling request")
    [line] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert line["level"] == "warning" and "exception" not in line, line
    assert line["event"] == "malformed HTTP request refused: 400 Invalid header value char"

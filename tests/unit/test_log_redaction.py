"""Tokens passed as `?access_token=` never reach a log line."""

import logging

from autocloud.entrypoints.api.logs import RedactTokens


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, None)


def test_access_log_arguments_are_masked() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/v1/stream?brand=alpha&access_token=ac_secret123&x=1",
        "1.1",
        200,
    )
    assert RedactTokens().filter(record)
    line = record.getMessage()
    assert "ac_secret123" not in line
    assert "access_token=***&x=1" in line and line.endswith(" 200")


def test_plain_messages_are_masked() -> None:
    record = _record("GET /v1/stream?access_token=ac_abc")
    RedactTokens().filter(record)
    assert record.getMessage() == "GET /v1/stream?access_token=***"

"""Keep bearer tokens out of logs.

Browsers' EventSource cannot send headers, so the live stream also takes `?access_token=`;
a query string ends up in access logs (ours, a reverse proxy's). The filter below masks
it in every record of the loggers it is installed on.
"""

import logging
import re

_TOKEN = re.compile(r"(access_token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Replace the value of any `access_token=` query parameter with `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _TOKEN.sub(r"\1***", a) if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN.sub(r"\1***", record.msg)
        return True


def install() -> None:
    """Mask tokens in uvicorn's access and error logs."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())

"""Times as users write them: epoch milliseconds, ISO 8601, or a span back from now (`1h`)."""

import re
from datetime import UTC, datetime

from autocloud.domain.errors import InvalidInput

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_LONGEST_MS = 1000 * 365 * 86_400_000
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_span_ms(text: str) -> int:
    """`90s`, `15m`, `1h`, `7d`, `2w` as milliseconds."""
    match = _SPAN.match(text.strip())
    if not match:
        raise InvalidInput(f"{text!r} is not a duration; write e.g. 30s, 15m, 1h, 7d")
    span = float(match.group(1)) * _UNIT_MS[match.group(2)]
    if span > _LONGEST_MS:
        raise InvalidInput(f"{text!r} is longer than 1000 years")
    return int(span)


def parse_time_ms(text: str, now_ms: int) -> int:
    """An instant: epoch ms (`1700000000000`), ISO 8601, `now`, or a span ago (`1h`)."""
    text = text.strip()
    if text == "now":
        return now_ms
    if text.isdigit():
        return int(text)
    if _SPAN.match(text):
        return now_ms - parse_span_ms(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a time; write epoch ms, ISO 8601 (2026-11-22T08:00:00Z), or 1h"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)

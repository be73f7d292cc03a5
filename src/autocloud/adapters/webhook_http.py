"""Webhook deliveries over HTTP with httpx (the `WebhookSender` port).

No redirects are followed (a 3xx is a failed attempt: a redirect could point inside the
network), proxies from the environment are ignored, and every failure becomes an
`Outcome` with an error text rather than an exception.
"""

import socket
import time
from collections.abc import Mapping

import httpx

from autocloud import __version__
from autocloud.ports.webhooks import Outcome

MAX_ERROR = 500


class HttpWebhookSender:
    def __init__(self, timeout_s: float, *, pool: int = 8) -> None:
        self._client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"Autocloud-Webhooks/{__version__}"},
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        started = time.perf_counter()
        try:
            response = self._client.post(url, content=body, headers=dict(headers))
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            # ValueError: a host that is no valid DNS name (UnicodeError from the IDNA codec).
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR], _ms(started))
        error = None
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}: {response.text[:200]}"
        return Outcome(response.status_code, error, _ms(started))

    def addresses(self, host: str) -> list[str]:
        try:
            found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except UnicodeError as exc:  # an empty or over-long label, a bad IDNA name
            raise OSError(f"not a valid host name ({exc})") from None
        return sorted({str(info[4][0]) for info in found})

    def close(self) -> None:
        self._client.close()


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)

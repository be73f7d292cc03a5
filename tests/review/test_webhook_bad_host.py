"""Review: a webhook URL whose host is not a valid DNS name (an empty or 64-character label,
an invalid IDNA A-label) is a clear 422 at creation, and, where it got in (development with
`webhook_allow_private`), a failed attempt that is logged and retried to `dead` - never an
exception that leaves the delivery leased and re-attempted forever."""

from typing import cast

from autocloud.adapters.webhook_http import HttpWebhookSender
from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import FixedClock
from autocloud.domain.errors import InvalidInput
from autocloud.ports.webhooks import WebhookStore
from autocloud.services.webhooks import RetryPolicy, WebhookService

BAD_HOSTS = ("a..b", "a" * 64 + ".example.com", "xn--zz.example.com")


def test_sender_turns_an_invalid_host_into_a_failed_outcome() -> None:
    sender = HttpWebhookSender(timeout_s=2)
    try:
        for host in BAD_HOSTS:
            outcome = sender.post(f"http://{host}/hook", b"{}", {})
            assert outcome.status_code is None
            assert outcome.error
    finally:
        sender.close()


def test_adding_a_webhook_with_an_invalid_host_is_invalid_input() -> None:
    policy = RetryPolicy(3, 1.0, 10.0, 2.0, 1, allow_private=False)
    sender = HttpWebhookSender(timeout_s=2)
    service = WebhookService(cast(WebhookStore, object()), sender, FixedClock(1_000), policy)
    admin = Principal("admin", Role.ADMIN, "vw")
    try:
        for host in BAD_HOSTS:
            try:
                service.add(admin, f"https://{host}/hook", ["alert"])
            except InvalidInput as exc:
                assert host[:20] in str(exc) or "resolve" in str(exc)
            else:
                raise AssertionError(f"{host!r} was accepted")
    finally:
        sender.close()
